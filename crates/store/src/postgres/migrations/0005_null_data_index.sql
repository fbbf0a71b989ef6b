-- recordsync schema, migration 5: the partial index of the rows whose data jsonb cannot
-- hold.
--
-- Run by recordsync itself (src/postgres/migrations.rs), inside one transaction, with
-- search_path set to recordsync's schema. Never edit a migration that has shipped: add
-- the next one.

-- A query's WHERE clause is `data IS NULL OR <sieve>` (src/postgres/query.rs): rows whose
-- value jsonb cannot hold (data NULL) are always read and decided on data_json. PostgreSQL
-- combines indexes for an OR (a BitmapOr) only when every arm has one, so without this
-- index no index an operator adds on data (GIN, expressions) is used by a query, and every
-- query reads its collection's whole range of the primary key. The index holds only those
-- rare rows (tombstones have data 'null', not NULL), so it costs next to nothing; making
-- it reads the table once.
CREATE INDEX IF NOT EXISTS records_null_data ON records (name) WHERE data IS NULL;
