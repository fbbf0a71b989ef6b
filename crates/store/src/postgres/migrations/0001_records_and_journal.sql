-- recordsync schema, migration 1: records and their journals.
--
-- Run by recordsync itself (src/postgres/migrations.rs), inside one transaction, with
-- search_path set to recordsync's schema. Never edit a migration that has shipped: add
-- the next one.

-- One row per record.
--
-- data_json keeps the record's JSON text exactly as recordsync wrote it: the `json` type
-- stores its input text verbatim, so object keys come back in the order clients wrote
-- them (jsonb would sort them) and numbers keep their spelling. recordsync reads only
-- this column.
--
-- data is the same value as jsonb, for SQL queries and indexes (data->>'owner', @>,
-- GIN). It is NULL only for a value jsonb cannot hold: a string containing \u0000.
--
-- name uses the "C" collation: byte order, as the embedded store sorts, independent of
-- the database's locale, and the one order in which commits lock records (no deadlocks
-- between nodes).
CREATE TABLE records (
    name      text COLLATE "C" PRIMARY KEY,
    version   bigint NOT NULL CHECK (version >= 0),
    data      jsonb,
    data_json json   NOT NULL,
    ctime     bigint NOT NULL,
    mtime     bigint NOT NULL
);

-- One row per accepted write: the version it produced, when (ms since the epoch) and the
-- op (recordsync_core::WriteOp as JSON text, kept exactly). Rows exist only while their
-- record does: deleting a record deletes its journal in the same transaction.
CREATE TABLE journal (
    name    text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    time    bigint NOT NULL,
    op      json   NOT NULL,
    PRIMARY KEY (name, version)
);
