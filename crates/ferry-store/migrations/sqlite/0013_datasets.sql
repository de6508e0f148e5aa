-- Datasets: named tables of items that jobs with `output` keep up to date. A completion
-- upserts the attempt's items by key (content hash decides changed or not) and, for a
-- snapshot run, marks the rows it did not report as gone. Each run is recorded with its
-- counts. Datasets outlive the jobs that fed them (retention does not touch them).
ALTER TABLE ferry_jobs ADD COLUMN output TEXT;

CREATE TABLE ferry_datasets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    key_field   TEXT    NOT NULL,
    live        INTEGER NOT NULL DEFAULT 0,
    gone        INTEGER NOT NULL DEFAULT 0,
    -- Every top-level field items have had, in order of first appearance (a JSON array):
    -- the columns of a CSV export, known without reading the items.
    fields      TEXT    NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

-- `seq` is the order of first appearance: the export and paging order.
CREATE TABLE ferry_dataset_items (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id     INTEGER NOT NULL REFERENCES ferry_datasets (id) ON DELETE CASCADE,
    key            TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    -- The last run that reported the row.
    run_id         INTEGER NOT NULL,
    first_seen_at  INTEGER NOT NULL,
    changed_at     INTEGER NOT NULL,
    gone_at        INTEGER,
    UNIQUE (dataset_id, key)
);
CREATE INDEX ferry_dataset_items_order ON ferry_dataset_items (dataset_id, seq);

CREATE TABLE ferry_dataset_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id  INTEGER NOT NULL REFERENCES ferry_datasets (id) ON DELETE CASCADE,
    job_id      TEXT    NOT NULL,
    mode        TEXT    NOT NULL CHECK (mode IN ('snapshot', 'merge')),
    new         INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    gone        INTEGER NOT NULL DEFAULT 0,
    at          INTEGER NOT NULL
);
CREATE INDEX ferry_dataset_runs_dataset ON ferry_dataset_runs (dataset_id, id);
