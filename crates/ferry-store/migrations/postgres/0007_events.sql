-- The event record (outbox): one row per job state change, written by triggers in the
-- transaction that makes the change, so nothing is recorded that did not happen and
-- nothing that happened goes unrecorded.
CREATE TABLE ferry.events (
    id         bigserial PRIMARY KEY,
    tenant_id  text    NOT NULL,
    type       text    NOT NULL,
    job_id     uuid,
    kind       text,
    attempt    integer,
    data       jsonb,
    at         bigint  NOT NULL
);
CREATE INDEX events_job ON ferry.events (job_id, id);
CREATE INDEX events_at ON ferry.events (at);

-- Statement-level triggers with transition tables: one INSERT … SELECT per statement,
-- so a claim or a completion of 50 jobs costs one trigger call, not 50. (PostgreSQL
-- allows no column list with transition tables: every UPDATE statement calls it, and the
-- join keeps only rows whose status changed.)
CREATE OR REPLACE FUNCTION ferry.record_job_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ferry.events (tenant_id, type, job_id, kind, attempt, at)
        SELECT n.tenant_id, 'job.created', n.id, n.kind, n.attempt, n.created_at
        FROM new_rows n ORDER BY n.id;
    RETURN NULL;
END
$$;

-- scheduled → pending (a delay ran out) is not news; every other change is. A job going
-- back to waiting (from running, or a manual retry) is `job.retrying`.
CREATE OR REPLACE FUNCTION ferry.record_job_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ferry.events (tenant_id, type, job_id, kind, attempt, data, at)
        SELECT n.tenant_id,
               CASE n.status WHEN 'running' THEN 'job.started'
                             WHEN 'completed' THEN 'job.completed'
                             WHEN 'failed' THEN 'job.failed'
                             WHEN 'cancelled' THEN 'job.cancelled'
                             ELSE 'job.retrying' END,
               n.id, n.kind, n.attempt,
               CASE WHEN n.status IN ('failed', 'scheduled', 'pending') THEN n.error END,
               n.updated_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.status IS DISTINCT FROM n.status
          AND NOT (o.status = 'scheduled' AND n.status = 'pending')
        ORDER BY n.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_event_created
    AFTER INSERT ON ferry.jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ferry.record_job_created();

CREATE TRIGGER jobs_event_status
    AFTER UPDATE ON ferry.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ferry.record_job_status();
