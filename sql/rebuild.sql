-- Read-model tables, online rebuild, verify: the SQL surface, driven by
-- run() (the worker is off here; test/t/090_online_rebuild.pl runs it live).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections;
RESET client_min_messages;

CREATE SCHEMA shop;
CREATE TABLE shop.totals (account text PRIMARY KEY, total numeric NOT NULL, entries integer NOT NULL,
                          note text) WITH (fillfactor = 70);
CREATE INDEX totals_total_idx ON shop.totals (total);
COMMENT ON TABLE shop.totals IS 'one row per account';
CREATE TABLE shop.entries (account text, pos bigint, amount numeric, PRIMARY KEY (account, pos));
-- unqualified names: the handler reaches its tables through its search_path
CREATE FUNCTION shop.book(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO totals VALUES (e.stream_id, (e.data->>'amount')::numeric, 1, repeat('x', 3000))
    ON CONFLICT (account) DO UPDATE
        SET total = totals.total + excluded.total, entries = totals.entries + 1;
    INSERT INTO entries VALUES (e.stream_id, e.global_position, (e.data->>'amount')::numeric);
END $$;

-- the declared tables: the projection's owner must own them, ordinary tables, each once
CREATE VIEW shop.totals_view AS SELECT account, total FROM shop.totals;
CREATE TEMP TABLE scratch (x integer);
CREATE ROLE regress_nobody;
GRANT USAGE ON SCHEMA shop, projections TO regress_nobody;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA projections TO regress_nobody;
CREATE TABLE shop.not_mine (x integer);
SET search_path = shop, public;
SELECT try($$SELECT projections.register('bad', 'shop.book(projections.events)', tables => ARRAY['shop.totals_view']::regclass[])$$);
SELECT try($$SELECT projections.register('bad', 'shop.book(projections.events)', tables => ARRAY['pg_temp.scratch']::regclass[])$$);
SET ROLE regress_nobody;
SELECT try($$SELECT projections.register('bad', 'shop.book(projections.events)', tables => ARRAY['shop.not_mine']::regclass[])$$);
RESET ROLE;
SELECT try($$SELECT projections.register('bad', 'shop.book(projections.events)', tables => ARRAY['shop.totals', 'shop.totals']::regclass[])$$);
SELECT try($$SELECT projections.register('bad', 'shop.book(projections.events)', tables => '{}'::regclass[])$$);
SELECT count(*) AS registered FROM projections.status;

SET client_min_messages = error;
SELECT projections.register('books', 'shop.book(projections.events)',
                            tables => ARRAY['shop.totals', 'shop.entries']::regclass[]);
RESET client_min_messages;
RESET search_path;
SELECT name, tables FROM projections.status;

SELECT count(projections.append('acct-' || (i % 7), 'Booked', jsonb_build_object('amount', i)))
       AS appended FROM generate_series(1, 200) i;
SELECT projections.run('books');

-- what must survive the exchange
CREATE VIEW shop.big_accounts AS SELECT account FROM shop.totals WHERE total > 3000;
GRANT SELECT ON shop.totals TO regress_nobody;
ALTER TABLE shop.totals ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_acct_1 ON shop.totals TO regress_nobody USING (account = 'acct-1');
ANALYZE shop.totals;
CREATE TEMP TABLE before AS
    SELECT 'shop.totals'::regclass::oid AS totals_oid, 'shop.entries'::regclass::oid AS entries_oid,
           'shop.totals_total_idx'::regclass::oid AS index_oid,
           (SELECT relfilenode FROM pg_class WHERE oid = 'shop.totals'::regclass) AS totals_file;
CREATE TEMP TABLE fold AS SELECT account, total, entries FROM shop.totals;

-- a new handler: amounts in cents.  An online rebuild builds its model
-- beside the live one, which stays as it was until the exchange.
CREATE OR REPLACE FUNCTION shop.book(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO totals VALUES (e.stream_id, (e.data->>'amount')::numeric * 100, 1, repeat('y', 3000))
    ON CONFLICT (account) DO UPDATE
        SET total = totals.total + excluded.total, entries = totals.entries + 1;
    INSERT INTO entries VALUES (e.stream_id, e.global_position, (e.data->>'amount')::numeric * 100);
END $$;
SET client_min_messages = error;
SELECT projections.rebuild('books', online => true);
RESET client_min_messages;
SELECT state, rebuild_position, rebuild_lag, rebuild_started_at IS NOT NULL AS started
FROM projections.status WHERE name = 'books';
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';
SELECT try($$SELECT projections.rebuild('books', online => true)$$);
-- appends go on meanwhile; the live model is applied as before
SELECT count(projections.append('acct-' || (i % 7), 'Booked', jsonb_build_object('amount', i)))
       AS appended FROM generate_series(201, 210) i;
SELECT count(*) AS live_rows, sum(total) AS live_total FROM shop.totals;
-- run() applies the live model, builds the new one and exchanges them
SELECT projections.run('books');
SELECT state, rebuild_position, rebuild_lag, position = head AS caught_up, lag, events_applied
FROM projections.status WHERE name = 'books';
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';

-- the new contents, in the same tables
SELECT b.totals_oid = 'shop.totals'::regclass::oid AS same_oid,
       b.entries_oid = 'shop.entries'::regclass::oid AS same_entries_oid,
       b.index_oid = 'shop.totals_total_idx'::regclass::oid AS same_index_oid,
       b.totals_file <> (SELECT relfilenode FROM pg_class WHERE oid = 'shop.totals'::regclass) AS new_storage
FROM before b;
SELECT count(*) AS differs FROM (
    (SELECT account, total, entries FROM shop.totals
     EXCEPT ALL
     SELECT e.stream_id, sum((e.data->>'amount')::numeric * 100), count(*)::integer
     FROM projections.events e GROUP BY e.stream_id)
    UNION ALL
    (SELECT e.stream_id, sum((e.data->>'amount')::numeric * 100), count(*)::integer
     FROM projections.events e GROUP BY e.stream_id
     EXCEPT ALL
     SELECT account, total, entries FROM shop.totals)) d;
SELECT count(*) AS entries, count(DISTINCT pos) AS distinct_events FROM shop.entries;
SELECT bool_and(note = repeat('y', 3000)) AS toasted_values_read FROM shop.totals;
SELECT obj_description('shop.totals'::regclass, 'pg_class') AS comment,
       (SELECT reloptions FROM pg_class WHERE oid = 'shop.totals'::regclass) AS options;
SELECT count(*) AS via_view FROM shop.big_accounts;
SET ROLE regress_nobody;
SELECT account FROM shop.totals ORDER BY account;
RESET ROLE;
SET enable_seqscan = off;
SELECT account FROM shop.totals WHERE total = (SELECT max(total) FROM shop.totals);
EXPLAIN (COSTS OFF) SELECT account FROM shop.totals WHERE total = 1;
RESET enable_seqscan;
SELECT count(*) > 0 AS statistics FROM pg_stats WHERE schemaname = 'shop' AND tablename = 'totals';
SELECT relname = 'pg_toast_' || 'shop.totals'::regclass::oid AS toast_named_after_table
FROM pg_class WHERE oid = (SELECT reltoastrelid FROM pg_class WHERE oid = 'shop.totals'::regclass);

-- verify(): nothing on a correct model, exactly the planted rows otherwise
SELECT * FROM projections.verify('books') ORDER BY 1;
DELETE FROM shop.entries WHERE pos = (SELECT min(pos) FROM shop.entries);
INSERT INTO shop.entries VALUES ('acct-x', -1, 0), ('acct-x', -2, 0);
UPDATE shop.totals SET note = 'changed' WHERE account = 'acct-3';
SELECT * FROM projections.verify('books') ORDER BY 1;
SELECT * FROM projections.verify('books', ignore_columns => ARRAY['note']) ORDER BY 1;
SELECT try($$SELECT * FROM projections.verify('books', ignore_columns => ARRAY['no_such_column'])$$);
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';
SELECT count(*) AS unchanged FROM shop.entries WHERE account = 'acct-x';

-- cancel_rebuild drops the half-built model; nothing else changes
SET client_min_messages = error;
SELECT projections.rebuild('books', online => true);
RESET client_min_messages;
SELECT projections.cancel_rebuild('books');
SELECT rebuild_position, rebuild_lag FROM projections.status WHERE name = 'books';
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';
SELECT projections.cancel_rebuild('books');

-- a handler that writes its tables by their schema cannot be redirected:
-- the rebuild stops at once, the live model is untouched
CREATE OR REPLACE FUNCTION shop.book(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE shop.totals SET entries = entries + 1 WHERE account = e.stream_id;
END $$;
CREATE TEMP TABLE live_before AS SELECT * FROM shop.totals;
SET client_min_messages = error;
SELECT projections.rebuild('books', online => true);
SELECT projections.run('books');
RESET client_min_messages;
SELECT rebuild_position IS NULL AS stopped, last_error FROM projections.status WHERE name = 'books';
SELECT count(*) AS changed FROM (
    (SELECT * FROM shop.totals EXCEPT ALL SELECT * FROM live_before)
    UNION ALL (SELECT * FROM live_before EXCEPT ALL SELECT * FROM shop.totals)) d;
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';

-- ... and one with its own SET search_path is refused up front
ALTER FUNCTION shop.book(projections.events) SET search_path = shop;
SELECT try($$SELECT projections.rebuild('books', online => true)$$);
ALTER FUNCTION shop.book(projections.events) RESET search_path;
-- a table with a dropped column has another layout than a new one
ALTER TABLE shop.entries ADD COLUMN gone integer;
ALTER TABLE shop.entries DROP COLUMN gone;
SELECT try($$SELECT projections.rebuild('books', online => true)$$);

-- without tables there is nothing to build beside
SELECT projections.set_tables('books', NULL);
SELECT try($$SELECT projections.rebuild('books', online => true)$$);
SELECT try($$SELECT * FROM projections.verify('books')$$);

-- a plain rebuild without a reset function truncates the declared tables
CREATE TABLE shop.counts (account text PRIMARY KEY, n integer NOT NULL);
SET search_path = shop;
CREATE FUNCTION shop.count_it(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counts VALUES (e.stream_id, 1) ON CONFLICT (account) DO UPDATE SET n = counts.n + 1
$$;
SET client_min_messages = error;
SELECT projections.register('counts', 'shop.count_it(projections.events)',
                            tables => ARRAY['shop.counts']::regclass[]);
RESET client_min_messages;
RESET search_path;
SELECT projections.run('counts');
UPDATE shop.counts SET n = n + 1000;
SET client_min_messages = error;
SELECT projections.rebuild('counts');
RESET client_min_messages;
SELECT count(*) AS emptied FROM shop.counts;
SELECT projections.run('counts');
SELECT sum(n) = (SELECT count(*) FROM projections.events) AS rebuilt FROM shop.counts;

-- an inline projection is rebuilt online too: appends stay inline meanwhile
SELECT projections.set_mode('counts', 'inline');
UPDATE shop.counts SET n = n + 1000;
SET client_min_messages = error;
SELECT projections.rebuild('counts', online => true);
RESET client_min_messages;
SELECT projections.append('acct-1', 'Booked', '{"amount": 1}') > 0 AS appended;
SELECT n > 1000 AS live_still_old FROM shop.counts WHERE account = 'acct-1';
SELECT projections.run('counts');
SELECT state, mode, rebuild_position FROM projections.status WHERE name = 'counts';
SELECT sum(n) = (SELECT count(*) FROM projections.events) AS rebuilt FROM shop.counts;
SELECT projections.append('acct-1', 'Booked', '{"amount": 1}') > 0 AS appended;
SELECT sum(n) = (SELECT count(*) FROM projections.events) AS still_inline FROM shop.counts;

-- a run() in a transaction that has written tables does not advance a
-- rebuild (a handler's write to them would go unnoticed); verify() there is
-- refused
SET client_min_messages = error;
SELECT projections.rebuild('counts', online => true);
RESET client_min_messages;
BEGIN;
SELECT projections.append('acct-2', 'Booked', '{"amount": 1}') > 0 AS appended;
SELECT projections.run('counts');
SELECT rebuild_position IS NOT NULL AS still_rebuilding FROM projections.status WHERE name = 'counts';
SELECT try($$SELECT * FROM projections.verify('counts')$$);
ROLLBACK;
-- (any table written, the model's or not: the handler could write it too)
CREATE TABLE shop.audit (x integer);
BEGIN;
INSERT INTO shop.audit VALUES (1);
SELECT projections.run('counts');
ROLLBACK;
SELECT projections.run('counts');
SELECT rebuild_position IS NULL AS exchanged FROM projections.status WHERE name = 'counts';

-- expression indexes and check constraints come along with the new model
CREATE INDEX counts_lower_idx ON shop.counts (lower(account)) WHERE n > 0;
ALTER TABLE shop.counts ADD CONSTRAINT counts_n_positive CHECK (n > 0);
UPDATE shop.counts SET n = n + 1000;
SET client_min_messages = error;
SELECT projections.rebuild('counts', online => true);
RESET client_min_messages;
SELECT projections.run('counts');
SELECT rebuild_position IS NULL AS done, last_error FROM projections.status WHERE name = 'counts';
SELECT sum(n) = (SELECT count(*) FROM projections.events) AS rebuilt FROM shop.counts;

-- a constraint added to the live table during the build was not checked
-- on the new rows: the exchange is cancelled, the live model kept
UPDATE shop.counts SET n = n + 1000;
SET client_min_messages = error;
SELECT projections.rebuild('counts', online => true);
RESET client_min_messages;
ALTER TABLE shop.counts ADD CONSTRAINT counts_n_big CHECK (n > 500) NOT VALID;
SELECT projections.run('counts');
SELECT rebuild_position IS NULL AS stopped, last_error FROM projections.status WHERE name = 'counts';
SELECT sum(n) > (SELECT count(*) FROM projections.events) + 1000 AS live_kept FROM shop.counts;
ALTER TABLE shop.counts DROP CONSTRAINT counts_n_big;

-- foreign keys of the tables' own would not be checked on the new rows
CREATE TABLE shop.accounts (account text PRIMARY KEY);
INSERT INTO shop.accounts SELECT account FROM shop.counts;
ALTER TABLE shop.counts ADD CONSTRAINT counts_account_fkey
    FOREIGN KEY (account) REFERENCES shop.accounts;
SELECT try($$SELECT projections.rebuild('counts', online => true)$$);
ALTER TABLE shop.counts DROP CONSTRAINT counts_account_fkey;

-- a projection paused during an online rebuild stays paused after the exchange
SET client_min_messages = error;
SELECT projections.rebuild('counts', online => true);
SELECT projections.pause('counts');
SELECT projections.run('counts');
RESET client_min_messages;
SELECT state, rebuild_position IS NULL AS exchanged FROM projections.status WHERE name = 'counts';
SELECT projections.resume('counts');

-- a handler may append events when it applies the live model, not when it
-- replays the history (every rebuild would append them again)
CREATE TABLE shop.pings (pos bigint);
CREATE FUNCTION shop.ping(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pings VALUES (e.global_position);
    PERFORM projections.append('pings', 'Pinged', '{}');
END $$;
SET search_path = shop;
SET client_min_messages = error;
SELECT projections.register('pinger', 'shop.ping(projections.events)', event_types => ARRAY['Booked'],
                            tables => ARRAY['shop.pings']::regclass[]);
RESET client_min_messages;
RESET search_path;
SELECT projections.run('pinger') > 0 AS applied;
SELECT (SELECT count(*) FROM projections.events WHERE event_type = 'Pinged') =
       (SELECT count(*) FROM shop.pings) AS one_ping_each;
SET client_min_messages = error;
SELECT projections.rebuild('pinger', online => true);
SELECT projections.run('pinger');
RESET client_min_messages;
SELECT rebuild_position IS NULL AS stopped, last_error FROM projections.status WHERE name = 'pinger';
SELECT (SELECT count(*) FROM projections.events WHERE event_type = 'Pinged') =
       (SELECT count(*) FROM shop.pings) AS no_ping_more;
SELECT try($$SELECT * FROM projections.verify('pinger')$$);
-- (nor a plain rebuild's replay)
SET client_min_messages = error;
SELECT projections.rebuild('pinger');
SELECT projections.run('pinger');
RESET client_min_messages;
SELECT state, last_error FROM projections.status WHERE name = 'pinger';
SELECT projections.unregister('pinger');

-- unregister and DROP EXTENSION take a half-built model along
SET client_min_messages = error;
SELECT projections.rebuild('counts', online => true);
SELECT projections.unregister('counts');
SET search_path = shop;
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';
SELECT projections.register('counts', 'shop.count_it(projections.events)',
                            tables => ARRAY['shop.counts']::regclass[]);
RESET search_path;
SELECT projections.rebuild('counts', online => true);
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';
DROP EXTENSION projections CASCADE;
RESET client_min_messages;
SELECT count(*) AS shadow_schemas FROM pg_namespace WHERE nspname LIKE 'projections_build_%';
SELECT count(*) AS read_models_kept FROM shop.counts;
CREATE EXTENSION projections;

SET client_min_messages = warning;
DROP SCHEMA shop CASCADE;
RESET client_min_messages;
REVOKE ALL ON SCHEMA projections FROM regress_nobody;
DROP OWNED BY regress_nobody;
DROP ROLE regress_nobody;
