# Crashes during an online rebuild: kill -9 of the worker and an immediate
# server stop, during the build and during the exchange, leave either the
# old model or the new one, complete and consistent; the rebuild then goes
# on to the end (or is cancelled) and no shadow object is left behind.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $events = 3000;
my $node = preloaded_node('rebuild_crash', qq{
projections.batch_size = 100
projections.exchange_timeout = '10min'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE SCHEMA m;
    CREATE TABLE m.items (pos bigint PRIMARY KEY, stream text NOT NULL, n integer NOT NULL);
    CREATE INDEX items_stream_idx ON m.items (stream);
    SET search_path = m;
    CREATE FUNCTION m.item(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO items VALUES (e.global_position, e.stream_id, 1) $$;
    SELECT projections.register('items', 'm.item(projections.events)',
                                tables => ARRAY['m.items']::regclass[]);});
$node->safe_psql('postgres', qq{
    SELECT count(projections.append('s-' || (i % 10), 'E', '{}')) FROM generate_series(1, $events) i});
is($node->safe_psql('postgres', q{SELECT projections.wait('items', timeout => '120 s')}), 't',
    'the live model is built');

# a new handler writing n = $k, slow enough to be caught in the middle
sub new_handler
{
    my ($k) = @_;
    $node->safe_psql('postgres', qq{
        SET search_path = m;
        CREATE OR REPLACE FUNCTION m.item(e projections.events) RETURNS void LANGUAGE plpgsql AS \$\$
        BEGIN
            INSERT INTO items VALUES (e.global_position, e.stream_id, $k);
            PERFORM pg_sleep(0.001);
        END \$\$;});
}

# the model is one of the given versions, whole: every event once, one n
sub model_is
{
    my ($versions, $what) = @_;
    is($node->safe_psql('postgres', q{SELECT projections.wait('items', timeout => '300 s')}), 't',
        "$what: the projection catches up");
    my $n = $node->safe_psql('postgres', q{
        SELECT CASE WHEN count(DISTINCT i.n) = 1
                     AND count(*) FILTER (WHERE i.pos IS NULL OR e.global_position IS NULL) = 0
                    THEN min(i.n)::text ELSE 'mixed or incomplete' END
        FROM m.items i FULL JOIN projections.events e ON e.global_position = i.pos});
    ok((grep { $_ eq $n } @$versions), "$what: the model is whole, version $n (of @$versions)");
    return $n;
}

sub no_shadow
{
    my ($what) = @_;
    is($node->safe_psql('postgres', q{
        SELECT (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'projections_build_%')
             + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname LIKE 'projections_build_%')}), '0', "$what: no shadow object is left");
}

sub rebuild_done
{
    ok($node->poll_query_until('postgres', q{
            SELECT rebuild_position IS NULL FROM projections.status WHERE name = 'items'}),
        'the rebuild goes on to its end');
}

# the worker building (or exchanging) the model
sub builder_pid
{
    return $node->safe_psql('postgres', q{
        SELECT pid FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND query LIKE '%online rebuild%' LIMIT 1});
}

sub crash
{
    my ($how, $pid) = @_;
    if ($how eq 'kill') { ok(kill9_and_wait($node, $pid), "$how: the server is back"); }
    else { $node->stop('immediate'); $node->start; ok(1, "$how: the server is back"); }
}

for my $how ('kill', 'stop')
{
    # --- during the build
    my $old = $node->safe_psql('postgres', 'SELECT min(n) FROM m.items');
    my $new = $old + 1;
    new_handler($new);
    $node->safe_psql('postgres', q{SELECT projections.rebuild('items', online => true)});
    ok($node->poll_query_until('postgres', q{
            SELECT rebuild_position > 500 AND rebuild_lag > 500 FROM projections.status}),
        "$how during the build: the build is half-way");
    crash($how, builder_pid());
    model_is([ $old, $new ], "$how during the build, right after");
    rebuild_done();
    model_is([ $new ], "$how during the build, at the end");
    no_shadow("$how during the build");

    # --- during the exchange: a reader's lock keeps it waiting
    $old = $new;
    $new = $old + 1;
    new_handler($new);
    my $reader = $node->background_psql('postgres');
    $reader->query_safe('BEGIN; SELECT count(*) FROM m.items');
    $node->safe_psql('postgres', q{SELECT projections.rebuild('items', online => true)});
    ok($node->poll_query_until('postgres', q{
            SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE a.backend_type = 'projections worker' AND l.relation = 'm.items'::regclass
              AND l.mode = 'AccessExclusiveLock' AND NOT l.granted}),
        "$how during the exchange: the exchange waits for the table");
    my $exchanger = $node->safe_psql('postgres', q{
        SELECT l.pid FROM pg_locks l WHERE l.relation = 'm.items'::regclass
          AND l.mode = 'AccessExclusiveLock' AND NOT l.granted LIMIT 1});
    crash($how, $exchanger);
    eval { $reader->quit };
    model_is([ $old, $new ], "$how during the exchange, right after");
    rebuild_done();
    model_is([ $new ], "$how during the exchange, at the end");
    no_shadow("$how during the exchange");
}

# --- a crash, then the rebuild is cancelled: the old model stays
my $old = $node->safe_psql('postgres', 'SELECT min(n) FROM m.items');
new_handler($old + 1);
$node->safe_psql('postgres', q{SELECT projections.rebuild('items', online => true)});
ok($node->poll_query_until('postgres', q{SELECT rebuild_position > 200 FROM projections.status}),
    'another rebuild is under way');
crash('kill', builder_pid());
is($node->safe_psql('postgres', q{SELECT projections.cancel_rebuild('items')}), 't',
    'cancel_rebuild after the crash');
model_is([ $old ], 'cancelled');
no_shadow('cancelled');
unlike(slurp_file($node->logfile), qr/TRAP:|PANIC/, 'no assertion failure or panic');

$node->stop;
done_testing();
