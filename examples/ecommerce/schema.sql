-- examples/ecommerce/schema.sql
--
-- The read-model tables of the e-commerce example: four read models built
-- from one event store (projections.events) by four projections.
--
--   order_summary      ecommerce.order_summary             one row per order
--   product_search     ecommerce.products                  full-text searchable catalogue
--   daily_sales        ecommerce.daily_sales               revenue per day
--   customer_activity  ecommerce.customers,                three tables kept
--                      ecommerce.customer_activity_summary  consistent by one
--                      ecommerce.customer_order_history     handler
--
-- Idempotent: run it again and nothing changes.  Load handlers.sql next,
-- then register.sql.

CREATE SCHEMA IF NOT EXISTS ecommerce;

------------------------------------------------------------------------------
-- Read model 1: order summary (projection order_summary)
------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS ecommerce.order_summary (
    order_id            text PRIMARY KEY,
    customer_id         text,
    status              text NOT NULL,          -- pending, shipped, completed, cancelled
    total_amount        numeric NOT NULL,       -- sum of price * quantity of the items
    item_count          integer NOT NULL,       -- items added minus items removed
    created_at          timestamptz,            -- from the OrderCreated payload
    updated_at          timestamptz,            -- recorded_at of the last event applied
    shipped_at          timestamptz,
    completed_at        timestamptz,
    cancelled_at        timestamptz,
    cancellation_reason text
) WITH (fillfactor = 80);
-- An order's row is updated by almost every event of the order.  Room left on
-- each page (fillfactor) and no index on a column the updates change (such as
-- status) keep those updates HOT: no new index entries, most of a handler's
-- cost otherwise.  customer_id is set once, so its index costs nothing later.
CREATE INDEX IF NOT EXISTS order_summary_customer_idx
    ON ecommerce.order_summary (customer_id);
COMMENT ON TABLE ecommerce.order_summary IS
'Read model of projection order_summary: the current state of every order.';

------------------------------------------------------------------------------
-- Read model 2: product search (projection product_search)
------------------------------------------------------------------------------

-- Generated columns need immutable expressions and array_to_string() is only
-- stable (because of arbitrary element types); for text[] it is immutable.
CREATE OR REPLACE FUNCTION ecommerce.tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(array_to_string(tags, ' '), '');
COMMENT ON FUNCTION ecommerce.tags_text(text[]) IS
'The tags of a product as one space-separated string (immutable, for the search column).';

CREATE TABLE IF NOT EXISTS ecommerce.products (
    product_id       text PRIMARY KEY,
    name             text NOT NULL,
    description      text,
    category         text,
    price            numeric,
    tags             text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz,
    updated_at       timestamptz,                -- last ProductCreated/ProductUpdated
    price_updated_at timestamptz,                -- last ProductPriceChanged
    -- what websearch_to_tsquery() is matched against: the name weighs most,
    -- then category and tags, then the description
    search           tsvector GENERATED ALWAYS AS (
                         setweight(to_tsvector('english', coalesce(name, '')), 'A') ||
                         setweight(to_tsvector('english', coalesce(category, '') || ' ' ||
                                                          ecommerce.tags_text(tags)), 'B') ||
                         setweight(to_tsvector('english', coalesce(description, '')), 'C')
                     ) STORED
);
CREATE INDEX IF NOT EXISTS products_search_idx
    ON ecommerce.products USING gin (search);
CREATE INDEX IF NOT EXISTS products_category_idx
    ON ecommerce.products (category);
COMMENT ON TABLE ecommerce.products IS
'Read model of projection product_search: the live catalogue, searchable with ecommerce.search_products().';

------------------------------------------------------------------------------
-- Read model 3: daily sales (projection daily_sales)
------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS ecommerce.daily_sales (
    day           date PRIMARY KEY,                 -- UTC day of the completion
    total_orders  integer NOT NULL DEFAULT 0,       -- completed minus refunded
    total_revenue numeric NOT NULL DEFAULT 0,       -- completed minus refunded amounts
    total_items   integer NOT NULL DEFAULT 0,
    total_refunds numeric NOT NULL DEFAULT 0
);
COMMENT ON TABLE ecommerce.daily_sales IS
'Read model of projection daily_sales: orders, revenue, items and refunds per UTC day of completion.';

------------------------------------------------------------------------------
-- Read model 4: customer activity, three tables (projection customer_activity)
------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS ecommerce.customers (
    customer_id text PRIMARY KEY,
    email       text,
    name        text,
    tier        text NOT NULL DEFAULT 'bronze',
    created_at  timestamptz,
    updated_at  timestamptz                     -- creation or last tier change
);
COMMENT ON TABLE ecommerce.customers IS
'Read model of projection customer_activity: customers and their loyalty tier.';

CREATE TABLE IF NOT EXISTS ecommerce.customer_activity_summary (
    customer_id    text PRIMARY KEY,
    total_orders   integer NOT NULL DEFAULT 0,
    total_spent    numeric NOT NULL DEFAULT 0,
    total_reviews  integer NOT NULL DEFAULT 0,
    last_order_at  timestamptz,
    last_review_at timestamptz
);
COMMENT ON TABLE ecommerce.customer_activity_summary IS
'Read model of projection customer_activity: what each customer has done.';

CREATE TABLE IF NOT EXISTS ecommerce.customer_order_history (
    customer_id  text NOT NULL,
    order_id     text NOT NULL,
    amount       numeric NOT NULL,
    completed_at timestamptz,
    PRIMARY KEY (customer_id, order_id)
);
COMMENT ON TABLE ecommerce.customer_order_history IS
'Read model of projection customer_activity: the completed orders of each customer.';
