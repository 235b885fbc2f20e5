-- 4. The ceiling: order_summary built from the events in one set-based
-- statement (a SELECT whose rows are order_summary's, in its column order).
-- It reproduces what ecommerce.order_summary_apply does, event by event, in
-- (ordering_key, global_position) order; bench.py checks that the result
-- equals the worker's table.  Keep in step with examples/ecommerce/handlers.sql.
WITH ev AS (
    SELECT e.data->>'order_id' AS order_id, e.event_type, e.data, e.recorded_at,
           e.ordering_key AS k, e.global_position AS p
    FROM projections.events e
    WHERE e.event_type IN ('OrderCreated', 'OrderItemAdded', 'OrderItemRemoved',
                           'OrderShipped', 'OrderCompleted', 'OrderCancelled')
      AND e.ordering_key < (SELECT projections._safe_key())
),
created AS (
    SELECT DISTINCT ON (order_id) order_id, data, k, p
    FROM ev WHERE event_type = 'OrderCreated'
    ORDER BY order_id, k, p
),
later AS (   -- the events an existing row sees, numbered by OrderCompleted seen
    SELECT ev.*,
           count(*) FILTER (WHERE ev.event_type = 'OrderCompleted')
               OVER (PARTITION BY ev.order_id ORDER BY ev.k, ev.p) AS g
    FROM ev JOIN created c ON c.order_id = ev.order_id
    WHERE (ev.k, ev.p) > (c.k, c.p)
),
per_order AS (
    SELECT l.order_id,
           max(l.g) AS last_g,
           (array_agg(l.event_type ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type IN ('OrderShipped', 'OrderCompleted', 'OrderCancelled')))[1] AS last_status,
           (array_agg(l.recorded_at ORDER BY l.k DESC, l.p DESC))[1] AS updated_at,
           (array_agg(l.data->>'shipped_at' ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type = 'OrderShipped'))[1] AS shipped_at,
           (array_agg(l.data ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type = 'OrderCompleted'))[1] AS completed,
           (array_agg(l.data ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type = 'OrderCancelled'))[1] AS cancelled
    FROM later l
    GROUP BY l.order_id
),
deltas AS (  -- item changes after the last OrderCompleted
    SELECT l.order_id,
           sum(CASE l.event_type WHEN 'OrderItemAdded' THEN 1 ELSE -1 END
               * (l.data->>'price')::numeric * (l.data->>'quantity')::int) AS amount,
           sum(CASE l.event_type WHEN 'OrderItemAdded' THEN 1 ELSE -1 END
               * (l.data->>'quantity')::int) AS items
    FROM later l JOIN per_order o ON o.order_id = l.order_id AND l.g = o.last_g
    WHERE l.event_type IN ('OrderItemAdded', 'OrderItemRemoved')
    GROUP BY l.order_id
)
SELECT c.order_id,
       c.data->>'customer_id',
       CASE o.last_status
           WHEN 'OrderShipped' THEN 'shipped'
           WHEN 'OrderCompleted' THEN 'completed'
           WHEN 'OrderCancelled' THEN 'cancelled'
           ELSE 'created' END,
       coalesce((o.completed->>'total_amount')::numeric, 0) + coalesce(d.amount, 0),
       coalesce((o.completed->>'item_count')::int, 0) + coalesce(d.items, 0)::int,
       (c.data->>'created_at')::timestamptz,
       coalesce(o.updated_at, (c.data->>'created_at')::timestamptz),
       o.shipped_at::timestamptz,
       (o.completed->>'completed_at')::timestamptz,
       (o.cancelled->>'cancelled_at')::timestamptz,
       o.cancelled->>'reason'
FROM created c
LEFT JOIN per_order o ON o.order_id = c.order_id
LEFT JOIN deltas d ON d.order_id = c.order_id;
