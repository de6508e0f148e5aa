-- Datasets: named tables of items that jobs with `output` keep up to date. A completion
-- upserts the attempt's items by key (content hash decides changed or not) and, for a
-- snapshot run, marks the rows it did not report as gone. Each run is recorded with its
-- counts. The completion locks the dataset row first, so runs on one dataset apply one
-- after the other. Datasets outlive the jobs that fed them (retention does not touch them).
ALTER TABLE ferry.jobs ADD COLUMN output jsonb;

CREATE TABLE ferry.datasets (
    id          bigserial PRIMARY KEY,
    tenant_id   text    NOT NULL,
    name        text    NOT NULL,
    key_field   text    NOT NULL,
    live        bigint  NOT NULL DEFAULT 0,
    gone        bigint  NOT NULL DEFAULT 0,
    -- Every top-level field items have had, in order of first appearance: the columns of
    -- a CSV export, known without reading the items.
    fields      jsonb   NOT NULL DEFAULT '[]',
    created_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL,
    UNIQUE (tenant_id, name)
);

-- `seq` is the order of first appearance: the export and paging order.
CREATE TABLE ferry.dataset_items (
    seq            bigserial PRIMARY KEY,
    dataset_id     bigint  NOT NULL REFERENCES ferry.datasets (id) ON DELETE CASCADE,
    key            text    NOT NULL,
    data           jsonb   NOT NULL,
    hash           text    NOT NULL,
    -- The last run that reported the row.
    run_id         bigint  NOT NULL,
    first_seen_at  bigint  NOT NULL,
    changed_at     bigint  NOT NULL,
    gone_at        bigint,
    UNIQUE (dataset_id, key)
);
CREATE INDEX dataset_items_order ON ferry.dataset_items (dataset_id, seq);

CREATE TABLE ferry.dataset_runs (
    id          bigserial PRIMARY KEY,
    dataset_id  bigint  NOT NULL REFERENCES ferry.datasets (id) ON DELETE CASCADE,
    job_id      uuid    NOT NULL,
    mode        text    NOT NULL CHECK (mode IN ('snapshot', 'merge')),
    new         bigint  NOT NULL DEFAULT 0,
    changed     bigint  NOT NULL DEFAULT 0,
    unchanged   bigint  NOT NULL DEFAULT 0,
    gone        bigint  NOT NULL DEFAULT 0,
    at          bigint  NOT NULL
);
CREATE INDEX dataset_runs_dataset ON ferry.dataset_runs (dataset_id, id);
