-- Event store behaviour: streams, versions, atomicity, ordering keys.
SET client_min_messages = warning;
SELECT plan(18);

SELECT is(projections.append('cart-1', 'CartOpened', '{"cart": 1}'), 1::bigint,
          'the first append gets position 1');
SELECT is(projections.append('cart-1', 'ItemAdded', '{"sku": "a"}'), 2::bigint,
          'the next append gets the next position');
SELECT results_eq(
    $$SELECT stream_version, event_type FROM projections.read_stream('cart-1')$$,
    $$VALUES (1, 'CartOpened'), (2, 'ItemAdded')$$,
    'read_stream returns the stream in version order');

SELECT throws_ok(
    $$SELECT projections.append('cart-1', 'ItemAdded', '{}', expected_version => 0)$$,
    '40001', 'wrong expected version for stream "cart-1"',
    'expected_version 0 on an existing stream is a serialization failure');
SELECT lives_ok(
    $$SELECT projections.append('cart-1', 'ItemAdded', '{"sku": "b"}', expected_version => 2)$$,
    'expected_version equal to the head appends');

-- append_many is all or nothing
SELECT throws_ok(
    $$SELECT projections.append_many('cart-2', '[{"type": "A", "data": {}}, {"type": "B"}]')$$,
    '22023', NULL, 'append_many with one bad element fails');
SELECT is((SELECT count(*) FROM projections.events WHERE stream_id = 'cart-2'), 0::bigint,
          '... and appends nothing');
SELECT is(array_length(projections.append_many('cart-2',
              '[{"type": "A", "data": {}}, {"type": "B", "data": {}}, {"type": "C", "data": {}}]'), 1),
          3, 'append_many returns one position per event');
SELECT results_eq(
    $$SELECT stream_version FROM projections.read_stream('cart-2')$$,
    $$VALUES (1), (2), (3)$$,
    'append_many gives consecutive versions');

-- a failed append inside a transaction leaves nothing behind
CREATE FUNCTION pg_temp.append_then_fail() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM projections.append('cart-3', 'CartOpened', '{}');
    RAISE EXCEPTION 'boom';
END $$;
SELECT throws_ok('SELECT pg_temp.append_then_fail()', 'P0001', 'boom', 'an error after an append');
SELECT is((SELECT count(*) FROM projections.events WHERE stream_id = 'cart-3'), 0::bigint,
          '... rolls the append back');
SELECT is(projections.append('cart-3', 'CartOpened', '{}', expected_version => 0) > 0, true,
          '... and the stream is still new');

-- positions are never reused, even after a rollback
SELECT max(global_position) AS before FROM projections.events \gset
SELECT throws_ok('SELECT pg_temp.append_then_fail()', 'P0001', 'boom', 'another rolled-back append');
SELECT cmp_ok(projections.append('cart-4', 'CartOpened', '{}'), '>', (:before + 1)::bigint,
              'a rolled-back position is not handed out again');

-- within a stream, ordering keys never decrease; head is the last safe position
SELECT is((SELECT bool_and(k >= prev) FROM (
              SELECT ordering_key AS k,
                     lag(ordering_key, 1, 0::bigint) OVER (PARTITION BY stream_id ORDER BY stream_version) AS prev
              FROM projections.events) s), true,
          'ordering keys follow stream versions');
SELECT is(projections.head(), (SELECT max(global_position) FROM projections.events),
          'with no transaction open, head is the last position');

-- one transaction may append to any number of streams (row locks, not lock-table entries)
SELECT lives_ok($$INSERT INTO projections.events (stream_id, event_type, data)
                  SELECT 'many-' || i, 'Created', '{}' FROM generate_series(1, 30000) i$$,
                'one statement appends to 30,000 new streams');
SELECT is((SELECT count(*) FROM projections.events WHERE stream_id LIKE 'many-%' AND stream_version = 1),
          30000::bigint, '... each at version 1');

SELECT * FROM finish();
