-- Webhooks and their deliveries. A dispatcher turns the event record into deliveries
-- (one per webhook and event, never two: the unique key), advancing the webhook's cursor in
-- the same transaction; a sender posts due deliveries and records each attempt. A crash
-- anywhere leaves a delivery pending, so it is sent again (at least once).
CREATE TABLE ferry.webhooks (
    id            uuid    PRIMARY KEY,
    tenant_id     text    NOT NULL,
    url           text    NOT NULL,
    sealed_secret bytea   NOT NULL,
    events        jsonb   NOT NULL,
    kinds         jsonb   NOT NULL,
    cursor        bigint  NOT NULL,
    created_at    bigint  NOT NULL
);

CREATE TABLE ferry.webhook_deliveries (
    id            uuid    PRIMARY KEY,
    webhook_id    uuid    NOT NULL REFERENCES ferry.webhooks (id) ON DELETE CASCADE,
    event_id      bigint  NOT NULL,
    job_id        uuid,
    seq           bigint  NOT NULL,
    status        text    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    next_at       bigint  NOT NULL,
    last_status   integer,
    last_error    text,
    created_at    bigint  NOT NULL,
    delivered_at  bigint,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX deliveries_due ON ferry.webhook_deliveries (status, next_at);
CREATE INDEX deliveries_order ON ferry.webhook_deliveries (webhook_id, job_id, seq);
