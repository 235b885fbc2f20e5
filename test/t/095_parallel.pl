# Parallel apply: with projections.workers_per_database = 2, two busy
# projections are applied by two processes at once, each exactly once; a
# projection's rebuild, plain or online, does not hold up a live one (online:
# not even for one of its batches); lowering the setting
# sends the extra worker away; without a free worker slot the database is
# served by fewer workers, and nothing stalls.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $setup = q{
    CREATE EXTENSION projections;
    CREATE TABLE seen_a (pos bigint PRIMARY KEY);
    CREATE TABLE seen_b (pos bigint PRIMARY KEY);
    CREATE FUNCTION slow_a(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO seen_a VALUES (e.global_position); PERFORM pg_sleep(0.002); END $$;
    CREATE FUNCTION slow_b(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO seen_b VALUES (e.global_position); PERFORM pg_sleep(0.002); END $$;
    CREATE FUNCTION reset_a() RETURNS void LANGUAGE sql AS $$ TRUNCATE seen_a $$;
};

# every event once in each model
sub exactly_once
{
    my ($node, $table, $what) = @_;
    is($node->safe_psql('postgres', qq{
        SELECT count(*) FROM $table t FULL JOIN projections.events e ON e.global_position = t.pos
        WHERE t.pos IS NULL OR e.global_position IS NULL}), '0', "$what: $table holds every event once");
}

my $node = preloaded_node('parallel', qq{
projections.batch_size = 50
projections.workers_per_database = 2
});
$node->start;
$node->safe_psql('postgres', $setup);
$node->safe_psql('postgres', q{
    SELECT count(projections.append('s-' || (i % 10), 'E', '{}')) FROM generate_series(1, 1500) i;
    SELECT projections.register('a', 'slow_a(projections.events)', reset => 'reset_a()');
    SELECT projections.register('b', 'slow_b(projections.events)');});

ok($node->poll_query_until('postgres', q{
        SELECT count(DISTINCT query) = 2 FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND state = 'active'
          AND query IN ('applying projection "a"', 'applying projection "b"')}),
    'two workers apply the two projections at the same time');
is($node->safe_psql('postgres', q{SELECT max(workers) FROM projections.status}), '2',
    'status counts two workers');
is($node->safe_psql('postgres', q{SELECT projections.wait('a', timeout => '120 s')
                                         AND projections.wait('b', timeout => '120 s')}), 't',
    'both projections catch up');
exactly_once($node, 'seen_a', 'parallel');
exactly_once($node, 'seen_b', 'parallel');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM projections.status WHERE applier_pid IS NOT NULL AND events_applied = 1500}),
    '2', 'status names the process that applied each');

# a rebuild of one projection does not hold up the other's live events
$node->safe_psql('postgres', q{SELECT projections.rebuild('a')});
ok($node->poll_query_until('postgres', q{SELECT events_applied > 100 FROM projections.status WHERE name = 'a'}),
    'a is being rebuilt');
my $pos = $node->safe_psql('postgres', q{SELECT projections.append('live', 'E', '{}')});
is($node->safe_psql('postgres', qq{SELECT projections.wait('b', $pos, '60 s')}), 't',
    'a live event of b is applied ...');
cmp_ok($node->safe_psql('postgres', q{SELECT lag FROM projections.status WHERE name = 'a'}), '>', 100,
    '... while a is still rebuilding');
is($node->safe_psql('postgres', q{SELECT projections.wait('a', timeout => '120 s')}), 't',
    'the rebuild ends');
exactly_once($node, 'seen_a', 'rebuilt');

# a rebuild of a, online then plain, in batches of 1000 events of 10 ms
# each: a second worker comes at once, and b's live events are applied long
# before one of the replay's batches ends (a replay appends nothing, so its
# transactions do not hold back what b may apply)
sub live_during_replay
{
    my ($how, $rebuild, $activity) = @_;
    $node->safe_psql('postgres', $rebuild);
    ok($node->poll_query_until('postgres', qq{
            SELECT (SELECT count(*) FROM pg_stat_activity
                    WHERE backend_type = 'projections worker' AND query = '$activity') = 1
               AND (SELECT max(workers) FROM projections.status) = 2}),
        "$how rebuild: a second worker comes while the first replays a");
    my $live = $node->safe_psql('postgres', q{SELECT projections.append('live', 'E', '{}')});
    is($node->safe_psql('postgres', qq{SELECT projections.wait('b', $live, '3 s')}), 't',
        "$how rebuild: a live event of b is applied within 3 s ...");
    is($node->safe_psql('postgres', qq{
            SELECT count(*) FROM pg_stat_activity
            WHERE backend_type = 'projections worker' AND query = '$activity'}), '1',
        "... while a batch of the replay (10 s) is still being applied");
    ok($node->poll_query_until('postgres', q{
            SELECT rebuild_position IS NULL AND lag = 0 FROM projections.status WHERE name = 'a'}),
        "the $how rebuild ends");
    exactly_once($node, 'seen_a', "rebuilt ($how)");
}
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET projections.batch_size = 1000; SELECT pg_reload_conf();});
$node->safe_psql('postgres', q{
    SELECT projections.set_tables('a', ARRAY['seen_a']::regclass[]);
    CREATE OR REPLACE FUNCTION slow_a(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO seen_a VALUES (e.global_position); PERFORM pg_sleep(0.01); END $$;});
live_during_replay('online', q{SELECT projections.rebuild('a', online => true)},
    'building projection "a" (online rebuild)');
live_during_replay('plain', q{SELECT projections.rebuild('a')}, 'applying projection "a"');
$node->safe_psql('postgres', q{
    ALTER SYSTEM RESET projections.batch_size; SELECT pg_reload_conf();
    CREATE OR REPLACE FUNCTION slow_a(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO seen_a VALUES (e.global_position); PERFORM pg_sleep(0.002); END $$;});

# fewer workers: the extra one goes
$node->safe_psql('postgres', q{ALTER SYSTEM SET projections.workers_per_database = 1; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', q{
        SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'projections worker'}),
    'workers_per_database = 1: one worker is left');
$node->safe_psql('postgres', q{SELECT count(projections.append('t', 'E', '{}')) FROM generate_series(1, 200)});
is($node->safe_psql('postgres', q{SELECT projections.wait('a', timeout => '120 s')
                                         AND projections.wait('b', timeout => '120 s')}), 't',
    'one worker applies both');
exactly_once($node, 'seen_a', 'one worker');
exactly_once($node, 'seen_b', 'one worker');
$node->stop;

# --- no free slot for a second worker: one applies everything, and says so once
my $tight = preloaded_node('tight', qq{
projections.batch_size = 50
projections.workers_per_database = 4
max_worker_processes = 3
max_parallel_workers = 0
});
$tight->start;
$tight->safe_psql('postgres', $setup);
my $offset = length(slurp_file($tight->logfile));
$tight->safe_psql('postgres', q{
    SELECT count(projections.append('s-' || (i % 10), 'E', '{}')) FROM generate_series(1, 600) i;
    SELECT projections.register('a', 'slow_a(projections.events)');
    SELECT projections.register('b', 'slow_b(projections.events)');});
ok($tight->wait_for_log(qr/no background worker slot for another worker in database "postgres"/, $offset),
    'without a free slot the leader says so');
is($tight->safe_psql('postgres', q{SELECT projections.wait('a', timeout => '120 s')
                                          AND projections.wait('b', timeout => '120 s')}), 't',
    'and applies both projections by itself');
exactly_once($tight, 'seen_a', 'no slot');
exactly_once($tight, 'seen_b', 'no slot');
my @warnings = (substr(slurp_file($tight->logfile), $offset) =~ /no background worker slot for another worker/g);
is(scalar(@warnings), 1, 'the warning is logged once');
unlike(slurp_file($tight->logfile), qr/TRAP:|PANIC|terminated by signal/, 'no crash');
$tight->stop;

done_testing();
