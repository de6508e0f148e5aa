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

CREATE OR REPLACE FUNCTION ferry.record_job_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        t := 'job.created';
    ELSE
        t := CASE NEW.status WHEN 'running' THEN 'job.started'
                             WHEN 'completed' THEN 'job.completed'
                             WHEN 'failed' THEN 'job.failed'
                             WHEN 'cancelled' THEN 'job.cancelled'
                             ELSE 'job.retrying' END;
    END IF;
    INSERT INTO ferry.events (tenant_id, type, job_id, kind, attempt, data, at)
        VALUES (NEW.tenant_id, t, NEW.id, NEW.kind, NEW.attempt,
                CASE WHEN TG_OP = 'UPDATE' AND NEW.status IN ('failed', 'scheduled', 'pending')
                     THEN NEW.error END,
                NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_event_created
    AFTER INSERT ON ferry.jobs
    FOR EACH ROW EXECUTE FUNCTION ferry.record_job_event();

-- scheduled → pending (a delay ran out) is not news; every other change is. A job going
-- back to waiting (from running, or a manual retry) is `job.retrying`.
CREATE TRIGGER jobs_event_status
    AFTER UPDATE OF status ON ferry.jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       AND NOT (OLD.status = 'scheduled' AND NEW.status = 'pending'))
    EXECUTE FUNCTION ferry.record_job_event();
