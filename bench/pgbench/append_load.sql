-- 5. The load during the latency measurement: items added to 1000 orders
-- per client (created beforehand by bench.py).
\set i random(1, 1000)
SELECT projections.append(
    'order-load-' || :client_id::text || '-' || :i::text, 'OrderItemAdded',
    jsonb_build_object('order_id', 'load-' || :client_id::text || '-' || :i::text,
                       'product_id', 'p1', 'price', 19.99, 'quantity', 1));
