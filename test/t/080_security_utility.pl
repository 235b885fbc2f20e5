# The ProcessUtility hook stops a database's worker for the commands that
# need the database to themselves.  Privileges are checked before any side
# effect: a role that may not run the command does not get the worker
# stopped.  And a command cancelled while the hook waits for the worker
# leaves nothing behind: the worker comes back.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $node = preloaded_node('security_utility', q{
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', q{
    CREATE ROLE dbowner LOGIN;    -- owns the victim database, may not create databases
    CREATE ROLE nobody LOGIN;     -- owns nothing, may nothing
    CREATE DATABASE victim OWNER dbowner;
});
$node->safe_psql('victim', $SEEN);
$node->safe_psql('victim', q{SELECT projections.append('s', 'E', '{}')});
is($node->safe_psql('victim', q{SELECT projections.wait('seen', timeout => '60 s')}), 't',
	'the victim database has a worker');

sub worker_pid
{
	return $node->safe_psql('postgres', q{
        SELECT coalesce(max(pid), 0) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'victim'});
}

# --- commands a role without the privilege runs: refused, worker untouched
for my $cmd (
	'DROP DATABASE victim',
	'DROP DATABASE victim WITH (FORCE)',
	'ALTER DATABASE victim RENAME TO renamed',
	'ALTER DATABASE victim SET TABLESPACE pg_default',
	'CREATE DATABASE copycat TEMPLATE victim')
{
	my $pid = worker_pid();
	my $offset = -s $node->logfile;
	my ($ret, $out, $err) = psql_as($node, 'postgres', 'nobody', "$cmd;", timeout => 60);
	ok(defined $ret && $ret != 0, "$cmd by a role without the privilege fails");
	# (had it been stopped, the launcher would start it again: wait for that)
	poll_until($node, 'postgres', q{
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'victim'}, '1', 30);
	is(worker_pid(), $pid, "$cmd by a role without the privilege: the worker keeps running (same pid)");
	unlike(slurp_file($node->logfile, $offset),
		qr/terminating background worker "projections worker"|projections worker started for database "victim"/,
		"$cmd by a role without the privilege: the log shows no worker stopped or started");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'victim'}),
	'1', 'the victim database is still there');

# --- the owner's DROP DATABASE, cancelled while the hook waits for the worker
poll_until($node, 'postgres', q{
    SELECT count(*) FROM pg_stat_activity
    WHERE backend_type = 'projections worker' AND datname = 'victim'}, '1', 30);
my $pid = worker_pid();
# (never signal pid 0: that is our own process group)
BAIL_OUT("no worker for database victim") unless $pid =~ /^[1-9][0-9]*$/;
# a stopped worker cannot exit: the hook waits until statement_timeout
# cancels the command
kill 'STOP', $pid;
my ($ret, $out, $err);
eval {
	($ret, $out, $err) = psql_as($node, 'postgres', 'dbowner', qq{
        SET statement_timeout = '1s';
        \\set VERBOSITY verbose
        DROP DATABASE victim;
    }, timeout => 60);
};
kill 'CONT', $pid;
die $@ if $@;
ok(defined $ret && $ret != 0, 'the owner\'s DROP DATABASE is cancelled') or diag($err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'victim'}),
	'1', 'the database is still there');
ok(poll_until($node, 'postgres', qq{
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'victim' AND pid <> $pid}, '1', 30),
	'after the cancelled DROP DATABASE the database\'s worker comes back');
ok(poll_until($node, 'victim',
		q{SELECT worker_state FROM projections.status WHERE name = 'seen'}, 'running', 10),
	'status says it runs');
$node->safe_psql('victim', q{SELECT projections.append('s', 'E', '{}')});
is($node->safe_psql('victim', q{SELECT projections.wait('seen', timeout => '10 s')}), 't',
	'and it applies events again');

# the owner may drop it, and the worker goes
my ($r2, $o2, $e2) = psql_as($node, 'postgres', 'dbowner', 'DROP DATABASE victim;', timeout => 60);
is($r2, 0, 'the owner drops the database') or diag($e2);
is(worker_pid(), '0', 'and its worker is gone');

unlike(slurp_file($node->logfile), qr/was terminated by signal|PANIC|TRAP:/, 'no crash');
$node->stop;
done_testing();
