# Trust boundaries between roles and sessions:
# - DROP ROLE of a role that owns a projection is refused (2BP01), and the
#   role and its projection go on working;
# - switching a projection to or from inline while an appender's
#   transaction is open fails after projections.inline_switch_timeout
#   (55P03) instead of queueing every appender behind it;
# - what holds projections back (projections._horizon_holder() and the
#   status view's blocked_by columns) shows another role's pid, prepared
#   transaction and transaction age only to roles with pg_read_all_stats
#   and to that transaction's own user.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

# the worker is off (nothing moves the horizon but the test's sessions)
my $node = preloaded_node('security_sessions', q{
projections.enabled = off
projections.inline_switch_timeout = '500ms'
autovacuum = off
max_prepared_transactions = 5
});
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE ROLE projectors NOLOGIN;
    GRANT USAGE ON SCHEMA projections TO projectors;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA projections TO projectors;
    CREATE ROLE mallory LOGIN;
    GRANT USAGE ON SCHEMA projections TO mallory;
    GRANT EXECUTE ON FUNCTION projections.append(text, text, jsonb, jsonb, integer),
                              projections.append_many(text, jsonb, integer),
                              projections.read_stream(text, integer),
                              projections.stream_version(text) TO mallory;
    CREATE ROLE oscar LOGIN IN ROLE projectors;
    CREATE SCHEMA ohome AUTHORIZATION oscar;
});

# ---------------------------------------------------------------------------
# DROP ROLE of a projection's owner

# a role that owns nothing and was granted nothing itself (a privilege of
# its own would make DROP ROLE fail anyway): it registers, with what its
# group may do, a handler somebody else owns
$node->safe_psql('postgres', q{
    CREATE ROLE short_lived IN ROLE projectors;
    CREATE TABLE shared_seen (pos bigint PRIMARY KEY);
    GRANT INSERT ON shared_seen TO projectors;
    CREATE FUNCTION shared_see(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO public.shared_seen VALUES (e.global_position) $$;
    REVOKE EXECUTE ON FUNCTION shared_see(projections.events) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION shared_see(projections.events) TO projectors;
    SET ROLE short_lived;
    SELECT projections.register('short_p', 'public.shared_see(projections.events)',
                                event_types => '{RoleE}');
    RESET ROLE;
});
my ($ret, $out, $err) = $node->psql('postgres', qq{\\set VERBOSITY verbose\nDROP ROLE short_lived;});
is(sqlstate_of($err), '2BP01', 'DROP ROLE of a projection\'s owner is refused with 2BP01')
  or diag("psql returned $ret: $err");
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname = 'short_lived'}),
	'1', 'the role is still there');
my $pos = $node->safe_psql('postgres', q{SELECT projections.append('role', 'RoleE', '{}')});
($ret, $out, $err) = $node->psql('postgres', q{
    SET client_min_messages = error;
    SELECT projections.run('short_p')});
is($node->safe_psql('postgres', qq{SELECT count(*) FROM shared_seen WHERE pos = $pos}),
	'1', 'and its projection still applies events') or diag($err);
is($node->safe_psql('postgres', q{SELECT state FROM projections.status WHERE name = 'short_p'}),
	'running', 'and is running');

# ---------------------------------------------------------------------------
# Switching to or from inline does not wait for an open appender

($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    SET search_path = ohome;
    CREATE TABLE sw_seen (pos bigint);
    CREATE FUNCTION sw_see(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO ohome.sw_seen VALUES (e.global_position) $$;
    SET client_min_messages = error;
    SELECT projections.register('sw_async', 'sw_see(projections.events)', event_types => '{SwE}');
    SELECT projections.register('sw_inline_p', 'sw_see(projections.events)',
                                event_types => '{SwE}', mode => 'inline');
    SELECT projections.register('sw_inline_u', 'sw_see(projections.events)',
                                event_types => '{SwE}', mode => 'inline');
});
is($ret, 0, 'oscar registers an async and two inline projections') or diag($err);

my $appender = $node->background_psql('postgres', extra_params => [ '-U', 'mallory' ]);
$appender->query_safe(q{BEGIN; SELECT projections.append('sw', 'SwE', '{}')});

# statement_timeout: an unfixed server shows up as 57014 after 8 s, not a hang
for my $switch (
	[ q{SELECT projections.set_mode('sw_async', 'inline')}, 'set_mode(async projection, \'inline\')' ],
	[ q{SELECT projections.pause('sw_inline_p')}, 'pause(inline projection)' ],
	[ q{SELECT projections.unregister('sw_inline_u')}, 'unregister(inline projection)' ])
{
	my ($sql, $what) = @$switch;
	($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', qq{
        SET statement_timeout = '8s';
        SET client_min_messages = error;
        \\set VERBOSITY verbose
        $sql;
    }, timeout => 60);
	is(sqlstate_of($err), '55P03',
		"$what while an appender's transaction is open: fails with 55P03 after projections.inline_switch_timeout")
	  or diag($err);
}
$appender->query_safe('COMMIT');
$appender->quit;
is($node->safe_psql('postgres', q{
        SELECT string_agg(name || ' ' || mode || ' ' || state, ', ' ORDER BY name)
        FROM projections.status WHERE name LIKE 'sw\_%'}),
	'sw_async async running, sw_inline_p inline running, sw_inline_u inline running',
	'the projections are as they were');

# ---------------------------------------------------------------------------
# Who may see what holds projections back

$node->safe_psql('postgres', q{
    CREATE ROLE holder LOGIN;
    CREATE ROLE viewer LOGIN IN ROLE projectors;
    CREATE ROLE stats LOGIN IN ROLE pg_read_all_stats;
    GRANT USAGE ON SCHEMA projections TO holder, stats;
    CREATE TABLE scratch (x integer);
    GRANT INSERT ON scratch TO holder;
    CREATE FUNCTION v_see(e projections.events) RETURNS void LANGUAGE plpgsql
        AS $$ BEGIN END $$;
    SET ROLE viewer;
    SET client_min_messages = error;
    SELECT projections.register('v_p', 'public.v_see(projections.events)',
                                event_types => '{HorizonE}');
    RESET ROLE;
});

my $holding = $node->background_psql('postgres', extra_params => [ '-U', 'holder' ]);
my $holder_pid = $holding->query_safe(q{SELECT pg_backend_pid()});
chomp $holder_pid;
$holding->query_safe(q{BEGIN; INSERT INTO scratch VALUES (1)});
$node->safe_psql('postgres', q{SELECT projections.append('h', 'HorizonE', '{}')});

my $blocked_sql = q{
    SELECT coalesce(blocked_by_pid::text, '-') || '|' || coalesce(blocked_by_gid, '-') || '|'
           || (blocked_by IS NOT NULL) || '|' || (blocked_since IS NOT NULL) || '|' || lag
    FROM projections.status WHERE name = 'v_p'};
my $holder_sql = q{
    SELECT coalesce(pid::text, '-') || '|' || coalesce(gid, '-') || '|'
           || (description IS NOT NULL) || '|' || (since IS NOT NULL)
    FROM projections._horizon_holder()};

is($node->safe_psql('postgres', $blocked_sql), "$holder_pid|-|true|true|1",
	'an open write transaction holds the projection back, and the superuser sees which');
# (the others learn that a transaction of another role holds them back, by
# its transaction id only)
($ret, $out, $err) = psql_as($node, 'postgres', 'viewer', $blocked_sql);
is($out, '-|-|true|false|1',
	'status: the projection\'s owner without pg_read_all_stats does not see another role\'s transaction')
  or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'viewer',
	q{SELECT blocked_by FROM projections.status WHERE name = 'v_p'});
like($out, qr/^transaction \d+ of another role$/, '... only that one holds it back') or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'viewer', $holder_sql);
is($out, '-|-|true|false', '_horizon_holder(): nor does it there') or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'stats', $blocked_sql);
is($out, "$holder_pid|-|true|true|1", 'status: a role with pg_read_all_stats sees it') or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'stats', $holder_sql);
is($out, "$holder_pid|-|true|true", '_horizon_holder(): so it does there') or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'holder', $holder_sql);
is($out, "$holder_pid|-|true|true", '_horizon_holder(): the transaction\'s own user sees it')
  or diag($err);

# the same transaction, prepared: its gid and age are the user's business
$holding->query_safe(q{PREPARE TRANSACTION 'holders_secret'});
$holding->quit;
is($node->safe_psql('postgres', $blocked_sql), '-|holders_secret|true|true|1',
	'a prepared transaction holds the projection back, and the superuser sees which');
($ret, $out, $err) = psql_as($node, 'postgres', 'viewer', $blocked_sql);
is($out, '-|-|true|false|1',
	'status: the projection\'s owner without pg_read_all_stats does not see another role\'s prepared transaction')
  or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'viewer',
	q{SELECT blocked_by FROM projections.status WHERE name = 'v_p'});
unlike($out, qr/holders_secret/, '... nor its name') or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'viewer', $holder_sql);
is($out, '-|-|true|false', '_horizon_holder(): nor does it there') or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'stats', $blocked_sql);
is($out, '-|holders_secret|true|true|1', 'status: a role with pg_read_all_stats sees it')
  or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'holder', $holder_sql);
is($out, '-|holders_secret|true|true', '_horizon_holder(): the prepared transaction\'s owner sees it')
  or diag($err);
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'holders_secret'});

$node->stop;
done_testing();
