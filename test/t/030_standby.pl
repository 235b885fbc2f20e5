# Primary and streaming standby: the standby runs no worker and serves the
# read model as replicated; after promotion the worker starts there and
# resumes from the replicated checkpoint: nothing applied twice or missed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $primary = preloaded_node('primary', "projections.batch_size = 200\n",
    allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', $SEEN);
$primary->safe_psql('postgres', q{
    SELECT count(projections.append('s-' || (i % 7), 'E', jsonb_build_object('i', i)))
    FROM generate_series(1, 2000) i;
});
is($primary->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '60 s')}), 't',
    'the primary applies the history');

$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;

# more events while the standby follows
$primary->safe_psql('postgres', q{
    SELECT count(projections.append('s-' || (i % 7), 'E', jsonb_build_object('i', i)))
    FROM generate_series(2001, 3000) i});
is($primary->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '60 s')}), 't',
    'the primary applies the new events');
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('postgres', q{
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type IN ('projections worker', 'projections launcher')}),
    '0', 'the standby runs neither launcher nor worker');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM seen'), '3000',
    'the standby serves the replicated read model');
is($standby->safe_psql('postgres', q{SELECT state, lag FROM projections.status}), 'running|0',
    'and the replicated checkpoint in status');

# events the primary commits but never applies before it goes away
$primary->safe_psql('postgres', q{SELECT projections.pause('seen')});
$primary->safe_psql('postgres', q{
    SELECT count(projections.append('s-' || (i % 7), 'E', jsonb_build_object('i', i)))
    FROM generate_series(3001, 3500) i});
$primary->wait_for_catchup($standby);
$primary->stop('immediate');

$standby->promote;
$standby->safe_psql('postgres', q{SELECT projections.resume('seen')});
ok($standby->poll_query_until('postgres', q{
        SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'projections worker'}),
    'after promotion a worker starts');
$standby->safe_psql('postgres', q{
    SELECT count(projections.append('s-' || (i % 7), 'E', jsonb_build_object('i', i)))
    FROM generate_series(3501, 4000) i});
is($standby->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '60 s')}), 't',
    'the promoted server applies what was pending and what is new');
is($standby->safe_psql('postgres', q{
        SELECT count(*) || '|' || count(DISTINCT pos) || '|' || (SELECT count(*) FROM projections.events)
        FROM seen}),
    '4000|4000|4000', 'every event applied exactly once across the promotion');
is($standby->safe_psql('postgres', q{
        SELECT count(*) FROM (
            SELECT stream_id, version, row_number() OVER (PARTITION BY stream_id ORDER BY pos) AS n
            FROM seen) s WHERE version <> n}),
    '0', 'each stream applied in version order');

$standby->stop;
done_testing();
