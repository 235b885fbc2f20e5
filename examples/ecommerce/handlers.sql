-- examples/ecommerce/handlers.sql
--
-- Handlers and reset functions of the four e-commerce projections, batch
-- handlers of two of them (at the end), and the product search function.
-- Needs schema.sql; safe to load again (CREATE OR REPLACE).
--
-- A handler takes one event, a row of projections.events, and returns void.
-- The extension calls it once per event of the projection's types, in an
-- order that respects every stream's version order, inside the transaction
-- that moves the projection's checkpoint (async) or inside the transaction
-- that appends the event (inline).  So a handler only has to apply one event:
-- no checkpoints, no deduplication, no transactions of its own.
--
-- The handlers are deterministic: every value they write comes from the event
-- (its payload or its recorded_at), never from now(), so a rebuild, or a fold
-- of the same handler over the same events, gives exactly the same rows.
-- Timestamps in payloads are ISO 8601 strings with a zone ("...Z").
--
-- Handlers and reset functions name their read-model tables unqualified
-- (order_summary, not ecommerce.order_summary) and set no search_path of their
-- own: they write to the tables of that name first on the search_path they
-- run with, which is the search_path captured when the projection was
-- registered (register.sql registers them under ecommerce, pg_catalog,
-- pg_temp).  That is what lets the extension redirect a handler: an online
-- rebuild builds a shadow copy of the tables in another schema and runs the
-- same handler with that schema first, and a test can fold a handler into
-- copies of the tables the same way.  What belongs to other schemas stays
-- qualified (projections.events).  To call a handler by hand, set the
-- search_path first:
--
--   SET search_path = ecommerce, pg_catalog, pg_temp;
--   SELECT ecommerce.order_summary_apply(e) FROM projections.events e ... ;
--
-- (Loading this file resolves no table name: PL/pgSQL bodies are checked
-- only for syntax, and the reset functions are TRUNCATEs, which an SQL
-- function resolves when it runs.)  search_products() is not a handler: it
-- is called by readers, whatever their search_path, so it names
-- ecommerce.products in full.

------------------------------------------------------------------------------
-- Read model 1: order summary
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION ecommerce.order_summary_apply(e projections.events)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := e.data;
BEGIN
    CASE e.event_type
    WHEN 'OrderCreated' THEN
        INSERT INTO order_summary
            (order_id, customer_id, status, total_amount, item_count, created_at, updated_at)
        VALUES (d->>'order_id', d->>'customer_id', 'pending', 0, 0,
                (d->>'created_at')::timestamptz, e.recorded_at);

    WHEN 'OrderItemAdded' THEN
        UPDATE order_summary
        SET total_amount = total_amount + (d->>'price')::numeric * (d->>'quantity')::numeric,
            item_count = item_count + 1,
            updated_at = e.recorded_at
        WHERE order_id = d->>'order_id';

    WHEN 'OrderItemRemoved' THEN
        UPDATE order_summary
        SET total_amount = total_amount - (d->>'price')::numeric * (d->>'quantity')::numeric,
            item_count = item_count - 1,
            updated_at = e.recorded_at
        WHERE order_id = d->>'order_id';

    WHEN 'OrderShipped' THEN
        UPDATE order_summary
        SET status = 'shipped',
            shipped_at = (d->>'shipped_at')::timestamptz,
            updated_at = e.recorded_at
        WHERE order_id = d->>'order_id';

    WHEN 'OrderCompleted' THEN
        UPDATE order_summary
        SET status = 'completed',
            completed_at = (d->>'completed_at')::timestamptz,
            updated_at = e.recorded_at
        WHERE order_id = d->>'order_id';

    WHEN 'OrderCancelled' THEN
        UPDATE order_summary
        SET status = 'cancelled',
            cancelled_at = (d->>'cancelled_at')::timestamptz,
            cancellation_reason = d->>'reason',
            updated_at = e.recorded_at
        WHERE order_id = d->>'order_id';

    ELSE
        NULL;   -- not an order event: nothing to do
    END CASE;
END
$$;
COMMENT ON FUNCTION ecommerce.order_summary_apply(projections.events) IS
'Handler of projection order_summary: applies one order event to order_summary (ecommerce.order_summary under the search_path of register.sql).';

CREATE OR REPLACE FUNCTION ecommerce.order_summary_reset() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE order_summary;
$$;
COMMENT ON FUNCTION ecommerce.order_summary_reset() IS
'Reset of projection order_summary: empties its read model before a rebuild.';

------------------------------------------------------------------------------
-- Read model 2: product search
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION ecommerce.product_search_apply(e projections.events)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := e.data;
BEGIN
    CASE e.event_type
    WHEN 'ProductCreated' THEN
        -- like indexing a document: a product created again replaces the old one
        INSERT INTO products AS p
            (product_id, name, description, category, price, tags,
             created_at, updated_at, price_updated_at)
        VALUES (d->>'product_id', d->>'name', d->>'description', d->>'category',
                (d->>'price')::numeric,
                ARRAY(SELECT jsonb_array_elements_text(coalesce(d->'tags', '[]'))),
                (d->>'created_at')::timestamptz, (d->>'created_at')::timestamptz, NULL)
        ON CONFLICT (product_id) DO UPDATE
        SET name = excluded.name, description = excluded.description,
            category = excluded.category, price = excluded.price, tags = excluded.tags,
            created_at = excluded.created_at, updated_at = excluded.updated_at,
            price_updated_at = NULL;

    WHEN 'ProductUpdated' THEN
        -- the search column is a generated column: it follows name,
        -- description, category and tags by itself
        UPDATE products
        SET name = d->>'name',
            description = d->>'description',
            category = d->>'category',
            tags = ARRAY(SELECT jsonb_array_elements_text(coalesce(d->'tags', '[]'))),
            updated_at = (d->>'updated_at')::timestamptz
        WHERE product_id = d->>'product_id';

    WHEN 'ProductPriceChanged' THEN
        UPDATE products
        SET price = (d->>'new_price')::numeric,
            price_updated_at = (d->>'changed_at')::timestamptz
        WHERE product_id = d->>'product_id';

    WHEN 'ProductDeleted' THEN
        DELETE FROM products WHERE product_id = d->>'product_id';

    ELSE
        NULL;
    END CASE;
END
$$;
COMMENT ON FUNCTION ecommerce.product_search_apply(projections.events) IS
'Handler of projection product_search: keeps products (ecommerce.products under the search_path of register.sql), and so its full-text index, current.';

CREATE OR REPLACE FUNCTION ecommerce.product_search_reset() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE products;
$$;
COMMENT ON FUNCTION ecommerce.product_search_reset() IS
'Reset of projection product_search: empties its read model before a rebuild.';

-- Full-text search over the catalogue.  query takes the syntax of web search
-- engines: words, "quoted phrases", OR, and -excluded words.  Best matches
-- first; equal ranks in product_id order, so results are repeatable.
CREATE OR REPLACE FUNCTION ecommerce.search_products(query text, max_results integer DEFAULT 10)
RETURNS TABLE (product_id text, name text, price numeric, rank real)
LANGUAGE sql STABLE AS $$
    SELECT p.product_id, p.name, p.price, ts_rank(p.search, q.q) AS rank
    FROM websearch_to_tsquery('english', query) AS q(q)
    JOIN ecommerce.products p ON p.search @@ q.q
    ORDER BY rank DESC, p.product_id
    LIMIT max_results
$$;
COMMENT ON FUNCTION ecommerce.search_products(text, integer) IS
'Full-text search of ecommerce.products (websearch syntax), best first: a match in the name ranks above one in tags or category, which ranks above one in the description.';

------------------------------------------------------------------------------
-- Read model 3: daily sales
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION ecommerce.daily_sales_apply(e projections.events)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := e.data;
BEGIN
    CASE e.event_type
    WHEN 'OrderCompleted' THEN
        -- the UTC day, whatever the TimeZone of the session applying the event
        INSERT INTO daily_sales AS s
            (day, total_orders, total_revenue, total_items, total_refunds)
        VALUES (((d->>'completed_at')::timestamptz AT TIME ZONE 'UTC')::date,
                1, (d->>'total_amount')::numeric, (d->>'item_count')::integer, 0)
        ON CONFLICT (day) DO UPDATE
        SET total_orders = s.total_orders + 1,
            total_revenue = s.total_revenue + excluded.total_revenue,
            total_items = s.total_items + excluded.total_items;

    WHEN 'OrderRefunded' THEN
        -- a refund takes the sale back out of the day it was counted in
        INSERT INTO daily_sales AS s
            (day, total_orders, total_revenue, total_items, total_refunds)
        VALUES (((d->>'original_completed_at')::timestamptz AT TIME ZONE 'UTC')::date,
                -1, -(d->>'refund_amount')::numeric, 0, (d->>'refund_amount')::numeric)
        ON CONFLICT (day) DO UPDATE
        SET total_orders = s.total_orders - 1,
            total_revenue = s.total_revenue + excluded.total_revenue,
            total_refunds = s.total_refunds + excluded.total_refunds;

    ELSE
        NULL;
    END CASE;
END
$$;
COMMENT ON FUNCTION ecommerce.daily_sales_apply(projections.events) IS
'Handler of projection daily_sales: counts completed orders into, and refunds out of, their day.';

CREATE OR REPLACE FUNCTION ecommerce.daily_sales_reset() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE daily_sales;
$$;
COMMENT ON FUNCTION ecommerce.daily_sales_reset() IS
'Reset of projection daily_sales: empties its read model before a rebuild.';

------------------------------------------------------------------------------
-- Read model 4: customer activity (three tables, one transaction per event)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION ecommerce.customer_activity_apply(e projections.events)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := e.data;
BEGIN
    -- The statements of one event all commit with the checkpoint that covers
    -- it, or not at all: the three tables never disagree.
    CASE e.event_type
    WHEN 'CustomerCreated' THEN
        INSERT INTO customers (customer_id, email, name, tier, created_at, updated_at)
        VALUES (d->>'customer_id', d->>'email', d->>'name', 'bronze',
                (d->>'created_at')::timestamptz, (d->>'created_at')::timestamptz);
        INSERT INTO customer_activity_summary
            (customer_id, total_orders, total_spent, total_reviews)
        VALUES (d->>'customer_id', 0, 0, 0);

    WHEN 'OrderCompleted' THEN
        UPDATE customer_activity_summary
        SET total_orders = total_orders + 1,
            total_spent = total_spent + (d->>'total_amount')::numeric,
            last_order_at = greatest(last_order_at, (d->>'completed_at')::timestamptz)
        WHERE customer_id = d->>'customer_id';
        INSERT INTO customer_order_history (customer_id, order_id, amount, completed_at)
        VALUES (d->>'customer_id', d->>'order_id', (d->>'total_amount')::numeric,
                (d->>'completed_at')::timestamptz);

    WHEN 'ReviewSubmitted' THEN
        UPDATE customer_activity_summary
        SET total_reviews = total_reviews + 1,
            last_review_at = greatest(last_review_at, (d->>'submitted_at')::timestamptz)
        WHERE customer_id = d->>'customer_id';

    WHEN 'CustomerTierChanged' THEN
        UPDATE customers
        SET tier = d->>'new_tier',
            updated_at = (d->>'changed_at')::timestamptz
        WHERE customer_id = d->>'customer_id';

    ELSE
        NULL;
    END CASE;
END
$$;
COMMENT ON FUNCTION ecommerce.customer_activity_apply(projections.events) IS
'Handler of projection customer_activity: keeps customers, customer_activity_summary and customer_order_history consistent.';

CREATE OR REPLACE FUNCTION ecommerce.customer_activity_reset() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE customers, customer_activity_summary, customer_order_history;
$$;
COMMENT ON FUNCTION ecommerce.customer_activity_reset() IS
'Reset of projection customer_activity: empties its three tables before a rebuild.';

------------------------------------------------------------------------------
-- Batch handlers: order_summary and daily_sales, set-based
------------------------------------------------------------------------------
--
-- A batch handler takes an array of events and returns void.  The extension
-- calls it once per batch with the batch's events of the projection's types,
-- in the order the per-event handler would see them.  Contract: calling it on
-- consecutive pieces of the event sequence, cut anywhere (between an order's
-- OrderCreated and its later events, or in the middle of them), leaves
-- exactly the tables the per-event handler leaves.  register.sql registers
-- these with -v handlers=batch.
--
-- Each is one statement, whatever the batch size: unnest the array WITH
-- ORDINALITY (n = applying order), reduce it to one row per order (per day
-- for daily_sales), and write each such row once.  For order_summary:
--   * an order's events count from its first OrderCreated in the batch on,
--     or all of them if it was created earlier (before it exists, the
--     per-event handler's UPDATEs find no row either);
--   * amounts and item counts are summed; for the other columns the last
--     event of a kind wins: window maxima give the position of the order's
--     last event, last status event, last OrderShipped, ..., and the
--     aggregate takes those events' values (one sort of the batch, no
--     sorting per order);
--   * orders created in the batch are INSERTed with their final values, the
--     others UPDATEd (an unknown order has no row to update).
-- There is no join between sets derived from the batch: after a few calls
-- PL/pgSQL keeps a generic plan, made for an array of some ten events, and a
-- join planned for ten can go quadratic on ten thousand.
--
-- What the per-event handler refuses fails the batch too: a missing amount
-- makes the sum NULL (count(x) = count(*) checks), which the NOT NULL column
-- refuses; an order created twice is inserted twice, which the primary key
-- refuses.  One difference: a malformed number or time in an event of an
-- order that has no row fails the batch (its fields are cast), where the
-- per-event handler's UPDATE passes over it.

CREATE OR REPLACE FUNCTION ecommerce.order_summary_apply_batch(events projections.events[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH ev AS (
        -- the batch's order events in applying order (n); created_n: where
        -- the order's first OrderCreated is in the batch, if it is
        SELECT e.data->>'order_id' AS order_id, e.event_type AS type, e.data AS d,
               e.recorded_at, e.ordinality AS n,
               min(e.ordinality) FILTER (WHERE e.event_type = 'OrderCreated')
                   OVER (PARTITION BY e.data->>'order_id') AS created_n
        FROM unnest(events) WITH ORDINALITY AS e
        WHERE e.event_type IN ('OrderCreated', 'OrderItemAdded', 'OrderItemRemoved',
                               'OrderShipped', 'OrderCompleted', 'OrderCancelled')
    ),
    applied AS (
        -- the events that find (or make) their order's row, each with its
        -- amount and the positions of the order's last event of each kind
        SELECT ev.*,
               CASE type
                   WHEN 'OrderItemAdded' THEN (d->>'price')::numeric * (d->>'quantity')::numeric
                   WHEN 'OrderItemRemoved' THEN -((d->>'price')::numeric * (d->>'quantity')::numeric)
                   ELSE 0 END AS amount,
               max(n) OVER o AS last_n,
               max(n) FILTER (WHERE type IN ('OrderShipped', 'OrderCompleted', 'OrderCancelled'))
                   OVER o AS status_n,
               max(n) FILTER (WHERE type = 'OrderShipped') OVER o AS shipped_n,
               max(n) FILTER (WHERE type = 'OrderCompleted') OVER o AS completed_n,
               max(n) FILTER (WHERE type = 'OrderCancelled') OVER o AS cancelled_n
        FROM ev
        WHERE n >= coalesce(created_n, 0)
        WINDOW o AS (PARTITION BY order_id)
    ),
    effect AS (
        -- one row per order: what its events in this batch add up to
        SELECT order_id,
               min(created_n) AS created_n,
               count(*) FILTER (WHERE type = 'OrderCreated') AS creates,
               min(d->>'customer_id') FILTER (WHERE n = created_n) AS customer_id,
               min((d->>'created_at')::timestamptz) FILTER (WHERE n = created_n) AS created_at,
               CASE WHEN count(amount) = count(*) THEN sum(amount) END AS amount,
               sum(CASE type WHEN 'OrderItemAdded' THEN 1 WHEN 'OrderItemRemoved' THEN -1 ELSE 0 END)
                   AS items,
               min(recorded_at) FILTER (WHERE n = last_n) AS updated_at,
               min(CASE type WHEN 'OrderShipped' THEN 'shipped'
                             WHEN 'OrderCompleted' THEN 'completed'
                             WHEN 'OrderCancelled' THEN 'cancelled' END)
                   FILTER (WHERE n = status_n) AS status,
               min(shipped_n) AS shipped_n,
               min((d->>'shipped_at')::timestamptz) FILTER (WHERE n = shipped_n) AS shipped_at,
               min(completed_n) AS completed_n,
               min((d->>'completed_at')::timestamptz) FILTER (WHERE n = completed_n) AS completed_at,
               min(cancelled_n) AS cancelled_n,
               min((d->>'cancelled_at')::timestamptz) FILTER (WHERE n = cancelled_n) AS cancelled_at,
               min(d->>'reason') FILTER (WHERE n = cancelled_n) AS reason
        FROM applied
        GROUP BY order_id
    ),
    created AS (
        -- orders created in this batch, with their final values; one row per
        -- OrderCreated, so that a second one fails on the primary key
        INSERT INTO order_summary
            (order_id, customer_id, status, total_amount, item_count, created_at, updated_at,
             shipped_at, completed_at, cancelled_at, cancellation_reason)
        SELECT f.order_id, f.customer_id, coalesce(f.status, 'pending'), f.amount, f.items,
               f.created_at, f.updated_at, f.shipped_at, f.completed_at, f.cancelled_at, f.reason
        FROM effect f CROSS JOIN generate_series(1, f.creates)
        WHERE f.created_n IS NOT NULL
    )
    -- orders created before this batch
    UPDATE order_summary o
    SET total_amount = o.total_amount + f.amount,
        item_count = o.item_count + f.items,
        status = coalesce(f.status, o.status),
        shipped_at = CASE WHEN f.shipped_n IS NULL THEN o.shipped_at ELSE f.shipped_at END,
        completed_at = CASE WHEN f.completed_n IS NULL THEN o.completed_at ELSE f.completed_at END,
        cancelled_at = CASE WHEN f.cancelled_n IS NULL THEN o.cancelled_at ELSE f.cancelled_at END,
        cancellation_reason = CASE WHEN f.cancelled_n IS NULL THEN o.cancellation_reason
                                   ELSE f.reason END,
        updated_at = f.updated_at
    FROM effect f
    WHERE o.order_id = f.order_id AND f.created_n IS NULL;
END
$$;
COMMENT ON FUNCTION ecommerce.order_summary_apply_batch(projections.events[]) IS
'Batch handler of projection order_summary: applies a batch of order events to order_summary in one statement, with the same result as order_summary_apply on each.';

CREATE OR REPLACE FUNCTION ecommerce.daily_sales_apply_batch(events projections.events[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO daily_sales AS s (day, total_orders, total_revenue, total_items, total_refunds)
    SELECT day, sum(orders),
           CASE WHEN count(revenue) = count(*) THEN sum(revenue) END,
           CASE WHEN count(items) = count(*) THEN sum(items) END,
           sum(refunds)
    FROM (
        -- each event's contribution to its UTC day, as in daily_sales_apply
        SELECT ((CASE e.event_type WHEN 'OrderCompleted' THEN e.data->>'completed_at'
                                   ELSE e.data->>'original_completed_at' END)::timestamptz
                    AT TIME ZONE 'UTC')::date AS day,
               CASE e.event_type WHEN 'OrderCompleted' THEN 1 ELSE -1 END AS orders,
               CASE e.event_type WHEN 'OrderCompleted' THEN (e.data->>'total_amount')::numeric
                                 ELSE -(e.data->>'refund_amount')::numeric END AS revenue,
               CASE e.event_type WHEN 'OrderCompleted' THEN (e.data->>'item_count')::integer
                                 ELSE 0 END AS items,
               CASE e.event_type WHEN 'OrderCompleted' THEN 0
                                 ELSE (e.data->>'refund_amount')::numeric END AS refunds
        FROM unnest(events) AS e
        WHERE e.event_type IN ('OrderCompleted', 'OrderRefunded')
    ) x
    GROUP BY day
    ON CONFLICT (day) DO UPDATE
    SET total_orders = s.total_orders + excluded.total_orders,
        total_revenue = s.total_revenue + excluded.total_revenue,
        total_items = s.total_items + excluded.total_items,
        total_refunds = s.total_refunds + excluded.total_refunds;
END
$$;
COMMENT ON FUNCTION ecommerce.daily_sales_apply_batch(projections.events[]) IS
'Batch handler of projection daily_sales: adds a batch of completions and refunds to their days in one statement, with the same result as daily_sales_apply on each.';
