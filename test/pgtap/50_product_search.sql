-- The product_search read model of the e-commerce example
-- (examples/ecommerce): full-text search over products finds words of the
-- name, tags and description, ranks name matches first, and follows
-- ProductUpdated, ProductPriceChanged and ProductDeleted.  The projection is
-- driven with projections.run(); wait() covers the events the preloaded
-- worker may have been applying at the same time.
SET client_min_messages = warning;
\ir ../../examples/ecommerce/schema.sql
\ir ../../examples/ecommerce/handlers.sql

SELECT plan(28);

SELECT has_function('ecommerce', 'search_products', ARRAY['text', 'integer'],
                    'ecommerce.search_products(text, integer) exists');
SELECT function_returns('ecommerce', 'search_products', ARRAY['text', 'integer'],
                        'setof record', '... and returns rows');

-- registered as examples/ecommerce/register.sql does: the handler names its
-- table unqualified and runs with the search_path of the registration (which
-- has no room for pgTAP's schema: the check comes after)
SET search_path = ecommerce, pg_catalog, pg_temp;
SELECT projections.register('product_search',
                            'ecommerce.product_search_apply(projections.events)',
                            ARRAY['ProductCreated', 'ProductUpdated', 'ProductPriceChanged', 'ProductDeleted'],
                            reset => 'ecommerce.product_search_reset()') AS registered \gset
RESET search_path;
SELECT is((SELECT count(*) FROM projections.status WHERE name = 'product_search'), 1::bigint,
          'the product_search projection registers');

-- the catalogue
SELECT projections.append('product-p1', 'ProductCreated', '{
    "product_id": "p1", "name": "Trail Running Shoes",
    "description": "Lightweight shoes with a grippy sole for muddy paths.",
    "category": "Footwear", "price": 89.90, "tags": ["running", "outdoor"],
    "created_at": "2024-02-01T09:00:00.000Z"}') AS pos \gset
SELECT projections.append('product-p2', 'ProductCreated', '{
    "product_id": "p2", "name": "Camping Lantern",
    "description": "Bright lantern for the campsite and for night walks on the trail.",
    "category": "Outdoors", "price": 24.50, "tags": ["camping"],
    "created_at": "2024-02-01T09:05:00.000Z"}') AS pos \gset
SELECT projections.append('product-p3', 'ProductCreated', '{
    "product_id": "p3", "name": "Ceramic Teapot",
    "description": "Holds six cups of green tea.",
    "category": "Kitchen", "price": 35, "tags": ["tea"],
    "created_at": "2024-02-01T09:10:00.000Z"}') AS pos \gset
SELECT projections.append('product-p4', 'ProductCreated', '{
    "product_id": "p4", "name": "Merino Wool Scarf",
    "description": "Soft and warm.",
    "category": "Apparel", "price": 42, "tags": ["winter"],
    "created_at": "2024-02-01T09:15:00.000Z"}') AS pos \gset
-- two products that match a query equally well
SELECT projections.append('product-p6', 'ProductCreated', '{
    "product_id": "p6", "name": "Canvas Tote Bag", "description": "Carries groceries.",
    "category": "Bags", "price": 12, "tags": [], "created_at": "2024-02-01T09:20:00.000Z"}') AS pos \gset
SELECT projections.append('product-p5', 'ProductCreated', '{
    "product_id": "p5", "name": "Canvas Tote Bag", "description": "Carries groceries.",
    "category": "Bags", "price": 12, "tags": [], "created_at": "2024-02-01T09:25:00.000Z"}') AS pos \gset

SELECT projections.run('product_search') AS applied \gset
SELECT projections.wait('product_search', :pos) AS caught_up \gset
SELECT is(:'caught_up'::boolean, true, 'run() brings product_search up to date');
SELECT is((SELECT count(*) FROM ecommerce.products), 6::bigint, 'every created product is in the read model');

-- words of the name, of the description, of the tags and category
SELECT results_eq($$SELECT product_id, name, price FROM ecommerce.search_products('teapot')$$,
                  $$VALUES ('p3', 'Ceramic Teapot', 35::numeric)$$,
                  'a word of the name finds the product, with its name and price');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('grippy sole')$$,
                  $$VALUES ('p1')$$,
                  'words found only in the description find the product');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('muddy path')$$,
                  $$VALUES ('p1')$$,
                  'search matches stems: "path" finds "paths"');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('kitchen')$$,
                  $$VALUES ('p3')$$,
                  'the category is searchable');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('winter')$$,
                  $$VALUES ('p4')$$,
                  'tags are searchable');
SELECT is_empty($$SELECT * FROM ecommerce.search_products('submarine')$$,
                'a word that no product has finds nothing');

-- ranking
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('trail')$$,
                  $$VALUES ('p1'), ('p2')$$,
                  'a name match ranks above a description-only match');
SELECT cmp_ok((SELECT rank FROM ecommerce.search_products('trail') WHERE product_id = 'p1'), '>',
              (SELECT rank FROM ecommerce.search_products('trail') WHERE product_id = 'p2'),
              '... by a higher rank');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('trail', 1)$$,
                  $$VALUES ('p1')$$,
                  'max_results limits the results to the best ones');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('tote bag')$$,
                  $$VALUES ('p5'), ('p6')$$,
                  'equal ranks come in product_id order');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('trail -lantern')$$,
                  $$VALUES ('p1')$$,
                  'web search syntax: -word excludes');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('"green tea"')$$,
                  $$VALUES ('p3')$$,
                  'web search syntax: "quoted phrases"');

-- ProductUpdated: the teapot becomes a coffee press
SELECT projections.append('product-p3', 'ProductUpdated', '{
    "product_id": "p3", "name": "Glass Coffee Press",
    "description": "Brews four cups of coffee.",
    "category": "Kitchen", "tags": ["coffee"],
    "updated_at": "2024-03-01T12:00:00.000Z"}') AS pos \gset
SELECT projections.run('product_search') AS applied \gset
SELECT projections.wait('product_search', :pos) AS caught_up \gset
SELECT is_empty($$SELECT * FROM ecommerce.search_products('teapot')$$,
                'after ProductUpdated, a word of the old name no longer matches');
SELECT is_empty($$SELECT * FROM ecommerce.search_products('green tea')$$,
                '... nor do words of the old description and tags');
SELECT results_eq($$SELECT product_id, name FROM ecommerce.search_products('coffee press')$$,
                  $$VALUES ('p3', 'Glass Coffee Press')$$,
                  '... and the new name matches');
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('brews')$$,
                  $$VALUES ('p3')$$,
                  '... and so does the new description');
SELECT results_eq($$SELECT price, updated_at FROM ecommerce.products WHERE product_id = 'p3'$$,
                  $$VALUES (35::numeric, '2024-03-01T12:00:00Z'::timestamptz)$$,
                  '... keeping its price, with updated_at from the event');

-- ProductPriceChanged
SELECT projections.append('product-p1', 'ProductPriceChanged', '{
    "product_id": "p1", "new_price": 79.00, "changed_at": "2024-03-02T08:00:00.000Z"}') AS pos \gset
SELECT projections.run('product_search') AS applied \gset
SELECT projections.wait('product_search', :pos) AS caught_up \gset
SELECT results_eq($$SELECT product_id, price FROM ecommerce.search_products('running shoes')$$,
                  $$VALUES ('p1', 79.00::numeric)$$,
                  'a price change shows up in the search results');
SELECT is((SELECT price_updated_at FROM ecommerce.products WHERE product_id = 'p1'),
          '2024-03-02T08:00:00Z'::timestamptz,
          '... with price_updated_at from the event');

-- ProductDeleted
SELECT results_eq($$SELECT product_id FROM ecommerce.search_products('scarf')$$,
                  $$VALUES ('p4')$$,
                  'the scarf is found before it is deleted');
SELECT projections.append('product-p4', 'ProductDeleted', '{
    "product_id": "p4", "deleted_at": "2024-03-03T00:00:00.000Z"}') AS pos \gset
SELECT projections.run('product_search') AS applied \gset
SELECT projections.wait('product_search', :pos) AS caught_up \gset
SELECT is_empty($$SELECT * FROM ecommerce.search_products('scarf')$$,
                'a deleted product is no longer found');
SELECT is((SELECT count(*) FROM ecommerce.products WHERE product_id = 'p4'), 0::bigint,
          '... and its row is gone');

-- the projection saw every event and nothing failed
SELECT results_eq($$SELECT events_applied, state, last_error FROM projections.status
                    WHERE name = 'product_search'$$,
                  $$VALUES (9::bigint, 'running'::text, NULL::text)$$,
                  'product_search applied all 9 events without error');

SELECT * FROM finish();
