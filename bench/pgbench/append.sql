-- 6. projections.append: streams of 5 events per client (OrderCreated,
-- 3 x OrderItemAdded, OrderShipped), the same rows as bare_insert.sql.
-- pgbench -D n=0 -D r=<round>: n counts this client's transactions.
\set n :n + 1
\set s (:n - 1) / 5
\set v (:n - 1) % 5 + 1
SELECT projections.append(
    'order-b' || :r::text || '-' || :client_id::text || '-' || :s::text,
    CASE :v::int WHEN 1 THEN 'OrderCreated' WHEN 5 THEN 'OrderShipped' ELSE 'OrderItemAdded' END,
    CASE :v::int
        WHEN 1 THEN jsonb_build_object('order_id', 'b' || :r::text || '-' || :client_id::text || '-' || :s::text,
                                       'customer_id', 'c' || :client_id::text, 'created_at', now())
        WHEN 5 THEN jsonb_build_object('order_id', 'b' || :r::text || '-' || :client_id::text || '-' || :s::text,
                                       'shipped_at', now())
        ELSE jsonb_build_object('order_id', 'b' || :r::text || '-' || :client_id::text || '-' || :s::text,
                                'product_id', 'p' || :v::text, 'price', 19.99, 'quantity', 2)
    END);
