-- A tenant's batches, newest first (the dashboard's batches page, GET /v1/batches).
CREATE INDEX ferry_batches_tenant ON ferry_batches (tenant_id, id);
