-- Ferry's job tables on SQLite. Times are unix milliseconds (INTEGER); JSON is TEXT.
-- The status CHECK mirrors ferry_core::JobState and docs/job-lifecycle.md.

CREATE TABLE ferry_jobs (
    id                TEXT    PRIMARY KEY,
    tenant_id         TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    status            TEXT    NOT NULL
        CHECK (status IN ('scheduled', 'pending', 'running', 'completed', 'failed', 'cancelled')),
    payload           TEXT    NOT NULL,
    labels            TEXT    NOT NULL DEFAULT '{}',
    priority          INTEGER NOT NULL DEFAULT 0,
    run_at            INTEGER NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts      INTEGER NOT NULL CHECK (max_attempts >= 1),
    timeout_ms        INTEGER NOT NULL CHECK (timeout_ms >= 1),
    backoff_base_ms   INTEGER NOT NULL CHECK (backoff_base_ms >= 1),
    backoff_max_ms    INTEGER NOT NULL CHECK (backoff_max_ms >= backoff_base_ms),
    -- The lease of the current (or last) attempt. Kept after the attempt ends so a
    -- repeated report with the same token gets the same answer.
    lease_token       TEXT,
    lease_ms          INTEGER,
    lease_expires_at  INTEGER,
    deadline_at       INTEGER,
    worker_id         TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    progress          TEXT,
    result            TEXT,
    error             TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    CHECK (status <> 'running'
        OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL AND deadline_at IS NOT NULL)),
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CHECK (status = 'completed' OR result IS NULL)
);

-- The hot path: claimable work only, in claim order.
CREATE INDEX ferry_jobs_ready ON ferry_jobs (tenant_id, priority DESC, run_at, id)
    WHERE status IN ('pending', 'scheduled');
-- By status: lists filtered by status (newest first: UUIDv7 ids sort by creation), and
-- the rescuer and timeout enforcer, which read the running rows (a small set) and check
-- lease_expires_at / deadline_at on each. No index on those two columns: heartbeats would
-- rewrite its entries every few seconds, and each claim and completion would too.
CREATE INDEX ferry_jobs_status ON ferry_jobs (status, tenant_id, id);
-- The retention cleaner.
CREATE INDEX ferry_jobs_finished ON ferry_jobs (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
-- Lists filtered by kind. Kind and id never change, so updates do not touch it.
CREATE INDEX ferry_jobs_tenant_kind ON ferry_jobs (tenant_id, kind, id);

CREATE TABLE ferry_job_labels (
    job_id  TEXT NOT NULL REFERENCES ferry_jobs (id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (key, value, job_id)
) WITHOUT ROWID;
CREATE INDEX ferry_job_labels_job ON ferry_job_labels (job_id);

-- Partial results. (job_id, lease_token, idx) makes a repeated progress report
-- store each item once.
CREATE TABLE ferry_job_items (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT    NOT NULL REFERENCES ferry_jobs (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    lease_token  TEXT    NOT NULL,
    idx          INTEGER NOT NULL CHECK (idx >= 0),
    data         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (job_id, lease_token, idx)
);
CREATE INDEX ferry_job_items_job ON ferry_job_items (job_id, seq);
