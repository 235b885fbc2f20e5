# Shared by the Perl TAP tests of projections (test/t/*.pl).
package ProjectionsTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(preloaded_node $SEEN);

# A cluster with projections preloaded and a short poll interval, not yet
# started; $conf is appended to postgresql.conf, %init goes to init().
sub preloaded_node
{
	my ($name, $conf, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'projections'
projections.poll_interval = '100ms'
} . ($conf // ''));
	return $node;
}

# The extension and a projection "seen" that records every event it is
# given, once (a second application would violate the primary key).
our $SEEN = q{
    CREATE EXTENSION projections;
    CREATE TABLE seen (pos bigint PRIMARY KEY, stream_id text, version integer);
    CREATE FUNCTION see(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO seen VALUES (e.global_position, e.stream_id, e.stream_version)
    $$;
    SELECT projections.register('seen', 'see(projections.events)');
};

1;
