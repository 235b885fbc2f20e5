-- examples/ecommerce/handlers.sql
--
-- Handlers and reset functions of the four e-commerce projections, and the
-- product search function.  Needs schema.sql; safe to load again
-- (CREATE OR REPLACE).
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
