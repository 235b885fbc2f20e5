# Trust boundaries: nothing a caller sets changes what the extension runs as
# its owner (a superuser).  An attacker with only the grants the README
# gives (an application role, and a projection owner with EXECUTE on every
# function) fills a schema of its own with operators, functions, aggregates
# and types named like pg_catalog's, arms each fresh session with domains
# and views of the same names in pg_temp, puts its schema before pg_catalog
# (and pg_temp first or in the middle), and calls each entry point.  The
# hostile objects report who runs them; run by a superuser they make the
# attacker a superuser.  After every attack the attacker must not be a
# superuser, and no hostile object may have run as anybody but the attacker.
# (The worker, which reads the database's settings, is in
# 080_security_worker.pl.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

# the worker is off: run() finds the events it is given
my $node = preloaded_node('security_search_path', q{
projections.enabled = off
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', q{CREATE EXTENSION projections;} . security_log_sql() . q{
    CREATE ROLE mallory LOGIN;      -- an application: what the README grants it
    CREATE ROLE oscar LOGIN;        -- a projection owner: every function
    CREATE ROLE bystander LOGIN;    -- another projection owner
    GRANT USAGE ON SCHEMA projections TO mallory, oscar, bystander;
    GRANT EXECUTE ON FUNCTION projections.append(text, text, jsonb, jsonb, integer),
                              projections.append_many(text, jsonb, integer),
                              projections.read_stream(text, integer),
                              projections.stream_version(text) TO mallory;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA projections TO oscar, bystander;
    CREATE SCHEMA evil_m AUTHORIZATION mallory;
    CREATE SCHEMA evil_o AUTHORIZATION oscar;
    CREATE SCHEMA ohome AUTHORIZATION oscar;
    CREATE SCHEMA byhome AUTHORIZATION bystander;
    SELECT projections.append('s1', 'E', '{}');
    SELECT projections.append('s1', 'E', '{}');
});
psql_as($node, 'postgres', 'mallory', hostile_schema_sql('evil_m', 'mallory'));
psql_as($node, 'postgres', 'oscar', hostile_schema_sql('evil_o', 'oscar'));

# the bystander's inline projection: the handler spells a type and a table
# unqualified, as handlers do
my ($ret, $out, $err) = psql_as($node, 'postgres', 'bystander', q{
    SET search_path = byhome;
    CREATE TABLE by_seen (pos bigint PRIMARY KEY, stream text);
    CREATE FUNCTION by_handler(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO by_seen VALUES (e.global_position, e.stream_id::text);
    END $$;
    SELECT projections.register('by_inline', 'by_handler(projections.events)',
                                event_types => '{ByE}', mode => 'inline');
});
is($ret, 0, 'the bystander registers an inline projection') or diag($err);

# oscar's projections, registered under an ordinary search_path
($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    SET search_path = ohome;
    CREATE TABLE seen (pos bigint);
    CREATE FUNCTION h(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO ohome.seen (pos) VALUES (e.global_position) $$;
    CREATE FUNCTION r() RETURNS void LANGUAGE sql AS $$ TRUNCATE ohome.seen $$;
    SELECT projections.register('o_run', 'h(projections.events)', event_types => '{E}');
    SELECT projections.register('o_wait', 'h(projections.events)', event_types => '{E}');
    SELECT projections.register('o_pr', 'h(projections.events)', event_types => '{E}');
    SELECT projections.register('o_rb', 'h(projections.events)', event_types => '{E}',
                                reset => 'r()');
    SELECT projections.register('o_mode', 'h(projections.events)', event_types => '{OnlyO}');
    SELECT projections.register('o_unreg_' || i, 'h(projections.events)',
                                event_types => '{OnlyO}')
    FROM generate_series(1, 3) i;
});
is($ret, 0, 'oscar registers his projections') or diag($err);

my @variants = (
	[ 1, '%s, pg_catalog' ],
	[ 2, 'pg_temp, %s, pg_catalog' ],
	[ 3, '%s, pg_temp, pg_catalog' ],
);

# Run one attack per search_path variant, each in a fresh session of
# $role; $sql is a template in which %i is the variant number.
# $opts{before} and $opts{after} run (as the superuser, with ordinary
# settings) around each attack; with $opts{works} = 0 the call need not
# succeed.
sub attack_entry
{
	my ($title, $role, $schema, $sql, %opts) = @_;
	my @found;
	my @failed_calls;
	for my $v (@variants)
	{
		my ($i, $path_tmpl) = @$v;
		my $path = sprintf($path_tmpl, $schema);
		$node->safe_psql('postgres', $opts{before} =~ s/%i/$i/gr) if $opts{before};
		my $offset = -s $node->logfile;
		my $attack_sql = $sql =~ s/%i/$i/gr;
		my ($r, $o, $e) = attack($node, 'postgres', $role, $schema, $path, $attack_sql);
		push @failed_calls, "search_path $path: " . ($e =~ s/\n/ /gr)
		  if $opts{works} // 1 and (!defined $r || $r != 0 || $e =~ /ERROR:/);
		push @found, map { "search_path $path: $_" }
		  @{ escalations($node, 'postgres', $role, $offset) };
		$node->safe_psql('postgres', $opts{after} =~ s/%i/$i/gr) if $opts{after};
	}
	is_deeply(\@found, [], "$title: no escalation") or diag(join("\n", @found));
	is_deeply(\@failed_calls, [], "$title: the call works under hostile settings")
	  or diag(join("\n", @failed_calls))
	  if $opts{works} // 1;
}

# --- the application role: what the README grants it, and what PUBLIC may call
attack_entry('append', 'mallory', 'evil_m',
	q{SELECT projections.append('s1', 'E', '{}') > 0;});
attack_entry('append_many', 'mallory', 'evil_m',
	q{SELECT projections.append_many('s1', '[{"type": "E", "data": {}}, {"type": "E", "data": {}}]');});
attack_entry('read_stream', 'mallory', 'evil_m',
	q{SELECT global_position FROM projections.read_stream('s1', 2);});
attack_entry('stream_version', 'mallory', 'evil_m',
	q{SELECT projections.stream_version('s1');});
attack_entry('status view (application role)', 'mallory', 'evil_m',
	q{SELECT name, state, lag, blocked_by, worker_state FROM projections.status;});
attack_entry('failed_events view', 'mallory', 'evil_m',
	q{SELECT projection, global_position FROM projections.failed_events;});
attack_entry('_safe_key()', 'mallory', 'evil_m',
	q{SELECT projections._safe_key() > 0;});
# (called directly, not from the trigger, it looks up the handlers as the
# caller, who may not see the owner's schema: only escalation counts here)
attack_entry('_inline_wanted()', 'mallory', 'evil_m',
	q{SELECT projections._inline_wanted('ByE');}, works => 0);
attack_entry('_horizon_holder()', 'mallory', 'evil_m',
	q{SELECT xid IS NOT NULL FROM projections._horizon_holder();});
attack_entry('_worker_status()', 'mallory', 'evil_m',
	q{SELECT state FROM projections._worker_status();});
attack_entry('inline trigger (another owner\'s inline projection)', 'mallory', 'evil_m',
	q{SELECT projections.append('by-%i', 'ByE', '{}') > 0;});
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM projections.events e
        WHERE e.event_type = 'ByE'
          AND NOT EXISTS (SELECT FROM byhome.by_seen s WHERE s.pos = e.global_position)}),
	'0', 'the inline projection applied every event the attacker appended');

# --- a projection owner attacking through its own projections
attack_entry('head()', 'oscar', 'evil_o', q{SELECT projections.head() > 0;});
attack_entry('status view (projection owner)', 'oscar', 'evil_o',
	q{SELECT name, state, lag, blocked_by, worker_state FROM projections.status;});
attack_entry('wait()', 'oscar', 'evil_o',
	q{SET client_min_messages = error; SELECT projections.wait('o_wait', timeout => '10 ms') IS NOT NULL;},
	before => q{SELECT projections.append('s1', 'E', '{}')});
attack_entry('run()', 'oscar', 'evil_o', q{SELECT projections.run('o_run') > 0;},
	before => q{SELECT projections.append('s1', 'E', '{}')});
attack_entry('register()', 'oscar', 'evil_o', q{
    SET client_min_messages = error;
    SELECT projections.register('o_reg_a_%i', 'ohome.h(projections.events)',
                                event_types => '{OnlyO}');
    SELECT projections.register('o_reg_i_%i', 'ohome.h(projections.events)',
                                event_types => '{OnlyO}', mode => 'inline');
},
	after => q{SELECT projections.unregister(name) FROM projections.projection
               WHERE name IN ('o_reg_a_%i', 'o_reg_i_%i')});
attack_entry('unregister()', 'oscar', 'evil_o', q{SELECT projections.unregister('o_unreg_%i');});
attack_entry('pause() and resume()', 'oscar', 'evil_o', q{
    SET client_min_messages = error;
    SELECT projections.pause('o_pr');
    SELECT projections.resume('o_pr');
});
attack_entry('rebuild()', 'oscar', 'evil_o', q{
    SET client_min_messages = error;
    SELECT projections.rebuild('o_rb');
});
attack_entry('set_mode()', 'oscar', 'evil_o', q{
    SET client_min_messages = error;
    SELECT projections.set_mode('o_mode', 'inline');
    SELECT projections.set_mode('o_mode', 'async');
});

is($node->safe_psql('postgres',
		q{SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolsuper AND rolname IN ('mallory', 'oscar', 'bystander')}),
	'', 'in the end nobody was made a superuser');

$node->stop;
done_testing();
