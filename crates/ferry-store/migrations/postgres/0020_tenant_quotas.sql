-- Per-tenant quotas (issue #14), set by the operator: how many jobs the tenant may submit
-- per second and how many unfinished (scheduled, pending, running) jobs it may hold.
-- NULL: no limit.
ALTER TABLE ferry.tenants ADD COLUMN max_submissions_per_second BIGINT;
ALTER TABLE ferry.tenants ADD COLUMN max_unfinished_jobs BIGINT;
