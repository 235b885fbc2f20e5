-- The event store: append, append_many, read_stream, plain INSERT, immutability.
-- each test file starts from an empty event store
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections;


-- append returns consecutive positions; versions count per stream
SELECT projections.append('order-1', 'OrderCreated', '{"order_id": 1}');
SELECT projections.append('order-1', 'OrderItemAdded', '{"order_id": 1, "price": 5}',
                          '{"user": "ann"}');
SELECT projections.append('order-2', 'OrderCreated', '{"order_id": 2}');
SELECT global_position, stream_id, stream_version, event_type, data, metadata
FROM projections.events ORDER BY global_position;

-- expected_version: 0 = new stream, N = the stream is at N
SELECT projections.append('order-3', 'OrderCreated', '{}', expected_version => 0);
SELECT projections.append('order-3', 'OrderShipped', '{}', expected_version => 1);
SELECT try($$SELECT projections.append('order-3', 'OrderShipped', '{}', expected_version => 1)$$);
SELECT try($$SELECT projections.append('order-3', 'OrderCreated', '{}', expected_version => 0)$$);
SELECT try($$SELECT projections.append('order-9', 'OrderShipped', '{}', expected_version => 4)$$);
-- the message names the stream, the expected and the actual version
SELECT projections.append('order-3', 'OrderShipped', '{}', expected_version => 7);

-- append_many: atomic, consecutive versions, positions in order
SELECT projections.append_many('order-4', '[
    {"type": "OrderCreated", "data": {"order_id": 4}},
    {"type": "OrderItemAdded", "data": {"order_id": 4, "price": 3}, "metadata": {"user": "bob"}},
    {"type": "OrderShipped", "data": {"order_id": 4}}
]', expected_version => 0);
SELECT stream_version, event_type, metadata FROM projections.read_stream('order-4');
SELECT stream_version, event_type FROM projections.read_stream('order-4', 3);
SELECT try($$SELECT projections.append_many('order-4', '[{"type": "X", "data": {}}]', expected_version => 0)$$);
-- one bad element: nothing appended
SELECT try($$SELECT projections.append_many('order-5', '[{"type": "A", "data": {}}, {"type": "B", "data": [1]}]')$$);
SELECT try($$SELECT projections.append_many('order-5', '[{"type": "A", "data": {}}, {"data": {}}]')$$);
SELECT try($$SELECT projections.append_many('order-5', '[{"type": "A", "data": {}, "metadata": 3}]')$$);
SELECT try($$SELECT projections.append_many('order-5', '[1]')$$);
SELECT try($$SELECT projections.append_many('order-5', '[]')$$);
SELECT try($$SELECT projections.append_many('order-5', '{"type": "A"}')$$);
SELECT try($$SELECT projections.append_many('order-5', NULL)$$);
SELECT count(*) AS order_5_events FROM projections.read_stream('order-5');

-- bad input to append: a clear error with SQLSTATE, and nothing written
SELECT count(*) AS before FROM projections.events \gset
SELECT try($$SELECT projections.append(NULL, 'T', '{}')$$);
SELECT try($$SELECT projections.append('', 'T', '{}')$$);
SELECT try($$SELECT projections.append('s', NULL, '{}')$$);
SELECT try($$SELECT projections.append('s', '', '{}')$$);
SELECT try($$SELECT projections.append('s', 'T', NULL)$$);
SELECT try($$SELECT projections.append('s', 'T', '[1, 2]')$$);
SELECT try($$SELECT projections.append('s', 'T', '"text"')$$);
SELECT try($$SELECT projections.append('s', 'T', '42')$$);
SELECT try($$SELECT projections.append('s', 'T', 'null')$$);
SELECT try($$SELECT projections.append('s', 'T', '{}', '[]')$$);
SELECT try($$SELECT projections.append('s', 'T', '{}', expected_version => -1)$$);
SELECT projections.append('s', 'T', '{}', expected_version => -1);
SELECT count(*) = :before AS nothing_written FROM projections.events;
-- NULL metadata is an empty object
SELECT projections.append('s', 'T', '{}', NULL) > 0 AS appended;
SELECT metadata FROM projections.read_stream('s');

-- a plain INSERT gets the same guarantees as append
INSERT INTO projections.events (stream_id, event_type, data) VALUES ('order-6', 'OrderCreated', '{}');
INSERT INTO projections.events (stream_id, event_type, data) VALUES ('order-6', 'OrderShipped', '{}');
-- stream_version in an INSERT is an expected version check
INSERT INTO projections.events (stream_id, stream_version, event_type, data) VALUES ('order-6', 3, 'OrderCompleted', '{}');
SELECT try($$INSERT INTO projections.events (stream_id, stream_version, event_type, data) VALUES ('order-6', 3, 'OrderCompleted', '{}')$$);
SELECT try($$INSERT INTO projections.events (stream_id, stream_version, event_type, data) VALUES ('order-6', 0, 'X', '{}')$$);
SELECT try($$INSERT INTO projections.events (stream_id, event_type, data) VALUES ('order-6', 'X', '"x"')$$);
SELECT try($$INSERT INTO projections.events (stream_id, event_type, data) VALUES (NULL, 'X', '{}')$$);
SELECT stream_version, event_type FROM projections.read_stream('order-6');
-- several rows in one statement: appended in order
INSERT INTO projections.events (stream_id, event_type, data)
VALUES ('order-7', 'A', '{}'), ('order-7', 'B', '{}'), ('order-8', 'A', '{}'), ('order-7', 'C', '{}');
SELECT stream_id, stream_version, event_type FROM projections.events
WHERE stream_id IN ('order-7', 'order-8') ORDER BY global_position;

-- keys: one transaction's events share a key; a stream's keys never decrease
SELECT count(DISTINCT ordering_key) AS keys_in_one_append_many FROM projections.read_stream('order-4');
SELECT bool_and(ok) AS stream_keys_ordered FROM (
    SELECT ordering_key >= lag(ordering_key, 1, 0::bigint)
               OVER (PARTITION BY stream_id ORDER BY stream_version) AS ok
    FROM projections.events) s;
-- every committed event of a finished transaction is below the safe key
SELECT count(*) FILTER (WHERE ordering_key >= projections._safe_key()) AS unsafe FROM projections.events;
SELECT projections.head() = max(global_position) AS head_is_last FROM projections.events;

-- a non-owner cannot choose positions or keys
CREATE ROLE regress_appender;
GRANT USAGE ON SCHEMA projections TO regress_appender;
GRANT INSERT, SELECT ON projections.events TO regress_appender;
GRANT EXECUTE ON FUNCTION projections.append(text, text, jsonb, jsonb, integer) TO regress_appender;
SET ROLE regress_appender;
SELECT projections.append('order-10', 'OrderCreated', '{}') > 0 AS appended;
INSERT INTO projections.events (stream_id, event_type, data) VALUES ('order-10', 'OrderShipped', '{}');
SELECT try($$INSERT INTO projections.events (global_position, stream_id, event_type, data) VALUES (1000, 'order-10', 'X', '{}')$$);
SELECT try($$INSERT INTO projections.events (ordering_key, stream_id, event_type, data) VALUES (1, 'order-10', 'X', '{}')$$);
-- and cannot read the catalog or call the rest of the API
SELECT try($$SELECT * FROM projections.projection$$);
SELECT try($$SELECT projections.head()$$);
RESET ROLE;

-- events are immutable, for everybody
SELECT try($$UPDATE projections.events SET data = '{}' WHERE global_position = 1$$);
SELECT try($$DELETE FROM projections.events WHERE global_position = 1$$);
SELECT try($$TRUNCATE projections.events$$);
SELECT try($$DELETE FROM projections.events WHERE false$$);
UPDATE projections.events SET data = '{}' WHERE global_position = 1;
-- except for the owner in documented maintenance
SET projections.maintenance = on;
UPDATE projections.events SET data = '{"erased": true}' WHERE global_position = 1;
RESET projections.maintenance;
SELECT data FROM projections.events WHERE global_position = 1;
SET ROLE regress_appender;
SELECT try($$SET projections.maintenance = on$$);
RESET ROLE;

-- appending (the stream's row), reading a stream and reading by key stay
-- index look-ups, whatever the size of the store
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT version, last_key FROM projections.streams
    WHERE stream_id = 'order-1';
EXPLAIN (COSTS OFF) SELECT stream_version, ordering_key FROM projections.events
    WHERE stream_id = 'order-1' AND stream_version >= 1 ORDER BY stream_version;
EXPLAIN (COSTS OFF) SELECT global_position FROM projections.events
    WHERE (ordering_key, global_position) > (1, 1) AND ordering_key < 100
    ORDER BY ordering_key, global_position LIMIT 10;
RESET enable_seqscan;

DROP OWNED BY regress_appender;
DROP ROLE regress_appender;
