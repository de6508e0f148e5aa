-- The event record is read in an order no late commit can jump into. Ids come from a
-- sequence, so a transaction that took id 60 may commit after one that took id 70 was
-- already read. Each event records the id of the transaction that wrote it (`tx`); readers
-- return only events whose transaction is older than every running one
-- (`pg_snapshot_xmin`), ordered by (tx, id): anything committed later sorts after.
ALTER TABLE ferry.events ADD COLUMN tx bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_tx ON ferry.events (tx, id);
