# Shared by the Perl TAP tests of projections (test/t/*.pl).
package ProjectionsTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(kill9_and_wait preloaded_node $SEEN);

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

# ---------------------------------------------------------------------------
# Security tests (test/t/080_security_*.pl): a hostile kit, attacks from fresh
# sessions, and what they leave behind.

use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

push @EXPORT, qw(security_log_sql hostile_schema_sql hostile_session_sql
  psql_as attack escalations sqlstate_of poll_until);

# Where the hostile functions report: a table anybody may insert into (rolled
# back with a failed transaction) and the server log (kept either way).
sub security_log_sql
{
	return q{
    CREATE SCHEMA seclog;
    GRANT USAGE ON SCHEMA seclog TO PUBLIC;
    CREATE TABLE seclog.log (who name NOT NULL, what text NOT NULL,
                             at timestamptz NOT NULL DEFAULT clock_timestamp());
    GRANT INSERT ON seclog.log TO PUBLIC;
};
}

# Type names a statement may spell unqualified: shadowed by domains whose
# CHECK runs the hostile function.
my @shadowed_types = qw(text oid name jsonb int2 int4 int8 bool float8 numeric
  regrole regclass regproc regprocedure regnamespace regtype xid xid8
  timestamptz interval bytea pg_snapshot tid);

# Catalog relations a statement may name unqualified: shadowed by temporary
# views (the temporary schema comes first for relations unless named last).
my @shadowed_relations = qw(pg_stat_activity pg_prepared_xacts pg_database
  pg_roles pg_namespace pg_proc pg_extension pg_class pg_locks pg_settings
  pg_type pg_trigger pg_depend pg_shdepend pg_auth_members pg_user);

# The hostile kit, created by $attacker in its schema $s: a function that
# reports who runs it and, run by a superuser, makes $attacker one; then
# operators, functions and aggregates with the names and argument types of
# pg_catalog's (each reports, then does what the original does), and
# domains named like the built-in types.  Run it as $attacker.
sub hostile_schema_sql
{
	my ($s, $attacker) = @_;
	my @sql;
	push @sql, qq{
CREATE FUNCTION $s.gotcha(what pg_catalog.text) RETURNS pg_catalog.bool
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS \$gotcha\$
DECLARE
    su pg_catalog.bool;
BEGIN
    SELECT r.rolsuper INTO su FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
    RAISE LOG 'SECGOTCHA who=% super=% what=%', current_user, su, what;
    BEGIN
        INSERT INTO seclog.log (who, what) VALUES (current_user, what);
    EXCEPTION WHEN OTHERS THEN
        RAISE LOG 'SECGOTCHA could not log: %', SQLERRM;
    END;
    IF su THEN
        EXECUTE 'ALTER ROLE $attacker SUPERUSER';
    END IF;
    RETURN true;
END
\$gotcha\$;
GRANT EXECUTE ON FUNCTION $s.gotcha(pg_catalog.text) TO PUBLIC;
GRANT USAGE ON SCHEMA $s TO PUBLIC;
};

	my %opname = (
		'=' => 'eq', '<>' => 'ne', '<' => 'lt', '>' => 'gt', '<=' => 'le',
		'>=' => 'ge', '+' => 'pl', '-' => 'mi', '*' => 'mul', '/' => 'div',
		'%' => 'mod', '||' => 'cat', '->>' => 'jtext', '->' => 'jget',
		'?' => 'jexists', '@>' => 'jcontains', '~~' => 'like', '~' => 'match');
	my $binop = sub {
		my ($op, $l, $r, $ret) = @_;
		my $fn = "$s.op_$opname{$op}_${l}_${r}";
		push @sql, qq{
CREATE FUNCTION $fn(pg_catalog.$l, pg_catalog.$r) RETURNS pg_catalog.$ret
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$op\$ SELECT CASE WHEN $s.gotcha('operator $op($l, $r)') THEN \$1 OPERATOR(pg_catalog.$op) \$2 END \$op\$;
CREATE OPERATOR $s.$op (LEFTARG = pg_catalog.$l, RIGHTARG = pg_catalog.$r, FUNCTION = $fn);};
	};
	my $prefix = sub {
		my ($op, $t) = @_;
		my $fn = "$s.op_neg_$t";
		push @sql, qq{
CREATE FUNCTION $fn(pg_catalog.$t) RETURNS pg_catalog.$t
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$op\$ SELECT CASE WHEN $s.gotcha('operator $op($t)') THEN OPERATOR(pg_catalog.$op) \$1 END \$op\$;
CREATE OPERATOR $s.$op (RIGHTARG = pg_catalog.$t, FUNCTION = $fn);};
	};
	my %rank = (int2 => 0, int4 => 1, int8 => 2);
	for my $l (qw(int2 int4 int8))
	{
		for my $r (qw(int2 int4 int8))
		{
			my $wider = $rank{$l} >= $rank{$r} ? $l : $r;
			$binop->($_, $l, $r, 'bool') for ('=', '<>', '<', '>', '<=', '>=');
			$binop->($_, $l, $r, $wider) for ('+', '-', '*', '/', '%');
		}
		$prefix->('-', $l);
	}
	for my $t (qw(text name oid numeric timestamptz xid8 bool jsonb interval))
	{
		$binop->($_, $t, $t, 'bool') for ('=', '<>', '<', '>', '<=', '>=');
	}
	$binop->($_, 'numeric', 'numeric', 'numeric') for ('+', '-', '*', '/', '%');
	$binop->('||', 'text', 'text', 'text');
	$binop->('~~', 'text', 'text', 'bool');
	$binop->('~', 'text', 'text', 'bool');
	$binop->('-', 'timestamptz', 'timestamptz', 'interval');
	$binop->('+', 'timestamptz', 'interval', 'timestamptz');
	$binop->('-', 'timestamptz', 'interval', 'timestamptz');
	$binop->('->>', 'jsonb', 'text', 'text');
	$binop->('->', 'jsonb', 'text', 'jsonb');
	$binop->('?', 'jsonb', 'text', 'bool');
	$binop->('@>', 'jsonb', 'jsonb', 'bool');

	# functions: [name, argument types, result type]
	my @functions = (
		[ 'now', '', 'timestamptz' ],
		[ 'clock_timestamp', '', 'timestamptz' ],
		[ 'statement_timestamp', '', 'timestamptz' ],
		[ 'transaction_timestamp', '', 'timestamptz' ],
		[ 'current_setting', 'text', 'text' ],
		[ 'current_setting', 'text, bool', 'text' ],
		[ 'set_config', 'text, text, bool', 'text' ],
		[ 'pg_snapshot_xmin', 'pg_snapshot', 'xid8' ],
		[ 'pg_current_snapshot', '', 'pg_snapshot' ],
		[ 'pg_current_xact_id', '', 'xid8' ],
		[ 'pg_current_xact_id_if_assigned', '', 'xid8' ],
		[ 'txid_current', '', 'int8' ],
		[ 'pg_xact_status', 'xid8', 'text' ],
		[ 'jsonb_typeof', 'jsonb', 'text' ],
		[ 'jsonb_build_object', 'text, text', 'jsonb' ],
		[ 'to_jsonb', 'text', 'jsonb' ],
		[ 'format', 'text', 'text' ],
		[ 'format', 'text, text', 'text' ],
		[ 'format', 'text, text, text', 'text' ],
		[ 'to_regprocedure', 'text', 'regprocedure' ],
		[ 'to_regproc', 'text', 'regproc' ],
		[ 'to_regclass', 'text', 'regclass' ],
		[ 'to_regrole', 'text', 'regrole' ],
		[ 'to_regnamespace', 'text', 'regnamespace' ],
		[ 'to_regtype', 'text', 'regtype' ],
		[ 'quote_literal', 'text', 'text' ],
		[ 'quote_ident', 'text', 'text' ],
		[ 'quote_nullable', 'text', 'text' ],
		[ 'pg_has_role', 'name, text', 'bool' ],
		[ 'pg_has_role', 'oid, text', 'bool' ],
		[ 'pg_has_role', 'name, name, text', 'bool' ],
		[ 'pg_has_role', 'oid, oid, text', 'bool' ],
		[ 'pg_has_role', 'name, oid, text', 'bool' ],
		[ 'pg_has_role', 'oid, name, text', 'bool' ],
		[ 'has_function_privilege', 'oid, text', 'bool' ],
		[ 'has_function_privilege', 'oid, oid, text', 'bool' ],
		[ 'has_table_privilege', 'oid, text', 'bool' ],
		[ 'has_table_privilege', 'oid, oid, text', 'bool' ],
		[ 'pg_backend_pid', '', 'int4' ],
		[ 'pg_advisory_xact_lock', 'int8', 'void' ],
		[ 'pg_try_advisory_xact_lock', 'int8', 'bool' ],
		[ 'hashtext', 'text', 'int4' ],
		[ 'lower', 'text', 'text' ],
		[ 'upper', 'text', 'text' ],
		[ 'length', 'text', 'int4' ],
		[ 'octet_length', 'text', 'int4' ],
		[ 'array_length', 'anyarray, int4', 'int4' ],
		[ 'cardinality', 'anyarray', 'int4' ],
		[ 'date_trunc', 'text, interval', 'interval' ],
		[ 'date_trunc', 'text, timestamptz', 'timestamptz' ],
		[ 'age', 'xid', 'int4' ],
		[ 'age', 'timestamptz', 'interval' ],
		[ 'pg_notify', 'text, text', 'void' ],
		[ 'pg_sleep', 'float8', 'void' ],
		[ 'pg_get_userbyid', 'oid', 'name' ],
		[ 'obj_description', 'oid, name', 'text' ],
		[ 'pg_describe_object', 'oid, oid, int4', 'text' ],
	);
	for my $f (@functions)
	{
		my ($name, $args, $ret) = @$f;
		my @types = $args eq '' ? () : split(/,\s*/, $args);
		my $decl = join(', ', map { "pg_catalog.$_" } @types);
		my $call = join(', ', map { "\$$_" } 1 .. scalar(@types));
		push @sql, qq{
CREATE FUNCTION $s.$name($decl) RETURNS pg_catalog.$ret
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$fn\$ SELECT CASE WHEN $s.gotcha('function $name($args)') THEN pg_catalog.$name($call) END \$fn\$;};
	}
	push @sql, qq{
CREATE FUNCTION $s.unnest(pg_catalog.anyarray) RETURNS SETOF pg_catalog.anyelement
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$fn\$ SELECT u FROM pg_catalog.unnest(\$1) u WHERE $s.gotcha('function unnest(anyarray)') \$fn\$;};

	# aggregates: [name, argument type, state type, step expression]; the
	# final function reports too, so that an empty input is no escape
	my @aggregates = (
		[ 'max', 'int8', 'int8', 'greatest($1, $2)' ],
		[ 'max', 'int4', 'int4', 'greatest($1, $2)' ],
		[ 'max', 'text', 'text', 'greatest($1, $2)' ],
		[ 'max', 'timestamptz', 'timestamptz', 'greatest($1, $2)' ],
		[ 'max', 'xid8', 'xid8', 'greatest($1, $2)' ],
		[ 'min', 'int8', 'int8', 'least($1, $2)' ],
		[ 'min', 'int4', 'int4', 'least($1, $2)' ],
		[ 'min', 'timestamptz', 'timestamptz', 'least($1, $2)' ],
		[ 'min', 'xid8', 'xid8', 'least($1, $2)' ],
		[ 'sum', 'int8', 'int8', 'coalesce($1, 0) + $2' ],
		[ 'sum', 'int4', 'int8', 'coalesce($1, 0) + $2' ],
		[ 'count', 'int8', 'int8', '$1 + 1' ],
		[ 'count', 'int4', 'int8', '$1 + 1' ],
		[ 'count', 'text', 'int8', '$1 + 1' ],
		[ 'bool_or', 'bool', 'bool', '$1 OR $2' ],
		[ 'bool_and', 'bool', 'bool', '$1 AND $2' ],
		[ 'every', 'bool', 'bool', '$1 AND $2' ],
		[ 'array_agg', 'text', 'text[]', '$1 || $2' ],
		[ 'array_agg', 'int8', 'int8[]', '$1 || $2' ],
		[ 'string_agg', 'text, text', 'text', 'CASE WHEN $1 IS NULL THEN $2 ELSE $1 || $3 || $2 END' ],
	);
	for my $g (@aggregates)
	{
		my ($name, $arg, $st, $expr) = @$g;
		my @args = split(/,\s*/, $arg);
		my $tag = join('_', @args);
		my $sf = "$s.agg_${name}_${tag}_step";
		my $ff = "$s.agg_${name}_${tag}_final";
		my $init = $name eq 'count' ? ", INITCOND = '0'" : '';
		my $argdecl = join(', ', map { "pg_catalog.$_" } @args);
		push @sql, qq{
CREATE FUNCTION $sf(pg_catalog.$st, $argdecl) RETURNS pg_catalog.$st
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$fn\$ SELECT CASE WHEN $s.gotcha('aggregate $name($arg) step') THEN $expr END \$fn\$;
CREATE FUNCTION $ff(pg_catalog.$st) RETURNS pg_catalog.$st
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$fn\$ SELECT CASE WHEN $s.gotcha('aggregate $name($arg) final') THEN \$1 END \$fn\$;
CREATE AGGREGATE $s.$name($argdecl) (SFUNC = $sf, STYPE = pg_catalog.$st, FINALFUNC = $ff$init);};
	}
	push @sql, qq{
CREATE FUNCTION $s.agg_count_star_step(pg_catalog.int8) RETURNS pg_catalog.int8
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$fn\$ SELECT CASE WHEN $s.gotcha('aggregate count(*) step') THEN \$1 + 1 END \$fn\$;
CREATE FUNCTION $s.agg_count_star_final(pg_catalog.int8) RETURNS pg_catalog.int8
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS \$fn\$ SELECT CASE WHEN $s.gotcha('aggregate count(*) final') THEN \$1 END \$fn\$;
CREATE AGGREGATE $s.count(*) (SFUNC = $s.agg_count_star_step, STYPE = pg_catalog.int8,
                              INITCOND = '0', FINALFUNC = $s.agg_count_star_final);};

	# domains last: from here on a type name in this schema is a trap
	for my $t (@shadowed_types)
	{
		push @sql, qq{CREATE DOMAIN $s.$t AS pg_catalog.$t CHECK ($s.gotcha('domain $s.$t'));};
	}
	return "SET search_path = pg_catalog;\n" . join("\n", @sql) . "\nRESET search_path;\n";
}

# What an attacking session creates in its own temporary schema (any role
# with TEMP may): domains named like built-in types and views named like
# catalog relations, all reporting through $s.gotcha.
sub hostile_session_sql
{
	my ($s) = @_;
	my @sql = ('SET search_path = pg_catalog;');
	for my $t (@shadowed_types)
	{
		push @sql, qq{CREATE DOMAIN pg_temp.$t AS pg_catalog.$t CHECK ($s.gotcha('domain pg_temp.$t'));};
	}
	for my $r (@shadowed_relations)
	{
		push @sql, qq{CREATE VIEW pg_temp.$r AS SELECT * FROM pg_catalog.$r WHERE $s.gotcha('temporary view $r');};
	}
	return join("\n", @sql) . "\n";
}

# psql as $role in a new session; returns ($ret, $stdout, $stderr), and
# never hangs: $opts{timeout} seconds (default 120), then $ret is undef.
sub psql_as
{
	my ($node, $db, $role, $sql, %opts) = @_;
	my $timed_out = 0;
	my ($ret, $out, $err) = $node->psql(
		$db, $sql,
		extra_params => [ '-U', $role ],
		on_error_stop => $opts{on_error_stop} // 1,
		timeout => $opts{timeout} // 120,
		timed_out => \$timed_out);
	$ret = undef if $timed_out;
	return ($ret, $out // '', $err // '');
}

# Attack from a fresh session of $role: arm the session with the hostile
# temporary objects (reporting through schema $s), set the hostile
# search_path, then run $sql.  Returns ($ret, $stdout, $stderr); dies if the
# session could not be armed (an attack that did not happen proves nothing).
sub attack
{
	my ($node, $db, $role, $s, $path, $sql, %opts) = @_;
	my $script = "SET statement_timeout = '60s';\n"
	  . hostile_session_sql($s)
	  . "SET search_path = $path;\n"
	  . "SELECT 'armed';\n"
	  . "\\set VERBOSITY verbose\n"
	  . $sql;
	my ($ret, $out, $err) = psql_as($node, $db, $role, $script,
		on_error_stop => $opts{on_error_stop} // 0, timeout => 90);
	die "attack session of $role in $db was not armed: $err"
	  unless $out =~ /^armed$/m;
	return ($ret, $out, $err);
}

# What the hostile kit of $attacker reported since log offset $offset, as
# a list of findings: $attacker became superuser, or a hostile function ran
# as another role (in the log table of $db or in the server log).  Undoes
# the escalation and empties the log table for the next attack.
sub escalations
{
	my ($node, $db, $attacker, $offset) = @_;
	my @found;
	# (the database may have a hostile search_path of its own)
	my @lines = split(/\n/, $node->safe_psql($db, qq{
        SET search_path = pg_catalog, pg_temp;
        SELECT r.rolsuper FROM pg_catalog.pg_roles r
        WHERE r.rolname OPERATOR(pg_catalog.=) '$attacker';
        SELECT DISTINCT 'log table: ' || l.who::text || ' ran ' || l.what FROM seclog.log l
        WHERE l.who OPERATOR(pg_catalog.<>) '$attacker' ORDER BY 1;
        ALTER ROLE $attacker NOSUPERUSER;
        TRUNCATE seclog.log}));
	my $super = shift @lines;
	push @found, "$attacker is a superuser now" if $super eq 't';
	push @found, @lines;
	my $log = slurp_file($node->logfile, $offset);
	my %seen;
	while ($log =~ /SECGOTCHA who=(\S+) super=\S+ what=([^\n]*)/g)
	{
		next if $1 eq $attacker;
		my $f = "server log: $1 ran $2";
		push @found, $f unless $seen{$f}++;
	}
	return \@found;
}

# The SQLSTATE of the first error in psql's stderr (run with
# \set VERBOSITY verbose), or '' if there was none.
sub sqlstate_of
{
	my ($stderr) = @_;
	return $stderr =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : '';
}

# Poll $sql (as the bootstrap superuser, or $opts{role}) until it prints
# $expected, for at most $seconds.  Returns true when it did.  For checks
# that fail on an unfixed server, so that the suite does not wait for
# PostgreSQL's long default timeout.
sub poll_until
{
	my ($node, $db, $sql, $expected, $seconds, %opts) = @_;
	my $deadline = time() + $seconds;
	my ($ret, $out, $err) = (0, '', '');
	while (1)
	{
		if (defined $opts{role})
		{
			($ret, $out, $err) = psql_as($node, $db, $opts{role}, $sql,
				timeout => $seconds + 30);
		}
		else
		{
			my $timed_out = 0;
			($ret, $out, $err) = $node->psql($db, $sql,
				timeout => $seconds + 30, timed_out => \$timed_out);
			$ret = undef if $timed_out;
		}
		return 1 if defined $ret && $ret == 0 && $out eq $expected;
		last if time() >= $deadline;
		usleep(100_000);
	}
	Test::More::diag("poll_until gave up after ${seconds}s: $sql\n"
		  . "expected: $expected\nlast output: $out\nstderr: $err");
	return 0;
}

# Kill a server process with SIGKILL and wait until the postmaster has
# restarted everything (crash recovery): querying a server that is still
# restarting can fail in the test harness itself.
sub kill9_and_wait
{
	my ($node, $pid) = @_;
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	return $node->wait_for_log(qr/database system is ready to accept connections/, $offset);
}

1;
