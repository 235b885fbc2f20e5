-- Batch handlers, through the engine: a handler (events projections.events[])
-- is called once per chunk with the chunk's matching events in order.
-- Applied in chunks of 1, 7 (which cut streams and transactions apart),
-- 1000, and all at once, four batch handlers give the tables of the
-- per-event fold.  A failing event inside a batch is found (the batch is
-- replayed as smaller arrays): pause stops right before it, skip records
-- exactly it.  Inline, a batch handler is called once per appending call.
SET client_min_messages = warning;
SELECT plan(58);

CREATE SCHEMA o;
CREATE TABLE o.counts (stream_id text, event_type text, n integer NOT NULL,
                       PRIMARY KEY (stream_id, event_type));
CREATE TABLE o.latest (key text PRIMARY KEY, value integer NOT NULL, set_at bigint NOT NULL);
CREATE TABLE o.items (bag text, item text, added_at bigint NOT NULL, PRIMARY KEY (bag, item));
CREATE TABLE o.accounts (account text PRIMARY KEY, balance numeric NOT NULL, entries integer NOT NULL);
CREATE TABLE o.ledger (account text, pos bigint, amount numeric NOT NULL, PRIMARY KEY (account, pos));
CREATE TABLE o.calls (projection text, events integer);

-- set-based: one statement per call
CREATE FUNCTION o.count_batch(events projections.events[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO o.calls VALUES ('counting', cardinality(events));
    INSERT INTO o.counts
    SELECT e.stream_id, e.event_type, count(*) FROM unnest(events) e GROUP BY 1, 2
    ON CONFLICT (stream_id, event_type) DO UPDATE SET n = o.counts.n + excluded.n
$$;
-- set-based: the last value set for each key in the batch wins
CREATE FUNCTION o.latest_batch(events projections.events[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO o.latest
    SELECT DISTINCT ON (e.data->>'key') e.data->>'key', (e.data->>'value')::integer, e.global_position
    FROM unnest(events) WITH ORDINALITY AS e
    ORDER BY e.data->>'key', e.ordinality DESC
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_at = excluded.set_at
$$;
-- a loop: order-dependent adds and removes
CREATE FUNCTION o.items_batch(events projections.events[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    e projections.events;
BEGIN
    FOREACH e IN ARRAY events LOOP
        IF e.event_type = 'ItemAdded' THEN
            INSERT INTO o.items VALUES (e.stream_id, e.data->>'item', e.global_position)
            ON CONFLICT DO NOTHING;
        ELSE
            DELETE FROM o.items WHERE bag = e.stream_id AND item = e.data->>'item';
        END IF;
    END LOOP;
END $$;
-- a loop over two tables
CREATE FUNCTION o.accounts_batch(events projections.events[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    e projections.events;
    amount numeric;
BEGIN
    FOREACH e IN ARRAY events LOOP
        amount := coalesce((e.data->>'amount')::numeric, 0);
        IF e.event_type = 'Opened' THEN
            INSERT INTO o.accounts VALUES (e.stream_id, 0, 0);
        ELSE
            IF e.event_type = 'Withdrawn' THEN
                amount := -amount;
            END IF;
            UPDATE o.accounts SET balance = balance + amount, entries = entries + 1
            WHERE account = e.stream_id;
            INSERT INTO o.ledger VALUES (e.stream_id, e.global_position, amount);
        END IF;
    END LOOP;
END $$;

-- the per-event semantics, for the fold
CREATE FUNCTION o.count_one(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO o.counts VALUES (e.stream_id, e.event_type, 1)
    ON CONFLICT (stream_id, event_type) DO UPDATE SET n = o.counts.n + 1
$$;

CREATE TABLE o.setup (name text PRIMARY KEY, handler text, types text[], tables text[]);
INSERT INTO o.setup VALUES
    ('counting', 'o.count_batch(projections.events[])', NULL, '{counts}'),
    ('upserting', 'o.latest_batch(projections.events[])', '{Set}', '{latest}'),
    ('deleting', 'o.items_batch(projections.events[])', '{ItemAdded,ItemRemoved}', '{items}'),
    ('multi_table', 'o.accounts_batch(projections.events[])', '{Opened,Deposited,Withdrawn}',
     '{accounts,ledger}');

-- a history of 3,000 events over 70 streams, appended in 30 transactions
\set seed 0.5
\ir lib/history.sql
SELECT is((SELECT count(*) FROM projections.events), 3000::bigint, 'a history of 3000 events');

-- the oracle: the batch handlers' per-event meaning, one event at a time in
-- the engine's order (a batch of one is the per-event handler)
DO $$
DECLARE
    s record;
    e projections.events;
    t text;
BEGIN
    FOR s IN SELECT * FROM o.setup LOOP
        FOR e IN SELECT * FROM projections.events ORDER BY ordering_key, global_position LOOP
            IF s.types IS NULL OR e.event_type = ANY (s.types) THEN
                IF s.name = 'counting' THEN
                    PERFORM o.count_one(e);
                ELSE
                    EXECUTE format('SELECT %s(ARRAY[$1])', s.handler::regprocedure::regproc) USING e;
                END IF;
            END IF;
        END LOOP;
        FOREACH t IN ARRAY s.tables LOOP
            EXECUTE format('CREATE TABLE o.%I AS SELECT * FROM o.%I', 'expected_' || t, t);
            EXECUTE format('TRUNCATE o.%I', t);
        END LOOP;
    END LOOP;
END $$;
TRUNCATE o.calls;
SELECT cmp_ok((SELECT count(*) FROM o.expected_ledger), '>', 500::bigint, 'the oracle has a ledger');

SELECT projections.register(name, handler::regprocedure, types, tables => (
           SELECT array_agg(('o.' || t)::regclass) FROM unnest(tables) t))
FROM o.setup;
SELECT is((SELECT count(*) FROM projections.status WHERE batch), 4::bigint,
          'register tells batch handlers by their signature');

-- apply everything in chunks of `chunk`, then compare every table
CREATE FUNCTION o.check_chunks(chunk integer) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    s record;
    t text;
BEGIN
    PERFORM set_config('projections.batch_handler_size', chunk::text, true);
    FOR s IN SELECT * FROM o.setup ORDER BY name LOOP
        PERFORM projections.rebuild(s.name);
        PERFORM projections.run(s.name);
        FOREACH t IN ARRAY s.tables LOOP
            RETURN NEXT bag_eq(format('SELECT * FROM o.%I', t),
                               format('SELECT * FROM o.%I', 'expected_' || t),
                               format('%s, chunks of %s: %s equals the fold', s.name, chunk, t));
        END LOOP;
        RETURN NEXT is((SELECT lag FROM projections.status WHERE name = s.name), 0::bigint,
                       format('%s, chunks of %s: nothing left', s.name, chunk));
    END LOOP;
END $$;

SELECT * FROM o.check_chunks(1);
SELECT * FROM o.check_chunks(7);
SELECT * FROM o.check_chunks(1000);
SELECT * FROM o.check_chunks(100000);
SELECT is((SELECT max(events) FROM o.calls), 3000, 'the largest call took all 3000 events at once');
SELECT is((SELECT count(*) FROM o.calls WHERE events = 7), 3000::bigint / 7,
          'in chunks of 7, every call but the last had 7 events');

-- a failing event inside a batch: found, and the policy acts on it alone
CREATE TABLE o.poison (pos bigint PRIMARY KEY);
CREATE TABLE o.pause_log (pos bigint PRIMARY KEY);
CREATE TABLE o.skip_log (pos bigint PRIMARY KEY);
CREATE FUNCTION o.pause_batch(events projections.events[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO o.pause_log SELECT e.global_position FROM unnest(events) e;
    IF EXISTS (SELECT FROM unnest(events) e JOIN o.poison p ON p.pos = e.global_position) THEN
        RAISE EXCEPTION 'a poison event among %', cardinality(events);
    END IF;
END $$;
CREATE FUNCTION o.skip_batch(events projections.events[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO o.skip_log SELECT e.global_position FROM unnest(events) e;
    IF EXISTS (SELECT FROM unnest(events) e JOIN o.poison p ON p.pos = e.global_position) THEN
        RAISE EXCEPTION 'a poison event among %', cardinality(events);
    END IF;
END $$;
INSERT INTO o.poison VALUES (1500), (1501), (2222);
SET projections.batch_handler_size = 1000;
SELECT projections.register('paused_batch', 'o.pause_batch(projections.events[])', on_error => 'pause');
SELECT projections.register('skipping_batch', 'o.skip_batch(projections.events[])', on_error => 'skip');

SELECT is(projections.run('paused_batch'), 1499::bigint, 'pause: the 1499 events before the poison are applied');
SELECT results_eq($$SELECT state, position, error_position FROM projections.status WHERE name = 'paused_batch'$$,
                  $$VALUES ('failed', 1499::bigint, 1500::bigint)$$,
                  'pause: failed at exactly the poison event');
SELECT bag_eq('SELECT pos FROM o.pause_log', 'SELECT generate_series(1, 1499)::bigint',
              'pause: the read model holds exactly the events before it');
SELECT cmp_ok((SELECT count(DISTINCT xmin::text) FROM o.pause_log), '<=', 24::bigint,
              'pause: found by halving, in a few subtransactions');

SELECT is(projections.run('skipping_batch'), 2997::bigint, 'skip: every other event is applied');
SELECT bag_eq('SELECT global_position FROM projections.failed_events WHERE projection = ''skipping_batch''',
              'VALUES (1500::bigint), (1501), (2222)', 'skip: exactly the poison events are recorded');
SELECT bag_eq('SELECT pos FROM o.skip_log',
              'SELECT generate_series(1, 3000)::bigint EXCEPT VALUES (1500), (1501), (2222)',
              'skip: the read model holds exactly the good events');
DELETE FROM o.poison WHERE pos = 1500;
SELECT projections.resume('paused_batch');
SELECT is(projections.run('paused_batch'), 1::bigint, 'resume: the batch stops at the next poison event');
SELECT is((SELECT error_position FROM projections.status WHERE name = 'paused_batch'), 1501::bigint,
          '... which is 1501');

-- inline: once per appending call
CREATE TABLE o.inline_calls (events integer, first_position bigint);
CREATE FUNCTION o.note_call(events projections.events[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO o.inline_calls VALUES (cardinality(events), events[1].global_position)
$$;
SELECT projections.register('inline_batch', 'o.note_call(projections.events[])', mode => 'inline',
                            event_types => ARRAY['Inline']);
SELECT projections.append_many('in-1', '[{"type": "Inline", "data": {}}, {"type": "Other", "data": {}},
                                         {"type": "Inline", "data": {}}, {"type": "Inline", "data": {}}]');
SELECT results_eq('SELECT events FROM o.inline_calls', 'VALUES (3)',
                  'append_many: one call with the call''s three matching events');
SELECT projections.append('in-2', 'Inline', '{}');
INSERT INTO projections.events (stream_id, event_type, data)
VALUES ('in-3', 'Inline', '{}'), ('in-3', 'Inline', '{}');
SELECT results_eq('SELECT events FROM o.inline_calls ORDER BY first_position', 'VALUES (3), (1), (1), (1)',
                  'append and plain INSERT: one call per event');
SELECT is((SELECT sum(events) FROM o.inline_calls)::bigint,
          (SELECT count(*) FROM projections.events WHERE event_type = 'Inline'),
          'every inline event reached the handler once');
CREATE FUNCTION o.refuse(events projections.events[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM unnest(events) e WHERE e.data ? 'fail') THEN
        RAISE EXCEPTION 'refused' USING ERRCODE = 'P0001';
    END IF;
END $$;
SELECT projections.register('inline_refuser', 'o.refuse(projections.events[])', mode => 'inline',
                            event_types => ARRAY['Checked']);
SELECT throws_ok($$SELECT projections.append_many('in-4', '[{"type": "Checked", "data": {}},
                                                           {"type": "Checked", "data": {"fail": true}}]')$$,
                 'P0001', 'refused', 'an inline batch handler''s error aborts the appending call');
SELECT is((SELECT count(*) FROM projections.events WHERE stream_id = 'in-4'), 0::bigint,
          '... and none of its events is stored');

-- an inline handler that appends in a subtransaction it then rolls back:
-- the batch handler of the appending call gets only the events that stay,
-- in position order
CREATE TABLE o.batch_seen (call bigint, ord bigint, pos bigint);
CREATE SEQUENCE o.batch_call;
CREATE FUNCTION o.note_seen(events projections.events[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c bigint := nextval('o.batch_call');
BEGIN
    INSERT INTO o.batch_seen SELECT c, u.ordinality, u.global_position
    FROM unnest(events) WITH ORDINALITY AS u;
END $$;
CREATE FUNCTION o.spawn(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM projections.append('phantom', 'Seen', '{}');
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    PERFORM projections.append('kept-' || e.global_position, 'Seen', '{}');
END $$;
SELECT projections.register('aa_spawner', 'o.spawn(projections.events)', mode => 'inline',
                            event_types => ARRAY['Spawn']);
SELECT projections.register('zz_seen', 'o.note_seen(projections.events[])', mode => 'inline',
                            event_types => ARRAY['Spawn', 'Seen']);
SELECT projections.append_many('spawning', '[{"type": "Spawn", "data": {}}, {"type": "Spawn", "data": {}}]');
SELECT is((SELECT count(*) FROM o.batch_seen WHERE pos NOT IN (SELECT global_position FROM projections.events)),
          0::bigint, 'a batch handler gets no event of a rolled-back subtransaction');
SELECT set_eq('SELECT pos FROM o.batch_seen',
              $$SELECT global_position FROM projections.events
                WHERE stream_id = 'spawning' OR stream_id LIKE 'kept-%'$$,
              '... and every event that stays, once');
SELECT is((SELECT count(*) FROM (SELECT pos < lag(pos) OVER (PARTITION BY call ORDER BY ord) AS back
                                 FROM o.batch_seen) d WHERE back),
          0::bigint, '... each call''s in position order');

SELECT * FROM finish();
