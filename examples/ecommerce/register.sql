-- examples/ecommerce/register.sql
--
-- Registers the four projections of the e-commerce example.  Needs
-- schema.sql and handlers.sql.  psql only (it uses psql variables):
--
--   psql -v mode=inline -f examples/ecommerce/register.sql
--   psql -v handlers=batch -f examples/ecommerce/register.sql
--
-- mode is async (the default: the background worker applies events shortly
-- after they commit) or inline (events are applied inside the appending
-- transaction).  handlers is per-event (the default: each projection's
-- handler takes one event) or batch: order_summary and daily_sales are then
-- registered with their batch handlers (order_summary_apply_batch,
-- daily_sales_apply_batch: one call per batch of events, set-based), the
-- other two, which have none, with their per-event handlers.  A projection
-- that is already registered is left as it is, so this file can be run
-- again; use projections.set_mode() to switch modes.
--
-- A new projection starts from the first event: registering over an existing
-- history builds the read models from it.  Each is registered with the
-- read-model tables it writes (tables => ...), so that
-- projections.rebuild(name, online => true) and projections.verify(name)
-- can build it again beside the live tables.
--
-- The handlers name their tables unqualified (see handlers.sql), and the
-- extension runs a handler with the search_path of the session that
-- registered it: each projection is registered under
--
--   search_path = ecommerce, pg_catalog, pg_temp
--
-- (set only for the register() call, by register_once's SET clause: the
-- session's own search_path is left as it was).  To register one by hand, do
-- the same:
--
--   SET search_path = ecommerce, pg_catalog, pg_temp;
--   SELECT projections.register('daily_sales', 'ecommerce.daily_sales_apply(projections.events)',
--                               ARRAY['OrderCompleted', 'OrderRefunded'],
--                               reset => 'ecommerce.daily_sales_reset()',
--                               tables => ARRAY['ecommerce.daily_sales']::regclass[]);
--   RESET search_path;

\if :{?mode}
\else
\set mode async
\endif
\if :{?handlers}
\else
\set handlers per-event
\endif

-- registers one projection unless a projection of that name exists, with
-- its batch handler if handlers = batch and it has one; the handler will run
-- with the search_path of this function's SET clause
CREATE OR REPLACE FUNCTION pg_temp.register_once(
    name text, handler regprocedure, event_types text[], mode text, reset regprocedure,
    tables regclass[], batch_handler regprocedure, handlers text)
RETURNS text
LANGUAGE plpgsql
SET search_path = ecommerce, pg_catalog, pg_temp
AS $$
DECLARE
    kind text := '';
BEGIN
    IF handlers IS DISTINCT FROM 'per-event' AND handlers IS DISTINCT FROM 'batch' THEN
        RAISE EXCEPTION 'handlers must be per-event or batch, not "%"', handlers
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'psql -v handlers=batch -f register.sql, or leave handlers unset.';
    END IF;
    IF EXISTS (SELECT FROM projections.status s WHERE s.name = register_once.name) THEN
        RETURN format('%s: already registered', name);
    END IF;
    IF handlers = 'batch' THEN
        IF batch_handler IS NULL THEN
            kind := ', per-event: it has no batch handler';
        ELSE
            handler := batch_handler;
            kind := ', batch handler';
        END IF;
    END IF;
    PERFORM projections.register(name, handler, event_types, mode => mode, reset => reset,
                                 tables => tables);
    RETURN format('%s: registered (%s%s)', name, mode, kind);
END
$$;

SELECT pg_temp.register_once(
    'order_summary',
    'ecommerce.order_summary_apply(projections.events)',
    ARRAY['OrderCreated', 'OrderItemAdded', 'OrderItemRemoved',
          'OrderShipped', 'OrderCompleted', 'OrderCancelled'],
    :'mode',
    'ecommerce.order_summary_reset()',
    ARRAY['ecommerce.order_summary'],
    'ecommerce.order_summary_apply_batch(projections.events[])', :'handlers') AS projection
UNION ALL
SELECT pg_temp.register_once(
    'product_search',
    'ecommerce.product_search_apply(projections.events)',
    ARRAY['ProductCreated', 'ProductUpdated', 'ProductPriceChanged', 'ProductDeleted'],
    :'mode',
    'ecommerce.product_search_reset()',
    ARRAY['ecommerce.products'],
    NULL, :'handlers')
UNION ALL
SELECT pg_temp.register_once(
    'daily_sales',
    'ecommerce.daily_sales_apply(projections.events)',
    ARRAY['OrderCompleted', 'OrderRefunded'],
    :'mode',
    'ecommerce.daily_sales_reset()',
    ARRAY['ecommerce.daily_sales'],
    'ecommerce.daily_sales_apply_batch(projections.events[])', :'handlers')
UNION ALL
SELECT pg_temp.register_once(
    'customer_activity',
    'ecommerce.customer_activity_apply(projections.events)',
    ARRAY['CustomerCreated', 'OrderCompleted', 'ReviewSubmitted', 'CustomerTierChanged'],
    :'mode',
    'ecommerce.customer_activity_reset()',
    ARRAY['ecommerce.customers', 'ecommerce.customer_activity_summary',
          'ecommerce.customer_order_history'],
    NULL, :'handlers');
