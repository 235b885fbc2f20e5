-- 6. The baseline: a bare INSERT of the same rows as append.sql into
-- bench.plain_events (same columns, constraints and indexes as
-- projections.events, no triggers).  pgbench -D n=0 -D r=<round>.
\set n :n + 1
\set s (:n - 1) / 5
\set v (:n - 1) % 5 + 1
INSERT INTO bench.plain_events
    (stream_id, stream_version, event_type, data, metadata, recorded_at, ordering_key)
VALUES (
    'order-b' || :r::text || '-' || :client_id::text || '-' || :s::text,
    :v::int,
    CASE :v::int WHEN 1 THEN 'OrderCreated' WHEN 5 THEN 'OrderShipped' ELSE 'OrderItemAdded' END,
    CASE :v::int
        WHEN 1 THEN jsonb_build_object('order_id', 'b' || :r::text || '-' || :client_id::text || '-' || :s::text,
                                       'customer_id', 'c' || :client_id::text, 'created_at', now())
        WHEN 5 THEN jsonb_build_object('order_id', 'b' || :r::text || '-' || :client_id::text || '-' || :s::text,
                                       'shipped_at', now())
        ELSE jsonb_build_object('order_id', 'b' || :r::text || '-' || :client_id::text || '-' || :s::text,
                                'product_id', 'p' || :v::text, 'price', 19.99, 'quantity', 2)
    END,
    '{}', now(), pg_current_xact_id()::text::bigint);
