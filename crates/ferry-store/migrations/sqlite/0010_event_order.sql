-- (PostgreSQL orders its event record by writing transaction; SQLite commits one writer at
-- a time, so ids are already in commit order. Nothing to change here.)
SELECT 1;
