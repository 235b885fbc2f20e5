# Concurrent writers while the worker runs: pgbench clients append to shared
# streams inside transactions that sleep, roll back one time in ten, and
# deadlock now and then (retried).  Afterwards every committed event has
# been applied exactly once, each stream in version order, and no
# rolled-back event reached the read model.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $node = preloaded_node('concurrent', qq{
projections.poll_interval = '50ms'
projections.batch_size = 50
max_connections = 50
deadlock_timeout = '100ms'
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE TABLE seen (pos bigint PRIMARY KEY, stream_id text NOT NULL, version integer NOT NULL,
                       client integer NOT NULL, UNIQUE (stream_id, version));
    CREATE FUNCTION see(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF e.stream_version <> 1 + coalesce((SELECT max(version) FROM seen
                                             WHERE stream_id = e.stream_id), 0) THEN
            RAISE EXCEPTION 'stream % applied out of order: version % after %', e.stream_id,
                e.stream_version, (SELECT max(version) FROM seen WHERE stream_id = e.stream_id);
        END IF;
        INSERT INTO seen VALUES (e.global_position, e.stream_id, e.stream_version,
                                 (e.data->>'client')::integer);
    END $$;
    SELECT projections.register('seen', 'see(projections.events)');
});

$node->pgbench(
    '--no-vacuum --client=6 --jobs=2 --transactions=150 --max-tries=20',
    0,
    [qr/processed: 900\/900/],
    [qr/^(?:(?!ERROR|FATAL).)*$/s],
    'pgbench appends concurrently with sleeps, rollbacks and retried deadlocks',
    {
        'appends' => q{
\set s random(1, 12)
\set t random(1, 12)
\set r random(0, 9)
\set pause random(0, 3)
BEGIN;
SELECT projections.append('stream-' || :s, 'Moved', jsonb_build_object('client', :client_id));
\sleep :pause ms
SELECT projections.append('stream-' || :t, 'Moved', jsonb_build_object('client', :client_id));
SELECT projections.append('stream-' || :s, 'Moved', jsonb_build_object('client', :client_id));
\if :r = 0
ROLLBACK;
\else
COMMIT;
\endif
}
    });

is($node->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '60 s')}), 't',
    'the worker catches up');
is($node->safe_psql('postgres', q{SELECT state, last_error IS NULL FROM projections.status}),
    'running|t', 'no stream was ever applied out of order');
my $committed = $node->safe_psql('postgres', 'SELECT count(*) FROM projections.events');
cmp_ok($committed, '>', 1500, 'most transactions committed');
cmp_ok($committed, '<', 2700, 'some rolled back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), $committed,
    'every committed event applied exactly once');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM projections.events e FULL JOIN seen s ON s.pos = e.global_position
        WHERE s.pos IS NULL OR e.global_position IS NULL
           OR s.stream_id <> e.stream_id OR s.version <> e.stream_version}),
    '0', 'the read model holds exactly the committed events (no rolled-back one)');
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM (
            SELECT stream_id, stream_version,
                   row_number() OVER (PARTITION BY stream_id ORDER BY stream_version) AS n
            FROM projections.events) s WHERE stream_version <> n}),
    '0', 'stream versions have no gaps');

$node->stop;
done_testing();
