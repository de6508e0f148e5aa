// A real `ferry serve` for the tests: the binary the Rust build made (FERRY_BIN, or
// $CARGO_TARGET_DIR/debug/ferry), on SQLite in a temporary directory and a free port.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const API_TOKEN = "sdk-test-api-token";
export const WORKER_TOKEN = "sdk-test-worker-token";

export function ferryBin(): string {
  const target = process.env.CARGO_TARGET_DIR ?? "/var/tmp/ferry-target";
  return process.env.FERRY_BIN ?? join(target, "debug", "ferry");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject()));
    });
  });
}

export interface Running {
  url: string;
  stop(): Promise<void>;
}

/** Starts a server and waits (at most 30 s) until it answers. */
export async function startFerry(env: Record<string, string> = {}): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "ferry-sdk-"));
  const port = await freePort();
  const child: ChildProcess = spawn(
    ferryBin(),
    ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dir],
    {
      env: {
        ...process.env,
        FERRY_API_TOKEN: API_TOKEN,
        FERRY_WORKER_TOKEN: WORKER_TOKEN,
        FERRY_LOG: process.env.FERRY_LOG ?? "warn",
        FERRY_EGRESS_ALLOW_PRIVATE: "true",
        ...env,
      },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`ferry serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("ferry serve did not answer within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits (bounded) until `check` answers a value. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
