// One HTTP exchange with Ferry over the platform's `fetch`: the bearer token, JSON in and
// out, errors as `FerryError`, and reads tried again while the server is briefly away.
import { FerryUnreachable, errorFrom } from "./errors.js";

export type Query = Record<string, string | number | boolean | string[] | undefined | null>;

export interface HttpOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:7878`. */
  server: string;
  /** An API key (`fk_…`) or, for a worker, a worker token (`fw_…`). */
  token: string;
  /** How long one request may take, in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Times a read (GET) is tried again on a network error or a `503` (default 3). */
  retries?: number;
  /** A `fetch` of your own (tests, proxies); the platform's by default. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Raw bytes instead of JSON. */
  bytes?: Uint8Array;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Give up after this long (default: the client's `timeoutMs`; 0: never). */
  timeoutMs?: number;
}

/** Waits `ms`, or less when `signal` aborts (its listener removed either way). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

export { sleep };

export class Http {
  readonly base: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: HttpOptions) {
    this.base = options.server.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 3;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  url(path: string, query?: Query): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      for (const one of Array.isArray(value) ? value : [value]) params.append(key, String(one));
    }
    const text = params.toString();
    return `${this.base}${path}${text ? `?${text}` : ""}`;
  }

  /** The answer as it came (any status); throws `FerryUnreachable` without one. */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      ...options.headers,
    };
    let body: BodyInit | undefined;
    if (options.bytes !== undefined) {
      body = options.bytes as unknown as BodyInit;
      headers["content-type"] ??= "application/octet-stream";
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = "application/json";
    }
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const controller = new AbortController();
    if (timeoutMs > 0) {
      // Also bounds reading the body; unref'd, so it never keeps the process alive.
      const timer = setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      timer.unref?.();
    }
    const { release } = follow(options.signal, controller);
    try {
      return await this.fetchImpl(this.url(path, options.query), {
        method,
        headers,
        body,
        signal: controller.signal,
      });
    } catch (cause) {
      if (options.signal?.aborted) throw cause;
      throw new FerryUnreachable(`${method} ${path}: ${(cause as Error).message}`, { cause });
    } finally {
      // A long-lived caller's signal (a worker's) must not gather a listener per request;
      // a stream reader stops its body itself.
      release();
    }
  }

  /** The JSON answer of a successful request (`undefined` for `204`); an error throws. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const reads = method === "GET" ? this.retries : 0;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.raw(method, path, options);
      } catch (e) {
        if (e instanceof FerryUnreachable && attempt < reads) {
          await sleep(backoff(attempt), options.signal);
          continue;
        }
        throw e;
      }
      if (response.ok) {
        if (response.status === 204 || response.headers.get("content-length") === "0") {
          return undefined as T;
        }
        return (await response.json()) as T;
      }
      const error = await errorFrom(response);
      if (error.transient && attempt < reads) {
        await sleep((error.retryAfter ?? 0) * 1000 || backoff(attempt), options.signal);
        continue;
      }
      throw error;
    }
  }
}

/** Aborts `controller` when `signal` does, until `release` removes the listener. */
export function follow(signal: AbortSignal | undefined, controller: AbortController): { release: () => void } {
  if (!signal) return { release: () => undefined };
  if (signal.aborted) {
    controller.abort(signal.reason);
    return { release: () => undefined };
  }
  const abort = () => controller.abort(signal.reason);
  signal.addEventListener("abort", abort, { once: true });
  return { release: () => signal.removeEventListener("abort", abort) };
}

/** 250 ms, 500 ms, 1 s, … up to 10 s, with jitter. */
export function backoff(attempt: number): number {
  const base = Math.min(10_000, 250 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}
