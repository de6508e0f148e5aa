-- Dedupe keys: unique among a tenant's unfinished jobs. A second submit with the same
-- key is answered with the existing job instead of creating one.
ALTER TABLE ferry_jobs ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX ferry_jobs_dedupe ON ferry_jobs (tenant_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('scheduled', 'pending', 'running');

-- Paused kind patterns: jobs whose kind matches are not claimed (running ones finish).
-- `prefix` is the pattern's match form: the exact kind, the prefix with its dot for
-- `a.b.*`, or '' for `*` (which matches everything).
CREATE TABLE ferry_paused_kinds (
    tenant_id   TEXT    NOT NULL,
    pattern     TEXT    NOT NULL,
    exact       INTEGER NOT NULL CHECK (exact IN (0, 1)),
    prefix      TEXT    NOT NULL,
    paused_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, pattern)
);
