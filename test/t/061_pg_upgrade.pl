# pg_upgrade keeps transaction ids: projections resume from their
# checkpoints in the upgraded cluster, the ordering-key offset stays where it
# was, nothing is applied twice or missed.
use strict;
use warnings;
use Cwd;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $old = preloaded_node('old');
$old->start;
$old->safe_psql('postgres', $SEEN);
$old->safe_psql('postgres',
    q{SELECT count(projections.append('s-' || (i % 9), 'E', '{}')) FROM generate_series(1, 500) i});
is($old->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '60 s')}), 't',
    'the old cluster applies the history');
$old->safe_psql('postgres', q{SELECT projections.pause('seen')});
$old->safe_psql('postgres',
    q{SELECT count(projections.append('s-' || (i % 9), 'E', '{}')) FROM generate_series(1, 100) i});
my $status = $old->safe_psql('postgres', q{SELECT position, checkpoint_key FROM projections.status});
$old->stop;

my $new = preloaded_node('new');
my $bindir = $new->config_data('--bindir');
my $cwd = getcwd();
chdir $new->basedir;
command_ok(
    [
        'pg_upgrade', '--no-sync',
        '-d', $old->data_dir, '-D', $new->data_dir,
        '-b', $bindir, '-B', $bindir,
        '-s', $new->host, '-p', $old->port, '-P', $new->port
    ],
    'pg_upgrade');
chdir $cwd;
$new->start;

is($new->safe_psql('postgres', q{SELECT position, checkpoint_key FROM projections.status}), $status,
    'the checkpoint is carried over');
is($new->safe_psql('postgres', 'SELECT key_offset FROM projections.key_offset'), '0',
    'transaction ids kept: the key offset did not move');
$new->safe_psql('postgres', q{SELECT projections.resume('seen')});
$new->safe_psql('postgres',
    q{SELECT count(projections.append('s-' || (i % 9), 'E', '{}')) FROM generate_series(1, 100) i});
is($new->safe_psql('postgres', q{SELECT projections.wait('seen', timeout => '60 s')}), 't',
    'the upgraded cluster applies pending and new events');
is($new->safe_psql('postgres', q{SELECT count(*) || '|' || count(DISTINCT pos) FROM seen}), '700|700',
    'every event applied exactly once');
unlike(slurp_file($new->logfile), qr/ordering keys moved forward/, 'no key offset move');

$new->stop;
done_testing();
