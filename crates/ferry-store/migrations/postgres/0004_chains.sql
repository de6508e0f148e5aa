-- Chains: a job's `then` specs (JSON), enqueued in the transaction that completes it, and
-- the parent of a job so enqueued.
ALTER TABLE ferry.jobs ADD COLUMN then_specs jsonb;
ALTER TABLE ferry.jobs ADD COLUMN parent_id uuid;
