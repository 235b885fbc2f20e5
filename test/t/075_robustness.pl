# Bugs of 0.2.0 found in review that need a running worker, a prepared
# transaction or another message language to show; each check here failed
# on 0.2.0.
use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

# A German locale of our own (LOCPATH), for the message-language check.
my $locales = tempdir(CLEANUP => 1);
my $have_de = system("localedef -i de_DE -f UTF-8 $locales/de_DE.UTF-8 >/dev/null 2>&1") == 0;
$ENV{LOCPATH} = $locales if $have_de;

my $node = preloaded_node('robustness', qq{
projections.batch_size = 1
projections.max_databases = 2
projections.workers_per_database = 1
max_prepared_transactions = 2
});
$node->start;
$node->safe_psql('postgres', $SEEN);

# --- wait() keeps its memory flat however long it waits (0.2.0 leaked one
# SPI result per poll: about 8 kB each time a batch woke it)
$node->safe_psql('postgres', q{
    CREATE TABLE slow_seen (pos bigint PRIMARY KEY);
    CREATE FUNCTION slow(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO slow_seen VALUES (e.global_position);
        PERFORM pg_sleep(0.005);
    END $$;
    SELECT projections.pause('seen');
    SELECT projections.register('slow', 'slow(projections.events)');
    SELECT count(projections.append('s', 'E', '{}')) FROM generate_series(1, 400);});
my $waiter = $node->background_psql('postgres');
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
chomp $waiter_pid;
$waiter->query_until(qr/waiting/, qq{\\echo waiting\nSELECT projections.wait('slow', NULL, '120 s');\n});

# the waiter's memory, as pg_log_backend_memory_contexts() reports it
sub waiter_memory
{
    my $offset = length(slurp_file($node->logfile));
    $node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($waiter_pid)");
    $node->wait_for_log(qr/Grand total: \d+ bytes/, $offset);
    my ($bytes) = substr(slurp_file($node->logfile), $offset) =~ /Grand total: (\d+) bytes/;
    return $bytes;
}
ok($node->poll_query_until('postgres', q{SELECT position >= 50 FROM projections.status WHERE name = 'slow'}),
    'the worker applies, one event per batch, waking the waiter each time');
my $early = waiter_memory();
ok($node->poll_query_until('postgres', q{SELECT position >= 250 FROM projections.status WHERE name = 'slow'}),
    '200 batches later');
my $late = waiter_memory();
cmp_ok($late - $early, '<', 64 * 1024, "the waiter's memory stayed flat ($early -> $late bytes)");
$waiter->quit;

# --- a projection registered in a prepared transaction is applied once
# COMMIT PREPARED commits it (0.2.0 dropped the catalog change at PREPARE:
# the worker did not look again until the poll interval)
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET projections.poll_interval = '1h'; SELECT pg_reload_conf();
    SELECT projections.unregister('slow');});
$node->safe_psql('postgres', q{
    CREATE TABLE late_seen (pos bigint PRIMARY KEY);
    CREATE FUNCTION late(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO late_seen VALUES (e.global_position) $$;
    BEGIN;
    SELECT projections.register('late', 'late(projections.events)');
    PREPARE TRANSACTION 'registers';});
$node->safe_psql('postgres', q{COMMIT PREPARED 'registers'});
is($node->safe_psql('postgres', q{SELECT projections.wait('late', timeout => '20 s')}), 't',
    'a projection registered by a prepared transaction is applied after COMMIT PREPARED');
$node->safe_psql('postgres', q{
    ALTER SYSTEM RESET projections.poll_interval; SELECT pg_reload_conf();});

# --- an inline handler's error reads as append()'s own, whatever the
# message language (0.2.0 compared the English text of SPI's context line)
SKIP:
{
    skip 'no German locale could be built here', 2 unless $have_de;
    my ($ret, $out, $err) = $node->psql('postgres',
        q{SET lc_messages = 'de_DE.UTF-8'; SELECT 1/0});
    skip 'this server has no message translations', 2 unless $err =~ /Division durch Null/;

    $node->safe_psql('postgres', q{
        CREATE FUNCTION refuse(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'refused %', e.stream_id;
        END $$;
        SELECT projections.register('refuser', 'refuse(projections.events)', mode => 'inline',
                                    event_types => ARRAY['Refused']);});
    ($ret, $out, $err) = $node->psql('postgres', q{
        SET lc_messages = 'de_DE.UTF-8';
        SELECT projections.append('r-1', 'Refused', '{}')});
    like($err, qr/refused r-1.*inline projection "refuser" applying event/s,
        'the error names the handler and the event');
    unlike($err, qr/INSERT INTO projections\.events/,
        'and not the extension\'s own INSERT, in German too');
}

# --- the worker's repair of a stale key offset waits for its lock at most
# projections.inline_switch_timeout (it waited without bound, and every
# append queued behind it, while one appender sat idle in its transaction)
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET projections.inline_switch_timeout = '5s'; SELECT pg_reload_conf();});
my $idle = $node->background_psql('postgres');
$idle->query_safe(q{BEGIN; SELECT projections.append('idle', 'E', '{}')});
$node->safe_psql('postgres', q{
    SET session_replication_role = replica;
    INSERT INTO projections.events (global_position, stream_id, stream_version, event_type,
                                    data, metadata, recorded_at, ordering_key)
    VALUES (5000000, 'restored', 1, 'E', '{}', '{}', now(), 900000000000);
    RESET session_replication_role;
    SELECT projections.register('offset_poke', 'late(projections.events)');});
poll_until($node, 'postgres', q{
    SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE a.backend_type = 'projections worker' AND NOT l.granted
      AND l.relation = 'projections.events'::regclass}, 't', 30);
my ($ret, $out, $err) = $node->psql('postgres', q{
    \\set VERBOSITY verbose
    SET statement_timeout = '60s';
    SELECT projections.append('queued', 'E', '{}')});
is(sqlstate_of($err), '55000',
    'an append does not queue behind the waiting repair: it is refused (the offset is stale) once the worker gives up')
    or diag($err);
$idle->query_safe('ROLLBACK');
$idle->quit;
poll_until($node, 'postgres', q{SELECT key_offset > 0 FROM projections.key_offset}, 't', 30);
ok($node->safe_psql('postgres', q{SELECT projections.append('after', 'E', '{}')}) > 0,
    'once the appender is gone the worker repairs the offset, and appends work');
$node->safe_psql('postgres', q{
    SELECT projections.unregister('offset_poke');
    ALTER SYSTEM RESET projections.inline_switch_timeout; SELECT pg_reload_conf();});

# --- a launcher that starts again (it was terminated, or exited on an
# error) takes over the workers it finds running (0.2.0 started a second
# worker for each database, each in a slot of its own, until none was left:
# here, with projections.max_databases = 2, none for a new database)
my $launcher = $node->safe_psql('postgres',
    q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'projections launcher'});
my $offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok($node->wait_for_log(qr/projections launcher started/, $offset),
    'the launcher starts again after it was terminated');
$node->safe_psql('postgres', q{CREATE DATABASE later});
$node->safe_psql('later', q{CREATE EXTENSION projections});
poll_until($node, 'postgres', q{
    SELECT count(*) FROM pg_stat_activity
    WHERE backend_type = 'projections worker' AND datname = 'later'}, '1', 60);
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'later'}),
    '1', 'a database that gets the extension afterwards gets its worker');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'postgres'}),
    '1', 'and the database served before has one worker still');

$node->stop;
done_testing();
