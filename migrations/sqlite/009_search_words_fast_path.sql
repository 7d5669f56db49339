-- Nothing changes on SQLite: FTS5's unicode61 tokenizer (migration 004) splits and folds the
-- words itself. PostgreSQL's 009 computes the same words faster (migrations/postgres/009);
-- this version exists so that both dialects stay version for version
-- (migrations/postgres/README.md).
SELECT 1;
