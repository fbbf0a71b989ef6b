-- recordsync schema, migration 2: the data set's id.
--
-- Run by recordsync itself (src/postgres/migrations.rs), inside one transaction, with
-- search_path set to recordsync's schema. Never edit a migration that has shipped: add
-- the next one.

-- One row, made with the schema: a random id naming the data this schema holds. Every
-- node on this schema reads the same id and scopes its bus topics with it, so that nodes
-- serving another database or schema through the same Redis or NATS never apply each
-- other's announcements. Random rather than derived from the URL, because nodes may reach
-- the same database by different host names.
CREATE TABLE data_set (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    id       text    NOT NULL
);

INSERT INTO data_set (id)
VALUES (md5(random()::text || clock_timestamp()::text || txid_current()::text));
