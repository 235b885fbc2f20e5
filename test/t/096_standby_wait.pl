# Read-your-writes on a hot standby: after each of 200 appends on the
# primary, wait() on the standby returns true only once the standby's read
# model holds the event (async and inline projections); wait_for_lsn()
# does the same without positions; a standby whose replay is paused makes
# wait() time out; status, head(), read_stream() and stream_version() work
# in read-only transactions there.  The latency of wait() on the standby
# (from the append's commit) and the CPU a waiting session uses are printed.
use strict;
use warnings;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $primary = preloaded_node('primary', '', allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', $SEEN);
$primary->safe_psql('postgres', q{
    CREATE TABLE seen_inline (pos bigint PRIMARY KEY);
    CREATE FUNCTION see_inline(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO seen_inline VALUES (e.global_position) $$;
    SELECT projections.register('seen_inline', 'see_inline(projections.events)', mode => 'inline');});
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
# (a wait holds a snapshot: with feedback, the primary's cleanup never
# conflicts with it; see the README)
$standby->append_conf('postgresql.conf', "hot_standby_feedback = on\n");
$standby->start;

my $writer = $primary->background_psql('postgres');
my $reader = $standby->background_psql('postgres');
my ($async_ok, $inline_ok, $visible_ok) = (0, 0, 0);
my @latency;
for my $i (1 .. 200)
{
    my $pos = $writer->query_safe(qq{SELECT projections.append('s-' || ($i % 5), 'E', '{}')});
    chomp $pos;
    my $t0 = time();
    my $r = $reader->query_safe(qq{SELECT projections.wait('seen', $pos, '30 s')});
    push @latency, time() - $t0;
    chomp $r;
    $async_ok++ if $r eq 't';
    # the next statement sees the read model the wait saw
    my $row = $reader->query_safe(qq{
        SELECT (SELECT count(*) FROM seen WHERE pos = $pos) || '|'
               || projections.wait('seen_inline', $pos, '30 s')::text});
    chomp $row;
    my $inline = $reader->query_safe(qq{SELECT count(*) FROM seen_inline WHERE pos = $pos});
    chomp $inline;
    $visible_ok++ if $row eq '1|true';
    $inline_ok++ if $inline eq '1';
}
is($async_ok, 200, 'wait() on the standby returned true after each of 200 appends');
is($visible_ok, 200, '... and the event was then in the standby\'s read model, every time');
is($inline_ok, 200, 'an inline projection too');
my @sorted = sort { $a <=> $b } @latency;
diag(sprintf('wait() on the standby after an append: median %.1f ms, p95 %.1f ms, max %.1f ms',
    1000 * $sorted[100], 1000 * $sorted[189], 1000 * $sorted[-1]));

# without a position: the primary's WAL position after the write
my $lsn = $writer->query_safe(q{
    SELECT projections.append('lsn', 'E', '{}');
    SELECT pg_current_wal_insert_lsn()});
($lsn) = $lsn =~ /([0-9A-F]+\/[0-9A-F]+)\s*$/;
is($reader->query_safe(qq{SELECT projections.wait_for_lsn('$lsn', timeout => '30 s')}) =~ s/\s+//gr,
    't', 'wait_for_lsn(): the standby has replayed the write and every projection has applied it');
# (the next statement: a statement sees the data as of its start)
is($reader->query_safe(q{
        SELECT count(*) FROM seen s JOIN projections.events e ON e.global_position = s.pos
        WHERE e.stream_id = 'lsn'}) =~ s/\s+//gr, '1', '... the event is in the standby\'s read model');

# read-only there, and writing nothing
like($reader->query_safe(q{
        BEGIN READ ONLY;
        SELECT name || '|' || state || '|' || worker_state FROM projections.status WHERE name = 'seen';
        COMMIT;}), qr/^seen\|running\|on the primary/m,
    'status works in a read-only transaction, and says the worker runs on the primary');
is($reader->query_safe(q{
        BEGIN READ ONLY;
        SELECT projections.head() > 0, (SELECT count(*) FROM projections.read_stream('lsn')),
               projections.stream_version('lsn');
        COMMIT;}) =~ s/\s+//gr, 't|1|1', 'head(), read_stream() and stream_version() too');

# a paused standby: wait() times out, then succeeds once replay resumes
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
ok($standby->poll_query_until('postgres', q{SELECT pg_get_wal_replay_pause_state() = 'paused'}),
    'replay is paused');
my $pos = $writer->query_safe(q{SELECT projections.append('paused', 'E', '{}')});
chomp $pos;
is($primary->safe_psql('postgres', qq{SELECT projections.wait('seen', $pos, '30 s')}), 't',
    'the primary has applied the event');

# the CPU a waiting session uses while nothing is replayed
my $reader_pid = $reader->query_safe('SELECT pg_backend_pid()');
chomp $reader_pid;
sub cpu_ticks
{
    my @f = split ' ', slurp_file("/proc/$reader_pid/stat");
    return $f[13] + $f[14];
}
my $ticks = cpu_ticks();
my $t0 = time();
is($reader->query_safe(qq{SELECT projections.wait('seen', $pos, '2 s')}) =~ s/\s+//gr, 'f',
    'wait() on a paused standby times out and returns false');
my $waited = time() - $t0;
diag(sprintf('a wait() on a standby used %.1f%% of a core while waiting %.1f s',
    100 * (cpu_ticks() - $ticks) / 100 / $waited, $waited));
is($reader->query_safe(qq{SELECT count(*) FROM seen WHERE pos = $pos}) =~ s/\s+//gr, '0',
    '... the event is not there yet');
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
is($reader->query_safe(qq{SELECT projections.wait('seen', $pos, '30 s')}) =~ s/\s+//gr, 't',
    'replay resumed: wait() returns true');
is($reader->query_safe(qq{SELECT count(*) FROM seen WHERE pos = $pos}) =~ s/\s+//gr, '1',
    'and the event is there');

$writer->quit;
$reader->quit;
unlike(slurp_file($standby->logfile), qr/TRAP:|PANIC|terminated by signal/, 'no crash on the standby');
$standby->stop;
$primary->stop;
done_testing();
