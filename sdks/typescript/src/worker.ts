// A worker running your own code: it claims jobs of the kinds it has handlers for, holds
// each job's lease with heartbeats, gives the handler an AbortSignal that fires on
// cancellation, a lost lease, the job's deadline or shutdown, reports progress and rows,
// and reports the result once (tried again while the server is away, dropped when the lease
// is lost: another worker has the job). SIGTERM and SIGINT stop it gracefully.
import { hostname } from "node:os";

import { FerryError, FerryUnreachable, errorFrom } from "./errors.js";
import { Http, type HttpOptions, backoff, sleep } from "./http.js";
import type { components } from "./openapi.js";

type Schemas = components["schemas"];
export type ClaimedJob = Schemas["ClaimedJob"];

/** Why a job's signal fired. */
export type StopReason = "cancelled" | "lease_lost" | "deadline" | "shutdown";

/** What a handler gets beside the job. */
export interface JobContext {
  /** Fires when the handler should stop: see `stopReason`. Pass it to your own calls. */
  readonly signal: AbortSignal;
  /** Why `signal` fired, once it has. */
  readonly stopReason: StopReason | undefined;
  /** Reports progress (shown on the job and its events). */
  progress(update: { current?: number; total?: number; message?: string }): Promise<void>;
  /** Appends rows to the job's items, in order; a report repeated after a network error stores each row once. */
  items(rows: unknown[]): Promise<void>;
  /** Uploads a file kept with the job (a screenshot, a page's HTML). */
  artifact(name: string, bytes: Uint8Array, contentType?: string): Promise<void>;
  /**
   * The saved state of the session the job uses (its payload's `use_session`), e.g. a
   * Playwright `storageState`; `null` when nothing is saved under the name yet.
   */
  loadSession(): Promise<unknown>;
  /** Saves `state` as the session the job saves (its payload's `save_session`), sealed by Ferry. */
  saveSession(state: unknown): Promise<void>;
}

export type Handler = (job: ClaimedJob, ctx: JobContext) => Promise<unknown>;

/** Throw this from a handler to fail the attempt with your own code; `retryable: false` fails the job for good. */
export class JobError extends Error {
  override readonly name = "JobError";
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(
    code: string,
    message: string,
    options: { retryable?: boolean; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.code = code;
    this.retryable = options.retryable ?? true;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export interface WorkerOptions extends HttpOptions {
  /** One handler per kind (`"reviews.sync": async (job, ctx) => …`). */
  handlers: Record<string, Handler>;
  /** Jobs run at once (default 4). */
  concurrency?: number;
  /** This worker's name in Ferry (default: host name and process id). */
  id?: string;
  /** The lease to ask for, in ms (default: the server's); heartbeats come every third of it. */
  leaseMs?: number;
  /** How long a claim waits for a job when none is ready, in ms (default 20 000). */
  pollWaitMs?: number;
  /** On stop, how long running jobs may take to finish before they are stopped (default 30 000). */
  shutdownGraceMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
  /** Where the worker says what happened (default: console.error). */
  log?: (message: string) => void;
}

interface Running {
  job: ClaimedJob;
  stop: (reason: StopReason) => void;
  done: Promise<void>;
}

export class Worker {
  private readonly http: Http;
  private readonly handlers: Record<string, Handler>;
  private readonly concurrency: number;
  private readonly id: string;
  private readonly pollWaitMs: number;
  private readonly leaseMs: number | undefined;
  private readonly graceMs: number;
  private readonly handleSignals: boolean;
  private readonly log: (message: string) => void;
  private readonly running = new Map<string, Running>();
  private readonly stopping = new AbortController();
  /** Settles when the worker is told to stop (one promise, so waits add no listeners). */
  private readonly stopped: Promise<void>;
  private finished: Promise<void> | undefined;
  /** When the stop came: the grace period runs from then. */
  private stoppedAt: number | undefined;

  constructor(options: WorkerOptions) {
    this.http = new Http(options);
    this.handlers = options.handlers;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.id = options.id ?? `${hostname()}-${process.pid}`;
    this.pollWaitMs = options.pollWaitMs ?? 20_000;
    this.leaseMs = options.leaseMs;
    this.graceMs = options.shutdownGraceMs ?? 30_000;
    this.handleSignals = options.handleSignals ?? true;
    this.log = options.log ?? ((message) => console.error(`[ferry worker ${this.id}] ${message}`));
    if (Object.keys(this.handlers).length === 0) throw new Error("a worker needs at least one handler");
    for (const kind of Object.keys(this.handlers)) {
      if (kind.includes("*")) throw new Error(`handlers are for kinds, not patterns: ${kind}`);
    }
    this.stopped = new Promise((resolve) =>
      this.stopping.signal.addEventListener(
        "abort",
        () => {
          this.stoppedAt = Date.now();
          resolve();
        },
        { once: true },
      ),
    );
  }

  /** Claims and runs jobs until `stop()` (or SIGTERM/SIGINT); resolves once every job is reported. */
  run(): Promise<void> {
    this.finished ??= this.loop();
    return this.finished;
  }

  /** Stops claiming, lets running jobs finish within the grace period, then stops them (they are retried elsewhere). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.finished;
  }

  private async loop(): Promise<void> {
    const onSignal = () => {
      this.log("stopping: finishing running jobs");
      this.stopping.abort();
    };
    if (this.handleSignals) {
      process.once("SIGTERM", onSignal);
      process.once("SIGINT", onSignal);
    }
    let failures = 0;
    try {
      while (!this.stopping.signal.aborted) {
        const free = this.concurrency - this.running.size;
        if (free <= 0) {
          await Promise.race([...[...this.running.values()].map((r) => r.done), this.stopped]);
          continue;
        }
        let claimed: ClaimedJob[];
        // A stop gives a claim already sent a moment to answer: it may hold jobs the server
        // has handed out, which would otherwise wait for their leases to run out. They run
        // within the grace period like the others.
        const claiming = new AbortController();
        const cutOff = () => setTimeout(() => claiming.abort(), Math.min(CLAIM_ANSWER_WAIT_MS, this.graceMs));
        let cutOffTimer: ReturnType<typeof setTimeout> | undefined;
        const onStop = () => (cutOffTimer = cutOff());
        this.stopping.signal.addEventListener("abort", onStop, { once: true });
        try {
          const answer = await this.http.json<Schemas["ClaimResponse"]>("POST", "/v1/worker/claim", {
            body: {
              worker_id: this.id,
              kinds: Object.keys(this.handlers),
              max_jobs: free,
              wait_ms: this.pollWaitMs,
              lease_ms: this.leaseMs,
            },
            signal: claiming.signal,
            timeoutMs: this.pollWaitMs + 30_000,
          });
          claimed = answer.jobs;
          failures = 0;
        } catch (e) {
          if (this.stopping.signal.aborted) break;
          if (e instanceof FerryError && !e.transient) throw e;
          this.log(`claim failed (${(e as Error).message}); trying again`);
          await sleep((e instanceof FerryError && e.retryAfter ? e.retryAfter * 1000 : 0) || backoff(failures++), this.stopping.signal);
          continue;
        } finally {
          this.stopping.signal.removeEventListener("abort", onStop);
          clearTimeout(cutOffTimer);
        }
        const receivedAt = Date.now();
        for (const job of claimed) this.start(job, receivedAt);
      }
    } finally {
      await this.drain();
      if (this.handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
    }
  }

  /** Waits for running jobs within the grace period (from the stop), then stops the rest. */
  private async drain(): Promise<void> {
    const all = () => Promise.all([...this.running.values()].map((r) => r.done));
    const spent = this.stoppedAt === undefined ? 0 : Date.now() - this.stoppedAt;
    const timer = setTimeout(() => {
      for (const running of this.running.values()) running.stop("shutdown");
    }, Math.max(0, this.graceMs - spent));
    try {
      await all();
    } finally {
      clearTimeout(timer);
    }
  }

  private start(job: ClaimedJob, receivedAt: number): void {
    const controller = new AbortController();
    let reason: StopReason | undefined;
    let abandon: () => void = () => undefined;
    const abandoned = new Promise<"abandoned">((resolve) => (abandon = () => resolve("abandoned")));
    const stop = (why: StopReason) => {
      if (reason) return;
      reason = why;
      controller.abort(new Error(`job ${job.id} stopped: ${why}`));
      // A handler that ignores its signal is left behind after a while: the job is
      // reported now, so a stop never waits on it forever.
      setTimeout(abandon, ABANDON_AFTER_MS).unref?.();
    };
    const handler = this.handlers[job.kind];
    // Times on this machine's clock (the server's may differ). The server grants a lease
    // as it answers (a long poll answers when a job comes), so the lease runs from the
    // answer less a margin for its way here; a heartbeat's from when it was sent. The
    // deadline is as far from the claim as the server set it.
    const claimedAt = receivedAt;
    let leaseUntil = claimedAt + job.lease_ms - Math.min(1000, job.lease_ms / 10);
    const deadlineIn = Date.parse(job.deadline) - (Date.parse(job.lease_expires_at) - job.lease_ms);
    let beating = false;
    const heartbeat = setInterval(async () => {
      if (beating) return;
      if (Date.now() > leaseUntil) return stop("lease_lost");
      beating = true;
      const sentAt = Date.now();
      try {
        const status = await this.report<Schemas["LeaseStatus"]>(job, "heartbeat", {}, job.lease_ms / 3);
        leaseUntil = Math.max(leaseUntil, sentAt + job.lease_ms);
        if (status.cancel) stop("cancelled");
      } catch (e) {
        if (e instanceof FerryError && e.code === "LEASE_LOST") stop("lease_lost");
        // Otherwise the next beat tries again while the lease lasts.
      } finally {
        beating = false;
      }
    }, Math.max(200, Math.floor(job.lease_ms / 3)));
    const deadline = setTimeout(() => stop("deadline"), Math.max(0, deadlineIn - (Date.now() - claimedAt)));
    const leaseHeld = () => reason !== "lease_lost" && Date.now() <= leaseUntil;
    // Rows go one report after another, each at its place in this attempt's stream, so a
    // report repeated after a network error stores each row once and none is skipped.
    let offset = 0;
    let rowsSent: Promise<void> = Promise.resolve();
    let rowsFailed: unknown;
    const sendRows = (rows: unknown[]) => {
      const at = offset;
      offset += rows.length;
      rowsSent = rowsSent.then(async () => {
        for (let i = 0; i < rows.length; i += MAX_ROWS_PER_REPORT) {
          const part = rows.slice(i, i + MAX_ROWS_PER_REPORT);
          await this.reportHard(job, "progress", { items: part, items_offset: at + i }, leaseHeld);
        }
      });
      rowsSent.catch((e) => (rowsFailed ??= e));
      return rowsSent;
    };
    const ctx: JobContext = {
      signal: controller.signal,
      get stopReason() {
        return reason;
      },
      progress: async (update) => {
        await this.reportHard(job, "progress", { ...update }, leaseHeld);
      },
      items: (rows) => sendRows(rows),
      artifact: async (name, bytes, contentType = "application/octet-stream") => {
        const answer = await this.http.raw("PUT", `/v1/worker/jobs/${job.id}/artifacts/${encodeURIComponent(name)}`, {
          bytes,
          headers: { "content-type": contentType, "ferry-lease": job.lease },
        });
        if (!answer.ok) throw await errorFrom(answer);
        await answer.body?.cancel();
      },
      loadSession: async () => {
        const answer = await this.reportHard<Schemas["SessionLoadResponse"]>(job, "session/load", {}, leaseHeld);
        return answer.state ?? null;
      },
      saveSession: async (state) => {
        const name = (job.payload as { save_session?: unknown } | null)?.save_session;
        if (typeof name !== "string") throw new Error("the job's payload names no save_session");
        await this.reportHard(job, "session/save", { name, state }, leaseHeld);
      },
    };
    const done = (async () => {
      let outcome: { result: unknown } | { error: Schemas["FailError"] };
      try {
        if (!handler) throw new JobError("NO_HANDLER", `this worker has no handler for ${job.kind}`);
        const ran = await Promise.race([handler(job, ctx).then((result) => ({ result })), abandoned]);
        if (ran === "abandoned") {
          this.log(`job ${job.id}: its handler did not stop within ${ABANDON_AFTER_MS} ms of ${reason}; reporting without it`);
        }
        if (ran === "abandoned" || reason === "cancelled" || reason === "lease_lost") {
          outcome = { error: stopped(reason ?? "shutdown") };
        } else {
          // A handler that finished its work despite a shutdown or deadline has a result.
          await rowsSent.catch(() => undefined);
          outcome = rowsFailed
            ? {
                error: {
                  code: "ITEMS_UNDELIVERED",
                  message: `rows were not stored: ${(rowsFailed as Error).message}`,
                  retryable: true,
                },
              }
            : { result: ran.result ?? null };
        }
      } catch (e) {
        outcome = { error: reason ? stopped(reason) : failure(e) };
      } finally {
        clearTimeout(deadline);
      }
      try {
        if (reason === "lease_lost" || !leaseHeld()) {
          this.log(`job ${job.id}: the lease was lost; nothing is reported (another worker has the job)`);
          return;
        }
        // The lease is kept (heartbeats go on) until the report is in or the lease is gone.
        await this.finish(job, outcome, leaseHeld);
      } finally {
        clearInterval(heartbeat);
      }
    })().finally(() => this.running.delete(job.lease));
    this.running.set(job.lease, { job, stop, done });
  }

  /** The attempt's end, reported once; a result the server refuses fails the job instead. */
  private async finish(
    job: ClaimedJob,
    outcome: { result: unknown } | { error: Schemas["FailError"] },
    leaseHeld: () => boolean,
  ): Promise<void> {
    try {
      if ("result" in outcome) {
        let body: { result: unknown };
        try {
          body = { result: JSON.parse(JSON.stringify(outcome.result ?? null)) };
        } catch (e) {
          throw new JobError("RESULT_REFUSED", `the result is not JSON: ${(e as Error).message}`, { retryable: false });
        }
        try {
          await this.reportHard(job, "complete", body, leaseHeld);
        } catch (e) {
          if (e instanceof FerryError && (e.status === 413 || e.status === 422)) {
            throw new JobError("RESULT_REFUSED", `Ferry refused the result: ${e.message}`, { retryable: false });
          }
          throw e;
        }
      } else {
        await this.reportHard(job, "fail", { error: outcome.error }, leaseHeld);
      }
    } catch (e) {
      if (e instanceof JobError) {
        await this.reportHard(job, "fail", { error: failure(e) }, leaseHeld).catch((again) =>
          this.log(`job ${job.id}: the failure was not applied: ${(again as Error).message}`),
        );
        return;
      }
      this.log(`job ${job.id}: the report was not applied: ${(e as Error).message}`);
    }
  }

  private report<T>(job: ClaimedJob, what: string, body: object, timeoutMs?: number): Promise<T> {
    return this.http.json<T>("POST", `/v1/worker/jobs/${job.id}/${what}`, {
      body: { ...body, lease: job.lease },
      ...(timeoutMs !== undefined ? { timeoutMs: Math.max(1000, timeoutMs) } : {}),
    });
  }

  /**
   * A report tried again while the server is away and `keepTrying()` holds (the server
   * applies a repeated report once); a lost lease or another refusal throws.
   */
  private async reportHard<T>(job: ClaimedJob, what: string, body: object, keepTrying: () => boolean): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.report<T>(job, what, body);
      } catch (e) {
        const transient = e instanceof FerryUnreachable || (e instanceof FerryError && e.transient);
        if (!transient || !keepTrying()) throw e;
        await sleep(backoff(attempt));
      }
    }
  }
}

function stopped(reason: StopReason): Schemas["FailError"] {
  switch (reason) {
    case "cancelled":
      return { code: "CANCELLED", message: "cancelled by a client", retryable: false };
    case "deadline":
      return { code: "TIMEOUT", message: "the attempt ran past its deadline", retryable: true };
    default:
      return { code: "WORKER_SHUTDOWN", message: "the worker stopped before the job finished", retryable: true };
  }
}

function failure(e: unknown): Schemas["FailError"] {
  if (e instanceof JobError) {
    return {
      code: e.code,
      message: e.message,
      retryable: e.retryable,
      ...(e.retryAfterMs !== undefined ? { retry_after_ms: e.retryAfterMs } : {}),
    };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: "HANDLER_ERROR", message: message.slice(0, 8000), retryable: true };
}

/** How long a stop waits for the answer of a claim already sent (as the Rust worker does). */
const CLAIM_ANSWER_WAIT_MS = 1_000;

/** How long a stopped handler may take to return before its job is reported without it. */
const ABANDON_AFTER_MS = 5_000;

/** The most rows one progress report carries (the server's limit). */
const MAX_ROWS_PER_REPORT = 1_000;
