# The event store across restarts and crashes: committed events survive an
# immediate shutdown, uncommitted ones vanish, and positions are never
# handed out twice.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $node = preloaded_node('event_store');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION projections');

$node->safe_psql('postgres', q{
    SELECT projections.append('order-' || (i % 10), 'Tick', jsonb_build_object('i', i))
    FROM generate_series(1, 500) i});

# an append left uncommitted when the server dies
my $open = $node->background_psql('postgres');
$open->query_safe(q{BEGIN; SELECT projections.append('order-open', 'Lost', '{}')});

$node->stop('immediate');
$node->start;

is($node->safe_psql('postgres', 'SELECT count(*) FROM projections.events'),
    '500', 'committed events survive an immediate shutdown');
is($node->safe_psql('postgres',
        q{SELECT count(*) FROM projections.events WHERE stream_id = 'order-open'}),
    '0', 'the uncommitted append is gone');
is($node->safe_psql('postgres', q{
        SELECT bool_and(v = n) FROM (
            SELECT stream_version AS v,
                   row_number() OVER (PARTITION BY stream_id ORDER BY global_position) AS n
            FROM projections.events) s}),
    't', 'every stream still counts 1, 2, 3 ... in position order');

my $max = $node->safe_psql('postgres', 'SELECT max(global_position) FROM projections.events');
my $next = $node->safe_psql('postgres', q{SELECT projections.append('order-open', 'After', '{}')});
cmp_ok($next, '>', $max, 'positions continue above every position handed out before the crash');
is($node->safe_psql('postgres',
        q{SELECT stream_version FROM projections.read_stream('order-open')}),
    '1', 'the stream of the lost append starts at version 1');
is($node->safe_psql('postgres',
        'SELECT count(*) FROM projections.events WHERE ordering_key >= projections._safe_key()'),
    '0', 'after recovery every committed event is safe to read');

$open->quit;
$node->stop;
done_testing();
