# Exactly once across crashes: a projection registered on a history of
# 200,000 events catches up while its worker is killed with SIGKILL several
# times and the server is stopped in immediate mode once.  Afterwards the
# read model equals the handler folded once over the events, and the
# checkpoint equals the head.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;
use Time::HiRes qw(usleep);

my $events = 200_000;

my $node = preloaded_node('crash', qq{
projections.batch_size = 500
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE TABLE totals (stream_id text PRIMARY KEY, events integer NOT NULL,
                         amount bigint NOT NULL, last_version integer NOT NULL);
    CREATE TABLE seen (pos bigint PRIMARY KEY);
    CREATE FUNCTION fold(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO seen VALUES (e.global_position);   -- a second application would fail here
        INSERT INTO totals VALUES (e.stream_id, 1, (e.data->>'amount')::bigint, e.stream_version)
        ON CONFLICT (stream_id) DO UPDATE
            SET events = totals.events + 1,
                amount = totals.amount + excluded.amount,
                last_version = CASE WHEN excluded.last_version = totals.last_version + 1
                                    THEN excluded.last_version
                                    ELSE -1000000 END;  -- out of order: poisoned for good
    END $$;
});

# the history, in 20 transactions
for my $i (1 .. 20)
{
    $node->safe_psql('postgres', qq{
        INSERT INTO projections.events (stream_id, event_type, data)
        SELECT 'account-' || (g % 997), 'Moved', jsonb_build_object('amount', g % 101)
        FROM generate_series(1, $events / 20) g});
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM projections.events'), $events,
    "history of $events events");

$node->safe_psql('postgres', q{SELECT projections.register('totals', 'fold(projections.events)')});

sub worker_pid
{
    return $node->safe_psql('postgres',
        q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'projections worker'
          AND datname = 'postgres'});
}

sub applied
{
    my $n = $node->safe_psql('postgres',
        q{SELECT coalesce((SELECT position FROM projections.status), 0)});
    return $n eq '' ? 0 : $n;
}

# wait until the server accepts connections and the worker has moved past $floor
sub wait_progress
{
    my ($floor) = @_;
    for (1 .. 600)
    {
        my $ok = eval { applied() > $floor };
        return 1 if $ok;
        usleep(100_000);
    }
    return 0;
}

my $last = 0;
my $kills = 0;
for my $round (1 .. 4)
{
    ok(wait_progress($last), "round $round: the worker makes progress");
    my $pid = worker_pid();
    last if $pid eq '';
    $last = applied();
    last if $last >= $events;
    kill 'KILL', $pid;
    $kills++;
    # the postmaster restarts every process after a crash; meanwhile psql
    # may exit before it reads the query on its standard input, and IPC::Run
    # then dies of the broken pipe: poll inside eval
    my $back = 0;
    for (1 .. 600)
    {
        $back = eval { $node->safe_psql('postgres', 'SELECT 1') eq '1' };
        last if $back;
        usleep(100_000);
    }
    $back or die "server did not come back";
}
cmp_ok($kills, '>=', 3, 'the worker was killed during catch-up at least three times');

ok(wait_progress(applied()), 'progress after the kills');
$node->stop('immediate');
$node->start;

ok($node->poll_query_until('postgres',
        q{SELECT lag = 0 AND position = head FROM projections.status}, 't'),
    'the projection catches up after the immediate shutdown');

is($node->safe_psql('postgres', q{SELECT state, last_error IS NULL FROM projections.status}),
    'running|t', 'running, no error');
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), $events,
    'every event applied exactly once');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM (
        SELECT stream_id, count(*)::integer AS events, sum((data->>'amount')::bigint) AS amount,
               max(stream_version) AS last_version
        FROM projections.events GROUP BY stream_id
        EXCEPT
        SELECT stream_id, events, amount, last_version FROM totals) d}),
    '0', 'the read model equals the fold of the events, every stream in version order');
is($node->safe_psql('postgres', 'SELECT count(*) FROM totals'), '997', 'no stream missing');
is($node->safe_psql('postgres',
        'SELECT position = projections.head() AND checkpoint_key < projections._safe_key() FROM projections.status'),
    't', 'the checkpoint is at the head');

my $log = slurp_file($node->logfile);
my @crashes = ($log =~ /was terminated by signal 9/g);
cmp_ok(scalar(@crashes), '>=', 3, 'the log shows the kills');
unlike($log, qr/PANIC|TRAP:/, 'no PANIC or assertion failure');

$node->stop;
done_testing();
