# What an administrator runs into: a long transaction or a forgotten
# prepared transaction holding projections back (status names it, the log
# warns after projections.stall_warning, and they resume by themselves when
# it ends), and running out of background worker slots (a clear log line, a
# status that says so, no crash, and the worker starts once a slot frees).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

# one free worker slot: the launcher and the logical replication launcher
# take two of three
my $node = preloaded_node('operations', qq{
projections.stall_warning = '1s'
max_prepared_transactions = 5
max_worker_processes = 3
max_parallel_workers = 0
log_min_messages = debug1
});
$node->start;

$node->safe_psql('postgres', $SEEN);
$node->safe_psql('postgres', q{SELECT projections.append('s', 'E', '{}')});
is($node->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '30 s')}), 't',
    'the worker runs');

# --- a long transaction holds the safe key back
$node->safe_psql('postgres', 'CREATE TABLE scratch (x integer)');
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN; INSERT INTO scratch VALUES (1)');
my $open_pid = $open->query_safe('SELECT pg_backend_pid()');
chomp $open_pid;
$node->safe_psql('postgres', q{SELECT projections.append('s', 'E', '{}')});
ok($node->poll_query_until('postgres', qq{
        SELECT blocked_by_pid = $open_pid AND lag = 1 FROM projections.status}),
    'status names the open transaction\'s pid while an event waits behind it');
like($node->safe_psql('postgres', q{SELECT blocked_by FROM projections.status}),
    qr/^transaction \d+ of pid $open_pid \(idle in transaction, open for/,
    'with its transaction id, state and age');
ok($node->wait_for_log(qr/WARNING:  projections are held back by transaction \d+ of pid $open_pid/),
    'after projections.stall_warning the log warns, naming it');
$open->query_safe('COMMIT');
is($node->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '30 s')}), 't',
    'when it ends, the projection resumes by itself');
is($node->safe_psql('postgres', q{SELECT blocked_by IS NULL FROM projections.status}), 't',
    'and status no longer names it');

# --- a forgotten prepared transaction
$open->query_safe(q{BEGIN; INSERT INTO scratch VALUES (2); PREPARE TRANSACTION 'forgotten'});
$node->safe_psql('postgres', q{SELECT projections.append('s', 'E', '{}')});
ok($node->poll_query_until('postgres', q{
        SELECT blocked_by_gid = 'forgotten' AND blocked_by_pid IS NULL FROM projections.status}),
    'status names the prepared transaction by its gid');
ok($node->wait_for_log(qr/WARNING:  projections are held back by prepared transaction 'forgotten'/,
        length(slurp_file($node->logfile))),
    'the log warns about it');
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'forgotten'});
is($node->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '30 s')}), 't',
    'ROLLBACK PREPARED: the projection resumes');
$open->quit;

# --- out of background worker slots: the second database waits for a slot
my $before = length(slurp_file($node->logfile));
$node->safe_psql('postgres', 'CREATE DATABASE second');
$node->safe_psql('second', $SEEN);
$node->safe_psql('second', q{SELECT projections.append('s', 'E', '{}')});
ok($node->wait_for_log(qr/WARNING:  projections: no background worker slot free for database/, $before),
    'a clear log line when no worker slot is free');
ok($node->poll_query_until('second',
        q{SELECT worker_state = 'waiting for a background worker slot' FROM projections.status}),
    'status says the worker waits for a slot');
is($node->safe_psql('second', q{SELECT projections.wait('seen', timeout => '1 s')}), 'f',
    'meanwhile nothing is applied there');
# the launcher retries (every 5 s): wait for two more attempts
my $attempts = length(slurp_file($node->logfile));
for my $n (1 .. 2)
{
    ok($node->wait_for_log(qr/projections launcher: no background worker slot for database/, $attempts),
        "the launcher tried again ($n)");
    $attempts = length(slurp_file($node->logfile));
}
my @lines = (substr(slurp_file($node->logfile), $before) =~ /no background worker slot free/g);
is(scalar(@lines), 1, 'the line is logged once, not at every retry');

# free the slot: drop the extension in the first database
$node->safe_psql('postgres', 'DROP EXTENSION projections CASCADE');
is($node->safe_psql('second', q{SELECT projections.wait('seen', timeout => '30 s')}), 't',
    'once a slot frees, the waiting database gets its worker');
is($node->safe_psql('second', q{SELECT worker_state FROM projections.status}), 'running',
    'and status says so');
unlike(slurp_file($node->logfile), qr/was terminated by signal|PANIC|TRAP:/, 'no crash');

$node->stop;
done_testing();
