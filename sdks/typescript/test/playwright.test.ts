// The Playwright example (examples/playwright-reviews.ts) as users would run it: real
// Playwright driving Debian's Chromium against the demo site (`ferry demo --site-only`).
// The first job signs in with the password and saves the login as a Ferry session; the
// next starts from that session, never sees the login page, and collects the same reviews
// (the saved state carries the site's localStorage too).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";

import { reviewsHandler } from "../examples/playwright-reviews.js";
import { Ferry, Worker } from "../src/index.js";
import { API_TOKEN, type Running, WORKER_TOKEN, ferryBin, startFerry } from "./ferry.js";

let server: Running;
let site: { url: string; stop(): void };

before(async () => {
  server = await startFerry();
  const child = spawn(ferryBin(), ["demo", "--site-only"], { stdio: ["ignore", "pipe", "ignore"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("the demo site did not start in 30 s")), 30_000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
    child.once("exit", (code) => reject(new Error(`ferry demo --site-only exited with ${code}`)));
  });
  site = { url, stop: () => child.kill("SIGTERM") };
});
after(async () => {
  site?.stop();
  await server?.stop();
});

test("Playwright code collects the reviews behind a login, then again from the saved session", async () => {
  const ferry = new Ferry({ server: server.url, token: API_TOKEN });
  const worker = new Worker({
    server: server.url,
    token: WORKER_TOKEN,
    handlers: { "demo.reviews": reviewsHandler({ password: "ferry-demo" }) },
    pollWaitMs: 500,
    handleSignals: false,
    log: () => undefined,
  });
  const running = worker.run();
  const payload = { site: site.url, use_session: "demo-shop", save_session: "demo-shop" };
  try {
    const first = await ferry.wait((await ferry.submit({ kind: "demo.reviews", payload })).id, { timeoutMs: 60_000 });
    assert.equal(first.status, "completed", JSON.stringify(first.error));
    assert.deepEqual(first.result, { reviews: 7, shop: "Harbor Cafe", signedIn: "with the password" });
    assert.deepEqual(
      (await ferry.sessions()).map((s) => s.name),
      ["demo-shop"],
    );

    const second = await ferry.wait((await ferry.submit({ kind: "demo.reviews", payload })).id, { timeoutMs: 60_000 });
    assert.equal(second.status, "completed", JSON.stringify(second.error));
    assert.deepEqual(second.result, { reviews: 7, shop: "Harbor Cafe", signedIn: "with the saved session" });
    const rows = [];
    for await (const item of ferry.allItems(second.id)) rows.push(item.data as { id: string; author: string });
    assert.deepEqual(
      rows.map((r) => r.id),
      ["rv-1", "rv-2", "rv-3", "rv-4", "rv-5", "rv-6", "rv-7"],
    );
    assert.equal(rows[0]?.author, "mina");
  } finally {
    await worker.stop();
    await running;
  }
});
