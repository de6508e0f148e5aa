-- Batch events. `batch.created` when a batch is made; `batch.finished` in the statement
-- that finishes its last unfinished item, after that item's own event, with the batch's
-- final counts and state (a batch whose failed item is retried and finishes again is
-- announced again). One writer: the statement that finishes the last item sees all others.
CREATE TRIGGER ferry_batches_event_created AFTER INSERT ON ferry_batches
BEGIN
    INSERT INTO ferry_events (tenant_id, type, kind, data, at)
        VALUES (NEW.tenant_id, 'batch.created', NEW.kind,
                json_object('batch_id', NEW.id, 'total', NEW.total), NEW.created_at);
END;

DROP TRIGGER ferry_jobs_event_status;
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
    INSERT INTO ferry_events (tenant_id, type, kind, data, at)
        SELECT b.tenant_id, 'batch.finished', b.kind,
               json_object('batch_id', b.id,
                           'status', CASE WHEN b.cancelled_at IS NOT NULL THEN 'cancelled'
                                          WHEN c.failed + c.cancelled > 0 THEN 'failed'
                                          ELSE 'completed' END,
                           'total', b.total, 'completed', c.completed, 'failed', c.failed,
                           'cancelled', c.cancelled),
               NEW.updated_at
        FROM ferry_batches b,
             (SELECT coalesce(sum(status = 'completed'), 0) AS completed,
                     coalesce(sum(status = 'failed'), 0) AS failed,
                     coalesce(sum(status = 'cancelled'), 0) AS cancelled
                FROM ferry_jobs WHERE batch_id = NEW.batch_id) c
        WHERE b.id = NEW.batch_id
          AND NEW.status IN ('completed', 'failed', 'cancelled')
          AND NOT EXISTS (SELECT 1 FROM ferry_jobs j
                           WHERE j.batch_id = NEW.batch_id AND j.finished_at IS NULL);
END;
