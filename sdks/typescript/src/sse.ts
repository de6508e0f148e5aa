// Ferry's event streams as async iterators: Server-Sent Events read off `fetch`, resumed
// after a dropped connection from the last id seen, so a consumer misses nothing.
import { FerryUnreachable, errorFrom } from "./errors.js";
import { type Http, type Query, backoff, sleep } from "./http.js";
import type { components } from "./openapi.js";

export type Event = components["schemas"]["Event"];

/** One message of a stream: its `id:` (if any) and its `data:` lines joined. */
export interface Message {
  id?: string;
  data: string;
}

/**
 * Parses a Server-Sent Events body into messages (the WHATWG rules: fields, blank lines).
 * Ends when the body does, or when `signal` aborts (the read is cancelled).
 */
export async function* messages(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<Message> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  if (signal?.aborted) cancel();
  signal?.addEventListener("abort", cancel, { once: true });
  let buffer = "";
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      // A "\r" that ends the chunk may be the first half of "\r\n": wait for the next one.
      while ((end = buffer.search(/\r\n|\r(?!$)|\n/)) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length > 0 || id !== undefined) yield { id, data: data.join("\n") };
          data = [];
          id = undefined;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

export interface StreamOptions {
  /** Start after this event id (0: from the start), or `"now"` (the default): only new events. */
  after?: number | "now";
  /** Only events of jobs of these kinds or kind patterns (`reviews.*`). */
  kinds?: string[];
  /** Only these event types (`job.completed`, `job.failed`, …). */
  types?: string[];
  /** Stops the stream (the iterator then ends). */
  signal?: AbortSignal;
}

/**
 * The events of `path` (`/v1/events` or `/v1/jobs/{id}/events`) as they happen. A dropped
 * connection is opened again after the last event id seen (backing off while the server is
 * away), so every event comes once and in order. Ends when `signal` aborts; throws a
 * `FerryError` the server answers that retrying cannot fix (a bad filter, a wrong token).
 */
export async function* events(
  http: Http,
  path: string,
  options: StreamOptions = {},
): AsyncGenerator<Event> {
  const { signal } = options;
  const filters: Query = {
    kind: options.kinds?.length ? options.kinds.join(",") : undefined,
    type: options.types?.length ? options.types.join(",") : undefined,
  };
  // "now" becomes the record's position at once, so a drop before the first event loses
  // nothing.
  let after: number;
  if (typeof options.after === "number") {
    after = options.after;
  } else {
    try {
      after = (
        await http.json<components["schemas"]["EventPage"]>("GET", path, {
          query: { ...filters, after: "now", limit: 1 },
          signal,
        })
      ).next_after;
    } catch (e) {
      if (signal?.aborted) return;
      throw e;
    }
  }
  let failures = 0;
  while (!signal?.aborted) {
    let response: Response;
    try {
      response = await http.raw("GET", path, {
        query: { ...filters, after },
        headers: { accept: "text/event-stream" },
        signal,
        timeoutMs: 0,
      });
    } catch (e) {
      if (signal?.aborted) return;
      if (!(e instanceof FerryUnreachable)) throw e;
      await sleep(backoff(failures++), signal);
      continue;
    }
    if (!response.ok) {
      const error = await errorFrom(response);
      if (!error.transient) throw error;
      await sleep((error.retryAfter ?? 0) * 1000 || backoff(failures++), signal);
      continue;
    }
    if (!response.body || !response.headers.get("content-type")?.startsWith("text/event-stream")) {
      await response.body?.cancel();
      throw new Error(`GET ${path} did not answer an event stream`);
    }
    const received: Event[] = [];
    try {
      // Read under the caller's signal: an abort ends the read.
      for await (const message of messages(response.body, signal)) {
        // Parsed before the position moves: a bad event is an error, never skipped.
        if (message.data !== "") received.push(JSON.parse(message.data) as Event);
        // An `id:` alone marks the stream's position: resume from there.
        if (message.id !== undefined && /^\d+$/.test(message.id)) after = Number(message.id);
        failures = 0;
        yield* received.splice(0);
      }
    } catch (e) {
      if (signal?.aborted) return;
      if (e instanceof SyntaxError) throw e;
      // The connection dropped: open it again from `after`.
    }
    if (signal?.aborted) return;
    // A stream that ended with nothing in it is not hammered.
    if (failures > 0) await sleep(backoff(failures), signal);
    failures++;
  }
}
