-- The projections API: register and its errors, every function on an
-- unknown name, run(), pause/resume, rebuild, status, comments.
-- The worker is off here (test/regress.conf): projections advance only
-- through projections.run().
-- each test file starts from an empty event store
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections;


CREATE TABLE tally (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION tally_apply(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO tally VALUES (e.stream_id, 1)
    ON CONFLICT (stream_id) DO UPDATE SET n = tally.n + 1
$$;
CREATE FUNCTION tally_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM tally $$;

-- handlers with the wrong shape
CREATE FUNCTION no_args() RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION returns_int(e projections.events) RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION takes_text(t text) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION returns_set(e projections.events) RETURNS SETOF void LANGUAGE sql AS $$ SELECT $$;
CREATE PROCEDURE a_procedure(e projections.events) LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION two_args(e projections.events, x int) RETURNS void LANGUAGE sql AS $$ SELECT $$;

SELECT count(projections.append('s-' || (i % 3), CASE WHEN i % 2 = 0 THEN 'Even' ELSE 'Odd' END,
                                jsonb_build_object('i', i))) AS appended
FROM generate_series(1, 10) i;

-- registration: every mistake is an error with a SQLSTATE, and the catalog is unchanged
SELECT try($$SELECT projections.register('p', 'missing(projections.events)')$$);
SELECT try($$SELECT projections.register('p', 'no_args()')$$);
SELECT try($$SELECT projections.register('p', 'returns_int(projections.events)')$$);
SELECT try($$SELECT projections.register('p', 'takes_text(text)')$$);
SELECT try($$SELECT projections.register('p', 'returns_set(projections.events)')$$);
SELECT try($$SELECT projections.register('p', 'a_procedure(projections.events)')$$);
SELECT try($$SELECT projections.register('p', 'two_args(projections.events, integer)')$$);
SELECT try($$SELECT projections.register('p', 'tally_apply(projections.events)', mode => 'sometimes')$$);
SELECT try($$SELECT projections.register('p', 'tally_apply(projections.events)', mode => NULL)$$);
SELECT try($$SELECT projections.register('p', 'tally_apply(projections.events)', on_error => 'ignore')$$);
SELECT try($$SELECT projections.register('p', 'tally_apply(projections.events)', reset => 'tally_apply(projections.events)')$$);
SELECT try($$SELECT projections.register('p', 'tally_apply(projections.events)', event_types => '{}')$$);
SELECT try($$SELECT projections.register('p', 'tally_apply(projections.events)', event_types => ARRAY['A', NULL])$$);
SELECT try($$SELECT projections.register('p', 'tally_apply(projections.events)', event_types => ARRAY['A', ''])$$);
SELECT try($$SELECT projections.register('p', NULL)$$);
SELECT try($$SELECT projections.register(NULL, 'tally_apply(projections.events)')$$);
SELECT try($$SELECT projections.register('', 'tally_apply(projections.events)')$$);
SELECT try($$SELECT projections.register(repeat('x', 64), 'tally_apply(projections.events)')$$);
SELECT count(*) AS registered FROM projections.projection;
-- the full text of two of them
SELECT projections.register('p', 'returns_int(projections.events)');
SELECT projections.register('p', 'tally_apply(projections.events)', mode => 'sometimes');

-- a good registration, with the worker off: a warning says who will apply it
SELECT projections.register('tally', 'tally_apply(projections.events)',
                            event_types => ARRAY['Even'], reset => 'tally_reset()');
SELECT try($$SELECT projections.register('tally', 'tally_apply(projections.events)')$$);
SELECT name, mode, state, position, head, lag, events_applied, event_types, on_error,
       handler, worker_state
FROM projections.status;

-- run() applies, in the calling session, what is pending
SELECT projections.run('tally', 2);
SELECT name, state, position, lag, events_applied FROM projections.status;
SELECT projections.run('tally');
SELECT projections.run('tally');
SELECT projections.run('tally', 0);
SELECT try($$SELECT projections.run('tally', -1)$$);
SELECT * FROM tally ORDER BY stream_id;
SELECT name, state, position = projections.head() AS at_head, lag, events_applied
FROM projections.status;

-- pause and resume
SELECT projections.pause('tally');
SELECT projections.pause('tally');
SELECT projections.append('s-0', 'Even', '{}') > 0 AS appended;
SELECT projections.run('tally');
SELECT name, state, lag FROM projections.status;
-- waiting for a paused projection returns false at once, not at the timeout
SET statement_timeout = '3s';
SELECT projections.wait('tally', timeout => '1 min');
RESET statement_timeout;
SELECT projections.resume('tally');
SELECT projections.resume('tally');
SELECT projections.run('tally');
SELECT name, state, lag FROM projections.status;

-- rebuild: reset, back to the start, replayed by run() (or the worker)
SELECT projections.rebuild('tally');
SELECT count(*) AS rows_after_reset FROM tally;
SELECT name, state, position, lag, events_applied FROM projections.status;
SELECT projections.run('tally');
SELECT name, state, lag, events_applied FROM projections.status;
SELECT * FROM tally ORDER BY stream_id;

-- rebuild without a reset function is refused (documented), nothing changes
SELECT projections.register('all_events', 'tally_apply(projections.events)');
SELECT projections.run('all_events') AS applied;
SELECT projections.rebuild('all_events');
SELECT name, position = projections.head() AS at_head FROM projections.status WHERE name = 'all_events';

-- set_mode: async to inline catches up and applies appends from then on
SELECT projections.set_mode('all_events', 'async');
SELECT projections.set_mode('all_events', 'inline');
SELECT projections.append('s-9', 'Odd', '{}') > 0 AS appended;
SELECT n FROM tally WHERE stream_id = 's-9';
SELECT name, mode, state, lag, worker_state FROM projections.status WHERE name = 'all_events';
SELECT projections.wait('all_events');
SELECT try($$SELECT projections.set_mode('all_events', 'sideways')$$);
SELECT projections.set_mode('all_events', 'async');
SELECT projections.append('s-9', 'Odd', '{}') > 0 AS appended;
SELECT n FROM tally WHERE stream_id = 's-9';
SELECT projections.run('all_events');
SELECT n FROM tally WHERE stream_id = 's-9';

-- with no worker, wait() warns and times out
SELECT projections.append('s-9', 'Odd', '{}') > 0 AS appended;
SELECT projections.wait('all_events', timeout => '50 ms');
SELECT try($$SELECT projections.wait('all_events', timeout => NULL)$$);
-- a timeout too long to add to the clock waits (it used to overflow and end at once)
SET statement_timeout = '200ms';
SELECT try($$SELECT projections.wait('all_events', timeout => '100000000 years')$$);
RESET statement_timeout;
SELECT projections.run('all_events');
SELECT projections.wait('all_events', timeout => '50 ms');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT projections.wait('all_events');
ROLLBACK;
-- wait_for_lsn() without a name waits for every projection that is not
-- paused or failed: one that an owner paused does not fail it
SELECT projections.pause('all_events');
SELECT projections.append('s-9', 'Odd', '{}') > 0 AS appended;
SELECT count(projections.run(name)) AS caught_up FROM projections.status WHERE state <> 'paused';
SELECT projections.wait_for_lsn(pg_current_wal_insert_lsn(), NULL, '50 ms') AS all_running_caught_up;
SELECT projections.wait_for_lsn(pg_current_wal_insert_lsn(), 'all_events', '50 ms') AS paused_one;
SELECT projections.resume('all_events');
SELECT projections.run('all_events');
-- waiting for an event of one's own open transaction is refused
BEGIN;
SELECT projections.append('s-9', 'Odd', '{}') AS own \gset
SELECT projections.wait('all_events', :own);
ROLLBACK;

-- every function on an unknown projection
SELECT try($$SELECT projections.unregister('nope')$$);
SELECT try($$SELECT projections.rebuild('nope')$$);
SELECT try($$SELECT projections.pause('nope')$$);
SELECT try($$SELECT projections.resume('nope')$$);
SELECT try($$SELECT projections.run('nope')$$);
SELECT try($$SELECT projections.wait('nope')$$);
SELECT try($$SELECT projections.set_mode('nope', 'async')$$);
SELECT try($$SELECT projections.unregister(NULL)$$);

-- a name full of quotes, semicolons and comment markers is data
SELECT projections.register($n$x'); DROP TABLE tally; -- /* "q" */$n$,
                            'tally_apply(projections.events)', event_types => ARRAY['Odd']);
SELECT name FROM projections.status WHERE name LIKE 'x%';
SELECT projections.run($n$x'); DROP TABLE tally; -- /* "q" */$n$) > 0 AS applied;
SELECT projections.pause($n$x'); DROP TABLE tally; -- /* "q" */$n$);
SELECT projections.resume($n$x'); DROP TABLE tally; -- /* "q" */$n$);
SELECT projections.wait($n$x'); DROP TABLE tally; -- /* "q" */$n$);
SELECT projections.unregister($n$x'); DROP TABLE tally; -- /* "q" */$n$);
SELECT count(*) AS tally_still_there FROM tally;

-- unregister leaves the read model alone
SELECT projections.unregister('tally');
SELECT projections.unregister('all_events');
SELECT count(*) AS projections_left FROM projections.projection;
SELECT count(*) > 0 AS read_model_kept FROM tally;

-- dropping a function a projection uses is refused
SELECT projections.register('guarded', 'tally_apply(projections.events)', reset => 'tally_reset()');
SELECT try($$DROP FUNCTION tally_apply(projections.events)$$);
SELECT try($$DROP FUNCTION tally_reset()$$);
SELECT try($$ALTER FUNCTION tally_apply(projections.events) RENAME TO tally_apply2$$);
SELECT try($$CREATE SCHEMA elsewhere; ALTER FUNCTION tally_reset() SET SCHEMA elsewhere$$);
SELECT try($$ALTER TABLE projections.events RENAME TO history$$);
DROP FUNCTION tally_apply(projections.events);
SELECT projections.unregister('guarded');
DROP FUNCTION tally_reset();

-- every function, table and view of the extension explains itself in \df+ / \d+
SELECT p.oid::regprocedure AS undocumented_function
FROM pg_proc p WHERE p.pronamespace = 'projections'::regnamespace
  AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.oid::regclass AS undocumented_relation
FROM pg_class c WHERE c.relnamespace = 'projections'::regnamespace
  AND c.relkind IN ('r', 'v', 'S') AND obj_description(c.oid, 'pg_class') IS NULL;
