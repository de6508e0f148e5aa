-- The event record (outbox): one row per job state change, written by triggers in the
-- statement that makes the change, so nothing is recorded that did not happen and
-- nothing that happened goes unrecorded. `id` only grows (AUTOINCREMENT never reuses).
CREATE TABLE ferry_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    job_id     TEXT,
    kind       TEXT,
    attempt    INTEGER,
    data       TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX ferry_events_job ON ferry_events (job_id, id);

CREATE TRIGGER ferry_jobs_event_created AFTER INSERT ON ferry_jobs
BEGIN
    INSERT INTO ferry_events (tenant_id, type, job_id, kind, attempt, at)
        VALUES (NEW.tenant_id, 'job.created', NEW.id, NEW.kind, NEW.attempt, NEW.created_at);
END;

-- scheduled → pending (a delay ran out) is not news; every other change is. A job going
-- back to waiting (from running, or a manual retry) is `job.retrying`.
CREATE TRIGGER ferry_jobs_event_status AFTER UPDATE OF status ON ferry_jobs
    WHEN OLD.status IS NOT NEW.status
     AND NOT (OLD.status = 'scheduled' AND NEW.status = 'pending')
BEGIN
    INSERT INTO ferry_events (tenant_id, type, job_id, kind, attempt, data, at)
        VALUES (NEW.tenant_id,
                CASE NEW.status WHEN 'running' THEN 'job.started'
                                WHEN 'completed' THEN 'job.completed'
                                WHEN 'failed' THEN 'job.failed'
                                WHEN 'cancelled' THEN 'job.cancelled'
                                ELSE 'job.retrying' END,
                NEW.id, NEW.kind, NEW.attempt,
                CASE WHEN NEW.status IN ('failed', 'scheduled', 'pending') THEN NEW.error END,
                NEW.updated_at);
END;
