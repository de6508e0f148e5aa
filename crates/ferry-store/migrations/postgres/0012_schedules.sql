-- Cron schedules. The leader's cron pass enqueues each due tick's job (its dedupe key names
-- the tick, so a repeated pass finds the job it made) and then moves `next_at` with a
-- compare-and-set, so each tick enqueues one job even across instances.
CREATE TABLE ferry.schedules (
    id          uuid    PRIMARY KEY,
    tenant_id   text    NOT NULL,
    name        text    NOT NULL,
    cron        text    NOT NULL,
    timezone    text    NOT NULL,
    job         jsonb   NOT NULL,
    catch_up    boolean NOT NULL,
    paused      boolean NOT NULL DEFAULT false,
    next_at     bigint  NOT NULL,
    last_at     bigint,
    created_at  bigint  NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX schedules_due ON ferry.schedules (next_at) WHERE NOT paused;
