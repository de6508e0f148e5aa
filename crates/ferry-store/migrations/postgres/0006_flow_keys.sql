-- Flow-control keys. A job may carry a concurrency key (at most `concurrency_limit` jobs
-- with the key run at once) and a rate key (starts spaced by `rate_interval_ms` and/or at
-- most `rate_max` per `rate_per_ms`). Claims that may admit keyed jobs take a transaction
-- advisory lock, so admissions on every instance happen one after another and each
-- sees the ones before it.
ALTER TABLE ferry.jobs
    ADD COLUMN concurrency_key text,
    ADD COLUMN concurrency_limit integer CHECK (concurrency_limit >= 1),
    ADD COLUMN rate_key text,
    ADD COLUMN rate_interval_ms bigint CHECK (rate_interval_ms >= 1),
    ADD COLUMN rate_max integer CHECK (rate_max >= 1),
    ADD COLUMN rate_per_ms bigint CHECK (rate_per_ms >= 1);

-- Claimable keyed jobs: whether a claim must take the admitting path at all.
CREATE INDEX jobs_keyed_ready ON ferry.jobs (tenant_id, priority DESC, run_at, id)
    WHERE status IN ('pending', 'scheduled')
      AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL);
-- Running jobs per concurrency key: what a key has in use.
CREATE INDEX jobs_running_keys ON ferry.jobs (tenant_id, concurrency_key, concurrency_limit)
    WHERE status = 'running' AND concurrency_key IS NOT NULL;

-- Every start of a rate-keyed job (the server's own record). Pruned after a day, the
-- longest window.
CREATE TABLE ferry.rate_starts (
    seq        bigserial PRIMARY KEY,
    tenant_id  text   NOT NULL,
    key        text   NOT NULL,
    at         bigint NOT NULL,
    job_id     uuid   NOT NULL
);
CREATE INDEX rate_starts_key ON ferry.rate_starts (tenant_id, key, at);
CREATE INDEX rate_starts_at ON ferry.rate_starts (at);

CREATE OR REPLACE FUNCTION ferry.record_rate_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ferry.rate_starts (tenant_id, key, at, job_id)
        VALUES (NEW.tenant_id, NEW.rate_key, NEW.started_at, NEW.id);
    RETURN NULL;
END
$$;

-- Recorded in the statement that starts the job, so no start goes unrecorded.
CREATE TRIGGER jobs_rate_start
    AFTER UPDATE OF status ON ferry.jobs
    FOR EACH ROW WHEN (NEW.status = 'running' AND NEW.rate_key IS NOT NULL)
    EXECUTE FUNCTION ferry.record_rate_start();

-- A job leaving `running` frees a slot of its key: wake long-polls on every instance.
CREATE TRIGGER jobs_notify_key_freed
    AFTER UPDATE OF status ON ferry.jobs
    FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running'
                       AND OLD.concurrency_key IS NOT NULL)
    EXECUTE FUNCTION ferry.notify_work();

-- A key a worker pushed back on (a 429 with Retry-After): nothing with it starts before
-- `blocked_until`.
CREATE TABLE ferry.rate_keys (
    tenant_id      text   NOT NULL,
    key            text   NOT NULL,
    blocked_until  bigint NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
