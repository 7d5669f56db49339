-- Every send with RATE_SEND on rewrites its sender's bucket, and `updated_at` with it: the
-- index on `updated_at` made each of those writes two b-tree updates and more dirty pages
-- per group commit, about a tenth of a REST send's cost (BENCHMARKS.md, "Issue 16"). Only
-- the daily pruning of idle buckets read that index; it now scans the table in a read
-- transaction, which never holds the write lock, and deletes what it found by primary key.
DROP INDEX rate_buckets_updated;
