// Errors the SDK throws: what Ferry answered (`FerryError`, with its stable `code`) or why
// it could not be asked (`FerryUnreachable`).
import type { components } from "./openapi.js";

export type ErrorCode = components["schemas"]["ErrorCode"];
export type FieldError = components["schemas"]["FieldError"];

/** Ferry answered with an error: `code` is stable (`VALIDATION_FAILED`, `LEASE_LOST`, …). */
export class FerryError extends Error {
  override readonly name = "FerryError";
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The stable machine-readable code. */
    readonly code: ErrorCode | string,
    message: string,
    /** For `422`: each bad field by its JSON path. */
    readonly fields: FieldError[] = [],
    /** Seconds to wait before trying again, from `Retry-After`. */
    readonly retryAfter?: number,
  ) {
    super(`${code}: ${message}`);
  }

  /** Worth trying again later: the server or its database is away, or a quota is reached. */
  get transient(): boolean {
    return this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** The request did not get an answer (connection refused, reset, timed out). */
export class FerryUnreachable extends Error {
  override readonly name = "FerryUnreachable";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Reads an error answer into a `FerryError`. */
export async function errorFrom(response: Response): Promise<FerryError> {
  const retry = Number(response.headers.get("retry-after"));
  const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const error = (body as { error?: { code?: string; message?: string; fields?: FieldError[] } })
    ?.error;
  return new FerryError(
    response.status,
    error?.code ?? `HTTP_${response.status}`,
    error?.message ?? response.statusText,
    error?.fields ?? [],
    retryAfter,
  );
}
