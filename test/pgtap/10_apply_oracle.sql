-- Oracle tests of the apply engine: for four kinds of handler (counting,
-- upserting, deleting, multi-table), applying a history through run() in
-- batches of 1, 7 and 1000 events, and with the engine's own chunking at 7,
-- gives the same tables as calling the handler once per event in global
-- order.
SET client_min_messages = warning;
SELECT plan(43);

CREATE SCHEMA o;
CREATE TABLE o.counts (stream_id text, event_type text, n integer NOT NULL,
                       PRIMARY KEY (stream_id, event_type));
CREATE TABLE o.latest (key text PRIMARY KEY, value integer NOT NULL, set_at bigint NOT NULL);
CREATE TABLE o.items (bag text, item text, added_at bigint NOT NULL, PRIMARY KEY (bag, item));
CREATE TABLE o.accounts (account text PRIMARY KEY, balance numeric NOT NULL, entries integer NOT NULL);
CREATE TABLE o.ledger (account text, pos bigint, amount numeric NOT NULL, PRIMARY KEY (account, pos));

-- counting: one row per stream and type
CREATE FUNCTION o.count_apply(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO o.counts VALUES (e.stream_id, e.event_type, 1)
    ON CONFLICT (stream_id, event_type) DO UPDATE SET n = o.counts.n + 1
$$;
CREATE FUNCTION o.count_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM o.counts $$;

-- upserting: the last value set for each key wins
CREATE FUNCTION o.latest_apply(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO o.latest VALUES (e.data->>'key', (e.data->>'value')::integer, e.global_position)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_at = excluded.set_at
$$;
CREATE FUNCTION o.latest_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM o.latest $$;

-- deleting: items come and go
CREATE FUNCTION o.items_apply(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type = 'ItemAdded' THEN
        INSERT INTO o.items VALUES (e.stream_id, e.data->>'item', e.global_position)
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM o.items WHERE bag = e.stream_id AND item = e.data->>'item';
    END IF;
END $$;
CREATE FUNCTION o.items_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM o.items $$;

-- multi-table: balances and their ledger, in one transaction per event
CREATE FUNCTION o.accounts_apply(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    amount numeric := coalesce((e.data->>'amount')::numeric, 0);
BEGIN
    CASE e.event_type
    WHEN 'Opened' THEN
        INSERT INTO o.accounts VALUES (e.stream_id, 0, 0);
    WHEN 'Deposited', 'Withdrawn' THEN
        IF e.event_type = 'Withdrawn' THEN
            amount := -amount;
        END IF;
        UPDATE o.accounts SET balance = balance + amount, entries = entries + 1
        WHERE account = e.stream_id;
        INSERT INTO o.ledger VALUES (e.stream_id, e.global_position, amount);
    END CASE;
END $$;
CREATE FUNCTION o.accounts_reset() RETURNS void LANGUAGE sql AS $$
    DELETE FROM o.ledger; DELETE FROM o.accounts
$$;

-- the four projections, and what each takes
CREATE TABLE o.setup (name text PRIMARY KEY, handler text, reset text, types text[], tables text[]);
INSERT INTO o.setup VALUES
    ('counting', 'o.count_apply(projections.events)', 'o.count_reset()', NULL, '{counts}'),
    ('upserting', 'o.latest_apply(projections.events)', 'o.latest_reset()', '{Set}', '{latest}'),
    ('deleting', 'o.items_apply(projections.events)', 'o.items_reset()',
     '{ItemAdded,ItemRemoved}', '{items}'),
    ('multi_table', 'o.accounts_apply(projections.events)', 'o.accounts_reset()',
     '{Opened,Deposited,Withdrawn}', '{accounts,ledger}');

-- a history of 3,000 events over 70 streams, appended in 30 transactions
\set seed 0.25
\ir lib/history.sql

SELECT is((SELECT count(*) FROM projections.events), 3000::bigint, 'the history has 3000 events');
SELECT is((SELECT count(DISTINCT event_type) FROM projections.events), 6::bigint,
          'of six types');
SELECT cmp_ok((SELECT count(DISTINCT ordering_key) FROM projections.events), '>=', 30::bigint,
              'from many transactions');

-- the oracle: every handler called once per matching event, in global order
DO $$
DECLARE
    s record;
    e projections.events;
    t text;
BEGIN
    FOR s IN SELECT * FROM o.setup LOOP
        EXECUTE format('SELECT %s()', s.reset::regprocedure::regproc);
        FOR e IN SELECT * FROM projections.events ORDER BY global_position LOOP
            IF s.types IS NULL OR e.event_type = ANY (s.types) THEN
                EXECUTE format('SELECT %s($1)', s.handler::regprocedure::regproc) USING e;
            END IF;
        END LOOP;
        FOREACH t IN ARRAY s.tables LOOP
            EXECUTE format('CREATE TABLE o.%I AS SELECT * FROM o.%I', 'expected_' || t, t);
        END LOOP;
        EXECUTE format('SELECT %s()', s.reset::regprocedure::regproc);
    END LOOP;
END $$;
SELECT cmp_ok((SELECT count(*) FROM o.expected_counts), '>', 50::bigint, 'the oracle counts');
SELECT cmp_ok((SELECT count(*) FROM o.expected_items), '>', 10::bigint, 'the oracle keeps items');
SELECT cmp_ok((SELECT count(*) FROM o.expected_ledger), '>', 500::bigint, 'the oracle has a ledger');

SELECT projections.register(name, handler::regprocedure, types, reset => reset::regprocedure)
FROM o.setup;

-- apply everything in batches of n events, then compare every table
CREATE FUNCTION o.check_batches(n integer, chunk integer) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    s record;
    t text;
    calls integer;
BEGIN
    PERFORM set_config('projections.batch_size', chunk::text, true);
    FOR s IN SELECT * FROM o.setup ORDER BY name LOOP
        PERFORM projections.rebuild(s.name);
        calls := 0;
        LOOP
            calls := calls + 1;
            EXIT WHEN projections.run(s.name, n) = 0;
        END LOOP;
        FOREACH t IN ARRAY s.tables LOOP
            RETURN NEXT bag_eq(format('SELECT * FROM o.%I', t),
                               format('SELECT * FROM o.%I', 'expected_' || t),
                               format('%s, batches of %s, chunks of %s: %s equals the fold',
                                      s.name, n, chunk, t));
        END LOOP;
        RETURN NEXT is((SELECT lag FROM projections.status WHERE name = s.name), 0::bigint,
                       format('%s, batches of %s: nothing left to apply after %s calls',
                              s.name, n, calls));
    END LOOP;
END $$;

SELECT * FROM o.check_batches(1, 1000);
SELECT * FROM o.check_batches(7, 1000);
SELECT * FROM o.check_batches(1000, 1000);
SELECT * FROM o.check_batches(1000000, 7);

-- events_applied counts exactly the matching events
SELECT is((SELECT events_applied FROM projections.status WHERE name = 'deleting'),
          (SELECT count(*) FROM projections.events WHERE event_type IN ('ItemAdded', 'ItemRemoved')),
          'events_applied counts the matching events once');

SELECT * FROM finish();
