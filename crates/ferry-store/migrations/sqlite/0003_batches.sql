-- Batches: one job per item under a batch id, with live progress and results in the
-- order they finish.
CREATE TABLE ferry_batches (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    total       INTEGER NOT NULL CHECK (total >= 1),
    labels      TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    cancelled_at INTEGER
);

ALTER TABLE ferry_jobs ADD COLUMN batch_id TEXT REFERENCES ferry_batches (id) ON DELETE SET NULL;
ALTER TABLE ferry_jobs ADD COLUMN batch_index INTEGER;
-- Progress (counts by status) and results in finishing order.
CREATE INDEX ferry_jobs_batch ON ferry_jobs (batch_id, finished_at, id) WHERE batch_id IS NOT NULL;
