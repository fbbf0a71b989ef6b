-- recordsync schema, migration 3: history that survives deletes (issue 13).
--
-- Run by recordsync itself (src/postgres/migrations.rs), inside one transaction, with
-- search_path set to recordsync's schema. Never edit a migration that has shipped: add
-- the next one.

-- Records: a delete now leaves a tombstone row (deleted, data null) that keeps the
-- version, so that a re-create continues it and the history stays readable.
--   created:       the version of the create that began the record's current life;
--   deleted:       a tombstone;
--   history_start: the oldest version that can still be read (retention moves it to a
--                  milestone and deletes the journal rows at or below it).
-- Every record of migration 2 was created at version 0, is live, and kept its whole
-- journal.
ALTER TABLE records
    ADD COLUMN created       bigint  NOT NULL DEFAULT 0 CHECK (created >= 0),
    ADD COLUMN deleted       boolean NOT NULL DEFAULT false,
    ADD COLUMN history_start bigint  NOT NULL DEFAULT 0 CHECK (history_start >= 0);

-- Journal rows: one per engine version, every op of a record's life (its create and its
-- delete included). The op text is kept exactly in op_json (json keeps its input text:
-- key order and the spelling of numbers), which recordsync reads; op is the same as
-- jsonb for SQL queries, NULL for an op jsonb cannot hold (a string with \u0000, a
-- number beyond numeric), as records' data is. author is the authenticated user id of
-- the writer; origin_src and origin_seq name the client op it came from (ShareDB's src
-- and seq), both NULL when the protocol names none.
ALTER TABLE journal RENAME COLUMN op TO op_json;
ALTER TABLE journal
    ADD COLUMN op         jsonb,
    ADD COLUMN author     text,
    ADD COLUMN origin_src text,
    ADD COLUMN origin_seq bigint,
    ADD CONSTRAINT journal_origin_whole CHECK ((origin_src IS NULL) = (origin_seq IS NULL));

-- The jsonb copy of existing ops, where jsonb can hold them.
CREATE FUNCTION pg_temp.recordsync_try_jsonb(j json) RETURNS jsonb
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN j::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
UPDATE journal SET op = pg_temp.recordsync_try_jsonb(op_json);

-- Milestones: a record's value at a version, stored every milestone_every versions, so
-- that reading a past version applies at most that many ops. data / data_json as in
-- records; time is that of the journal row of the same version (retention by age).
CREATE TABLE milestones (
    name      text COLLATE "C" NOT NULL,
    version   bigint NOT NULL,
    time      bigint NOT NULL,
    data      jsonb,
    data_json json   NOT NULL,
    PRIMARY KEY (name, version)
);

-- Existing records begin with a create at version 0 (schema 2 journaled none: a record
-- was created empty), at their ctime; their other journal rows keep their versions.
INSERT INTO journal (name, version, time, op_json, op)
SELECT name, 0, ctime, '{"op":"create","data":{}}'::json, '{"op":"create","data":{}}'::jsonb
FROM records
ON CONFLICT (name, version) DO NOTHING;

-- And a milestone at their current version, so that retention can move their history
-- start there later and free what was kept without bound.
INSERT INTO milestones (name, version, time, data, data_json)
SELECT name, version, mtime, data, data_json FROM records WHERE version > 0;
