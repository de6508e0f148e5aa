-- Workers as the server last heard from them (issue #18): each claim records the worker's
-- id, the kind patterns it asked for, its user agent and address (at most every few seconds
-- per worker and instance). Jobs in hand and the last report are read from the running jobs,
-- so nothing here is written per heartbeat.
CREATE TABLE ferry_workers (
    tenant_id     TEXT    NOT NULL,
    worker_id     TEXT    NOT NULL,
    kinds         TEXT    NOT NULL,
    agent         TEXT,
    address       TEXT,
    first_seen_at INTEGER NOT NULL,
    last_claim_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, worker_id)
) WITHOUT ROWID;
CREATE INDEX ferry_workers_seen ON ferry_workers (last_claim_at);
