-- The tenant every record of a single-tenant deployment belongs to (and every record made
-- before tenants could be), so keys can be made for it like for any other.
INSERT INTO ferry_tenants (id, name, created_at) VALUES ('default', 'Default', 0)
ON CONFLICT (id) DO NOTHING;
