-- `job.started` names the worker that took the attempt (`{"worker_id": …}`), so a job's
-- history says which worker ran each attempt. The trigger is 0014's otherwise.
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
                CASE WHEN NEW.status = 'running' THEN json_object('worker_id', NEW.worker_id)
                     WHEN NEW.status IN ('failed', 'scheduled', 'pending') THEN NEW.error END,
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
