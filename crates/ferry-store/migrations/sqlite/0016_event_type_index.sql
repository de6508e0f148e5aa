-- Filtered reads of the event record (streams and webhooks on `type=job.failed`, …) seek
-- the types they want in id order instead of reading every event in their range.
CREATE INDEX ferry_events_type ON ferry_events (type, id);
