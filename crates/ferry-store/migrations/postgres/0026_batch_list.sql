-- A tenant's batches, newest first (the dashboard's batches page, GET /v1/batches).
CREATE INDEX batches_tenant ON ferry.batches (tenant_id, id);
