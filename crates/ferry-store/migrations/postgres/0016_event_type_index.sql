-- Filtered reads of the event record (streams and webhooks on `type=job.failed`, …) seek
-- the types they want in record order (tx, id) instead of reading every event in their range.
CREATE INDEX events_type ON ferry.events (type, tx, id);
