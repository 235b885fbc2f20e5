-- examples/ecommerce/generate.sql
--
-- A deterministic generator of e-commerce histories: customers, a product
-- catalogue and orders over the year 2024, all fourteen event types of the
-- example, in causal order.
--
--   SELECT ecommerce.generate_history(10000);          -- one transaction
--   CALL ecommerce.load_history(1000000);              -- commits every 5000 events
--
-- Both append the same events in the same order for the same (events, seed):
-- exactly `events` events (the start of a slightly longer simulated history).
-- load_history() commits as it goes, so the projections worker applies the
-- history while it is being loaded, and it can append any number of events:
-- generate_history() appends everything in one transaction, and a transaction
-- can append to only as many distinct streams as the lock table holds (each
-- stream being appended to stays locked until commit), which with the default
-- max_locks_per_transaction = 64 is about 12,000 streams, or some 50,000
-- events of this generator.
--
-- The history is built set-based in temporary tables, then appended with one
-- INSERT INTO projections.events ... ORDER BY (a plain INSERT gets versions,
-- ordering keys and positions exactly as projections.append() does).
--
-- What happens in the simulated year (times t in seconds since
-- 2024-01-01 00:00 UTC; every event has a time and the history is appended in
-- time order, so causes come before effects):
--   * customers sign up over the first 60% of the year, one per time slot;
--     some move up tiers (silver, gold, platinum) later on;
--   * products are created over the first 40% of the year, one per slot; they
--     are renamed and re-priced now and then; most products whose number is
--     a multiple of 10 are discontinued (ProductDeleted) later in the year;
--   * an order is placed at a random time by a customer who signed up before
--     (a customer whose slot has passed); it gets 1 to 4 items of products
--     that exist and are not discontinued at that time, at their current
--     price; one item of some orders is removed again; then the order is
--     cancelled, or left pending, or shipped; most shipped orders complete,
--     and a few completed orders are refunded in full;
--   * customers who have signed up review products that are on sale.
-- Payload timestamps are ISO 8601 strings in UTC with milliseconds, like
-- "2024-03-05T14:07:31.250Z".  Ids are decimal strings; streams are
-- order-<id>, product-<id> and customer-<id>.

CREATE SCHEMA IF NOT EXISTS ecommerce;

-- the ISO 8601 text of a simulated time (seconds since 2024-01-01 00:00 UTC)
CREATE OR REPLACE FUNCTION ecommerce.gen_ts(t double precision) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN to_char(timestamp '2024-01-01 00:00:00' + t * interval '1 second',
               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

-- a random element of a text array (uses random(), so follows setseed())
CREATE OR REPLACE FUNCTION ecommerce.gen_pick(choices text[]) RETURNS text
LANGUAGE sql VOLATILE
RETURN choices[1 + floor(random() * cardinality(choices))::integer];

------------------------------------------------------------------------------
-- Staging: builds pg_temp.gen_history(seq, stream_id, event_type, data)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION ecommerce.stage_history(events bigint, seed double precision DEFAULT 0.42)
RETURNS bigint
LANGUAGE plpgsql
SET work_mem = '256MB'
AS $$
DECLARE
    year      constant double precision := 366 * 86400;    -- 2024 is a leap year
    day       constant double precision := 86400;
    -- how the events divide between the kinds of streams (measured shares of
    -- the generator below: an order makes about 5.2 events, a customer 1.35
    -- plus reviews, a product about 3)
    per_order    constant double precision := 5.16;
    per_customer constant double precision := 1.35;
    per_product  constant double precision := 3.03;
    margin    double precision := 1.08;      -- simulate a little more, keep the start
    n_orders    bigint;
    n_customers bigint;
    n_products  bigint;
    n_reviews   bigint;
    slot_c    double precision;              -- a customer signs up in each slot
    slot_p    double precision;              -- a product is created in each slot
    staged    bigint;
    tables    constant text[] := ARRAY['gen_customer', 'gen_tier', 'gen_product',
        'gen_product_update', 'gen_price', 'gen_order', 'gen_item', 'gen_review',
        'gen_line', 'gen_opinion', 'gen_life', 'gen_event'];
    tbl       text;
BEGIN
    IF events IS NULL OR events < 1 THEN
        RAISE EXCEPTION 'events must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF seed IS NULL OR seed < -1 OR seed > 1 THEN
        RAISE EXCEPTION 'seed must be between -1 and 1, as for setseed()'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    LOOP
        PERFORM setseed(seed);
        n_orders    := greatest(1, ceil(events * margin * 0.78 / per_order));
        n_customers := greatest(1, ceil(events * margin * 0.08 / per_customer));
        n_reviews   := greatest(1, ceil(events * margin * 0.08));
        n_products  := greatest(1, ceil(events * margin * 0.06 / per_product));
        slot_c := 0.6 * year / n_customers;
        slot_p := 0.4 * year / n_products;

        -- leftovers of an earlier call in this session
        FOREACH tbl IN ARRAY tables || 'gen_history'::text LOOP
            IF to_regclass('pg_temp.' || tbl) IS NOT NULL THEN
                EXECUTE format('DROP TABLE pg_temp.%I', tbl);
            END IF;
        END LOOP;

        -- Every random() below is drawn by a query that reads generate_series()
        -- or a temporary table written once in one go (nested-loop joins at
        -- most): rows come in a fixed order, so the same seed draws the same
        -- numbers for the same rows.  (A subquery with random() in its
        -- select list is never merged into the outer query, so its columns
        -- are drawn once per row.)

        -- customers: customer i signs up in the first half of slot i
        CREATE TEMP TABLE gen_customer AS
        SELECT i AS id,
               (i - 1) * slot_c + CASE WHEN i > 1 THEN random() * 0.5 * slot_c ELSE 0 END AS created,
               ecommerce.gen_pick('{Alice,Bob,Carmen,David,Elena,Farid,Grace,Hiro,Ines,Jonas,Kofi,Lena,Mateo,Nora,Omar,Priya,Quinn,Rosa,Sven,Yuki}') AS first_name,
               ecommerce.gen_pick('{Andersen,Baker,Costa,Dubois,Evans,Fischer,Garcia,Hughes,Ivanova,Jensen,Kim,Larsen,Moreau,Nakamura,Okafor,Patel,Rossi,Silva,Tanaka,Weber}') AS last_name,
               random() AS r_tier
        FROM generate_series(1, n_customers) AS i;

        -- tier changes: some customers move up once, twice or three times,
        -- a month or two apart
        CREATE TEMP TABLE gen_tier AS
        SELECT c.id AS customer, k,
               c.created + k * 30 * day + random() * 20 * day AS at,
               (ARRAY['silver', 'gold', 'platinum'])[k] AS tier
        FROM gen_customer c
        CROSS JOIN LATERAL generate_series(1, CASE WHEN c.r_tier < 0.02 THEN 3
                                                   WHEN c.r_tier < 0.08 THEN 2
                                                   WHEN c.r_tier < 0.25 THEN 1
                                                   ELSE 0 END) AS k;

        -- products: product i is created in the first half of slot i; most
        -- products numbered 10, 20, 30 ... are discontinued later in the year.
        -- kind (1..27) says what it is and in which category.
        CREATE TEMP TABLE gen_product AS
        SELECT s.*,
               (ARRAY['Kettle', 'Teapot', 'Knife Set', 'Cutting Board', 'Coffee Grinder', 'Mug',
                      'Backpack', 'Tent', 'Water Bottle', 'Hammock', 'Lantern',
                      'Lamp', 'Blanket', 'Pillow', 'Rug', 'Clock', 'Vase',
                      'Headphones', 'Speaker', 'Keyboard', 'Charger', 'Mouse',
                      'Jacket', 'Scarf', 'Sneakers', 'Hat', 'Gloves'])[s.kind] AS noun,
               (ARRAY['Kitchen', 'Kitchen', 'Kitchen', 'Kitchen', 'Kitchen', 'Kitchen',
                      'Outdoors', 'Outdoors', 'Outdoors', 'Outdoors', 'Outdoors',
                      'Home', 'Home', 'Home', 'Home', 'Home', 'Home',
                      'Electronics', 'Electronics', 'Electronics', 'Electronics', 'Electronics',
                      'Apparel', 'Apparel', 'Apparel', 'Apparel', 'Apparel'])[s.kind] AS category,
               CASE WHEN s.id % 10 = 0 AND s.r_del < 0.8
                    THEN s.created + 0.1 * year + s.r_del / 0.8 * (0.95 * year - s.created - 0.1 * year)
               END AS deleted
        FROM (
            SELECT i AS id,
                   (i - 1) * slot_p + CASE WHEN i > 1 THEN random() * 0.5 * slot_p ELSE 0 END AS created,
                   1 + floor(random() * 27)::integer AS kind,
                   ecommerce.gen_pick('{Classic,Compact,Deluxe,Eco,Ergonomic,Handmade,Lightweight,Modern,Portable,Premium,Rugged,Smart,Vintage,Wireless,Waterproof,Minimalist}') AS adjective,
                   ecommerce.gen_pick('{Bamboo,Cotton,Leather,Steel,Ceramic,Wool,Oak,Linen,Aluminium,Glass,Canvas,Copper}') AS material,
                   ecommerce.gen_pick('{sturdy,elegant,cosy,sleek,durable,colourful,handy,quiet}') AS quality,
                   ecommerce.gen_pick('{"perfect for everyday use","built for travel","made for the outdoors","designed for small spaces","a great gift","made to last for years"}') AS use,
                   ecommerce.gen_pick('{"Easy to clean.","Ships in recycled packaging.","Two-year warranty.","Available in several colours.","Ethically sourced materials.","Energy efficient."}') AS feature,
                   ecommerce.gen_pick('{gift,sale,new,bestseller,eco-friendly,limited,premium,family,travel,office}') AS tag1,
                   ecommerce.gen_pick('{gift,sale,new,bestseller,eco-friendly,limited,premium,family,travel,office}') AS tag2,
                   round((4 + random() * 296)::numeric, 2) AS price,
                   random() AS r_del,
                   random() AS r_upd,
                   random() AS r_price
            FROM generate_series(1, n_products) AS i
        ) s;

        -- renames: 0 to 2 per product, spread between creation and deletion
        CREATE TEMP TABLE gen_product_update AS
        SELECT p.id AS product, k,
               p.created + (coalesce(p.deleted, year) - p.created)
                           * (k - 1 + random()) / u.n AS at,
               ecommerce.gen_pick('{Classic,Compact,Deluxe,Eco,Ergonomic,Handmade,Lightweight,Modern,Portable,Premium,Rugged,Smart,Vintage,Wireless,Waterproof,Minimalist}') AS adjective,
               ecommerce.gen_pick('{sturdy,elegant,cosy,sleek,durable,colourful,handy,quiet}') AS quality,
               ecommerce.gen_pick('{gift,sale,new,bestseller,eco-friendly,limited,premium,family,travel,office}') AS tag
        FROM gen_product p
        CROSS JOIN LATERAL (SELECT CASE WHEN p.r_upd < 0.1 THEN 2 WHEN p.r_upd < 0.45 THEN 1 ELSE 0 END) AS u(n)
        CROSS JOIN LATERAL generate_series(1, u.n) AS k;

        -- prices: the initial one, then 0 to 3 changes between creation and deletion
        CREATE TEMP TABLE gen_price AS
        SELECT p.id AS product, 0 AS k, p.created AS at, p.price
        FROM gen_product p;
        INSERT INTO gen_price
        SELECT p.id, k,
               p.created + (coalesce(p.deleted, year) - p.created) * (k - 1 + random()) / c.n,
               greatest(1.00, round(p.price * (0.75 + random() * 0.5)::numeric, 2))
        FROM gen_product p
        CROSS JOIN LATERAL (SELECT floor(p.r_price * 4)::integer) AS c(n)
        CROSS JOIN LATERAL generate_series(1, c.n) AS k;
        CREATE INDEX ON gen_price (product, at);

        -- orders, with every random choice of their life drawn up front
        CREATE TEMP TABLE gen_order AS
        SELECT s.id,
               s.created,
               1 + floor(s.r_customer * greatest(1, least(n_customers, floor(s.created / slot_c))))::bigint AS customer,
               CASE WHEN s.r_items < 0.3 THEN 1 WHEN s.r_items < 0.6 THEN 2
                    WHEN s.r_items < 0.85 THEN 3 ELSE 4 END AS n_items,
               s.r_remove, s.r_outcome, s.r_ship, s.r_refund, s.g_remove, s.g1, s.g2, s.g3, s.reason
        FROM (
            SELECT i AS id,
                   0.01 * year + random() * 0.96 * year AS created,
                   random() AS r_customer, random() AS r_items, random() AS r_remove,
                   random() AS r_outcome, random() AS r_ship, random() AS r_refund,
                   random() AS g_remove, random() AS g1, random() AS g2, random() AS g3,
                   ecommerce.gen_pick('{"customer request","payment failed","out of stock","duplicate order","address problem"}') AS reason
            FROM generate_series(1, n_orders) AS i
        ) s;

        -- items: item k about k * 5 minutes after the order was placed
        CREATE TEMP TABLE gen_item AS
        SELECT o.id AS order_id, k,
               o.created + k * 300 + random() * 200 AS at,
               random() AS r_product,
               CASE WHEN random() < 0.7 THEN 1 ELSE 2 + floor(random() * 2)::integer END AS quantity
        FROM gen_order o
        CROSS JOIN LATERAL generate_series(1, o.n_items) AS k;

        -- reviews: a customer who has signed up, a product on sale
        CREATE TEMP TABLE gen_review AS
        SELECT s.id, s.at,
               1 + floor(s.r_customer * greatest(1, least(n_customers, floor(s.at / slot_c))))::bigint AS customer,
               s.r_product, s.rating
        FROM (
            SELECT i AS id,
                   0.02 * year + random() * 0.97 * year AS at,
                   random() AS r_customer, random() AS r_product,
                   (ARRAY[1, 2, 3, 3, 4, 4, 4, 5, 5, 5])[1 + floor(random() * 10)::integer] AS rating
            FROM generate_series(1, n_reviews) AS i
        ) s;

        ANALYZE gen_product, gen_price, gen_order, gen_item, gen_review;

        -- No more random() from here on.
        -- An item or a review at time t takes a product of a slot that has
        -- passed at t; if that product has been discontinued by then, it takes
        -- the one before, which never is (its number is not a multiple of 10).
        -- An item costs the product's price at that time.
        CREATE TEMP TABLE gen_line AS
        SELECT i.order_id, i.k, i.at, i.quantity, l.product,
               (SELECT pr.price FROM gen_price pr
                WHERE pr.product = l.product AND pr.at <= i.at
                ORDER BY pr.at DESC LIMIT 1) AS price
        FROM gen_item i
        JOIN gen_product p
          ON p.id = (1 + floor(i.r_product * greatest(1, least(n_products, floor(i.at / slot_p)))))::bigint
        CROSS JOIN LATERAL (SELECT CASE WHEN p.deleted <= i.at THEN p.id - 1 ELSE p.id END) AS l(product);

        CREATE TEMP TABLE gen_opinion AS
        SELECT r.id, r.at, r.customer, r.rating,
               CASE WHEN p.deleted <= r.at THEN p.id - 1 ELSE p.id END AS product
        FROM gen_review r
        JOIN gen_product p
          ON p.id = (1 + floor(r.r_product * greatest(1, least(n_products, floor(r.at / slot_p)))))::bigint;

        -- the life of each order after its items (tl: after every item and
        -- the removal): totals, times, outcome
        CREATE TEMP TABLE gen_life AS
        SELECT o.id, o.created, o.customer, o.reason,
               CASE WHEN x.removes THEN 1 END AS removed_k,
               CASE WHEN x.removes THEN o.created + o.n_items * 300 + 260 + o.g_remove * 580 END AS removed_at,
               t.added - CASE WHEN x.removes THEN t.first ELSE 0 END AS total,
               o.n_items - x.removes::integer AS item_count,
               CASE WHEN o.r_outcome < 0.07 THEN x.tl + 1800 + o.g1 * 3 * day END AS cancelled_at,
               s.shipped_at, c.completed_at,
               CASE WHEN o.r_refund < 0.06 THEN c.completed_at + day + o.g3 * 25 * day END AS refunded_at
        FROM gen_order o
        JOIN (SELECT i.order_id,
                     sum(i.price * i.quantity) AS added,
                     sum(i.price * i.quantity) FILTER (WHERE i.k = 1) AS first
              FROM gen_line i GROUP BY i.order_id) t ON t.order_id = o.id
        CROSS JOIN LATERAL (SELECT o.r_remove < 0.15 AND o.n_items >= 2,
                                   o.created + o.n_items * 300 + 900) AS x(removes, tl)
        CROSS JOIN LATERAL (SELECT CASE WHEN o.r_outcome >= 0.12
                                        THEN x.tl + 7200 + o.g1 * 2 * day END) AS s(shipped_at)
        CROSS JOIN LATERAL (SELECT CASE WHEN o.r_ship >= 0.08
                                        THEN s.shipped_at + day + o.g2 * 5 * day END) AS c(completed_at);

        -- every event, with its time and its place in its stream (sub) for ties
        CREATE TEMP TABLE gen_event AS
        SELECT c.created AS at, 'customer-' || c.id AS stream_id, 0 AS sub, c.id AS tie,
               'CustomerCreated' AS event_type,
               jsonb_build_object('customer_id', c.id::text,
                                  'email', lower(c.first_name || '.' || c.last_name || c.id || '@example.com'),
                                  'name', c.first_name || ' ' || c.last_name,
                                  'created_at', ecommerce.gen_ts(c.created)) AS data
        FROM gen_customer c
        UNION ALL
        SELECT t.at, 'customer-' || t.customer, t.k, 0, 'CustomerTierChanged',
               jsonb_build_object('customer_id', t.customer::text, 'new_tier', t.tier,
                                  'changed_at', ecommerce.gen_ts(t.at))
        FROM gen_tier t
        UNION ALL
        SELECT r.at, 'customer-' || r.customer, 5, r.id, 'ReviewSubmitted',
               jsonb_build_object('customer_id', r.customer::text, 'product_id', r.product::text,
                                  'rating', r.rating, 'submitted_at', ecommerce.gen_ts(r.at))
        FROM gen_opinion r
        UNION ALL
        SELECT p.created, 'product-' || p.id, 0, 0, 'ProductCreated',
               jsonb_build_object('product_id', p.id::text,
                                  'name', p.adjective || ' ' || p.material || ' ' || p.noun,
                                  'description', format('%s %s in %s, %s. %s', initcap(p.quality),
                                                        lower(p.noun), lower(p.material), p.use, p.feature),
                                  'category', p.category,
                                  'price', p.price,
                                  'tags', jsonb_build_array(lower(p.category), p.tag1)
                                          || CASE WHEN p.tag2 <> p.tag1 THEN jsonb_build_array(p.tag2)
                                                  ELSE '[]' END,
                                  'created_at', ecommerce.gen_ts(p.created))
        FROM gen_product p
        UNION ALL
        SELECT u.at, 'product-' || p.id, 1, u.k, 'ProductUpdated',
               jsonb_build_object('product_id', p.id::text,
                                  'name', u.adjective || ' ' || p.material || ' ' || p.noun,
                                  'description', format('%s %s in %s, %s. %s', initcap(u.quality),
                                                        lower(p.noun), lower(p.material), p.use, p.feature),
                                  'category', p.category,
                                  'tags', jsonb_build_array(lower(p.category), u.tag),
                                  'updated_at', ecommerce.gen_ts(u.at))
        FROM gen_product_update u JOIN gen_product p ON p.id = u.product
        UNION ALL
        SELECT pr.at, 'product-' || pr.product, 1, 10 + pr.k, 'ProductPriceChanged',
               jsonb_build_object('product_id', pr.product::text, 'new_price', pr.price,
                                  'changed_at', ecommerce.gen_ts(pr.at))
        FROM gen_price pr WHERE pr.k > 0
        UNION ALL
        SELECT p.deleted, 'product-' || p.id, 9, 0, 'ProductDeleted',
               jsonb_build_object('product_id', p.id::text, 'deleted_at', ecommerce.gen_ts(p.deleted))
        FROM gen_product p WHERE p.deleted IS NOT NULL
        UNION ALL
        SELECT o.created, 'order-' || o.id, 0, 0, 'OrderCreated',
               jsonb_build_object('order_id', o.id::text, 'customer_id', o.customer::text,
                                  'created_at', ecommerce.gen_ts(o.created))
        FROM gen_life o
        UNION ALL
        SELECT i.at, 'order-' || i.order_id, i.k, 0, 'OrderItemAdded',
               jsonb_build_object('order_id', i.order_id::text, 'product_id', i.product::text,
                                  'price', i.price, 'quantity', i.quantity)
        FROM gen_line i
        UNION ALL
        SELECT o.removed_at, 'order-' || o.id, 5, 0, 'OrderItemRemoved',
               jsonb_build_object('order_id', o.id::text, 'product_id', i.product::text,
                                  'price', i.price, 'quantity', i.quantity)
        FROM gen_life o JOIN gen_line i ON i.order_id = o.id AND i.k = o.removed_k
        UNION ALL
        SELECT o.cancelled_at, 'order-' || o.id, 6, 0, 'OrderCancelled',
               jsonb_build_object('order_id', o.id::text, 'cancelled_at', ecommerce.gen_ts(o.cancelled_at),
                                  'reason', o.reason)
        FROM gen_life o WHERE o.cancelled_at IS NOT NULL
        UNION ALL
        SELECT o.shipped_at, 'order-' || o.id, 7, 0, 'OrderShipped',
               jsonb_build_object('order_id', o.id::text, 'shipped_at', ecommerce.gen_ts(o.shipped_at))
        FROM gen_life o WHERE o.shipped_at IS NOT NULL
        UNION ALL
        SELECT o.completed_at, 'order-' || o.id, 8, 0, 'OrderCompleted',
               jsonb_build_object('order_id', o.id::text, 'customer_id', o.customer::text,
                                  'total_amount', o.total, 'item_count', o.item_count,
                                  'completed_at', ecommerce.gen_ts(o.completed_at))
        FROM gen_life o WHERE o.completed_at IS NOT NULL
        UNION ALL
        SELECT o.refunded_at, 'order-' || o.id, 9, 0, 'OrderRefunded',
               jsonb_build_object('order_id', o.id::text, 'customer_id', o.customer::text,
                                  'refund_amount', o.total,
                                  'original_completed_at', ecommerce.gen_ts(o.completed_at))
        FROM gen_life o WHERE o.refunded_at IS NOT NULL;

        SELECT count(*) INTO staged FROM gen_event;
        EXIT WHEN staged >= events;
        margin := margin * 1.25;         -- too few (tiny histories): simulate more
    END LOOP;

    -- the first `events` events in time order: a prefix of a causal history
    -- is causal
    CREATE TEMP TABLE gen_history AS
    SELECT row_number() OVER w AS seq, e.stream_id, e.event_type, e.data
    FROM gen_event e
    WINDOW w AS (ORDER BY e.at, e.stream_id, e.sub, e.tie)
    ORDER BY e.at, e.stream_id, e.sub, e.tie
    LIMIT events;
    CREATE UNIQUE INDEX ON gen_history (seq);

    FOREACH tbl IN ARRAY tables LOOP
        EXECUTE format('DROP TABLE pg_temp.%I', tbl);
    END LOOP;
    RETURN least(staged, events);
END
$$;
COMMENT ON FUNCTION ecommerce.stage_history(bigint, double precision) IS
'Builds the temporary table gen_history(seq, stream_id, event_type, data): the first `events` events of a simulated history, in order; deterministic for a seed in [-1, 1].';

------------------------------------------------------------------------------
-- Appending
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION ecommerce.generate_history(events bigint, seed double precision DEFAULT 0.42)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    appended bigint;
BEGIN
    PERFORM ecommerce.stage_history(events, seed);
    BEGIN
        INSERT INTO projections.events (stream_id, event_type, data)
        SELECT h.stream_id, h.event_type, h.data
        FROM pg_temp.gen_history h
        ORDER BY h.seq;
    EXCEPTION WHEN out_of_memory THEN
        -- "out of shared memory": the lock table is full of stream locks
        RAISE EXCEPTION '%', SQLERRM
            USING ERRCODE = 'out_of_memory',
                  DETAIL = format('generate_history(%s) appends in one transaction, which keeps every stream it appends to locked until it commits.', events),
                  HINT = format('Use CALL ecommerce.load_history(%s, %s), which commits every 5000 events, or raise max_locks_per_transaction.', events, seed);
    END;
    GET DIAGNOSTICS appended = ROW_COUNT;
    DROP TABLE pg_temp.gen_history;
    RETURN appended;
END
$$;
COMMENT ON FUNCTION ecommerce.generate_history(bigint, double precision) IS
'Appends a simulated e-commerce history of `events` events (all 14 types, causal order) in this transaction; deterministic for a seed in [-1, 1]. For more than some 50,000 events use CALL ecommerce.load_history().';

CREATE OR REPLACE PROCEDURE ecommerce.load_history(
    events bigint,
    seed double precision DEFAULT 0.42,
    batch_size integer DEFAULT 5000,
    INOUT appended bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    done  bigint := 0;
    n     bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    total := ecommerce.stage_history(events, seed);
    COMMIT;
    appended := 0;
    WHILE done < total LOOP
        INSERT INTO projections.events (stream_id, event_type, data)
        SELECT h.stream_id, h.event_type, h.data
        FROM pg_temp.gen_history h
        WHERE h.seq > done AND h.seq <= done + batch_size
        ORDER BY h.seq;
        GET DIAGNOSTICS n = ROW_COUNT;
        appended := appended + n;
        done := done + batch_size;
        COMMIT;
    END LOOP;
    DROP TABLE pg_temp.gen_history;
END
$$;
COMMENT ON PROCEDURE ecommerce.load_history(bigint, double precision, integer, bigint) IS
'Appends the same history as generate_history(events, seed), committing every batch_size events: any size, and the worker applies it while it loads. CALL it outside a transaction block.';
