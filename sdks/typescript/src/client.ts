// The client API, typed by the types generated from Ferry's OpenAPI document: submit and
// follow jobs and batches, page lists, wait for a job, stream events, and manage schedules,
// datasets, sessions and webhooks.
import { FerryError } from "./errors.js";
import { Http, type HttpOptions, follow } from "./http.js";
import type { components, paths } from "./openapi.js";
import { type Event, type StreamOptions, events } from "./sse.js";

type Schemas = components["schemas"];
export type Job = Schemas["Job"];
export type JobState = Schemas["JobState"];
export type SubmitJob = Schemas["SubmitJob"];
export type JobPage = Schemas["JobPage"];
export type JobItem = Schemas["JobItem"];
export type ItemPage = Schemas["ItemPage"];
export type JobsCreated = Schemas["JobsCreated"];
export type CreateBatch = Schemas["CreateBatch"];
export type Batch = Schemas["Batch"];
export type BatchCreated = Schemas["BatchCreated"];
export type BatchResultPage = Schemas["BatchResultPage"];
export type Schedule = Schemas["Schedule"];
export type ScheduleSpec = paths["/v1/schedules"]["post"]["requestBody"]["content"]["application/json"];
export type WebhookSpec = Schemas["WebhookSpec"];
export type WebhookInfo = Schemas["WebhookInfo"];
export type JobQuery = NonNullable<paths["/v1/jobs"]["get"]["parameters"]["query"]>;
export type { Event };

const FINAL: ReadonlySet<JobState> = new Set(["completed", "failed", "cancelled"]);

/** Whether a job is done: completed, failed for good, or cancelled. */
export function isFinal(job: Pick<Job, "status">): boolean {
  return FINAL.has(job.status);
}

const id = (value: string) => encodeURIComponent(value);

export class Ferry {
  readonly http: Http;

  constructor(options: HttpOptions) {
    this.http = new Http(options);
  }

  // Jobs

  /** Stores a job and answers it (`202`); a `dedupe_key` held by an unfinished job answers that job. */
  submit(job: SubmitJob, options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.http.json("POST", "/v1/jobs", { body: job, signal: options.signal });
  }

  /** Stores all the jobs or none, in one transaction. */
  submitMany(jobs: SubmitJob[], options: { signal?: AbortSignal } = {}): Promise<JobsCreated> {
    return this.http.json("POST", "/v1/jobs/batch", { body: { jobs }, signal: options.signal });
  }

  get(jobId: string, options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.http.json("GET", `/v1/jobs/${id(jobId)}`, { signal: options.signal });
  }

  /** One page of jobs, newest first; pass `next_cursor` as `cursor` for the next. */
  list(query: JobQuery = {}, options: { signal?: AbortSignal } = {}): Promise<JobPage> {
    return this.http.json("GET", "/v1/jobs", { query, signal: options.signal });
  }

  /** Every job the query matches, page after page. */
  async *jobs(query: JobQuery = {}, options: { signal?: AbortSignal } = {}): AsyncGenerator<Job> {
    let cursor = query.cursor;
    for (;;) {
      const page = await this.list({ ...query, cursor }, options);
      yield* page.jobs;
      if (!page.next_cursor) return;
      cursor = page.next_cursor;
    }
  }

  /** A page of the rows a job's worker reported. */
  items(
    jobId: string,
    page: { after?: number; limit?: number } = {},
    options: { signal?: AbortSignal } = {},
  ): Promise<ItemPage> {
    return this.http.json("GET", `/v1/jobs/${id(jobId)}/items`, {
      query: page,
      signal: options.signal,
    });
  }

  /** Every row a job's worker reported, in order. */
  async *allItems(jobId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<JobItem> {
    let after = 0;
    for (;;) {
      const page = await this.items(jobId, { after, limit: 1000 }, options);
      yield* page.items;
      if (page.items.length === 0) return;
      after = page.next_after;
    }
  }

  cancel(jobId: string): Promise<Job> {
    return this.http.json("POST", `/v1/jobs/${id(jobId)}/cancel`);
  }

  retry(jobId: string): Promise<Job> {
    return this.http.json("POST", `/v1/jobs/${id(jobId)}/retry`);
  }

  /**
   * The job once it is final. Follows its events (no polling); throws a `FerryError` with
   * code `WAIT_TIMEOUT` after `timeoutMs` (default: no limit).
   */
  async wait(jobId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Job> {
    options.signal?.throwIfAborted();
    const stop = new AbortController();
    const timer =
      options.timeoutMs !== undefined ? setTimeout(() => stop.abort(), options.timeoutMs) : undefined;
    const { release } = follow(options.signal, stop);
    try {
      // Events from the start of the job's record: a job that finished before the stream
      // opened is seen at once.
      const job = await this.get(jobId, { signal: stop.signal });
      if (isFinal(job)) return job;
      for await (const event of this.jobEvents(jobId, { after: 0, signal: stop.signal })) {
        if (event.type === "job.completed" || event.type === "job.failed" || event.type === "job.cancelled") {
          const now = await this.get(jobId, { signal: stop.signal });
          if (isFinal(now)) return now;
        }
      }
      if (options.signal?.aborted) throw options.signal.reason;
      throw new FerryError(0, "WAIT_TIMEOUT", `job ${jobId} is not final after ${options.timeoutMs} ms`);
    } catch (e) {
      if (stop.signal.aborted && !options.signal?.aborted) {
        throw new FerryError(0, "WAIT_TIMEOUT", `job ${jobId} is not final after ${options.timeoutMs} ms`);
      }
      throw e;
    } finally {
      clearTimeout(timer);
      release();
      stop.abort();
    }
  }

  // Events

  /** The tenant's events as they happen (see `StreamOptions`), resumed across dropped connections. */
  events(options: StreamOptions = {}): AsyncGenerator<Event> {
    return events(this.http, "/v1/events", options);
  }

  /** One job's events as they happen. */
  jobEvents(jobId: string, options: StreamOptions = {}): AsyncGenerator<Event> {
    return events(this.http, `/v1/jobs/${id(jobId)}/events`, options);
  }

  // Batches

  createBatch(batch: CreateBatch): Promise<BatchCreated> {
    return this.http.json("POST", "/v1/batches", { body: batch });
  }

  batch(batchId: string): Promise<Batch> {
    return this.http.json("GET", `/v1/batches/${id(batchId)}`);
  }

  batchResults(batchId: string, page: { after?: string; limit?: number } = {}): Promise<BatchResultPage> {
    return this.http.json("GET", `/v1/batches/${id(batchId)}/results`, { query: page });
  }

  cancelBatch(batchId: string): Promise<Batch> {
    return this.http.json("POST", `/v1/batches/${id(batchId)}/cancel`);
  }

  // Schedules

  createSchedule(schedule: ScheduleSpec): Promise<Schedule> {
    return this.http.json("POST", "/v1/schedules", { body: schedule });
  }

  async schedules(): Promise<Schedule[]> {
    const list = await this.http.json<Schemas["ScheduleList"]>("GET", "/v1/schedules");
    return list.schedules;
  }

  deleteSchedule(name: string): Promise<void> {
    return this.http.json("DELETE", `/v1/schedules/${id(name)}`);
  }

  pauseSchedule(name: string): Promise<Schedule> {
    return this.http.json("POST", `/v1/schedules/${id(name)}/pause`);
  }

  resumeSchedule(name: string): Promise<Schedule> {
    return this.http.json("POST", `/v1/schedules/${id(name)}/resume`);
  }

  /** Submits the schedule's job once now; answers the job. */
  runSchedule(name: string): Promise<Job> {
    return this.http.json("POST", `/v1/schedules/${id(name)}/run`);
  }

  // Datasets

  async datasets(): Promise<Schemas["DatasetInfo"][]> {
    const list = await this.http.json<Schemas["DatasetList"]>("GET", "/v1/datasets");
    return list.datasets;
  }

  datasetItems(
    name: string,
    page: { after?: number; limit?: number; gone?: "include" | "exclude" } = {},
  ): Promise<Schemas["DatasetItemPage"]> {
    return this.http.json("GET", `/v1/datasets/${id(name)}/items`, { query: page });
  }

  datasetRuns(name: string): Promise<Schemas["DatasetRunList"]> {
    return this.http.json("GET", `/v1/datasets/${id(name)}/runs`);
  }

  // Sessions (names and ages; never contents)

  async sessions(): Promise<Schemas["SessionInfo"][]> {
    const list = await this.http.json<Schemas["SessionList"]>("GET", "/v1/sessions");
    return list.sessions;
  }

  deleteSession(name: string): Promise<void> {
    return this.http.json("DELETE", `/v1/sessions/${id(name)}`);
  }

  // Webhooks

  createWebhook(spec: WebhookSpec): Promise<WebhookInfo> {
    return this.http.json("POST", "/v1/webhooks", { body: spec });
  }

  async webhooks(): Promise<WebhookInfo[]> {
    const list = await this.http.json<Schemas["WebhookList"]>("GET", "/v1/webhooks");
    return list.webhooks;
  }

  deleteWebhook(webhookId: string): Promise<void> {
    return this.http.json("DELETE", `/v1/webhooks/${id(webhookId)}`);
  }
}
