-- Batches: one job per item under a batch id, with live progress and results in the
-- order they finish.
CREATE TABLE ferry.batches (
    id           uuid    PRIMARY KEY,
    tenant_id    text    NOT NULL,
    kind         text    NOT NULL,
    total        integer NOT NULL CHECK (total >= 1),
    labels       jsonb   NOT NULL DEFAULT '{}',
    created_at   bigint  NOT NULL,
    cancelled_at bigint
);

ALTER TABLE ferry.jobs ADD COLUMN batch_id uuid REFERENCES ferry.batches (id) ON DELETE SET NULL;
ALTER TABLE ferry.jobs ADD COLUMN batch_index integer;
-- Progress (counts by status) and results in finishing order.
CREATE INDEX jobs_batch ON ferry.jobs (batch_id, finished_at, id) WHERE batch_id IS NOT NULL;
