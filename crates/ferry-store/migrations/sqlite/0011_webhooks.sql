-- Webhooks and their deliveries. A dispatcher turns the event record into deliveries
-- (one per webhook and event, never two: the unique key), advancing the webhook's cursor in
-- the same transaction; a sender posts due deliveries and records each attempt. A crash
-- anywhere leaves a delivery pending, so it is sent again (at least once).
CREATE TABLE ferry_webhooks (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    events        TEXT    NOT NULL,
    kinds         TEXT    NOT NULL,
    cursor        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE ferry_webhook_deliveries (
    id            TEXT    PRIMARY KEY,
    webhook_id    TEXT    NOT NULL REFERENCES ferry_webhooks (id) ON DELETE CASCADE,
    event_id      INTEGER NOT NULL,
    job_id        TEXT,
    seq           INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    last_status   INTEGER,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    delivered_at  INTEGER,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX ferry_deliveries_due ON ferry_webhook_deliveries (status, next_at);
CREATE INDEX ferry_deliveries_order ON ferry_webhook_deliveries (webhook_id, job_id, seq);
