-- 4. The ceiling: ecommerce.order_summary built from the events by one
-- set-based statement (a SELECT whose rows are order_summary's, in its column
-- order), reading every order event once.  It gives what
-- ecommerce.order_summary_apply (examples/ecommerce/handlers.sql) gives when
-- applied event by event in (ordering_key, global_position) order, and
-- bench.py checks that: keep the two in step.
--   OrderCreated      inserts the order: pending, 0, 0, created_at, updated_at
--   OrderItemAdded    total_amount + price * quantity, item_count + 1
--   OrderItemRemoved  total_amount - price * quantity, item_count - 1
--   OrderShipped / OrderCompleted / OrderCancelled  set status and their columns
--   every event       updated_at = its recorded_at
-- Events of an order before its OrderCreated change nothing (no row yet).
WITH ev AS (
    SELECT e.data->>'order_id' AS order_id, e.event_type, e.data, e.recorded_at,
           e.ordering_key AS k, e.global_position AS p
    FROM projections.events e
    WHERE e.event_type IN ('OrderCreated', 'OrderItemAdded', 'OrderItemRemoved',
                           'OrderShipped', 'OrderCompleted', 'OrderCancelled')
      AND e.ordering_key < (SELECT projections._safe_key())
),
created AS (
    SELECT DISTINCT ON (order_id) order_id, data, recorded_at, k, p
    FROM ev WHERE event_type = 'OrderCreated'
    ORDER BY order_id, k, p
),
later AS (
    SELECT l.order_id,
           sum(CASE l.event_type WHEN 'OrderItemAdded' THEN 1 WHEN 'OrderItemRemoved' THEN -1 END
               * (l.data->>'price')::numeric * (l.data->>'quantity')::numeric) AS amount,
           sum(CASE l.event_type WHEN 'OrderItemAdded' THEN 1 WHEN 'OrderItemRemoved' THEN -1 END)
               AS items,
           (array_agg(l.event_type ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type IN ('OrderShipped', 'OrderCompleted', 'OrderCancelled')))[1]
               AS last_status,
           (array_agg(l.recorded_at ORDER BY l.k DESC, l.p DESC))[1] AS updated_at,
           (array_agg(l.data->>'shipped_at' ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type = 'OrderShipped'))[1] AS shipped_at,
           (array_agg(l.data->>'completed_at' ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type = 'OrderCompleted'))[1] AS completed_at,
           (array_agg(l.data ORDER BY l.k DESC, l.p DESC)
               FILTER (WHERE l.event_type = 'OrderCancelled'))[1] AS cancelled
    FROM ev l JOIN created c ON c.order_id = l.order_id
    WHERE (l.k, l.p) > (c.k, c.p)
    GROUP BY l.order_id
)
SELECT c.order_id,
       c.data->>'customer_id',
       CASE l.last_status
           WHEN 'OrderShipped' THEN 'shipped'
           WHEN 'OrderCompleted' THEN 'completed'
           WHEN 'OrderCancelled' THEN 'cancelled'
           ELSE 'pending' END,
       0 + coalesce(l.amount, 0),
       (0 + coalesce(l.items, 0))::integer,
       (c.data->>'created_at')::timestamptz,
       coalesce(l.updated_at, c.recorded_at),
       l.shipped_at::timestamptz,
       l.completed_at::timestamptz,
       (l.cancelled->>'cancelled_at')::timestamptz,
       l.cancelled->>'reason'
FROM created c
LEFT JOIN later l ON l.order_id = c.order_id
