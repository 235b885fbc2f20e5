# pg_dump of a database with events, projections and read models, restored
# into a fresh cluster whose transaction ids are far lower: checkpoints are
# kept, nothing is re-applied or skipped, pending events are applied once,
# new appends are applied in order, and nothing stalls (the ordering-key
# offset moves forward).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $schema = q{
    CREATE EXTENSION projections;
    CREATE TABLE counts (stream_id text PRIMARY KEY, n integer NOT NULL);
    CREATE TABLE seen (pos bigint PRIMARY KEY, stream_id text, version integer);
    CREATE TABLE inline_counts (stream_id text PRIMARY KEY, n integer NOT NULL);
    CREATE FUNCTION count_it(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO seen VALUES (e.global_position, e.stream_id, e.stream_version);
        INSERT INTO counts VALUES (e.stream_id, 1)
        ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1;
    END $$;
    CREATE FUNCTION count_inline(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO inline_counts VALUES (e.stream_id, 1)
        ON CONFLICT (stream_id) DO UPDATE SET n = inline_counts.n + 1
    $$;
    SELECT projections.register('counts', 'count_it(projections.events)');
    SELECT projections.register('inline_counts', 'count_inline(projections.events)', mode => 'inline');
};
my $append = q{
    SELECT count(projections.append('s-' || (i % 23), 'E', jsonb_build_object('i', i)))
    FROM generate_series(1, %d) i};

# the old cluster, its transaction ids pushed 3 million ahead
my $old = preloaded_node('old');
command_ok(['pg_resetwal', '-x', '3000000', $old->data_dir], 'move the old cluster\'s xids forward');
# pg_xact must hold the page for the new next xid (pg_resetwal leaves that to us)
open(my $fh, '>', $old->data_dir . '/pg_xact/0002') or die;
print $fh "\0" x (256 * 1024);
close $fh;
$old->start;
$old->safe_psql('postgres', 'CREATE DATABASE shop');
$old->safe_psql('shop', $schema);
$old->safe_psql('shop', sprintf($append, 1000));
is($old->safe_psql('shop', q{SELECT projections.wait('counts', timeout => '60 s')}), 't',
    'the old cluster applies 1,000 events');
# 200 more that the async projection has not applied when the dump is taken
$old->safe_psql('shop', q{SELECT projections.pause('counts')});
$old->safe_psql('shop', sprintf($append, 200));
my $old_key = $old->safe_psql('shop', 'SELECT max(ordering_key) FROM projections.events');
cmp_ok($old_key, '>', 3_000_000, 'old ordering keys are above 3 million');
my $old_status = $old->safe_psql('shop',
    q{SELECT name, position, events_applied, checkpoint_key FROM projections.status ORDER BY name});

my $dump = $old->basedir . '/shop.dump';
$old->command_ok(['pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('shop')], 'pg_dump');
$old->stop;

# a fresh cluster: transaction ids start low
my $new = preloaded_node('new');
$new->start;
cmp_ok($new->safe_psql('postgres', 'SELECT pg_current_xact_id()::text::bigint'), '<', 10_000,
    'the new cluster\'s xids are far lower');
$new->safe_psql('postgres', 'CREATE DATABASE shop');
$new->command_ok(['pg_restore', '--single-transaction', '--exit-on-error', '-d', $new->connstr('shop'), $dump],
    'pg_restore');

is($new->safe_psql('shop', 'SELECT count(*) FROM projections.events'), '1200', 'events restored');
is($new->safe_psql('shop', 'SELECT max(ordering_key) FROM projections.events'), $old_key,
    'ordering keys restored as they were');
is($new->safe_psql('shop',
        q{SELECT name, position, events_applied, checkpoint_key FROM projections.status ORDER BY name}),
    $old_status, 'projections and checkpoints restored');
is($new->safe_psql('shop', 'SELECT sum(n) FROM inline_counts'), '1200',
    'the restore did not apply restored events inline a second time');
is($new->safe_psql('shop', 'SELECT count(*) FROM seen'), '1000',
    'nor to the async projection');

# the async projection applies the 200 pending events, once
$new->safe_psql('shop', q{SELECT projections.resume('counts')});
is($new->safe_psql('shop', q{SELECT projections.wait('counts', timeout => '60 s')}), 't',
    'the async projection applies what was pending, without stalling');
is($new->safe_psql('shop', 'SELECT count(*) || \'|\' || count(DISTINCT pos) FROM seen'), '1200|1200',
    'each pending event applied once');

# new appends: keys above every restored key, applied in order by both
$new->safe_psql('shop', sprintf($append, 300));
cmp_ok($new->safe_psql('shop',
        q{SELECT min(ordering_key) FROM projections.events WHERE global_position > 1200}),
    '>', $old_key, 'new events get keys above the restored ones');
is($new->safe_psql('shop', q{SELECT projections.wait('counts', timeout => '60 s')}), 't',
    'new appends are applied: nothing stalls');
is($new->safe_psql('shop', 'SELECT count(*) || \'|\' || count(DISTINCT pos) FROM seen'), '1500|1500',
    'every event applied exactly once');
is($new->safe_psql('shop', q{
        SELECT count(*) FROM (SELECT stream_id, version,
                                     row_number() OVER (PARTITION BY stream_id ORDER BY pos) AS n
                              FROM seen) s WHERE version <> n}),
    '0', 'in stream order');
is($new->safe_psql('shop', q{
        WITH fold AS (SELECT stream_id, count(*)::integer AS n FROM projections.events GROUP BY 1)
        SELECT count(*) FROM ((SELECT * FROM fold EXCEPT ALL SELECT stream_id, n FROM counts)
                              UNION ALL (SELECT stream_id, n FROM counts EXCEPT ALL SELECT * FROM fold)) d}),
    '0', 'the async read model equals the fold (both ways)');
is($new->safe_psql('shop', q{
        WITH fold AS (SELECT stream_id, count(*)::integer AS n FROM projections.events GROUP BY 1)
        SELECT count(*) FROM ((SELECT * FROM fold EXCEPT ALL SELECT stream_id, n FROM inline_counts)
                              UNION ALL (SELECT stream_id, n FROM inline_counts EXCEPT ALL SELECT * FROM fold)) d}),
    '0', 'the inline read model equals the fold (both ways)');
like(slurp_file($new->logfile), qr/ordering keys moved forward/, 'the key offset moved forward once');

$new->stop;
done_testing();
