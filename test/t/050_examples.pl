# The e-commerce example (examples/ecommerce): its generator appends every
# event type in causal order, and each of its four read models equals the
# same handler folded once over the history in (ordering_key,
# global_position) order -- when maintained live by the worker while the
# history is appended, after a rebuild, after an online rebuild (and
# verify() finds nothing to report), after switching to inline mode, when
# registered inline from the start, and when registered with the batch
# handlers of order_summary and daily_sales (register.sql -v handlers=batch),
# whose read models must equal the per-event handlers' fold.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $example = abs_path(dirname(__FILE__) . '/../../examples/ecommerce');
my $history = 12000;    # events per database

# projection => [reset function, read-model tables, per-event handler (the
# oracle's, whichever handler is registered)]
my %models = (
    order_summary => [
        'ecommerce.order_summary_reset', ['order_summary'],
        'ecommerce.order_summary_apply(projections.events)'
    ],
    product_search => [
        'ecommerce.product_search_reset', ['products'],
        'ecommerce.product_search_apply(projections.events)'
    ],
    daily_sales => [
        'ecommerce.daily_sales_reset', ['daily_sales'],
        'ecommerce.daily_sales_apply(projections.events)'
    ],
    customer_activity => [
        'ecommerce.customer_activity_reset',
        [ 'customers', 'customer_activity_summary', 'customer_order_history' ],
        'ecommerce.customer_activity_apply(projections.events)'
    ],
);
my @projections = sort keys %models;
my @event_types = qw(OrderCreated OrderItemAdded OrderItemRemoved OrderShipped
  OrderCompleted OrderCancelled OrderRefunded ProductCreated ProductUpdated
  ProductPriceChanged ProductDeleted CustomerCreated ReviewSubmitted
  CustomerTierChanged);

my $node = preloaded_node('examples');
$node->start;

# create a database with the extension and the example loaded and registered
sub setup
{
    my ($db, $mode, $handlers) = @_;
    $handlers //= 'per-event';
    $node->safe_psql('postgres', "CREATE DATABASE $db");
    $node->safe_psql($db, 'CREATE EXTENSION projections');
    $node->safe_psql($db, 'SET client_min_messages = warning;' . slurp_file("$example/$_"))
      for qw(schema.sql handlers.sql generate.sql);
    $node->safe_psql($db, slurp_file("$example/register.sql"),
        extra_params => [ '-v', "mode=$mode", '-v', "handlers=$handlers" ]);
    $node->safe_psql($db, q{
        CREATE SCHEMA oracle;
        -- the handler called once per event, in the order the worker uses
        CREATE FUNCTION oracle.fold(handler text, types text[]) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            e projections.events;
            n bigint := 0;
        BEGIN
            FOR e IN SELECT * FROM projections.events ev
                     WHERE types IS NULL OR ev.event_type = ANY (types)
                     ORDER BY ev.ordering_key, ev.global_position
            LOOP
                EXECUTE format('SELECT %s($1)', handler::regprocedure::regproc) USING e;
                n := n + 1;
            END LOOP;
            RETURN n;
        END $$;
    });
    return;
}

sub wait_all
{
    my ($db, $label) = @_;
    for my $p (@projections)
    {
        # wait() waits out its timeout on a failed projection: look in between
        my $done = 'f';
        for (1 .. 90)
        {
            $done = $node->safe_psql($db, qq{
                SELECT CASE WHEN projections.wait('$p', NULL, '1 second') THEN 't'
                            WHEN state IN ('failed', 'paused') THEN state || ': ' || last_error
                            ELSE 'f' END
                FROM projections.status WHERE name = '$p'});
            last if $done ne 'f';
        }
        is($done, 't', "$label: $p has caught up");
    }
    is($node->safe_psql($db, q{
            SELECT string_agg(name || ' ' || state || coalesce(' ' || last_error, ''), ', ')
            FROM projections.status WHERE state <> 'running' OR last_error IS NOT NULL}),
        '', "$label: every projection is running without error");
    return;
}

# Copy the read model aside, empty it, fold the handler over the history
# with the projection paused, and compare both ways.
sub check_fold
{
    my ($db, $label) = @_;
    for my $p (@projections)
    {
        my ($reset, $tables, $handler) = @{ $models{$p} };
        my $types = $node->safe_psql($db,
            "SELECT event_types FROM projections.status WHERE name = '$p'");
        $node->safe_psql($db, "SET client_min_messages = warning; SELECT projections.pause('$p')");
        my $copy = join '',
          map { "DROP TABLE IF EXISTS oracle.$_; CREATE TABLE oracle.$_ AS SELECT * FROM ecommerce.$_;" }
          @$tables;
        $node->safe_psql($db, $copy);
        for my $t (@$tables)
        {
            cmp_ok($node->safe_psql($db, "SELECT count(*) FROM ecommerce.$t"),
                '>', 0, "$label: ecommerce.$t is not empty");
        }
        # under the search_path register.sql registers with: the handlers
        # and reset functions name their tables unqualified
        my $folded = $node->safe_psql($db,
            "SET search_path = ecommerce, pg_catalog, pg_temp;"
              . " SELECT $reset(); SELECT oracle.fold('$handler', '$types')");
        cmp_ok($folded, '>', 0, "$label: $p folded over its events");
        for my $t (@$tables)
        {
            my $diff = $node->safe_psql($db, qq{
                SELECT (SELECT count(*) FROM ecommerce.$t) || ' ' || (SELECT count(*) FROM oracle.$t)
                       || ' ' || (SELECT count(*) FROM (TABLE ecommerce.$t EXCEPT ALL TABLE oracle.$t) a)
                       || ' ' || (SELECT count(*) FROM (TABLE oracle.$t EXCEPT ALL TABLE ecommerce.$t) b)});
            my ($n_fold, $n_model, $extra, $missing) = split / /, $diff;
            is($n_model, $n_fold, "$label: ecommerce.$t has as many rows as the fold");
            is("$extra $missing", '0 0', "$label: ecommerce.$t equals the fold, both ways");
        }
        $node->safe_psql($db, "SET client_min_messages = warning; SELECT projections.resume('$p')");
    }
    return;
}

# a fingerprint of the read models that does not depend on when events were
# recorded (order_summary.updated_at is the event's recorded_at)
sub fingerprint
{
    my ($db) = @_;
    return $node->safe_psql($db, q{
        SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
            SELECT 'o' || (o.order_id, o.customer_id, o.status, o.total_amount, o.item_count,
                           o.created_at, o.shipped_at, o.completed_at, o.cancelled_at,
                           o.cancellation_reason)::text AS x FROM ecommerce.order_summary o
            UNION ALL SELECT 'p' || p::text FROM ecommerce.products p
            UNION ALL SELECT 'd' || d::text FROM ecommerce.daily_sales d
            UNION ALL SELECT 'c' || c::text FROM ecommerce.customers c
            UNION ALL SELECT 's' || s::text FROM ecommerce.customer_activity_summary s
            UNION ALL SELECT 'h' || h::text FROM ecommerce.customer_order_history h) f});
}

sub check_history
{
    my ($db, $label) = @_;
    cmp_ok($node->safe_psql($db, 'SELECT count(*) FROM projections.events'),
        '>=', 10000, "$label: the history has at least 10,000 events");
    my $types = join ',', map { "'$_'" } @event_types;
    is($node->safe_psql($db, qq{
            SELECT string_agg(t, ',' ORDER BY t) FROM unnest(ARRAY[$types]) t
            WHERE NOT EXISTS (SELECT FROM projections.events e WHERE e.event_type = t)}),
        '', "$label: the history has every one of the 14 event types");
    return;
}

local $ENV{PGOPTIONS} = '-c client_min_messages=warning';

# 1. async: registered first, then the history is appended (committing every
#    500 events) while the worker applies it
setup('live', 'async');
$node->safe_psql('live', "CALL ecommerce.load_history($history, 0.42, 500)");
check_history('live', 'live');
wait_all('live', 'live');
my $live_print = fingerprint('live');
check_fold('live', 'live');

# 2. after a rebuild by the worker
$node->safe_psql('live', "SELECT projections.rebuild('$_')") for @projections;
wait_all('live', 'rebuild');
is(fingerprint('live'), $live_print, 'rebuild: the read models are as before');
check_fold('live', 'rebuild');

# 2b. after an online rebuild: built beside the live tables, then exchanged;
#     verify() builds them once more and finds no difference
$node->safe_psql('live', "SELECT projections.rebuild('$_', online => true)") for @projections;
my $rebuilt = 'f';
for (1 .. 120)
{
    $rebuilt = $node->safe_psql('live', q{
        SELECT coalesce(bool_and(rebuild_position IS NULL AND last_error IS NULL), false)
        FROM projections.status});
    last if $rebuilt eq 't';
    sleep 1;
}
is($rebuilt, 't', 'online rebuild: every projection was built again and exchanged');
wait_all('live', 'online rebuild');
is(fingerprint('live'), $live_print, 'online rebuild: the read models are as before');
is($node->safe_psql('live', q{
        SELECT coalesce(string_agg(v.table_name || ' ' || v.missing_rows || ' ' || v.extra_rows, ', '), '')
        FROM projections.status s, projections.verify(s.name) v
        WHERE v.missing_rows <> 0 OR v.extra_rows <> 0}),
    '', 'verify: every read model equals one built from scratch');
check_fold('live', 'online rebuild');

# 3. switched to inline: later appends are applied by the appending transaction
$node->safe_psql('live', "SELECT projections.set_mode('$_', 'inline')") for @projections;
$node->safe_psql('live', q{
    SELECT projections.append('customer-900001', 'CustomerCreated',
        '{"customer_id": "900001", "email": "zoe@example.com", "name": "Zoe Quist",
          "created_at": "2025-01-02T10:00:00.000Z"}');
    SELECT projections.append_many('order-900001', '[
        {"type": "OrderCreated", "data": {"order_id": "900001", "customer_id": "900001",
                                          "created_at": "2025-01-02T11:00:00.000Z"}},
        {"type": "OrderItemAdded", "data": {"order_id": "900001", "product_id": "1",
                                            "price": 12.50, "quantity": 2}},
        {"type": "OrderShipped", "data": {"order_id": "900001", "shipped_at": "2025-01-03T09:00:00.000Z"}},
        {"type": "OrderCompleted", "data": {"order_id": "900001", "customer_id": "900001",
            "total_amount": 25.00, "item_count": 1, "completed_at": "2025-01-05T09:00:00.000Z"}}]');
    SELECT projections.append('product-1', 'ProductPriceChanged',
        '{"product_id": "1", "new_price": 13.75, "changed_at": "2025-01-06T00:00:00.000Z"}');
    SELECT projections.append('customer-900001', 'ReviewSubmitted',
        '{"customer_id": "900001", "product_id": "1", "rating": 5,
          "submitted_at": "2025-01-07T00:00:00.000Z"}');
});
is($node->safe_psql('live', q{
        SELECT (SELECT status FROM ecommerce.order_summary WHERE order_id = '900001') || ' '
            || (SELECT total_spent FROM ecommerce.customer_activity_summary WHERE customer_id = '900001') || ' '
            || (SELECT total_orders FROM ecommerce.daily_sales WHERE day = '2025-01-05') || ' '
            || (SELECT price FROM ecommerce.products WHERE product_id = '1')}),
    'completed 25.00 1 13.75', 'inline: the appends are visible as soon as they commit');
is($node->safe_psql('live',
        q{SELECT string_agg(name, ',') FROM projections.status WHERE mode <> 'inline' OR worker_state <> 'inline'}),
    '', 'inline: every projection is inline and active');
check_fold('live', 'inline after set_mode');

# 4. registered inline on a fresh database, then the same history appended
#    in one transaction
setup('inline', 'inline');
is($node->safe_psql('inline', "SELECT ecommerce.generate_history($history, 0.42)"),
    $history, 'generate_history appends the number of events asked for');
check_history('inline', 'inline');
is($node->safe_psql('inline', q{
        SELECT count(*) FROM projections.status WHERE mode = 'inline' AND worker_state = 'inline'}),
    '4', 'inline: every projection is inline and active');
is($node->safe_psql('inline', q{
        SELECT md5(string_agg(stream_id || stream_version || event_type || data::text, ','
                              ORDER BY global_position)) FROM projections.events}),
    $node->safe_psql('live', qq{
        SELECT md5(string_agg(stream_id || stream_version || event_type || data::text, ','
                              ORDER BY global_position)) FROM projections.events
        WHERE global_position <= $history}),
    'generate_history and load_history append the same history for the same seed');
is(fingerprint('inline'), $live_print,
    'inline: the read models equal those the worker built from the same history');
check_fold('inline', 'inline');

# 5. the batch handlers (order_summary, daily_sales; the other two stay
#    per-event), registered first, then the same history appended while the
#    worker applies it: the same read models as the per-event handlers
setup('batch', 'async', 'batch');
is($node->safe_psql('batch', q{
        SELECT string_agg(name, ',' ORDER BY name) FROM projections.status
        WHERE handler LIKE '%(projections.events[])'}),
    'daily_sales,order_summary', 'batch: order_summary and daily_sales have batch handlers');
$node->safe_psql('batch', "CALL ecommerce.load_history($history, 0.42, 500)");
check_history('batch', 'batch');
wait_all('batch', 'batch');
is(fingerprint('batch'), $live_print,
    'batch: the read models equal those the per-event handlers built from the same history');
check_fold('batch', 'batch');

$node->stop;
done_testing();
