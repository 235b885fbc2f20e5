# One worker per database that has the extension, without restarts or
# configuration edits: CREATE EXTENSION in a running server, a database
# created from a template that has the extension, DROP EXTENSION and DROP
# DATABASE with a busy worker, databases without the extension.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $node = preloaded_node('databases', qq{
projections.batch_size = 100
log_min_messages = debug1
});
$node->start;

my $setup = q{
    CREATE EXTENSION projections;
    CREATE TABLE counts (stream_id text PRIMARY KEY, n integer NOT NULL);
    CREATE FUNCTION count_it(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO counts VALUES (e.stream_id, 1)
        ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1
    $$;
    CREATE FUNCTION slow_count(e projections.events) RETURNS void LANGUAGE sql AS $$
        SELECT pg_sleep(0.002); SELECT count_it(e)
    $$;
};

sub workers
{
    my ($db) = @_;
    return $node->safe_psql('postgres', qq{
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = '$db'});
}

# a database created while the server runs, then the extension in it
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', $setup);
$node->safe_psql('shop', q{
    SELECT projections.register('counts', 'count_it(projections.events)');
    SELECT projections.append('order-' || (i % 5), 'Placed', '{}') FROM generate_series(1, 50) i});
is($node->safe_psql('shop', q{SELECT projections.wait('counts', timeout => '30 s')}), 't',
    'CREATE EXTENSION in a running server: its projections run without a restart');
is($node->safe_psql('shop', 'SELECT sum(n) FROM counts'), '50', 'every event applied');
is(workers('shop'), '1', 'one worker for the database');
is($node->safe_psql('shop', q{SELECT worker_state FROM projections.status}), 'running',
    'status shows the worker running');
like($node->safe_psql('shop',
        q{SELECT application_name || '|' || coalesce(query, '') FROM pg_stat_activity
          WHERE backend_type = 'projections worker' AND datname = 'shop'}),
    qr/^projections worker\|/, 'the worker names itself in pg_stat_activity');

# a database created from a template that has the extension
$node->safe_psql('postgres', 'CREATE DATABASE shop_template');
$node->safe_psql('shop_template', $setup);
$node->safe_psql('postgres', 'ALTER DATABASE shop_template IS_TEMPLATE true');
$node->safe_psql('postgres', 'CREATE DATABASE shop_copy TEMPLATE shop_template');
$node->safe_psql('shop_copy', q{
    SELECT projections.register('counts', 'count_it(projections.events)');
    SELECT projections.append('order-1', 'Placed', '{}')});
is($node->safe_psql('shop_copy', q{SELECT projections.wait('counts', timeout => '30 s')}), 't',
    'a database copied from a template with the extension gets a worker');
ok($node->poll_query_until('postgres', q{
        SELECT count(*) = 0 FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'shop_template'}),
    'no worker stays connected to the template');

# DROP EXTENSION under a busy worker
$node->safe_psql('shop_copy', q{
    SELECT projections.register('slow', 'slow_count(projections.events)');
    SELECT projections.append('order-' || (i % 5), 'Placed', '{}') FROM generate_series(1, 3000) i});
ok($node->poll_query_until('shop_copy',
        q{SELECT events_applied > 0 FROM projections.status WHERE name = 'slow'}),
    'the slow projection is being applied');
my $offset = length(slurp_file($node->logfile));
$node->safe_psql('shop_copy', 'DROP EXTENSION projections CASCADE');
ok($node->poll_query_until('postgres', q{
        SELECT count(*) = 0 FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'shop_copy'}),
    'DROP EXTENSION: the worker exits');
# the launcher looks at the databases again (woken by CREATE DATABASE)
$offset = length(slurp_file($node->logfile));
$node->safe_psql('postgres', 'CREATE DATABASE poke1');
ok($node->wait_for_log(qr/projections launcher: scanned pg_database/, $offset),
    'the launcher has looked at the databases since');
is(workers('shop_copy'), '0', 'and has not started the worker again');
unlike(substr(slurp_file($node->logfile), $offset),
    qr/projections worker started for database "shop_copy"/, '(nor tried to)');
$node->safe_psql('shop_copy', 'DROP TABLE counts');
$node->safe_psql('shop_copy', $setup);
$node->safe_psql('shop_copy', q{
    SELECT projections.register('counts', 'count_it(projections.events)');
    SELECT projections.append('order-1', 'Placed', '{}')});
is($node->safe_psql('shop_copy', q{SELECT projections.wait('counts', timeout => '30 s')}), 't',
    'CREATE EXTENSION again: a worker again');

# DROP DATABASE under a busy worker, without FORCE
$node->safe_psql('shop', q{
    SELECT projections.register('slow', 'slow_count(projections.events)');
    SELECT projections.append('order-' || (i % 5), 'Placed', '{}') FROM generate_series(1, 3000) i});
ok($node->poll_query_until('shop',
        q{SELECT events_applied > 0 FROM projections.status WHERE name = 'slow'}),
    'a busy worker in the database to drop');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop');
is($ret, 0, 'DROP DATABASE succeeds while the worker was busy') or diag($err);
is(workers('shop'), '0', 'no worker for the dropped database');

# ALTER DATABASE ... RENAME needs the database to itself as well
($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE shop_copy RENAME TO shop_renamed');
is($ret, 0, 'ALTER DATABASE RENAME succeeds') or diag($err);
$node->safe_psql('shop_renamed', q{SELECT projections.append('order-2', 'Placed', '{}')});
is($node->safe_psql('shop_renamed', q{SELECT projections.wait('counts', timeout => '30 s')}), 't',
    'the renamed database has its worker back');

# databases without the extension are probed once, not in a loop: two
# scans of pg_database after the probe (the second woken by CREATE DATABASE)
$offset = length(slurp_file($node->logfile));
$node->safe_psql('postgres', 'CREATE DATABASE plain');
ok($node->wait_for_log(qr/no extension in database "plain"/, $offset), 'the new database is probed');
$offset = length(slurp_file($node->logfile));
$node->safe_psql('postgres', 'CREATE DATABASE poke2');
ok($node->wait_for_log(qr/projections launcher: scanned pg_database/, $offset),
    'the launcher has looked at the databases again');
my $log = slurp_file($node->logfile);
my @probes = ($log =~ /projections worker exiting: no extension in database "plain"/g);
is(scalar(@probes), 1, 'a database without the extension is probed once');
is(workers('plain'), '0', 'and has no worker');
unlike($log, qr/was terminated by signal|PANIC|TRAP:/, 'no crash');
unlike($log, qr/template1|template0"/, 'templates are never connected to');

$node->stop;
done_testing();
