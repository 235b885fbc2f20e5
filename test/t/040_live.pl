# Live projections: after each of many consecutive appends, wait() returns
# true (read-your-writes from the committed checkpoint); NOTIFY projections
# reports each batch; a worker that finds a projection locked by a session
# tries again soon after the session lets go, not at its next poll; with the
# worker switched off, wait() returns false at its timeout, and switching it
# on (SIGHUP) catches up.  SIGTERM during a batch rolls it back: nothing
# half-applied.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

# appends wake the worker; the poll is a fallback
my $node = preloaded_node('live', "projections.poll_interval = '10s'\n");
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE TABLE balance (account text PRIMARY KEY, amount bigint NOT NULL);
    CREATE FUNCTION book(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO balance VALUES (e.stream_id, (e.data->>'amount')::bigint)
        ON CONFLICT (account) DO UPDATE SET amount = balance.amount + excluded.amount
    $$;
    SELECT projections.register('balance', 'book(projections.events)');
});

# read-your-writes: 200 appends, each followed by wait(position) in the same
# session, then a read of the read model (in the next statement: a statement
# sees the data as of its start)
my $rounds = 200;
my $script = '';
for my $i (1 .. $rounds)
{
    $script .= qq{SELECT projections.append('acct-1', 'Deposited', '{"amount": 1}') AS pos \\gset\n};
    $script .= qq{SELECT projections.wait('balance', :pos) AS waited \\gset\n};
    $script .= qq{SELECT :'waited'::boolean AND amount = $i FROM balance;\n};
}
my $out = $node->safe_psql('postgres', $script);
my @results = split /\n/, $out;
is(scalar(@results), $rounds, "$rounds appends, each followed by wait()");
is(scalar(grep { $_ eq 't' } @results), $rounds,
    'every wait() returned true and the read model showed the append');

# NOTIFY after each committed batch (psql prints the notifications it
# receives between statements: the batch's commit sends it before wait()
# returns)
my ($ret, $stdout, $stderr) = $node->psql('postgres', q{
    LISTEN projections;
    SELECT projections.append('acct-3', 'Deposited', '{"amount": 7}');
    SELECT projections.wait('balance');
    SELECT 1;});
like($stderr . $stdout, qr/"projection": "balance"/, 'NOTIFY projections names the projection')
  or diag("stdout: $stdout\nstderr: $stderr");

# a session holds the projection's applier lock while an event arrives
# (run() in an open transaction here; register(), resume() and rebuild()
# hold it until their commit, which wakes the worker a moment before the
# lock is released): the worker finds it taken and tries again soon, not at
# its next poll (a minute here), once the session lets go
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET projections.poll_interval = '1min'; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', q{SELECT current_setting('projections.poll_interval') = '1min'}),
    'polls a minute apart');
is($node->safe_psql('postgres', q{SELECT projections.wait('balance', timeout => '30 s')}), 't',
    'caught up before the lock is taken');
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN});
$holder->query_safe(q{SELECT projections.run('balance')});
# (with a transaction id, the holder would hold back the safe key: the worker
# would poll soon for that reason alone)
is($holder->query_safe(q{SELECT pg_current_xact_id_if_assigned() IS NULL}), 't',
    'the lock holder has no transaction id');
my $appended_at = $node->safe_psql('postgres', q{
    SELECT clock_timestamp()
    FROM (SELECT projections.append('acct-4', 'Deposited', '{"amount": 5}')) a});
ok($node->poll_query_until('postgres', qq{
        SELECT count(*) > 0 FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND state = 'idle'
          AND state_change > '$appended_at'}),
    'the worker, woken by the append, went back to waiting (locked out)');
is($node->safe_psql('postgres', q{SELECT amount FROM balance WHERE account = 'acct-4'}), '',
    '... without applying the event');
$holder->query_safe(q{COMMIT});
$holder->quit;
is($node->safe_psql('postgres', q{SELECT projections.wait('balance', timeout => '20 s')}), 't',
    'released: the worker applies the event well before its next poll');
is($node->safe_psql('postgres', q{SELECT amount FROM balance WHERE account = 'acct-4'}), '5',
    '... once');
$node->safe_psql('postgres', q{
    ALTER SYSTEM RESET projections.poll_interval; SELECT pg_reload_conf()});

# worker off: wait() times out; on again: it catches up
$node->safe_psql('postgres', q{ALTER SYSTEM SET projections.enabled = off; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', q{
        SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'projections worker'}),
    'projections.enabled = off stops the worker');
is($node->safe_psql('postgres', q{SELECT worker_state FROM projections.status}), 'disabled',
    'status says the worker is disabled');
$node->safe_psql('postgres', q{SELECT projections.append('acct-1', 'Deposited', '{"amount": 1}')});
($ret, $stdout, $stderr) = $node->psql('postgres',
    q{SELECT projections.wait('balance', timeout => '300 ms')});
is($stdout, 'f', 'with the worker off, wait() returns false at its timeout');
like($stderr, qr/no background worker applies async projections/, '... with a warning');
$node->safe_psql('postgres', q{ALTER SYSTEM SET projections.enabled = on; SELECT pg_reload_conf()});
is($node->safe_psql('postgres', q{SELECT projections.wait('balance', timeout => '30 s')}), 't',
    'on again: the worker catches up');
is($node->safe_psql('postgres', q{SELECT amount FROM balance WHERE account = 'acct-1'}),
    $rounds + 1, 'every deposit counted once');

# SIGHUP: a new batch size is used by the running worker
$node->safe_psql('postgres', q{ALTER SYSTEM SET projections.batch_size = 3; SELECT pg_reload_conf()});
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM projections._worker_status()});
$node->safe_psql('postgres', q{
    CREATE TABLE batches (xid xid8, n integer);
    CREATE FUNCTION note_batch(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO batches VALUES (pg_current_xact_id(), 1)
    $$;
    SELECT projections.register('batches', 'note_batch(projections.events)');});
$node->safe_psql('postgres', q{
    SELECT count(projections.append('acct-9', 'Deposited', '{"amount": 0}')) FROM generate_series(1, 30)});
is($node->safe_psql('postgres', q{SELECT projections.wait('batches', timeout => '30 s')}), 't',
    'the reloaded worker applies');
is($node->safe_psql('postgres', q{SELECT max(c) FROM (SELECT count(*) AS c FROM batches GROUP BY xid) s}),
    '3', 'in batches of the reloaded projections.batch_size');
is($node->safe_psql('postgres', q{SELECT pid FROM projections._worker_status()}),
    $pid, 'without restarting the worker');

# SIGTERM in the middle of a batch: the batch is rolled back, nothing half-applied
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET projections.batch_size = 1000; SELECT pg_reload_conf();
    CREATE TABLE slow_seen (pos bigint PRIMARY KEY);
    CREATE FUNCTION slow(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO slow_seen VALUES (e.global_position);
        PERFORM pg_sleep(0.01);
    END $$;
    SELECT projections.register('slow', 'slow(projections.events)');});
ok($node->poll_query_until('postgres', q{
        SELECT count(*) > 0 FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND query LIKE '%"slow"%'}),
    'the worker is applying the slow projection');
$pid = $node->safe_psql('postgres', q{
    SELECT pid FROM pg_stat_activity
    WHERE backend_type = 'projections worker' AND query LIKE '%"slow"%' LIMIT 1});
kill 'TERM', $pid;
ok($node->poll_query_until('postgres', qq{
        SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid}),
    'SIGTERM ends the worker');
# (one statement: one snapshot for the read model and the checkpoint)
is($node->safe_psql('postgres', q{
        SELECT (SELECT count(*) FROM slow_seen) =
               (SELECT events_applied FROM projections.status WHERE name = 'slow')}),
    't', 'the interrupted batch left nothing behind: read model and checkpoint agree');
ok($node->poll_query_until('postgres', q{
        SELECT worker_state = 'running' AND worker_pid IS NOT NULL
        FROM projections.status WHERE name = 'slow'}),
    'the launcher starts the worker again');
is($node->safe_psql('postgres', q{SELECT projections.wait('slow', timeout => '60 s')}), 't',
    'and it finishes the projection');
is($node->safe_psql('postgres', q{
        SELECT (SELECT count(*) FROM slow_seen) = (SELECT count(*) FROM projections.events)}),
    't', 'every event applied once');

$node->stop;
done_testing();
