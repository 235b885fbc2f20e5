# Trust boundaries around handlers and reset functions, in the calling
# session (run(), inline in an appender's transaction, rebuild()):
# - what they change with set_config() ends with the call;
# - the catalog guard's exemption for the extension's own writes does not
#   extend to an inline handler;
# - an appender's temporary table does not capture an inline handler's writes;
# - handlers and reset functions in a temporary schema are refused;
# - projections.handler_timeout bounds a call in run();
# - verify() and the exchange do not run what the handler puts in place of
#   the new model's tables;
# - hints quote the projection's name.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

# the worker is off: run() finds the events it is given
my $node = preloaded_node('security_handlers', q{
projections.enabled = off
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE ROLE mallory LOGIN;
    CREATE ROLE oscar LOGIN;
    CREATE ROLE bystander LOGIN;
    GRANT USAGE ON SCHEMA projections TO mallory, oscar, bystander;
    GRANT EXECUTE ON FUNCTION projections.append(text, text, jsonb, jsonb, integer),
                              projections.append_many(text, jsonb, integer),
                              projections.read_stream(text, integer),
                              projections.stream_version(text) TO mallory;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA projections TO oscar, bystander;
    CREATE SCHEMA ohome AUTHORIZATION oscar;
    CREATE SCHEMA byhome AUTHORIZATION bystander;
    SET client_min_messages = warning;
});

# ---------------------------------------------------------------------------
# What a handler or reset function changes ends with the call

# a handler that records the settings it is called with, then changes them
my $meddle_body = q{
    BEGIN
        INSERT INTO %s VALUES (e.global_position, current_setting('search_path'),
                               current_setting('work_mem'));
        PERFORM set_config('work_mem', '7MB', false);
        PERFORM set_config('maintenance_work_mem', '77MB', true);
        PERFORM set_config('search_path', 'elsewhere', false);
    END
};

# run(): the caller's settings, and every call's, are what they were
my ($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    SET search_path = ohome;
    CREATE TABLE r_calls (pos bigint PRIMARY KEY, path text, work_mem text);
    CREATE FUNCTION r_meddle(e projections.events) RETURNS void LANGUAGE plpgsql
        AS $$ } . sprintf($meddle_body, 'ohome.r_calls') . q{ $$;
    SELECT projections.register('r_meddle', 'r_meddle(projections.events)', event_types => '{RunE}');
});
is($ret, 0, 'oscar registers a meddling projection') or diag($err);
$node->safe_psql('postgres',
	q{SELECT projections.append('r', 'RunE', '{}') FROM generate_series(1, 3)});
($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    SET work_mem = '2MB';
    SET search_path = ohome, public;
    SELECT projections.run('r_meddle');
    SELECT current_setting('work_mem') || '|' || current_setting('search_path');
    BEGIN;
    SELECT projections.append('r', 'RunE', '{}') IS NULL;
    COMMIT;
    BEGIN;
    SELECT projections.run('r_meddle');
    SELECT current_setting('work_mem') || '|' || current_setting('maintenance_work_mem')
           || '|' || current_setting('search_path');
    COMMIT;
});
is($out, "3\n2MB|ohome, public\nf\n1\n2MB|"
	  . $node->safe_psql('postgres', 'SHOW maintenance_work_mem') . '|ohome, public',
	'run(): the caller\'s settings are unchanged after the handler changed them')
  or diag($err);
is($node->safe_psql('postgres', q{
        SELECT count(*) || ' ' || count(DISTINCT path) || ' ' || count(DISTINCT work_mem)
               || ' ' || bool_or(path = 'elsewhere') FROM ohome.r_calls}),
	'4 1 1 false',
	'run(): each call sees the same settings, not what the previous call set')
  or diag($node->safe_psql('postgres', 'SELECT * FROM ohome.r_calls ORDER BY pos'));

# inline: the appending session's settings are unchanged, in and after its
# transaction
($ret, $out, $err) = psql_as($node, 'postgres', 'bystander', q{
    SET search_path = byhome;
    CREATE TABLE i_calls (pos bigint PRIMARY KEY, path text, work_mem text);
    CREATE FUNCTION i_meddle(e projections.events) RETURNS void LANGUAGE plpgsql
        AS $$ } . sprintf($meddle_body, 'byhome.i_calls') . q{ $$;
    SELECT projections.register('i_meddle', 'i_meddle(projections.events)',
                                event_types => '{InlineE}', mode => 'inline');
});
is($ret, 0, 'the bystander registers a meddling inline projection') or diag($err);
my $mwm = $node->safe_psql('postgres', 'SHOW maintenance_work_mem');
($ret, $out, $err) = psql_as($node, 'postgres', 'mallory', q{
    SET work_mem = '2MB';
    SET search_path = public;
    SELECT projections.append('i', 'InlineE', '{}') IS NULL;
    SELECT current_setting('work_mem') || '|' || current_setting('search_path');
    BEGIN;
    SELECT projections.append_many('i', '[{"type": "InlineE", "data": {}}, {"type": "InlineE", "data": {}}]') IS NULL;
    SELECT current_setting('work_mem') || '|' || current_setting('maintenance_work_mem')
           || '|' || current_setting('search_path');
    COMMIT;
});
is($out, "f\n2MB|public\nf\n2MB|$mwm|public",
	'inline: the appender\'s settings are unchanged, in its transaction and after')
  or diag($err);
is($node->safe_psql('postgres', q{
        SELECT count(*) || ' ' || count(DISTINCT path) || ' ' || count(DISTINCT work_mem)
               || ' ' || bool_or(path = 'elsewhere') FROM byhome.i_calls}),
	'3 1 1 false',
	'inline: each call sees the same settings, not what the previous call set')
  or diag($node->safe_psql('postgres', 'SELECT * FROM byhome.i_calls ORDER BY pos'));

# rebuild(): the reset function's changes end with it
($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    SET search_path = ohome;
    CREATE TABLE rb_seen (pos bigint);
    CREATE FUNCTION rb_see(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO ohome.rb_seen VALUES (e.global_position) $$;
    CREATE FUNCTION rb_reset() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE ohome.rb_seen;
        PERFORM set_config('work_mem', '7MB', false);
        PERFORM set_config('maintenance_work_mem', '77MB', true);
        PERFORM set_config('search_path', 'elsewhere', false);
    END $$;
    SELECT projections.register('rb_meddle', 'rb_see(projections.events)',
                                event_types => '{RunE}', reset => 'rb_reset()');
});
is($ret, 0, 'oscar registers a projection with a meddling reset function') or diag($err);
($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    SET client_min_messages = error;
    SET work_mem = '2MB';
    SET search_path = ohome, public;
    SELECT projections.rebuild('rb_meddle') IS NULL;
    SELECT current_setting('work_mem') || '|' || current_setting('search_path');
    BEGIN;
    SELECT projections.rebuild('rb_meddle') IS NULL;
    SELECT current_setting('work_mem') || '|' || current_setting('maintenance_work_mem')
           || '|' || current_setting('search_path');
    COMMIT;
});
is($out, "f\n2MB|ohome, public\nf\n2MB|$mwm|ohome, public",
	'rebuild(): the caller\'s settings are unchanged after the reset function changed them')
  or diag($err);

# ---------------------------------------------------------------------------
# The catalog guard lets the extension write its catalog, not an inline
# handler that runs while the extension appends

$node->safe_psql('postgres', q{
    CREATE TABLE guard_outcome (attempt text, outcome text);
    CREATE FUNCTION noop(e projections.events) RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$;
    SELECT projections.register('guard_victim', 'noop(projections.events)', event_types => '{None}');
    CREATE FUNCTION meddler(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        BEGIN
            UPDATE projections.projection SET state = 'paused' WHERE name = 'guard_victim';
            INSERT INTO guard_outcome VALUES ('update projection', 'done');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO guard_outcome VALUES ('update projection', 'refused');
        END;
        BEGIN
            DELETE FROM projections.failed_event WHERE false;
            INSERT INTO guard_outcome VALUES ('delete failed_event', 'done');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO guard_outcome VALUES ('delete failed_event', 'refused');
        END;
        BEGIN
            UPDATE projections.key_offset SET key_offset = key_offset;
            INSERT INTO guard_outcome VALUES ('update key_offset', 'done');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO guard_outcome VALUES ('update key_offset', 'refused');
        END;
        BEGIN
            UPDATE projections.streams SET version = version WHERE stream_id = 'no such stream';
            INSERT INTO guard_outcome VALUES ('update streams', 'done');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO guard_outcome VALUES ('update streams', 'refused');
        END;
    END $$;
    GRANT INSERT ON guard_outcome TO PUBLIC;
    SELECT projections.register('meddler', 'meddler(projections.events)',
                                event_types => '{GuardE}', mode => 'inline');
});
psql_as($node, 'postgres', 'mallory', q{
    SELECT projections.append('g', 'GuardE', '{}');
    SELECT projections.append_many('g', '[{"type": "GuardE", "data": {}}]');
}, on_error_stop => 0);
is($node->safe_psql('postgres', q{
        SELECT string_agg(attempt || ': ' || outcome, ', ' ORDER BY attempt, outcome)
        FROM guard_outcome WHERE outcome = 'done'}),
	'', 'an inline handler (of a superuser) cannot write the catalog during append or append_many');
is($node->safe_psql('postgres', q{SELECT state FROM projections.projection WHERE name = 'guard_victim'}),
	'active', 'the catalog row it tried to change is unchanged');
is($node->safe_psql('postgres', q{SELECT count(*) FROM guard_outcome WHERE outcome = 'refused'}),
	'8', 'the handler ran, and each write was refused');
$node->safe_psql('postgres', q{SELECT projections.unregister('meddler')});

# ---------------------------------------------------------------------------
# An appender's temporary table does not capture an inline handler's
# writes: the handler's unqualified table is the owner's

$node->safe_psql('postgres', q{
    SET ROLE bystander;
    SET search_path = byhome;
    CREATE TABLE tt_seen (pos bigint PRIMARY KEY);
    CREATE FUNCTION tt_see(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO tt_seen (pos) VALUES (e.global_position) $$;
    SELECT projections.register('tt_inline', 'tt_see(projections.events)',
                                event_types => '{TempE}', mode => 'inline');
});
($ret, $out, $err) = psql_as($node, 'postgres', 'mallory', q{
    CREATE TEMP TABLE tt_seen (pos bigint);
    GRANT ALL ON tt_seen TO PUBLIC;
    SELECT projections.append('tt', 'TempE', '{}') IS NULL;
    SELECT projections.append_many('tt', '[{"type": "TempE", "data": {}}]') IS NULL;
    SELECT 'captured: ' || count(*) FROM pg_temp.tt_seen;
}, on_error_stop => 0);
like($out, qr/^captured: 0$/m, 'the appender\'s temporary table got nothing') or diag($err);
is($node->safe_psql('postgres', q{
        SELECT count(*) FROM projections.events e
        WHERE e.event_type = 'TempE'
          AND NOT EXISTS (SELECT FROM byhome.tt_seen s WHERE s.pos = e.global_position)}),
	'0', 'every event appended is in the owner\'s table');

# ---------------------------------------------------------------------------
# Handlers and reset functions in a temporary schema are refused

($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    CREATE TABLE ohome.ok_seen (pos bigint);
    CREATE FUNCTION ohome.ok_h(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO ohome.ok_seen VALUES (e.global_position) $$;
    CREATE FUNCTION pg_temp.tmp_h(e projections.events) RETURNS void LANGUAGE plpgsql
        AS $$ BEGIN END $$;
    CREATE FUNCTION pg_temp.tmp_r() RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$;
    SET client_min_messages = error;
    SELECT projections.register('tmp_handler', 'pg_temp.tmp_h(projections.events)',
                                event_types => '{TmpE}');
    SELECT projections.register('tmp_reset', 'ohome.ok_h(projections.events)',
                                event_types => '{TmpE}', reset => 'pg_temp.tmp_r()');
    SELECT projections.register('tmp_inline', 'pg_temp.tmp_h(projections.events)',
                                event_types => '{TmpE}', mode => 'inline');
}, on_error_stop => 0);
is($node->safe_psql('postgres', q{
        SELECT string_agg(name, ', ' ORDER BY name) FROM projections.projection
        WHERE name LIKE 'tmp\_%'}),
	'', 'register() refuses handlers and reset functions in pg_temp');
# (the session is gone, and its functions with it)
($ret, $out, $err) = psql_as($node, 'postgres', 'mallory',
	q{SELECT projections.append('other', 'OtherE', '{}') > 0});
is($ret, 0, 'appends still work after that session ended') or diag($err);
$node->safe_psql('postgres', q{
    SELECT projections.unregister(name) FROM projections.projection WHERE name LIKE 'tmp\_%'});

# ---------------------------------------------------------------------------
# projections.handler_timeout in run(): a longer call fails with 57014, and
# the on_error policy applies

$node->safe_psql('postgres', q{
    CREATE TABLE slow_seen (projection text, pos bigint, PRIMARY KEY (projection, pos));
    CREATE FUNCTION slow_pause(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF e.data ? 'slow' THEN PERFORM pg_sleep(2); END IF;
        INSERT INTO slow_seen VALUES ('pause', e.global_position);
    END $$;
    CREATE FUNCTION slow_skip(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF e.data ? 'slow' THEN PERFORM pg_sleep(2); END IF;
        INSERT INTO slow_seen VALUES ('skip', e.global_position);
    END $$;
    SELECT projections.register('slow_pause', 'slow_pause(projections.events)',
                                event_types => '{SlowE}');
    SELECT projections.register('slow_skip', 'slow_skip(projections.events)',
                                event_types => '{SlowE}', on_error => 'skip');
});
my ($p1, $p2, $p3) = split(/\n/, $node->safe_psql('postgres', q{
    SELECT projections.append('slow', 'SlowE', '{}');
    SELECT projections.append('slow', 'SlowE', '{"slow": true}');
    SELECT projections.append('slow', 'SlowE', '{}');
}));
($ret, $out, $err) = $node->psql('postgres', q{
    SET statement_timeout = '30s';
    SET projections.handler_timeout = 300;
    SELECT projections.run('slow_pause');
    SELECT projections.run('slow_skip');
}, on_error_stop => 0);
is($node->safe_psql('postgres', q{
        SELECT state || ' ' || coalesce(error_sqlstate, '-') || ' ' || coalesce(error_position::text, '-')
        FROM projections.status WHERE name = 'slow_pause'}),
	"failed 57014 $p2",
	'run(): a handler call over projections.handler_timeout fails with 57014 and pauses the projection there')
  or diag($err);
is($node->safe_psql('postgres',
		q{SELECT string_agg(pos::text, ',' ORDER BY pos) FROM slow_seen WHERE projection = 'pause'}),
	"$p1", 'run(): the events before it were applied, not the slow one');
is($node->safe_psql('postgres', q{
        SELECT string_agg(global_position || ' ' || sqlstate, ',')
        FROM projections.failed_events WHERE projection = 'slow_skip'}),
	"$p2 57014", 'run(): with on_error = skip the slow event is in failed_events with 57014');
is($node->safe_psql('postgres',
		q{SELECT string_agg(pos::text, ',' ORDER BY pos) FROM slow_seen WHERE projection = 'skip'}),
	"$p1,$p3", 'run(): and the events after it are applied');

# an inline handler that appends sets off other inline handlers: it keeps
# its own time limit when they return
$node->safe_psql('postgres', q{
    CREATE TABLE nest_seen (pos bigint);
    CREATE FUNCTION nest_inner(e projections.events) RETURNS void LANGUAGE sql
        AS $$ INSERT INTO nest_seen VALUES (e.global_position) $$;
    CREATE FUNCTION nest_outer(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM projections.append('nest-inner', 'NestInnerE', '{}');
        PERFORM pg_sleep(5);
    END $$;
    SET client_min_messages = error;
    SELECT projections.register('nest_inner', 'nest_inner(projections.events)',
                                event_types => '{NestInnerE}', mode => 'inline');
    SELECT projections.register('nest_outer', 'nest_outer(projections.events)',
                                event_types => '{NestOuterE}', mode => 'inline');
});
($ret, $out, $err) = $node->psql('postgres', q{
    SET projections.handler_timeout = 300;
    SELECT projections.append('nest-outer', 'NestOuterE', '{}');
});
like($err, qr/handler of projection "nest_outer" ran longer than projections.handler_timeout \(300 ms\)/,
	'an inline handler keeps its time limit after the inline handlers its append set off');
is($node->safe_psql('postgres', q{SELECT count(*) FROM projections.events WHERE stream_id LIKE 'nest-%'}),
	'0', 'and its append is rolled back');
$node->safe_psql('postgres', q{
    SELECT projections.unregister('nest_outer');
    SELECT projections.unregister('nest_inner');
});

# ---------------------------------------------------------------------------
# verify() and the online rebuild's exchange never run what the owner puts
# in the new model's schema (it is the owner's, and the handler runs there)
# with the extension's privileges

# oscar's handler, run by verify() or a rebuild in the new model's schema,
# moves the new table aside and puts a view of its own (calling a function
# that says as whom it runs) or a table of its own in its place
($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    SET search_path = ohome;
    CREATE TABLE swap_t (id bigint);
    CREATE TABLE swap_with (kind text);
    INSERT INTO swap_with VALUES ('view');
    CREATE FUNCTION swap_whoami() RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'swap_whoami ran as %', current_user;
    END $$;
    CREATE FUNCTION swap_h(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        s text := (current_schemas(false))[1];
    BEGIN
        IF s NOT LIKE 'projections\_build\_%' THEN
            INSERT INTO swap_t VALUES (e.global_position);
            RETURN;
        END IF;
        IF to_regclass(format('%I.swap_t_moved', s)) IS NULL THEN
            EXECUTE format('ALTER TABLE %I.swap_t RENAME TO swap_t_moved', s);
            IF (SELECT kind FROM ohome.swap_with) = 'table' THEN
                EXECUTE format('CREATE TABLE %I.swap_t (id bigint)', s);
            ELSE
                EXECUTE format('CREATE VIEW %I.swap_t AS SELECT ohome.swap_whoami() AS id', s);
            END IF;
        END IF;
        EXECUTE format('INSERT INTO %I.swap_t_moved VALUES ($1)', s) USING e.global_position;
    END $$;
    SELECT projections.register('swap', 'swap_h(projections.events)', event_types => '{SwapE}',
                                tables => ARRAY['swap_t']::regclass[]);
});
is($ret, 0, 'a projection whose handler replaces its tables in the new model') or diag($err);
$node->safe_psql('postgres', q{
    SELECT projections.append('swap', 'SwapE', '{}');
    SELECT projections.append('swap', 'SwapE', '{}');
});
psql_as($node, 'postgres', 'oscar', q{SELECT projections.run('swap')});

($ret, $out, $err) = psql_as($node, 'postgres', 'oscar',
	q{SELECT missing_rows || ' ' || extra_rows FROM projections.verify('swap')}, on_error_stop => 0);
unlike($err, qr/swap_whoami ran as/, 'verify() does not read the view put in place of its table');
unlike($err, qr/ERROR/, 'verify() compares the table it built, wherever the handler moved it');
is($out, '0 0', 'and finds the same model');

# the same in an online rebuild: the exchange refuses a table that is not the one it made
$node->safe_psql('postgres', q{SELECT projections.append('swap', 'SwapE', '{}')});
($ret, $out, $err) = psql_as($node, 'postgres', 'oscar', q{
    \\o /dev/null
    UPDATE ohome.swap_with SET kind = 'table';
    SELECT projections.run('swap');
    CREATE TEMP TABLE swap_before AS SELECT id FROM ohome.swap_t;
    SET client_min_messages = error;
    SELECT projections.rebuild('swap', online => true);
    SELECT projections.run('swap');
    RESET client_min_messages;
    \\o
    SELECT (SELECT count(*) FROM ohome.swap_t) = (SELECT count(*) FROM swap_before)
           AND NOT EXISTS (SELECT id FROM ohome.swap_t EXCEPT SELECT id FROM swap_before);
    SELECT last_error FROM projections.status WHERE name = 'swap';
    SELECT rebuild_position IS NULL FROM projections.status WHERE name = 'swap';
});
is($ret, 0, 'run() drives the rebuild to its exchange') or diag($err);
is($out, "t\nonline rebuild cancelled: table swap_t cannot be exchanged: its new table is missing or was replaced\nt",
	'the exchange refuses the table put in place of its own and keeps the live model');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'projections\_build\_%'}),
	'0', 'the new model and what the handler put there are gone');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'oscar'}),
	'f', 'oscar is no superuser');
$node->safe_psql('postgres', q{SELECT projections.unregister('swap')});

# ---------------------------------------------------------------------------
# Hints quote the projection's name as a literal

$node->safe_psql('postgres', q{
    CREATE FUNCTION picky(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF e.data ? 'bad' THEN RAISE EXCEPTION 'bad event'; END IF;
    END $$;
    SELECT projections.register('it''s', 'picky(projections.events)', event_types => '{QuoteE}');
    SELECT projections.register('o''brien', 'picky(projections.events)', event_types => '{QuoteE}');
    SELECT projections.pause('it''s');
    SELECT projections.append('q', 'QuoteE', '{"bad": true}');
});
($ret, $out, $err) = $node->psql('postgres', q{SELECT projections.run('it''s')});
like($err, qr/\Qprojections.resume('it''s')\E/,
	'run() of a paused projection: the hint quotes its name as a literal');
unlike($err, qr/\Qresume('it's')\E/, 'and does not splice it in as it is');
my $offset = -s $node->logfile;
$node->psql('postgres', q{SELECT projections.run('o''brien')});
is($node->safe_psql('postgres', q{SELECT state FROM projections.status WHERE name = 'o''brien'}),
	'failed', 'a projection paused by a handler error');
unlike(slurp_file($node->logfile, $offset), qr/\Qresume('o'brien')\E/,
	'the log line about it does not splice the name into its hint unquoted');
($ret, $out, $err) = $node->psql('postgres', q{SELECT projections.run('o''brien')});
like($err, qr/\Qprojections.resume('o''brien')\E/,
	'run() of a failed projection: the hint quotes its name');

$node->stop;
done_testing();
