// The worker against a real server: handlers' results, progress and rows are reported;
// a handler's error fails the attempt with its code; a client's cancel reaches a running
// handler's signal; a worker that lost its lease does not report; a worker killed mid-job
// leaves a job another worker finishes; a stop lets running jobs end within the grace
// period and hands the rest back.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import { Ferry, type Handler, JobError, Worker, type WorkerOptions } from "../src/index.js";
import { API_TOKEN, type Running, WORKER_TOKEN, startFerry, until } from "./ferry.js";

let server: Running;
let ferry: Ferry;

before(async () => {
  server = await startFerry();
  ferry = new Ferry({ server: server.url, token: API_TOKEN });
});
after(() => server.stop());

function worker(handlers: WorkerOptions["handlers"], options: Partial<WorkerOptions> = {}): Worker {
  return new Worker({
    server: server.url,
    token: WORKER_TOKEN,
    handlers,
    pollWaitMs: 500,
    handleSignals: false,
    log: () => undefined,
    ...options,
  });
}

test("a handler's result, progress and rows reach the job; its error fails the attempt with its code", async () => {
  const w = worker({
    "sdk.reviews": async (job, ctx) => {
      await ctx.progress({ current: 1, total: 2, message: "page 1" });
      // Not awaited one by one: the rows still arrive once each, in order.
      await Promise.all([ctx.items([{ review: "a" }, { review: "b" }]), ctx.items([{ review: "c" }])]);
      return { store: (job.payload as { store: number }).store, reviews: 3 };
    },
    "sdk.broken": async () => {
      throw new JobError("PARTNER_DOWN", "the partner site answered 502", { retryable: false });
    },
  });
  const running = w.run();
  const good = await ferry.submit({ kind: "sdk.reviews", payload: { store: 7 } });
  const bad = await ferry.submit({ kind: "sdk.broken", payload: {}, max_attempts: 3 });
  const done = await ferry.wait(good.id, { timeoutMs: 15_000 });
  assert.equal(done.status, "completed");
  assert.deepEqual(done.result, { store: 7, reviews: 3 });
  const rows = [];
  for await (const item of ferry.allItems(good.id)) rows.push(item.data);
  assert.deepEqual(rows, [{ review: "a" }, { review: "b" }, { review: "c" }]);
  const failed = await ferry.wait(bad.id, { timeoutMs: 15_000 });
  assert.equal(failed.status, "failed", "not retryable: failed at once");
  assert.equal(failed.attempt, 1);
  assert.equal(failed.error?.code, "PARTNER_DOWN");
  await w.stop();
  await running;
});

test("a client's cancel reaches the running handler's signal", async () => {
  let reason: string | undefined;
  const started = new Set<string>();
  const w = worker(
    {
      "sdk.long": async (job, ctx) => {
        started.add(job.id);
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        reason = ctx.stopReason;
        throw ctx.signal.reason;
      },
    },
    { leaseMs: 6000 },
  );
  const running = w.run();
  const job = await ferry.submit({ kind: "sdk.long", payload: {} });
  await until("the handler to start", async () => (started.has(job.id) ? true : undefined));
  await ferry.cancel(job.id);
  await until("the handler to see the cancel", async () => reason, 10_000);
  assert.equal(reason, "cancelled");
  // The worker reports the cancel after its handler ends.
  await until("the job to be cancelled", async () =>
    (await ferry.get(job.id)).status === "cancelled" ? true : undefined,
  );
  await w.stop();
  await running;
});

test("a worker that lost its lease does not report; the job's next worker does", async () => {
  // The first worker's heartbeats never arrive, so its lease runs out and the job is
  // handed to the second worker; the first then finishes, and must not report.
  // The leases claims hand out, and the lease of every other report.
  const claimed: [string, string][] = [];
  const reported: [string, string][] = [];
  const dropBeats: typeof fetch = async (input, init) => {
    const url = String(input);
    if (url.endsWith("/heartbeat")) throw new TypeError("network down");
    if (url.includes("/v1/worker/jobs/")) {
      const lease = typeof init?.body === "string" ? (JSON.parse(init.body) as { lease?: string }).lease : undefined;
      reported.push([url, lease ?? ""]);
    }
    const response = await fetch(input, init);
    if (url.endsWith("/claim") && response.ok) {
      const body = (await response.clone().json()) as { jobs: { id: string; lease: string }[] };
      for (const job of body.jobs) claimed.push([job.id, job.lease]);
    }
    return response;
  };
  let firstFinished = false;
  let letGo: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  const first = worker(
    {
      "sdk.lease": async (_job, ctx) => {
        await Promise.race([gate, new Promise((resolve) => ctx.signal.addEventListener("abort", resolve))]);
        firstFinished = true;
        return "from the first worker";
      },
    },
    { fetch: dropBeats, leaseMs: 3000, id: "first" },
  );
  const running = first.run();
  const job = await ferry.submit({ kind: "sdk.lease", payload: {}, max_attempts: 3 });
  await until("the first attempt", async () => ((await ferry.get(job.id)).status === "running" ? true : undefined));
  await until("the lease to run out and the job to be handed back", async () => {
    const now = await ferry.get(job.id);
    return now.status === "pending" || now.attempt > 1 ? true : undefined;
  });
  await first.stop();
  letGo();
  await running;
  assert.ok(firstFinished, "the first handler ended");
  // The first worker may have claimed the job again (a new attempt, a new lease): what
  // matters is that nothing went out under the lease it lost.
  const lost = claimed.find(([id]) => id === job.id)?.[1];
  assert.ok(lost, "the first worker claimed the job");
  assert.deepEqual(
    reported.filter(([, lease]) => lease === lost),
    [],
    "the first worker sent nothing under its lost lease",
  );
  const second = worker({ "sdk.lease": async () => "from the second worker" }, { id: "second" });
  const secondRun = second.run();
  const done = await ferry.wait(job.id, { timeoutMs: 15_000 });
  assert.equal(done.status, "completed");
  assert.ok(done.attempt >= 2);
  await second.stop();
  await secondRun;
});

test("a job whose worker is killed mid-job is rescued and finished by another", async () => {
  const script = fileURLToPath(new URL("./fixtures/slow-worker.js", import.meta.url));
  const doomed = spawn(process.execPath, [script, server.url, WORKER_TOKEN], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => doomed.once("exit", resolve));
  let out = "";
  doomed.stdout?.on("data", (chunk) => (out += chunk));
  const job = await ferry.submit({ kind: "sdk.rescue", payload: {}, max_attempts: 3 });
  try {
    await until("the doomed worker to start the job", async () => (out.includes(`started ${job.id}`) ? true : undefined));
  } finally {
    doomed.kill("SIGKILL");
    await exited;
  }
  const rescuer = worker({ "sdk.rescue": async (j) => ({ rescued: j.attempt }) }, { id: "rescuer" });
  const running = rescuer.run();
  const done = await ferry.wait(job.id, { timeoutMs: 20_000 });
  assert.equal(done.status, "completed");
  assert.deepEqual(done.result, { rescued: 2 });
  await rescuer.stop();
  await running;
});

test("a stop lets running jobs finish within the grace period and hands back the rest", async () => {
  // `quick` may end only once the stop has begun; `stuck` ignores its signal altogether.
  let stopping: () => void = () => undefined;
  const stopBegun = new Promise<void>((resolve) => (stopping = resolve));
  const w = worker(
    {
      "sdk.quick": async () => {
        await stopBegun;
        await new Promise((r) => setTimeout(r, 200));
        return "finished during the grace period";
      },
      "sdk.stuck": () => new Promise(() => undefined),
    },
    { shutdownGraceMs: 1500, concurrency: 2 },
  );
  const running = w.run();
  const quick = await ferry.submit({ kind: "sdk.quick", payload: {} });
  const stuck = await ferry.submit({ kind: "sdk.stuck", payload: {}, max_attempts: 3 });
  await until("both to run", async () => {
    const [a, b] = await Promise.all([ferry.get(quick.id), ferry.get(stuck.id)]);
    return a.status === "running" && b.status === "running" ? true : undefined;
  });
  const stopped = w.stop();
  stopping();
  await stopped;
  await running;
  assert.equal((await ferry.get(quick.id)).status, "completed");
  const handedBack = await ferry.get(stuck.id);
  assert.notEqual(handedBack.status, "failed", "a shutdown is retried, not a failure");
  assert.equal(handedBack.error?.code, "WORKER_SHUTDOWN");
});

test("a stop while a claim is being answered runs the jobs it brings instead of stranding them", async () => {
  // The claim's answer is held back after the server has handed the job out; the stop
  // comes in between. Aborted at once, the job would sit `running` until its lease ran out.
  let granted: () => void = () => undefined;
  const handedOut = new Promise<void>((resolve) => (granted = resolve));
  const slowAnswers: typeof fetch = async (input, init) => {
    const response = await fetch(input, { ...init, signal: undefined });
    if (!String(input).endsWith("/v1/worker/claim")) return response;
    const body = await response.text();
    if ((JSON.parse(body) as { jobs: unknown[] }).jobs.length > 0) {
      granted();
      await new Promise((r) => setTimeout(r, 300));
    }
    if (init?.signal?.aborted) throw init.signal.reason;
    return new Response(body, { status: response.status, headers: response.headers });
  };
  const stopsWhenTold: Handler = (_job, ctx) =>
    new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
  const w = worker({ "sdk.late": stopsWhenTold }, {
    fetch: slowAnswers,
    shutdownGraceMs: 500,
    pollWaitMs: 5000,
  });
  const running = w.run();
  const late = await ferry.submit({ kind: "sdk.late", payload: {}, max_attempts: 3 });
  await handedOut;
  await w.stop();
  await running;
  const handedBack = await ferry.get(late.id);
  assert.notEqual(handedBack.status, "running", "the job was stranded under a lease nobody holds");
  assert.equal(handedBack.error?.code, "WORKER_SHUTDOWN");
});

test("a stop during an idle long poll ends without waiting out the poll", async () => {
  let sent: () => void = () => undefined;
  const claimSent = new Promise<void>((resolve) => (sent = resolve));
  const watching: typeof fetch = (input, init) => {
    if (String(input).endsWith("/v1/worker/claim")) sent();
    return fetch(input, init);
  };
  // Nothing to claim: the server would hold the claim 20 s.
  const w = worker({ "sdk.nothing": async () => "never" }, { fetch: watching, pollWaitMs: 20_000 });
  const running = w.run();
  await claimSent;
  const asked = Date.now();
  await w.stop();
  await running;
  const took = Date.now() - asked;
  assert.ok(took < 10_000, `the stop waited ${took} ms: the claim was not cut off`);
});
