// Ferry's TypeScript SDK: the client (`Ferry`), the worker (`Worker`), webhook checks, and
// the API's types generated from its OpenAPI document.
export * from "./client.js";
export * from "./errors.js";
export { messages, type Message, type StreamOptions } from "./sse.js";
export * from "./worker.js";
export { verifyWebhook, type DeliveryHeaders } from "./webhooks.js";
export type { components, operations, paths } from "./openapi.js";
