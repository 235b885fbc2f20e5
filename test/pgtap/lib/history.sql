-- test/pgtap/lib/history.sql: a history of 3,000 events over 70 streams
-- (accounts opened, deposits and withdrawals; bags of items added and
-- removed; keys set), appended in 30 transactions.  Include with
--   \set seed 0.25
--   \ir lib/history.sql
SELECT setseed(:seed);
DO $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1..40 LOOP
        PERFORM projections.append('acct-' || i, 'Opened', '{}');
    END LOOP;
    COMMIT;
    FOR i IN 1..2960 LOOP
        CASE (random() * 4)::integer
        WHEN 0 THEN
            PERFORM projections.append('acct-' || (1 + (random() * 39)::integer), 'Deposited',
                                       jsonb_build_object('amount', (random() * 100)::integer));
        WHEN 1 THEN
            PERFORM projections.append('acct-' || (1 + (random() * 39)::integer), 'Withdrawn',
                                       jsonb_build_object('amount', (random() * 50)::integer));
        WHEN 2 THEN
            PERFORM projections.append('bag-' || (i % 10),
                                       CASE WHEN random() < 0.6 THEN 'ItemAdded' ELSE 'ItemRemoved' END,
                                       jsonb_build_object('item', 'it-' || (random() * 40)::integer));
        ELSE
            PERFORM projections.append('kv-' || (i % 20), 'Set',
                                       jsonb_build_object('key', 'k' || (random() * 30)::integer,
                                                          'value', (random() * 1000)::integer));
        END CASE;
        IF i % 100 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END $$;
