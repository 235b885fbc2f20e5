# Without shared_preload_libraries the extension still installs: the event
# store, run() and inline projections work, and what needs the worker says
# so with a warning and a hint naming the setting.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE TABLE counts (stream_id text PRIMARY KEY, n integer NOT NULL);
    CREATE FUNCTION count_it(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO counts VALUES (e.stream_id, 1)
        ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1
    $$;
    CREATE TABLE inline_counts (LIKE counts INCLUDING ALL);
    CREATE FUNCTION count_inline(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO inline_counts VALUES (e.stream_id, 1)
        ON CONFLICT (stream_id) DO UPDATE SET n = inline_counts.n + 1
    $$;
});
is($node->safe_psql('postgres',
        q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'projections%'}),
    '0', 'no launcher, no worker');

my ($ret, $out, $err) = $node->psql('postgres',
    q{SELECT projections.register('counts', 'count_it(projections.events)')});
is($ret, 0, 'an async projection registers');
like($err, qr/WARNING:  no background worker applies async projections in this server/,
    'with a warning');
like($err, qr/HINT:  Add projections to shared_preload_libraries/, 'and a hint naming the setting');

$node->safe_psql('postgres',
    q{SELECT projections.register('inline_counts', 'count_inline(projections.events)', mode => 'inline')});
$node->safe_psql('postgres', q{
    SELECT projections.append('s-' || (i % 3), 'E', '{}') FROM generate_series(1, 30) i});
is($node->safe_psql('postgres', 'SELECT sum(n) FROM inline_counts'), '30',
    'inline projections work');
is($node->safe_psql('postgres', q{SELECT worker_state FROM projections.status WHERE name = 'counts'}),
    'not in shared_preload_libraries', 'status says why nothing applies the async one');

($ret, $out, $err) = $node->psql('postgres', q{SELECT projections.wait('counts', timeout => '200 ms')});
is($out, 'f', 'wait() times out');
like($err, qr/WARNING:  no background worker applies async projections/, 'with a warning');

is($node->safe_psql('postgres', q{SELECT projections.run('counts')}), '30', 'run() applies');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM counts'), '30', 'every event');
is($node->safe_psql('postgres', q{SELECT projections.wait('counts', timeout => '200 ms')}), 't',
    'and wait() then succeeds');

$node->stop;
done_testing();
