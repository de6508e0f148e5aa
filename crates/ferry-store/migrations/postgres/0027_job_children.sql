-- The jobs a job's chain enqueued (the dashboard's job page, GET /v1/jobs?parent=ID).
CREATE INDEX jobs_parent ON ferry.jobs (parent_id, id) WHERE parent_id IS NOT NULL;
