-- Flow-control keys. A job may carry a concurrency key (at most `concurrency_limit` jobs
-- with the key run at once) and a rate key (starts spaced by `rate_interval_ms` and/or at
-- most `rate_max` per `rate_per_ms`). The claim admits jobs against both, in one
-- statement; SQLite's single writer makes that statement atomic.
ALTER TABLE ferry_jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE ferry_jobs ADD COLUMN concurrency_limit INTEGER CHECK (concurrency_limit >= 1);
ALTER TABLE ferry_jobs ADD COLUMN rate_key TEXT;
ALTER TABLE ferry_jobs ADD COLUMN rate_interval_ms INTEGER CHECK (rate_interval_ms >= 1);
ALTER TABLE ferry_jobs ADD COLUMN rate_max INTEGER CHECK (rate_max >= 1);
ALTER TABLE ferry_jobs ADD COLUMN rate_per_ms INTEGER CHECK (rate_per_ms >= 1);

-- Claimable keyed jobs: whether a claim must take the admitting path at all.
CREATE INDEX ferry_jobs_keyed_ready ON ferry_jobs (tenant_id, priority DESC, run_at, id)
    WHERE status IN ('pending', 'scheduled')
      AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL);
-- Running jobs per concurrency key: what a key has in use (covering: counted without
-- reading the rows).
CREATE INDEX ferry_jobs_running_keys ON ferry_jobs (tenant_id, concurrency_key, concurrency_limit, status)
    WHERE status = 'running' AND concurrency_key IS NOT NULL;

-- Every start of a rate-keyed job (the server's own record; the claim counts starts in
-- the window and finds the last one). Pruned by the retention cleaner after a day, the
-- longest window.
CREATE TABLE ferry_rate_starts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    job_id     TEXT    NOT NULL
);
CREATE INDEX ferry_rate_starts_key ON ferry_rate_starts (tenant_id, key, at);
CREATE INDEX ferry_rate_starts_at ON ferry_rate_starts (at);

-- Recorded in the statement that starts the job, so no start goes unrecorded.
CREATE TRIGGER ferry_jobs_rate_start AFTER UPDATE OF status ON ferry_jobs
    WHEN NEW.status = 'running' AND NEW.rate_key IS NOT NULL
BEGIN
    INSERT INTO ferry_rate_starts (tenant_id, key, at, job_id)
        VALUES (NEW.tenant_id, NEW.rate_key, NEW.started_at, NEW.id);
END;

-- A key a worker pushed back on (a 429 with Retry-After): nothing with it starts before
-- `blocked_until`.
CREATE TABLE ferry_rate_keys (
    tenant_id      TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    blocked_until  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;
