# Trust boundaries in the background worker:
# - a database owned by the attacker, with a hostile search_path set on the
#   database (which the worker reads when it connects): the worker's own
#   statements, run as a superuser, must not run the attacker's objects;
# - what a handler changes with set_config() ends with the call: it does
#   not stop or change another owner's projection in the same worker, and
#   the next event's call sees the projection's own search_path again;
# - projections.handler_timeout bounds a handler call (SQLSTATE 57014),
#   and the projection's on_error policy applies;
# - projections.max_retries bounds the retries of a transient error, and a
#   deterministic one (stack depth) meets the error policy at once;
# - a handler whose errors end the worker (exit_on_error) holds up no other
#   owner's projection, and ends up failed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

# a worker per database, and room for them
my $node = preloaded_node('security_worker', q{
projections.max_databases = 16
max_worker_processes = 20
max_parallel_workers = 0
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', q{
    CREATE ROLE mallory LOGIN;
    CREATE ROLE oscar LOGIN;
    CREATE ROLE bystander LOGIN;
});

# a database with the extension, the README's grants, the owners' schemas
sub setup_database
{
	my ($db, $owner) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db" . ($owner ? " OWNER $owner" : ''));
	$node->safe_psql($db, q{CREATE EXTENSION projections;} . security_log_sql() . q{
        GRANT USAGE ON SCHEMA projections TO mallory, oscar, bystander;
        GRANT EXECUTE ON FUNCTION projections.append(text, text, jsonb, jsonb, integer),
                                  projections.append_many(text, jsonb, integer),
                                  projections.read_stream(text, integer),
                                  projections.stream_version(text) TO mallory;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA projections TO oscar, bystander;
        CREATE SCHEMA ohome AUTHORIZATION oscar;
        CREATE SCHEMA byhome AUTHORIZATION bystander;
    });
}

sub worker_pid
{
	my ($db) = @_;
	return $node->safe_psql('postgres', qq{
        SELECT coalesce(max(pid), 0) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = '$db'});
}

# ---------------------------------------------------------------------------
# The worker of a database whose owner set a hostile search_path on it

setup_database('victim', 'mallory');
my ($ret, $out, $err) = psql_as($node, 'victim', 'mallory',
	'CREATE SCHEMA evil_m;' . hostile_schema_sql('evil_m', 'mallory'));
is($ret, 0, 'the database owner fills a schema of its own') or diag($err);
$node->safe_psql('victim', q{
    CREATE TABLE su_seen (pos bigint PRIMARY KEY);
    CREATE FUNCTION su_see(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO public.su_seen VALUES (e.global_position) $$;
    SELECT projections.register('su_p', 'su_see(projections.events)');
    SELECT projections.append('v', 'E', '{}');
});
ok(poll_until($node, 'victim', 'SELECT count(*) FROM su_seen', '1', 60),
	'the worker of the victim database runs');
my $old_pid = worker_pid('victim');

($ret, $out, $err) = psql_as($node, 'victim', 'mallory',
	'ALTER DATABASE victim SET search_path = evil_m, pg_catalog');
is($ret, 0, 'the database owner sets a hostile search_path on its database') or diag($err);

# the worker reads the database's settings when it connects: restart it
my $offset = -s $node->logfile;
$node->safe_psql('postgres', qq{SELECT pg_terminate_backend($old_pid)});
ok(poll_until($node, 'postgres', qq{
        SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'projections worker' AND datname = 'victim' AND pid <> $old_pid},
		'1', 60),
	'the launcher starts the worker again');

# from here on, every statement in victim names its search_path first
$node->safe_psql('victim', q{
    SET search_path = pg_catalog, public;
    SELECT projections.append('v', 'E', '{}') FROM generate_series(1, 3)});
my $applied = poll_until($node, 'victim',
	q{SET search_path = pg_catalog, public; SELECT count(*) FROM su_seen}, '4', 15);
my $found = escalations($node, 'victim', 'mallory', $offset);
is_deeply($found, [],
	'worker under a hostile database search_path: nothing of the attacker runs as the worker')
  or diag(join("\n", @$found));
ok($applied, 'and the worker applies the events');
$node->safe_psql('postgres', 'DROP DATABASE victim WITH (FORCE)');

# ---------------------------------------------------------------------------
# What a handler changes ends with the call

# one owner's handler turns default_transaction_read_only on for the
# session: another owner's projection in the same database still applies
# every event
setup_database('guc_ro');
$node->safe_psql('guc_ro', q{
    SET ROLE oscar;
    CREATE FUNCTION ohome.lock_up(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM set_config('default_transaction_read_only', 'on', false);
    END $$;
    SELECT projections.register('a_lock_up', 'ohome.lock_up(projections.events)');
    SET ROLE bystander;
    CREATE TABLE byhome.b_seen (pos bigint PRIMARY KEY);
    CREATE FUNCTION byhome.b_see(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO byhome.b_seen VALUES (e.global_position) $$;
    SELECT projections.register('b_applies', 'byhome.b_see(projections.events)');
    RESET ROLE;
});
$node->safe_psql('guc_ro',
	q{SELECT projections.append('s', 'E', '{}') FROM generate_series(1, 5)});
my $all_applied = poll_until($node, 'guc_ro', 'SELECT count(*) FROM byhome.b_seen', '5', 15);
ok($all_applied,
	'worker: a handler that sets default_transaction_read_only does not stop another owner\'s projection');
$node->safe_psql('guc_ro', q{SELECT projections.append('s', 'E', '{}')});
ok($all_applied && poll_until($node, 'guc_ro', q{
        SELECT count(*) FILTER (WHERE state = 'running' AND lag = 0) FROM projections.status}, '2', 15),
	'worker: both projections go on applying later events');

# one owner's handler sets work_mem: another owner's handler sees the default
setup_database('guc_mem');
my $default_work_mem = $node->safe_psql('guc_mem', q{SHOW work_mem});
$node->safe_psql('guc_mem', q{
    SET ROLE oscar;
    CREATE FUNCTION ohome.grab(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM set_config('work_mem', '7MB', false);
        PERFORM set_config('maintenance_work_mem', '77MB', false);
    END $$;
    SELECT projections.register('a_grab', 'ohome.grab(projections.events)');
    SET ROLE bystander;
    CREATE TABLE byhome.b_settings (pos bigint PRIMARY KEY, work_mem text, maintenance_work_mem text);
    CREATE FUNCTION byhome.b_record(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO byhome.b_settings
        VALUES (e.global_position, current_setting('work_mem'), current_setting('maintenance_work_mem'))
    $$;
    SELECT projections.register('b_record', 'byhome.b_record(projections.events)');
    RESET ROLE;
});
$node->safe_psql('guc_mem',
	q{SELECT projections.append('s', 'E', '{}') FROM generate_series(1, 5)});
ok(poll_until($node, 'guc_mem', 'SELECT count(*) FROM byhome.b_settings', '5', 15),
	'worker: the recording projection applies every event');
is($node->safe_psql('guc_mem', q{
        SELECT string_agg(DISTINCT work_mem || ' ' || maintenance_work_mem, ', ')
        FROM byhome.b_settings}),
	$default_work_mem . ' ' . $node->safe_psql('guc_mem', q{SHOW maintenance_work_mem}),
	'worker: a handler always sees the default settings, whatever another owner\'s handler set');

# a handler that changes search_path: the next event's call sees the
# projection's own search_path again
setup_database('guc_path');
$node->safe_psql('guc_path', q{
    SET ROLE bystander;
    SET search_path = byhome;
    CREATE TABLE c_paths (pos bigint PRIMARY KEY, path text);
    CREATE FUNCTION c_wander(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO byhome.c_paths VALUES (e.global_position, current_setting('search_path'));
        PERFORM set_config('search_path', 'elsewhere', false);
    END $$;
    SELECT projections.register('c_wander', 'c_wander(projections.events)');
    RESET ROLE;
});
$node->safe_psql('guc_path',
	q{SELECT projections.append('s', 'E', '{}') FROM generate_series(1, 4)});
ok(poll_until($node, 'guc_path', 'SELECT count(*) FROM byhome.c_paths', '4', 15),
	'worker: the wandering projection applies every event');
my $paths = $node->safe_psql('guc_path',
	q{SELECT count(DISTINCT path) || ' ' || bool_or(path = 'elsewhere') FROM byhome.c_paths});
is($paths, '1 false',
	'worker: every call sees the projection\'s search_path, not what the previous call set')
  or diag($node->safe_psql('guc_path', 'SELECT * FROM byhome.c_paths ORDER BY pos'));

# ---------------------------------------------------------------------------
# projections.handler_timeout: a handler call that takes longer fails with
# SQLSTATE 57014, and the on_error policy applies

setup_database('slow');
($ret, $out, $err) = $node->psql('postgres', q{
    ALTER SYSTEM SET projections.handler_timeout = 300;
    SELECT pg_reload_conf();
});
is($ret, 0, 'projections.handler_timeout can be set with ALTER SYSTEM') or diag($err);
poll_until($node, 'slow',
	q{SELECT current_setting('projections.handler_timeout') IN ('300', '300ms')}, 't', 10)
  if $ret == 0;
$node->safe_psql('slow', q{
    CREATE TABLE slow_seen (projection text, pos bigint, PRIMARY KEY (projection, pos));
    CREATE FUNCTION slow_pause(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF e.data ? 'slow' THEN PERFORM pg_sleep(3); END IF;
        INSERT INTO slow_seen VALUES ('pause', e.global_position);
    END $$;
    CREATE FUNCTION slow_skip(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF e.data ? 'slow' THEN PERFORM pg_sleep(3); END IF;
        INSERT INTO slow_seen VALUES ('skip', e.global_position);
    END $$;
    SELECT projections.register('slow_pause', 'slow_pause(projections.events)');
    SELECT projections.register('slow_skip', 'slow_skip(projections.events)', on_error => 'skip');
});
my ($p1, $p2, $p3) = split(/\n/, $node->safe_psql('slow', q{
    SELECT projections.append('s', 'E', '{}');
    SELECT projections.append('s', 'E', '{"slow": true}');
    SELECT projections.append('s', 'E', '{}');
}));
# both are done with the three events, one way or another
poll_until($node, 'slow', qq{
    SELECT ((SELECT state = 'failed' FROM projections.status WHERE name = 'slow_pause')
            OR EXISTS (SELECT FROM slow_seen WHERE projection = 'pause' AND pos = $p3))
       AND EXISTS (SELECT FROM slow_seen WHERE projection = 'skip' AND pos = $p3)}, 't', 20);
is($node->safe_psql('slow', q{
        SELECT state || ' ' || coalesce(error_sqlstate, '-') || ' ' || coalesce(error_position::text, '-')
        FROM projections.status WHERE name = 'slow_pause'}),
	"failed 57014 $p2",
	'worker: a handler call over projections.handler_timeout fails with 57014 and pauses the projection at that event');
is($node->safe_psql('slow',
		q{SELECT string_agg(pos::text, ',' ORDER BY pos) FROM slow_seen WHERE projection = 'pause'}),
	"$p1", 'worker: the events before it were applied, not the slow one');
is($node->safe_psql('slow', q{
        SELECT string_agg(global_position || ' ' || sqlstate, ',')
        FROM projections.failed_events WHERE projection = 'slow_skip'}),
	"$p2 57014", 'worker: with on_error = skip the slow event is in failed_events with 57014');
is($node->safe_psql('slow',
		q{SELECT string_agg(pos::text, ',' ORDER BY pos) FROM slow_seen WHERE projection = 'skip'}),
	"$p1,$p3", 'worker: and the events after it are applied');

# ---------------------------------------------------------------------------
# projections.max_retries: a handler that always raises a transient error
# is retried at most that many times, then the projection is failed; a
# deterministic error (stack depth) meets the error policy on its first try

setup_database('retry');
($ret, $out, $err) = $node->psql('postgres', q{
    ALTER SYSTEM RESET projections.handler_timeout;
    ALTER SYSTEM SET projections.max_retries = 1;
    SELECT pg_reload_conf();
});
is($ret, 0, 'projections.max_retries can be set with ALTER SYSTEM') or diag($err);
poll_until($node, 'retry', q{SHOW projections.max_retries}, '1', 10) if $ret == 0;
$node->safe_psql('retry', q{
    CREATE SEQUENCE attempts_40001;
    CREATE SEQUENCE attempts_54001;
    CREATE FUNCTION always_busy(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM nextval('attempts_40001');
        RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure';
    END $$;
    CREATE FUNCTION deeper(n integer) RETURNS integer LANGUAGE plpgsql AS $$
    BEGIN
        RETURN deeper(n + 1);
    END $$;
    CREATE FUNCTION too_deep(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM nextval('attempts_54001');
        PERFORM deeper(1);
    END $$;
    SELECT projections.register('always_busy', 'always_busy(projections.events)');
    SELECT projections.register('too_deep', 'too_deep(projections.events)');
});
my $pos = $node->safe_psql('retry', q{SELECT projections.append('s', 'E', '{}')});
# both failed, or tried more often than they may be
poll_until($node, 'retry', q{
    SELECT ((SELECT state = 'failed' FROM projections.status WHERE name = 'always_busy')
            OR (SELECT last_value > 2 FROM attempts_40001))
       AND ((SELECT state = 'failed' FROM projections.status WHERE name = 'too_deep')
            OR (SELECT last_value > 1 FROM attempts_54001))}, 't', 25);
is($node->safe_psql('retry', q{
        SELECT state || ' ' || coalesce(error_sqlstate, '-')
        FROM projections.status WHERE name = 'always_busy'}),
	"failed 40001",
	'worker: a handler that always fails with 40001 ends up failed, its error in status');
my $attempts = $node->safe_psql('retry',
	q{SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attempts_40001});
ok($attempts >= 1 && $attempts <= 2,
	"worker: it was tried once and retried at most projections.max_retries (1) times (tries: $attempts)");
is($node->safe_psql('retry', q{
        SELECT state || ' ' || coalesce(error_sqlstate, '-') || ' ' || coalesce(error_position::text, '-')
        FROM projections.status WHERE name = 'too_deep'}),
	"failed 54001 $pos",
	'worker: a handler that exceeds the stack depth pauses the projection with 54001');
is($node->safe_psql('retry',
		q{SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attempts_54001}),
	'1', 'worker: on its first try, without retries');

# ---------------------------------------------------------------------------
# A handler whose errors end the worker process (exit_on_error) holds up
# no other owner's projection: each round starts one unit further on, and
# after more than projections.max_retries (1) exits while applying it, the
# projection is failed

setup_database('exits');
($ret, $out, $err) = psql_as($node, 'exits', 'oscar', q{
    SET search_path = ohome;
    CREATE FUNCTION aaa_exit(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM set_config('exit_on_error', 'on', true);
        RAISE EXCEPTION 'this error ends the process';
    END $$;
    SELECT projections.register('aaa_exit', 'aaa_exit(projections.events)', on_error => 'skip');
});
is($ret, 0, 'oscar registers a projection whose handler ends the worker') or diag($err);
($ret, $out, $err) = psql_as($node, 'exits', 'bystander', q{
    SET search_path = byhome;
    CREATE TABLE seen (pos bigint);
    CREATE FUNCTION zzz_seen(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO byhome.seen VALUES (e.global_position) $$;
    SELECT projections.register('zzz_seen', 'zzz_seen(projections.events)');
});
is($ret, 0, 'bystander registers a projection of its own') or diag($err);
$offset = -s $node->logfile;
$node->safe_psql('exits', q{
    SELECT projections.append('s-' || i, 'E', '{}') FROM generate_series(1, 3) i});
poll_until($node, 'exits', q{
    SELECT (SELECT count(*) FROM byhome.seen) = 3
       AND (SELECT state = 'failed' FROM projections.status WHERE name = 'aaa_exit')}, 't', 90);
is($node->safe_psql('exits', q{SELECT count(*) FROM byhome.seen}), '3',
	"the other owner's projection applied every event");
is($node->safe_psql('exits', q{
        SELECT state || ' ' || error_sqlstate || ' ' || (last_error LIKE 'the worker exited 2 times while applying it%')
        FROM projections.status WHERE name = 'aaa_exit'}),
	'failed 57000 true', 'the projection whose handler ends the worker is failed, and says why');
like(slurp_file($node->logfile, $offset), qr/FATAL:  this error ends the process/,
	'(its handler did end the worker)');

unlike(slurp_file($node->logfile), qr/was terminated by signal|PANIC|TRAP:/, 'no crash');

$node->stop;
done_testing();
