-- Cron schedules. The leader's cron pass enqueues each due tick's job (its dedupe key names
-- the tick, so a repeated pass finds the job it made) and then moves `next_at` with a
-- compare-and-set, so each tick enqueues one job even across instances.
CREATE TABLE ferry_schedules (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    cron        TEXT    NOT NULL,
    timezone    TEXT    NOT NULL,
    job         TEXT    NOT NULL,
    catch_up    INTEGER NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    last_at     INTEGER,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX ferry_schedules_due ON ferry_schedules (next_at) WHERE paused = 0;
