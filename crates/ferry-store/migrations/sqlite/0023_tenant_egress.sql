-- A tenant's egress policy (issue #15), set by its admins: where its jobs' connections may
-- go (allow and deny rules, public addresses on or off), as JSON. NULL: the default.
ALTER TABLE ferry_tenants ADD COLUMN egress TEXT;
