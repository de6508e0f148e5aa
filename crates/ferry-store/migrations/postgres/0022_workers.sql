-- Workers as the server last heard from them (issue #18): each claim records the worker's
-- id, the kind patterns it asked for, its user agent and address (at most every few seconds
-- per worker and instance). Jobs in hand and the last report are read from the running jobs,
-- so nothing here is written per heartbeat.
CREATE TABLE ferry.workers (
    tenant_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    kinds JSONB NOT NULL,
    agent TEXT,
    address TEXT,
    first_seen_at BIGINT NOT NULL,
    last_claim_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, worker_id)
);
CREATE INDEX workers_seen ON ferry.workers (last_claim_at);
