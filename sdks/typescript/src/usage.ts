// What clients build on, checked by the compiler: `tsc --noEmit` fails when the generated
// types (src/openapi.d.ts, from Ferry's OpenAPI document) stop saying any of this.
import type { components, paths } from "./openapi.js";

export type Job = components["schemas"]["Job"];
export type SubmitJob = paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"];
export type Submitted = paths["/v1/jobs"]["post"]["responses"]["202"]["content"]["application/json"];
export type ErrorBody = components["schemas"]["ApiErrorBody"];
export type JobQuery = NonNullable<paths["/v1/jobs"]["get"]["parameters"]["query"]>;
export type Claim = paths["/v1/worker/claim"]["post"]["requestBody"]["content"]["application/json"];
export type Claimed = paths["/v1/worker/claim"]["post"]["responses"]["200"]["content"]["application/json"];

export const submit: SubmitJob = {
  kind: "reviews.sync",
  payload: { store: 42 },
  labels: { store_id: "42" },
  dedupe_key: "store-42",
  max_attempts: 3,
};

export const failedOnly: JobQuery = { status: "failed", limit: 50 };

// @ts-expect-error: "done" is not a state a job can be in
export const noSuchState: JobQuery = { status: "done" };

// @ts-expect-error: a job needs a kind
export const noKind: SubmitJob = { payload: {} };

export function isFinal(job: Job): boolean {
  return job.status === "completed" || job.status === "failed" || job.status === "cancelled";
}

export function submitted(answer: Submitted): Job {
  return answer;
}

export function codeOf(body: ErrorBody): string {
  return body.error.code;
}

export function leases(answer: Claimed): string[] {
  return answer.jobs.map((job) => `${job.id}:${job.lease}`);
}

export const claim: Claim = { worker_id: "laptop-1", kinds: ["reviews.*"], max_jobs: 4 };
