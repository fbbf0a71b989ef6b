-- recordsync schema, migration 4: records whose journal is still to be replayed for the
-- milestones retention needs (issue 13).
--
-- Run by recordsync itself (src/postgres/migrations.rs), inside one transaction, with
-- search_path set to recordsync's schema. Never edit a migration that has shipped: add
-- the next one.

-- Migration 3 gave every record of migration 2 one milestone, at its current version, so
-- retention could not move its history start (to a milestone at or below version -
-- keepOps) until keepOps more writes. recordsync replays the journal of each record
-- listed here from its create when it connects, stores the milestones retention keeps,
-- prunes, and removes the name (src/postgres/replay.rs); a record whose journal does
-- not lead to its value keeps its whole history and is removed too (a warning says so).
-- Listed: every live record still at the start of its first life, whatever its length:
-- which ones exceed retention depends on the settings of the node that connects.
CREATE TABLE history_replay (
    name text COLLATE "C" PRIMARY KEY
);

INSERT INTO history_replay (name)
SELECT name FROM records
WHERE created = 0 AND history_start = 0 AND NOT deleted AND version > 0;
