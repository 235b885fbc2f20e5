-- Oracle tests of the batch handlers of the e-commerce example
-- (examples/ecommerce/handlers.sql): order_summary_apply_batch and
-- daily_sales_apply_batch, called on the consecutive pieces of a history cut
-- in many ways, leave exactly the tables that order_summary_apply and
-- daily_sales_apply leave when called once per event in applying order.
--
-- The handlers name their tables unqualified, and both kinds are run here as
-- the extension runs them: with a scratch schema (holding copies of the
-- read-model tables) first on the search_path.  No projection is registered
-- and the tables of schema ecommerce stay empty.
--
-- Histories: one appended by generate_history() (read back from
-- projections.events in (ordering_key, global_position) order), one staged
-- by stage_history() with another seed (with distinct, shuffled recorded_at
-- values, so that "the last event applied" is not "the latest recorded_at"),
-- and a small one written by hand with the edge cases the generator never
-- produces (events before their order's OrderCreated, events of orders that
-- never existed, repeated status events, numbers of several scales, days
-- that are different days in the session's time zone, a refund of a day
-- without sales).  Rows are compared as text, both ways, so numeric scales
-- and timestamps must match exactly; the session's time zone is UTC+14.
SET client_min_messages = warning;
\ir ../../examples/ecommerce/schema.sql
\ir ../../examples/ecommerce/handlers.sql
\ir ../../examples/ecommerce/generate.sql
SET TimeZone = 'Pacific/Kiritimati';

SELECT plan(73);

CREATE SCHEMA t;
CREATE SCHEMA oracle;   -- the per-event fold
CREATE SCHEMA batch;    -- the batch folds
CREATE TABLE oracle.order_summary (LIKE ecommerce.order_summary INCLUDING ALL);
CREATE TABLE oracle.daily_sales (LIKE ecommerce.daily_sales INCLUDING ALL);
CREATE TABLE batch.order_summary (LIKE ecommerce.order_summary INCLUDING ALL);
CREATE TABLE batch.daily_sales (LIKE ecommerce.daily_sales INCLUDING ALL);

-- the two projections, as register.sql registers them
CREATE TABLE t.projection (name text PRIMARY KEY, handler regproc, batch_handler regproc,
                           reset regproc, types text[]);
INSERT INTO t.projection VALUES
    ('order_summary', 'ecommerce.order_summary_apply', 'ecommerce.order_summary_apply_batch',
     'ecommerce.order_summary_reset',
     '{OrderCreated,OrderItemAdded,OrderItemRemoved,OrderShipped,OrderCompleted,OrderCancelled}'),
    ('daily_sales', 'ecommerce.daily_sales_apply', 'ecommerce.daily_sales_apply_batch',
     'ecommerce.daily_sales_reset', '{OrderCompleted,OrderRefunded}');

-- the histories, each in applying order
CREATE TABLE t.history (history text, pos bigint, e projections.events, PRIMARY KEY (history, pos));

-- 1. appended: generate_history(), read back in the order the worker uses
SELECT ecommerce.generate_history(5000, 0.42) AS appended \gset
INSERT INTO t.history
SELECT 'appended', row_number() OVER (ORDER BY e.ordering_key, e.global_position), e
FROM projections.events e;

-- events that are not appended: rows of projections.events built from their
-- columns (the others, such as the ordering key, stay NULL)
CREATE FUNCTION t.event(pos bigint, stream_id text, event_type text, data jsonb,
                        recorded_at timestamptz) RETURNS projections.events
LANGUAGE sql AS $$
    SELECT jsonb_populate_record(NULL::projections.events,
        jsonb_build_object('global_position', pos, 'stream_id', stream_id,
                           'stream_version', 1, 'event_type', event_type, 'data', data,
                           'metadata', '{}'::jsonb, 'recorded_at', recorded_at))
$$;

-- 2. staged: another seed, not appended, recorded_at shuffled
SELECT ecommerce.stage_history(4000, -0.7) AS staged \gset
INSERT INTO t.history
SELECT 'staged', h.seq,
       t.event(h.seq, h.stream_id, h.event_type, h.data,
               timestamptz '2025-01-01 00:00Z' + (h.seq * 7919 % 10007) * interval '1 second')
FROM pg_temp.gen_history h;
DROP TABLE pg_temp.gen_history;

-- 3. edge cases, by hand
INSERT INTO t.history
SELECT 'edge', pos,
       t.event(pos, 'order-' || (data->>'order_id'), type, data,
               timestamptz '2024-06-01 00:00Z' + (pos * 37 % 23) * interval '1 minute')
FROM (VALUES
    -- e1's first two events come before its OrderCreated: they change nothing
    (1, 'OrderItemAdded', '{"order_id": "e1", "product_id": "p", "price": 5, "quantity": 1}'::jsonb),
    (2, 'OrderShipped', '{"order_id": "e1", "shipped_at": "2024-02-29T10:00:00Z"}'),
    (3, 'OrderCreated', '{"order_id": "e1", "customer_id": "c1", "created_at": "2024-03-01T08:00:00Z"}'),
    (4, 'OrderCreated', '{"order_id": "e3", "customer_id": "c2", "created_at": "2024-03-01T09:00:00Z"}'),
    (5, 'OrderItemAdded', '{"order_id": "e1", "product_id": "p", "price": 12.5, "quantity": 2}'),
    (6, 'OrderItemAdded', '{"order_id": "e3", "product_id": "q", "price": 7.25, "quantity": 1}'),
    (7, 'OrderItemAdded', '{"order_id": "e1", "product_id": "r", "price": 3.333, "quantity": 3}'),
    (8, 'OrderItemRemoved', '{"order_id": "e1", "product_id": "p", "price": 12.5, "quantity": 2}'),
    (9, 'OrderShipped', '{"order_id": "e1", "shipped_at": "2024-03-01T12:00:00Z"}'),
    -- e2 never exists
    (10, 'OrderItemAdded', '{"order_id": "e2", "product_id": "p", "price": 1, "quantity": 1}'),
    (11, 'OrderShipped', '{"order_id": "e1", "shipped_at": "2024-03-01T13:00:00Z"}'),
    (12, 'OrderCancelled', '{"order_id": "e3", "cancelled_at": "2024-03-01T13:30:00Z", "reason": "changed mind"}'),
    (13, 'OrderCancelled', '{"order_id": "e1", "cancelled_at": "2024-03-01T14:00:00Z", "reason": "late"}'),
    (14, 'OrderCreated', '{"order_id": "e4", "customer_id": "c1", "created_at": "2024-03-01T20:00:00Z"}'),
    (15, 'OrderShipped', '{"order_id": "e1", "shipped_at": "2024-03-01T15:00:00Z"}'),
    -- 2024-03-01 in UTC, 2024-03-02 in the session's time zone
    (16, 'OrderCompleted', '{"order_id": "e1", "customer_id": "c1", "total_amount": 9.999,
                             "item_count": 1, "completed_at": "2024-03-01T23:30:00Z"}'),
    (17, 'OrderCompleted', '{"order_id": "e2", "customer_id": "c3", "total_amount": 1,
                             "item_count": 1, "completed_at": "2024-03-02T05:00:00+14:00"}'),
    (18, 'OrderCancelled', '{"order_id": "e1", "cancelled_at": "2024-03-02T09:00:00Z"}'),
    (19, 'OrderRefunded', '{"order_id": "e1", "customer_id": "c1", "refund_amount": 9.999,
                            "original_completed_at": "2024-03-01T23:30:00Z"}'),
    -- a refund of a day without sales in this history
    (20, 'OrderRefunded', '{"order_id": "e5", "customer_id": "c3", "refund_amount": 10,
                            "original_completed_at": "2023-12-31T23:59:59Z"}'),
    (21, 'OrderItemAdded', '{"order_id": "e4", "product_id": "q", "price": 2.50, "quantity": 2}'),
    (22, 'OrderCompleted', '{"order_id": "e4", "customer_id": "c1", "total_amount": 5.00,
                             "item_count": 1, "completed_at": "2024-03-02T00:00:00Z"}'),
    -- a status event without its time sets the time to NULL
    (23, 'OrderCreated', '{"order_id": "e6", "customer_id": "c2", "created_at": "2024-03-03T08:00:00Z"}'),
    (24, 'OrderShipped', '{"order_id": "e6", "shipped_at": "2024-03-03T10:00:00Z"}'),
    (25, 'OrderShipped', '{"order_id": "e6"}')
) AS v(pos, type, data);

-- each projection's events of each history, numbered k = 1, 2, ... in
-- applying order: what the extension passes to the handlers
CREATE TABLE t.seq (history text, projection text, k bigint, order_id text, e projections.events,
                    PRIMARY KEY (history, projection, k));
INSERT INTO t.seq
SELECT h.history, p.name, row_number() OVER (PARTITION BY h.history, p.name ORDER BY h.pos),
       (h.e).data->>'order_id', h.e
FROM t.history h JOIN t.projection p ON (h.e).event_type = ANY (p.types);
CREATE INDEX ON t.seq (history, projection, order_id);

-- Ways of cutting a projection's events into consecutive pieces: piece
-- numbers for k = 1 .. n.
--   size N     pieces of N events
--   mid-order  a piece starts at the second event of every order: each
--              piece but the first starts in the middle of an order, whose
--              OrderCreated (or OrderCompleted) is in an earlier piece
--   uneven     pieces of pseudo-random sizes from 1 to a few dozen
CREATE FUNCTION t.pieces(hist text, proj text, split text)
RETURNS TABLE (k bigint, piece bigint)
LANGUAGE sql AS $$
    SELECT s.k,
           CASE WHEN split LIKE 'size %' THEN (s.k - 1) / substr(split, 6)::bigint
                ELSE sum(CASE WHEN split = 'mid-order' THEN (s.nth = 2)::integer
                              WHEN split = 'uneven' THEN (hashint8(s.k) % 9 = 0)::integer
                         END) OVER (ORDER BY s.k) END
    FROM (SELECT q.k, row_number() OVER (PARTITION BY q.order_id ORDER BY q.k) AS nth
          FROM t.seq q WHERE q.history = hist AND q.projection = proj) s
$$;

-- the per-event handler on each event, in order, into schema `target`
CREATE FUNCTION t.fold(hist text, proj text, target name) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    p t.projection;
    e projections.events;
    n bigint := 0;
    saved text := current_setting('search_path');
BEGIN
    SELECT * INTO p FROM t.projection WHERE name = proj;
    -- as the extension will run it: the scratch schema first
    PERFORM set_config('search_path', format('%I, pg_catalog, pg_temp', target), true);
    EXECUTE format('SELECT %s()', p.reset);
    FOR e IN SELECT (s.e).* FROM t.seq s WHERE s.history = hist AND s.projection = proj ORDER BY s.k
    LOOP
        EXECUTE format('SELECT %s($1)', p.handler) USING e;
        n := n + 1;
    END LOOP;
    PERFORM set_config('search_path', saved, true);
    RETURN n;
END
$$;

-- the batch handler on each piece, in order, into schema `target`; returns
-- the number of calls
CREATE FUNCTION t.fold_batch(hist text, proj text, split text, target name) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    p t.projection;
    events projections.events[];
    calls bigint := 0;
    saved text := current_setting('search_path');
BEGIN
    SELECT * INTO p FROM t.projection WHERE name = proj;
    PERFORM set_config('search_path', format('%I, pg_catalog, pg_temp', target), true);
    EXECUTE format('SELECT %s()', p.reset);
    FOR events IN
        SELECT array_agg(s.e ORDER BY s.k)
        FROM t.seq s JOIN t.pieces(hist, proj, split) c USING (k)
        WHERE s.history = hist AND s.projection = proj
        GROUP BY c.piece ORDER BY c.piece
    LOOP
        EXECUTE format('SELECT %s($1)', p.batch_handler) USING events;
        calls := calls + 1;
    END LOOP;
    PERFORM set_config('search_path', saved, true);
    RETURN calls;
END
$$;

-- every way of cutting, for one history and projection: the batch fold
-- equals the per-event fold
CREATE FUNCTION t.check(hist text, proj text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    split text;
    calls bigint;
BEGIN
    n := t.fold(hist, proj, 'oracle');
    RETURN NEXT cmp_ok(n, '>', 0::bigint, format('%s, %s: %s events folded one by one', hist, proj, n));
    FOREACH split IN ARRAY ARRAY['size 1', 'size 2', 'size 7', 'size 100', 'size 1000',
                                 'size ' || (n + 1), 'mid-order', 'uneven']
    LOOP
        calls := t.fold_batch(hist, proj, split, 'batch');
        RETURN NEXT bag_eq(format('SELECT x::text FROM batch.%I x', proj),
                           format('SELECT x::text FROM oracle.%I x', proj),
                           format('%s, %s: %s (%s calls) give the per-event fold''s rows',
                                  hist, proj,
                                  CASE WHEN split = 'size ' || (n + 1) THEN 'one batch of all'
                                       WHEN split LIKE 'size %' THEN 'batches of ' || substr(split, 6)
                                       WHEN split = 'mid-order' THEN 'batches starting mid-order'
                                       ELSE 'batches of uneven sizes' END,
                                  calls));
    END LOOP;
END
$$;

-- the handlers reach their tables through the search_path
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'ecommerce'::regnamespace
                  AND (p.proname ~ '_(apply|apply_batch|reset)$')
                  AND (p.proconfig IS NOT NULL OR p.prosrc ~ '\mecommerce\.')
                ORDER BY 1),
          '{}'::text[],
          'no handler or reset function names schema ecommerce or sets its own search_path');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'ecommerce'::regnamespace AND p.proname ~ '_apply_batch$'
                ORDER BY 1),
          ARRAY['ecommerce.daily_sales_apply_batch(projections.events[])',
                'ecommerce.order_summary_apply_batch(projections.events[])'],
          'the batch handlers take an array of events');

SELECT is(:appended::bigint, 5000::bigint, 'the appended history has 5000 events');
SELECT is(:staged::bigint, 4000::bigint, 'the staged history has 4000 events');
SELECT is((SELECT count(DISTINCT (e).event_type) FROM t.history WHERE history = 'appended'),
          14::bigint, 'the appended history has all 14 event types');

-- the cuts do what they say
SELECT cmp_ok((WITH c AS (SELECT * FROM t.pieces('appended', 'order_summary', 'mid-order')),
                    first AS (SELECT c.piece, min(c.k) AS k FROM c GROUP BY c.piece)
               SELECT count(*) FROM first f
               JOIN t.seq s ON s.history = 'appended' AND s.projection = 'order_summary' AND s.k = f.k
               WHERE EXISTS (SELECT FROM t.seq s2
                             WHERE s2.history = s.history AND s2.projection = s.projection
                               AND s2.order_id = s.order_id AND s2.k < s.k
                               AND (s2.e).event_type = 'OrderCreated')),
              '>', 500::bigint,
              'mid-order: hundreds of pieces start with a later event of an order created in an earlier piece');
SELECT cmp_ok((SELECT count(*) FROM (
                   SELECT s.order_id FROM t.seq s JOIN t.pieces('appended', 'order_summary', 'size 100') c
                       USING (k)
                   WHERE s.history = 'appended' AND s.projection = 'order_summary'
                   GROUP BY s.order_id HAVING count(DISTINCT c.piece) > 1) split),
              '>', 100::bigint,
              'size 100: the events of many orders are split across pieces');

SELECT * FROM t.check('appended', 'order_summary');
SELECT * FROM t.check('appended', 'daily_sales');
SELECT * FROM t.check('staged', 'order_summary');
SELECT * FROM t.check('staged', 'daily_sales');
SELECT * FROM t.check('edge', 'order_summary');
SELECT * FROM t.check('edge', 'daily_sales');

-- what the per-event handlers (and so the batch handlers) make of the edge cases
SELECT results_eq(
    $$SELECT order_id, customer_id, status, total_amount::text, item_count, created_at, shipped_at,
             completed_at, cancelled_at, cancellation_reason
      FROM oracle.order_summary ORDER BY order_id$$,
    $$VALUES ('e1', 'c1', 'cancelled', '9.999', 1, timestamptz '2024-03-01 08:00Z',
              timestamptz '2024-03-01 15:00Z', timestamptz '2024-03-01 23:30Z',
              timestamptz '2024-03-02 09:00Z', NULL::text),
             ('e3', 'c2', 'cancelled', '7.25', 1, '2024-03-01 09:00Z', NULL, NULL,
              '2024-03-01 13:30Z', 'changed mind'),
             ('e4', 'c1', 'completed', '5.00', 1, '2024-03-01 20:00Z', NULL, '2024-03-02 00:00Z',
              NULL, NULL),
             ('e6', 'c2', 'shipped', '0', 0, '2024-03-03 08:00Z', NULL, NULL, NULL, NULL)$$,
    'edge: events before OrderCreated and of unknown orders change nothing; the last status event and the last of each kind win, even with a NULL time; amounts keep their scale');
SELECT is((SELECT updated_at FROM oracle.order_summary WHERE order_id = 'e1'),
          (SELECT (e).recorded_at FROM t.history WHERE history = 'edge' AND pos = 18),
          'edge: updated_at is the recorded_at of the last event applied, not the latest');
SELECT results_eq(
    $$SELECT day, total_orders, total_revenue::text, total_items, total_refunds::text
      FROM oracle.daily_sales ORDER BY day$$,
    $$VALUES (date '2023-12-31', -1, '-10', 0, '10'),
             ('2024-03-01', 1, '1.000', 2, '9.999'),
             ('2024-03-02', 1, '5.00', 1, '0')$$,
    'edge: sales count on their UTC day, refunds on the day of the original sale');

-- the batch handlers refuse what the per-event handlers refuse, and pass
-- over what they pass over
SET search_path = batch, public, pg_catalog;
TRUNCATE batch.order_summary, batch.daily_sales;
SELECT ecommerce.order_summary_apply_batch(ARRAY[
    t.event(1, 'order-x', 'OrderCreated', '{"order_id": "x", "customer_id": "c"}', now())])
    AS created \gset
SELECT throws_ok($$SELECT ecommerce.order_summary_apply_batch(ARRAY[
                     t.event(2, 'order-x', 'OrderItemAdded', '{"order_id": "x", "price": 2, "quantity": 1}', now()),
                     t.event(3, 'order-x', 'OrderItemAdded', '{"order_id": "x", "quantity": 1}', now())])$$,
                 '23502', NULL, 'an item without a price: the batch fails as the per-event handler does');
SELECT throws_ok($$SELECT ecommerce.order_summary_apply(
                     t.event(2, 'order-x', 'OrderItemAdded', '{"order_id": "x", "quantity": 1}', now()))$$,
                 '23502', NULL, '... (the per-event handler)');
SELECT lives_ok($$SELECT ecommerce.order_summary_apply_batch(ARRAY[
                    t.event(3, 'order-y', 'OrderItemAdded', '{"order_id": "y", "quantity": 1}', now())])$$,
                'an item without a price for an order that does not exist: nothing happens');
SELECT throws_ok($$SELECT ecommerce.order_summary_apply_batch(ARRAY[
                     t.event(4, 'order-z', 'OrderCreated', '{"order_id": "z"}', now()),
                     t.event(5, 'order-z', 'OrderCreated', '{"order_id": "z"}', now())])$$,
                 '23505', NULL, 'an order created twice in one batch: the primary key refuses it');
SELECT throws_ok($$SELECT ecommerce.order_summary_apply_batch(ARRAY[
                     t.event(6, 'order-x', 'OrderCreated', '{"order_id": "x"}', now())])$$,
                 '23505', NULL, '... and an order created again in a later batch');
SELECT throws_ok($$SELECT ecommerce.daily_sales_apply_batch(ARRAY[
                     t.event(7, 'order-w', 'OrderCompleted',
                             '{"order_id": "w", "total_amount": 3, "item_count": 1, "completed_at": "2024-01-01T00:00:00Z"}', now()),
                     t.event(8, 'order-x', 'OrderCompleted',
                             '{"order_id": "x", "item_count": 1, "completed_at": "2024-01-01T00:00:00Z"}', now())])$$,
                 '23502', NULL, 'a completion without an amount: the daily_sales batch fails too');
SELECT lives_ok($$SELECT ecommerce.order_summary_apply_batch('{}'),
                         ecommerce.daily_sales_apply_batch('{}')$$,
                'an empty batch changes nothing');
SELECT results_eq($$SELECT order_id, status, total_amount FROM batch.order_summary$$,
                  $$VALUES ('x', 'pending', 0::numeric)$$,
                  'the refused batches left no trace');
RESET search_path;

SELECT is((SELECT count(*) FROM ecommerce.order_summary) + (SELECT count(*) FROM ecommerce.daily_sales),
          0::bigint, 'every fold wrote to its scratch schema: the ecommerce tables are empty');

SELECT * FROM finish();
