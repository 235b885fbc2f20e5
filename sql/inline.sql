-- Inline projections: applied in the appending transaction, by every path
-- that appends, with the event-type filter applied before the handler; a
-- handler error aborts the append.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections;
RESET client_min_messages;

CREATE TABLE balances (account text PRIMARY KEY, amount numeric NOT NULL);
CREATE TABLE calls (projection text, pos bigint, type text);
CREATE FUNCTION book(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO calls VALUES ('balances', e.global_position, e.event_type);
    IF (e.data->>'amount')::numeric < 0 AND e.event_type = 'Withdrawn' THEN
        RAISE EXCEPTION 'negative withdrawal of %', e.data->>'amount'
            USING ERRCODE = 'check_violation', HINT = 'Amounts are positive.';
    END IF;
    INSERT INTO balances VALUES (e.stream_id, 0) ON CONFLICT DO NOTHING;
    UPDATE balances
    SET amount = amount + CASE e.event_type WHEN 'Deposited' THEN 1 ELSE -1 END
                          * (e.data->>'amount')::numeric
    WHERE account = e.stream_id;
    IF (SELECT amount FROM balances WHERE account = e.stream_id) < 0 THEN
        RAISE EXCEPTION 'account % would be overdrawn', e.stream_id USING ERRCODE = 'P0002';
    END IF;
END $$;
CREATE FUNCTION book_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM balances $$;
CREATE TABLE audit (pos bigint, stream_id text);
CREATE FUNCTION audit(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO calls VALUES ('audit', e.global_position, e.event_type);
    INSERT INTO audit VALUES (e.global_position, e.stream_id)
$$;

-- an existing history: an inline projection catches up when registered
SELECT projections.append('acct-1', 'Deposited', '{"amount": 100}') > 0 AS appended;
SELECT projections.append('acct-1', 'Renamed', '{"name": "x"}') > 0 AS appended;
SELECT projections.register('balances', 'book(projections.events)',
                            ARRAY['Deposited', 'Withdrawn'], 'inline', 'book_reset()');
SELECT * FROM balances;
SELECT name, mode, state, position = head AS at_head, lag, worker_state FROM projections.status;

-- from now on every append path applies it in the same transaction
SELECT projections.append('acct-1', 'Withdrawn', '{"amount": 30}') > 0 AS appended;
SELECT amount FROM balances WHERE account = 'acct-1';
SELECT array_length(projections.append_many('acct-2', '[
    {"type": "Deposited", "data": {"amount": 10}},
    {"type": "Renamed", "data": {}},
    {"type": "Deposited", "data": {"amount": 5}}]'), 1) AS appended;
INSERT INTO projections.events (stream_id, event_type, data)
VALUES ('acct-3', 'Deposited', '{"amount": 7}'), ('acct-3', 'Withdrawn', '{"amount": 2}');
SELECT * FROM balances ORDER BY account;
-- the filter runs before the handler: Renamed never reached it
SELECT type, count(*) FROM calls GROUP BY type ORDER BY type;
-- status and wait for an inline projection: nothing lags, nothing to wait for
SELECT name, lag, position = head AS at_head FROM projections.status;
SELECT projections.wait('balances', timeout => '0');
SELECT projections.run('balances');

-- a second inline projection, applied after the first, in name order
SELECT projections.register('zaudit', 'audit(projections.events)', mode => 'inline');
TRUNCATE calls;
SELECT projections.append('acct-1', 'Deposited', '{"amount": 1}') AS pos \gset
SELECT projection, pos = :pos AS this_event FROM calls ORDER BY ctid;

-- a failing handler aborts the append: SQLSTATE kept, context names the
-- projection and the event, nothing stored, other read models untouched
SELECT count(*) AS events_before FROM projections.events \gset
SELECT count(*) AS audit_before FROM audit \gset
SELECT projections.append('acct-1', 'Withdrawn', '{"amount": 1000}');
SELECT projections.append('acct-1', 'Withdrawn', '{"amount": -5}');
DO $$
BEGIN
    PERFORM projections.append('acct-1', 'Withdrawn', '{"amount": -5}');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'SQLSTATE %', SQLSTATE;
END $$;
SELECT count(*) = :events_before AS no_event_stored FROM projections.events;
SELECT count(*) = :audit_before AS audit_untouched FROM audit;
SELECT amount FROM balances WHERE account = 'acct-1';
-- also inside a transaction that appends several events
BEGIN;
SELECT projections.append('acct-9', 'Deposited', '{"amount": 1}') > 0 AS appended;
SELECT projections.append('acct-9', 'Withdrawn', '{"amount": 2}') > 0 AS appended;
ROLLBACK;
SELECT count(*) AS acct_9_events FROM projections.read_stream('acct-9');

-- pause stops inline application (documented); resume catches up
SELECT projections.pause('balances');
SELECT name, mode, state, lag, worker_state FROM projections.status WHERE name = 'balances';
SELECT projections.append('acct-1', 'Deposited', '{"amount": 50}') > 0 AS appended;
SELECT amount FROM balances WHERE account = 'acct-1';
SELECT projections.resume('balances');
SELECT amount FROM balances WHERE account = 'acct-1';
SELECT projections.append('acct-1', 'Deposited', '{"amount": 1}') > 0 AS appended;
SELECT amount FROM balances WHERE account = 'acct-1';

-- rebuild of an inline projection replays in this transaction
SELECT projections.rebuild('balances');
SELECT * FROM balances ORDER BY account;
SELECT name, state, lag, events_applied FROM projections.status WHERE name = 'balances';

-- a failing handler during catch-up pauses the projection (it does not go inline)
SELECT projections.set_mode('balances', 'async');
SET client_min_messages = error;
SELECT projections.append('acct-4', 'Withdrawn', '{"amount": -1}') > 0 AS appended;
RESET client_min_messages;
SELECT projections.set_mode('balances', 'inline');
SELECT name, mode, state, error_sqlstate, last_error, worker_state FROM projections.status WHERE name = 'balances';

SELECT projections.unregister('balances');
SELECT projections.unregister('zaudit');
SELECT projections.append('acct-1', 'Deposited', '{"amount": 1}') AS pos \gset
SELECT count(*) AS calls_after_unregister FROM calls WHERE pos = :pos;
