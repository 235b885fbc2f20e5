-- Inline and async give the same read models: the same handlers, one copy
-- registered async and applied by run(), one registered inline before the
-- history (never stale), one registered inline half-way through (catches up,
-- then goes inline), all equal to the fold over the history.
SET client_min_messages = warning;
SELECT plan(13);

-- the same two handlers (a counter and a multi-table ledger) for schemas a, i, h
DO $$
DECLARE
    s text;
BEGIN
    FOREACH s IN ARRAY ARRAY['a', 'i', 'h', 'fold'] LOOP
        EXECUTE format($f$
            CREATE SCHEMA %1$I;
            CREATE TABLE %1$I.counts (stream_id text, event_type text, n integer NOT NULL,
                                      PRIMARY KEY (stream_id, event_type));
            CREATE TABLE %1$I.accounts (account text PRIMARY KEY, balance numeric NOT NULL);
            CREATE TABLE %1$I.ledger (account text, pos bigint, amount numeric,
                                      PRIMARY KEY (account, pos));
            CREATE FUNCTION %1$I.count_apply(e projections.events) RETURNS void LANGUAGE sql AS $b$
                INSERT INTO %1$I.counts VALUES (e.stream_id, e.event_type, 1)
                ON CONFLICT (stream_id, event_type) DO UPDATE SET n = %1$I.counts.n + 1
            $b$;
            CREATE FUNCTION %1$I.ledger_apply(e projections.events) RETURNS void LANGUAGE plpgsql AS $b$
            DECLARE
                amount numeric := coalesce((e.data->>'amount')::numeric, 0)
                                  * CASE e.event_type WHEN 'Withdrawn' THEN -1 ELSE 1 END;
            BEGIN
                INSERT INTO %1$I.accounts VALUES (e.stream_id, 0) ON CONFLICT DO NOTHING;
                UPDATE %1$I.accounts SET balance = balance + amount WHERE account = e.stream_id;
                INSERT INTO %1$I.ledger VALUES (e.stream_id, e.global_position, amount);
            END $b$;
        $f$, s);
    END LOOP;
END $$;

SELECT projections.register('a_counts', 'a.count_apply(projections.events)');
SELECT projections.register('a_ledger', 'a.ledger_apply(projections.events)', ARRAY['Deposited', 'Withdrawn']);
SELECT projections.register('i_counts', 'i.count_apply(projections.events)', mode => 'inline');
SELECT projections.register('i_ledger', 'i.ledger_apply(projections.events)', ARRAY['Deposited', 'Withdrawn'],
                            mode => 'inline');

-- the history: 2,000 events in many transactions, by append, append_many and INSERT
SELECT setseed(0.7);
CREATE PROCEDURE history(first integer, last integer) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN first..last LOOP
        CASE i % 3
        WHEN 0 THEN
            PERFORM projections.append('acct-' || (i % 17),
                                       CASE WHEN random() < 0.7 THEN 'Deposited' ELSE 'Withdrawn' END,
                                       jsonb_build_object('amount', (random() * 100)::integer));
        WHEN 1 THEN
            PERFORM projections.append_many('acct-' || (i % 13), jsonb_build_array(
                jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', i % 50)),
                jsonb_build_object('type', 'Noted', 'data', jsonb_build_object())));
        ELSE
            INSERT INTO projections.events (stream_id, event_type, data)
            VALUES ('acct-' || (i % 11), 'Withdrawn', jsonb_build_object('amount', i % 7));
        END CASE;
        IF i % 50 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END $$;
CALL history(1, 750);

-- half-way: a third copy registered inline on the existing history
SELECT projections.register('h_counts', 'h.count_apply(projections.events)', mode => 'inline');
SELECT projections.register('h_ledger', 'h.ledger_apply(projections.events)', ARRAY['Deposited', 'Withdrawn'],
                            mode => 'inline');
CALL history(751, 1500);

SELECT cmp_ok((SELECT count(*) FROM projections.events), '>=', 2000::bigint, 'a history of 2,000 events');
SELECT is((SELECT count(*) FROM i.ledger), (SELECT count(*) FROM projections.events
                                              WHERE event_type IN ('Deposited', 'Withdrawn')),
          'the inline ledger is never stale: every event is in it before run() is called');
SELECT is((SELECT sum(lag) FROM projections.status WHERE mode = 'inline'), 0::numeric,
          'inline projections have no lag');
SELECT cmp_ok((SELECT sum(lag) FROM projections.status WHERE mode = 'async'), '>', 0::numeric,
              'the async ones do, until run()');
SELECT projections.run('a_counts');
SELECT projections.run('a_ledger');

-- the fold
DO $$
DECLARE
    e projections.events;
BEGIN
    FOR e IN SELECT * FROM projections.events ORDER BY global_position LOOP
        PERFORM fold.count_apply(e);
        IF e.event_type IN ('Deposited', 'Withdrawn') THEN
            PERFORM fold.ledger_apply(e);
        END IF;
    END LOOP;
END $$;

SELECT bag_eq('SELECT * FROM ' || s || '.' || t, 'SELECT * FROM fold.' || t,
              s || '.' || t || ' equals the fold')
FROM unnest(ARRAY['a', 'i', 'h']) s, unnest(ARRAY['counts', 'accounts', 'ledger']) t
ORDER BY s, t;

SELECT * FROM finish();
