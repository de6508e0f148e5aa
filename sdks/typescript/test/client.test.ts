// The client against a real server: submit, read, list, items, cancel and retry; errors as
// FerryError with their stable code; waiting for a job; events that resume without gaps
// after the connection drops.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Ferry, FerryError, type Event, messages, verifyWebhook } from "../src/index.js";
import { createHmac } from "node:crypto";
import { API_TOKEN, type Running, WORKER_TOKEN, startFerry } from "./ferry.js";

let server: Running;
let ferry: Ferry;

before(async () => {
  server = await startFerry();
  ferry = new Ferry({ server: server.url, token: API_TOKEN });
});
after(() => server.stop());

/** Claims one job of `kind` and completes it with `result`, as a worker would. */
async function workOne(kind: string, result: unknown, items: unknown[] = []): Promise<string> {
  const worker = new Ferry({ server: server.url, token: WORKER_TOKEN });
  const claimed = await worker.http.json<{ jobs: { id: string; lease: string }[] }>(
    "POST",
    "/v1/worker/claim",
    { body: { worker_id: "test", kinds: [kind], max_jobs: 1, wait_ms: 5000 } },
  );
  const job = claimed.jobs[0];
  assert.ok(job, `a ${kind} job to claim`);
  if (items.length > 0) {
    await worker.http.json("POST", `/v1/worker/jobs/${job.id}/progress`, {
      body: { lease: job.lease, items, items_offset: 0 },
    });
  }
  await worker.http.json("POST", `/v1/worker/jobs/${job.id}/complete`, {
    body: { lease: job.lease, result },
  });
  return job.id;
}

test("a job is submitted, found, worked and read back with its items", async () => {
  const job = await ferry.submit({
    kind: "sdk.sync",
    payload: { store: 42 },
    labels: { store_id: "42" },
    dedupe_key: "sdk-store-42",
  });
  assert.equal(job.status, "pending");
  const again = await ferry.submit({ kind: "sdk.sync", payload: {}, dedupe_key: "sdk-store-42" });
  assert.equal(again.id, job.id, "the dedupe key answers the unfinished job");

  const found = await ferry.list({ search: "STORE-42", status: "pending" });
  assert.deepEqual(found.jobs.map((j) => j.id), [job.id]);

  const waiting = ferry.wait(job.id, { timeoutMs: 15_000 });
  await workOne("sdk.sync", { reviews: 2 }, [{ n: 1 }, { n: 2 }]);
  const done = await waiting;
  assert.equal(done.status, "completed");
  assert.deepEqual(done.result, { reviews: 2 });
  const rows = [];
  for await (const item of ferry.allItems(job.id)) rows.push(item.data);
  assert.deepEqual(rows, [{ n: 1 }, { n: 2 }]);
});

test("cancel and retry go through, and a refusal is a FerryError with its code", async () => {
  const job = await ferry.submit({ kind: "sdk.cancel", payload: {} });
  const cancelled = await ferry.cancel(job.id);
  assert.equal(cancelled.status, "cancelled");
  const retried = await ferry.retry(job.id);
  assert.equal(retried.status, "pending");
  await assert.rejects(ferry.retry(job.id), (e: unknown) => {
    assert.ok(e instanceof FerryError);
    assert.equal(e.status, 409);
    assert.equal(e.code, "INVALID_STATE");
    return true;
  });

  await assert.rejects(ferry.submit({ kind: "no spaces allowed", payload: {} }), (e: unknown) => {
    assert.ok(e instanceof FerryError);
    assert.equal(e.status, 422);
    assert.equal(e.code, "VALIDATION_FAILED");
    assert.equal(e.fields[0]?.field, "kind");
    return true;
  });
  const stranger = new Ferry({ server: server.url, token: "wrong" });
  await assert.rejects(stranger.get(job.id), (e: unknown) => e instanceof FerryError && e.code === "UNAUTHORIZED");
});

test("a job's waiter answers at once for a job already final, and says when it gives up", async () => {
  const job = await ferry.submit({ kind: "sdk.final", payload: {} });
  await workOne("sdk.final", "ok");
  assert.equal((await ferry.wait(job.id, { timeoutMs: 5000 })).status, "completed");
  const stuck = await ferry.submit({ kind: "sdk.nobody", payload: {} });
  await assert.rejects(ferry.wait(stuck.id, { timeoutMs: 300 }), (e: unknown) => e instanceof FerryError && e.code === "WAIT_TIMEOUT");
});

test("the event stream resumes after a dropped connection with no event lost or repeated", async () => {
  // A fetch that cuts the first event stream after its first event.
  let cut = false;
  let streams = 0;
  const cutting: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const streaming = response.headers.get("content-type")?.includes("text/event-stream");
    if (streaming) streams++;
    if (!streaming || cut || !response.body) return response;
    cut = true;
    const reader = response.body.getReader();
    let seen = "";
    let cutNext = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (cutNext) return controller.error(new Error("connection reset"));
        const { value, done } = await reader.read();
        if (done) return controller.close();
        seen += new TextDecoder().decode(value);
        controller.enqueue(value);
        // Cut once a whole event has gone through (the next pull errors).
        if (/data:.*\n\n/.test(seen)) {
          await reader.cancel();
          cutNext = true;
        }
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  const client = new Ferry({ server: server.url, token: API_TOKEN, fetch: cutting });
  const stop = new AbortController();
  const seen: Event[] = [];
  const kinds = ["sdk.stream"];
  // Where the record is before the jobs are made: the stream starts there.
  const head = await ferry.http.json<{ next_after: number }>("GET", "/v1/events", {
    query: { after: "now", limit: 1 },
  });
  const reading = (async () => {
    const options = { after: head.next_after, kinds, types: ["job.created"], signal: stop.signal };
    for await (const event of client.events(options)) {
      seen.push(event);
      if (seen.length === 6) stop.abort();
    }
  })();
  const ids = [];
  for (let i = 0; i < 6; i++) {
    ids.push((await ferry.submit({ kind: "sdk.stream", payload: { i } })).id);
    await new Promise((r) => setTimeout(r, 50));
  }
  await Promise.race([
    reading,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`saw ${seen.length} events`)), 15_000)),
  ]);
  assert.ok(cut, "the first stream was cut");
  assert.ok(streams >= 2, `the stream was opened again (${streams} times)`);
  assert.deepEqual(
    seen.map((e) => e.job_id),
    ids,
    "every job's creation once, in order",
  );
});

test("event messages are read across chunk boundaries, a CRLF split between two chunks included", async () => {
  const chunks = ["id: 1\r", "\ndata: {\"a\"", ":1}\r\n\r\n: keep-alive\n\nid: 2\n\n", "data: x\r\ndata: y\r\n\r\n"];
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      controller.close();
    },
  });
  const got = [];
  for await (const message of messages(body)) got.push(message);
  assert.deepEqual(got, [
    { id: "1", data: '{"a":1}' },
    { id: "2", data: "" },
    { id: undefined, data: "x\ny" },
  ]);
});

test("a webhook delivery verifies with its secret, and not when changed, late or unsigned", () => {
  const secret = "whsec-a-long-random-string";
  const body = '{"type":"job.completed"}';
  const now = new Date("2026-12-07T00:00:00Z");
  const timestamp = String(now.getTime() / 1000);
  const signature = `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
  const headers = { "Ferry-Timestamp": timestamp, "Ferry-Signature": signature };
  assert.ok(verifyWebhook(secret, headers, body, 300, now));
  assert.ok(verifyWebhook(secret, new Headers(headers), new TextEncoder().encode(body), 300, now));
  assert.ok(!verifyWebhook(secret, headers, body.replace("completed", "failed"), 300, now));
  assert.ok(!verifyWebhook("another-secret-of-length", headers, body, 300, now));
  assert.ok(!verifyWebhook(secret, headers, body, 300, new Date(now.getTime() + 301_000)));
  assert.ok(!verifyWebhook(secret, { "Ferry-Timestamp": timestamp }, body, 300, now));
});
