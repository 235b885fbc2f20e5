-- Error policy: a poison event in the middle of a 1000-event batch.
-- pause: the read model and the checkpoint stop exactly at the last good
-- event, the error is recorded, resume retries.  skip: the event goes to
-- failed_events and the batch goes on.  Either way the read model equals
-- the fold over the good events, and a batch uses a bounded number of
-- subtransactions (rows a handler writes carry the subtransaction's xid in
-- xmin: one xmin per subtransaction).
SET client_min_messages = warning;
SELECT plan(27);

CREATE SCHEMA o;
CREATE TABLE o.poison (pos bigint PRIMARY KEY, code text NOT NULL DEFAULT 'P0001');
CREATE TABLE o.pause_log (pos bigint PRIMARY KEY, stream_id text, v integer);
CREATE TABLE o.skip_log (pos bigint PRIMARY KEY, stream_id text, v integer);

CREATE FUNCTION o.check_poison(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    code text;
BEGIN
    SELECT p.code INTO code FROM o.poison p WHERE p.pos = e.global_position;
    IF FOUND THEN
        RAISE EXCEPTION 'poison event %', e.global_position USING ERRCODE = code;
    END IF;
END $$;
CREATE FUNCTION o.pause_apply(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO o.pause_log VALUES (e.global_position, e.stream_id, e.stream_version);
    PERFORM o.check_poison(e);
END $$;
CREATE FUNCTION o.skip_apply(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO o.skip_log VALUES (e.global_position, e.stream_id, e.stream_version);
    PERFORM o.check_poison(e);
END $$;

-- 1000 events, in 10 transactions; position 500 is poison
DO $$
BEGIN
    FOR i IN 1..1000 LOOP
        PERFORM projections.append('s-' || (i % 13), 'Tick', jsonb_build_object('i', i));
        IF i % 100 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END $$;
INSERT INTO o.poison VALUES (500);

SELECT projections.register('paused_one', 'o.pause_apply(projections.events)', on_error => 'pause');
SELECT projections.register('skipping_one', 'o.skip_apply(projections.events)', on_error => 'skip');

-- pause
SELECT is(projections.run('paused_one'), 499::bigint, 'pause: the batch applies the 499 good events before the poison');
SELECT results_eq($$SELECT state, position, error_position, error_sqlstate, last_error
                    FROM projections.status WHERE name = 'paused_one'$$,
                  $$VALUES ('failed', 499::bigint, 500::bigint, 'P0001', 'poison event 500')$$,
                  'pause: failed at the poison, with its position, SQLSTATE and message');
SELECT bag_eq('SELECT pos FROM o.pause_log', 'SELECT generate_series(1, 499)::bigint',
              'pause: the read model holds exactly the events before the poison');
SELECT is((SELECT count(DISTINCT xmin::text) FROM o.pause_log), 1::bigint,
          'pause: the good prefix was applied in one subtransaction');
SELECT is(projections.run('paused_one'), 0::bigint, 'pause: a failed projection applies nothing');
SELECT is((SELECT count(*) FROM o.pause_log), 499::bigint, '... and the read model stays put');

-- resume retries the same event: still poison, still failed
SELECT projections.resume('paused_one');
SELECT is(projections.run('paused_one'), 0::bigint, 'resume retries the poison event first');
SELECT is((SELECT state FROM projections.status WHERE name = 'paused_one'), 'failed',
          '... and pauses again while it fails');
-- once fixed, resume applies the rest
DELETE FROM o.poison;
SELECT projections.resume('paused_one');
SELECT is(projections.run('paused_one'), 501::bigint, 'after the fix, resume applies the remaining 501 events');
SELECT bag_eq('SELECT pos FROM o.pause_log', 'SELECT generate_series(1, 1000)::bigint',
              'pause: the read model equals the fold over every event');
SELECT is((SELECT count(DISTINCT xmin::text) FROM o.pause_log WHERE pos >= 500), 1::bigint,
          'the happy path uses one subtransaction for the whole batch');
SELECT results_eq($$SELECT state, lag FROM projections.status WHERE name = 'paused_one'$$,
                  $$VALUES ('running', 0::bigint)$$, 'pause: running again, nothing left');

-- skip
INSERT INTO o.poison VALUES (500, '22012');
SELECT is(projections.run('skipping_one'), 999::bigint, 'skip: the batch applies the 999 good events');
SELECT bag_eq('SELECT pos FROM o.skip_log', 'SELECT generate_series(1, 1000)::bigint EXCEPT SELECT 500',
              'skip: the read model equals the fold over the good events');
SELECT results_eq($$SELECT projection, global_position, stream_id, stream_version, event_type, error_message, sqlstate
                    FROM projections.failed_events$$,
                  $$SELECT 'skipping_one', global_position, stream_id, stream_version, event_type,
                           'poison event 500', '22012'
                    FROM projections.events WHERE global_position = 500$$,
                  'skip: the poison event is in failed_events with its error and SQLSTATE');
SELECT results_eq($$SELECT state, position, lag, events_applied, events_skipped, error_position
                    FROM projections.status WHERE name = 'skipping_one'$$,
                  $$VALUES ('running', 1000::bigint, 0::bigint, 999::bigint, 1::bigint, 500::bigint)$$,
                  'skip: still running, past the end, one event skipped');
SELECT is((SELECT count(DISTINCT xmin::text) FROM o.skip_log), 2::bigint,
          'skip: one subtransaction before the poison, one after');

-- several poison events under skip: two more subtransactions each
DELETE FROM o.skip_log;
TRUNCATE o.poison;
INSERT INTO o.poison VALUES (1001), (1050), (1051), (1200);
DO $$
BEGIN
    FOR i IN 1001..1300 LOOP
        PERFORM projections.append('s-' || (i % 13), 'Tick', jsonb_build_object('i', i));
    END LOOP;
END $$;
SELECT is(projections.run('skipping_one'), 296::bigint, 'skip: 296 of 300 events applied around 4 poison events');
SELECT is((SELECT count(*) FROM projections.failed_events WHERE projection = 'skipping_one'), 5::bigint,
          'skip: every poison event recorded');
SELECT cmp_ok((SELECT count(DISTINCT xmin::text) FROM o.skip_log), '<=', 5::bigint,
              'skip: subtransactions grow with the failures, not with the events');
SELECT bag_eq('SELECT pos FROM o.skip_log', 'SELECT generate_series(1001, 1300)::bigint EXCEPT VALUES (1001), (1050), (1051), (1200)',
              'skip: the new rows are exactly the good new events');

-- a transient error (serialization failure, deadlock, ...) is never skipped:
-- the batch fails and is retried later, nothing is recorded
INSERT INTO o.poison VALUES (1301, '40001');
SELECT projections.append('s-x', 'Tick', '{}') = 1301 AS appended;
SELECT throws_ok($$SELECT projections.run('skipping_one')$$, '40001', 'poison event 1301',
                 'skip: a transient error propagates instead of skipping the event');
SELECT is((SELECT count(*) FROM projections.failed_events WHERE global_position = 1301), 0::bigint,
          '... the event is not recorded as failed');
SELECT results_eq($$SELECT state, position FROM projections.status WHERE name = 'skipping_one'$$,
                  $$VALUES ('running', 1300::bigint)$$, '... and the checkpoint has not moved');
DELETE FROM o.poison WHERE pos = 1301;
SELECT is(projections.run('skipping_one'), 1::bigint, '... so the event is applied once the cause is gone');

-- a handler that no longer exists pauses the projection with a clear error
CREATE FUNCTION o.doomed(e projections.events) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT projections.register('doomed', 'o.doomed(projections.events)');
UPDATE pg_catalog.pg_proc SET proname = 'doomed_renamed' WHERE proname = 'doomed';  -- behind the guard's back
SELECT is(projections.run('doomed'), 0::bigint, 'a missing handler applies nothing');
SELECT results_eq($$SELECT state, error_sqlstate, last_error FROM projections.status WHERE name = 'doomed'$$,
                  $$VALUES ('failed', '42883', 'handler function o.doomed(projections.events) does not exist')$$,
                  '... and the projection fails with a clear error');

SELECT * FROM finish();
