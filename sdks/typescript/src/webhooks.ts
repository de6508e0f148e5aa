// Checking that a webhook delivery came from Ferry: `Ferry-Signature` is
// `v1=<hex HMAC-SHA256(secret, "{Ferry-Timestamp}.{body}")>`.
import { createHmac, timingSafeEqual } from "node:crypto";

/** The headers of a delivery, as a `Headers` or a plain object (Express, Next.js). */
export type DeliveryHeaders =
  | Headers
  | Record<string, string | string[] | undefined>;

function header(headers: DeliveryHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") {
    return (headers as Headers).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Whether `body` (the raw bytes or text as received) was signed with `secret` less than
 * `toleranceSeconds` ago (default 300: older deliveries are refused, which stops replays).
 * Compares in constant time.
 */
export function verifyWebhook(
  secret: string | Uint8Array,
  headers: DeliveryHeaders,
  body: string | Uint8Array,
  toleranceSeconds = 300,
  now: Date = new Date(),
): boolean {
  const timestamp = header(headers, "ferry-timestamp");
  const signature = header(headers, "ferry-signature");
  if (!timestamp || !signature || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const mac = createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
  const want = Buffer.from(`v1=${mac}`);
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}
