-- PostgreSQL dialect of migrations/006_rate_buckets_unindexed.sql: the same change, for a
-- reason that holds here too, more so.
--
-- Every send with RATE_SEND on rewrites its sender's bucket, and `updated_at` with it: the
-- index on `updated_at` made each of those writes two b-tree updates on SQLite (BENCHMARKS.md,
-- "Issue 16"). On PostgreSQL an indexed column that changes also rules out a HOT update: every
-- draw would write a new index entry in the primary key too, and leave dead ones for vacuum.
-- Only the daily pruning of idle buckets read that index; it scans the table instead, and
-- deletes what it found by primary key.
DROP INDEX rate_buckets_updated;
