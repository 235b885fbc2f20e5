-- Bugs of 0.2.0 found in review, each shown not to come back (each of these
-- checks gave another answer on 0.2.0).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections;
RESET client_min_messages;

CREATE TABLE r_tally (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION r_tally_apply(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO r_tally VALUES (e.stream_id, 1)
    ON CONFLICT (stream_id) DO UPDATE SET n = r_tally.n + 1
$$;
SET client_min_messages = error;
SELECT projections.register('r_tally', 'r_tally_apply(projections.events)');
RESET client_min_messages;

-- run() and mode switches leave the session's other plans alone: run() does
-- not reset the plan cache, a switch does not invalidate projections.events.
-- (A kept plan resolved which() to rb.which(); creating ra.which() earlier
-- in the search_path does not invalidate it, only planning again shows it.)
CREATE SCHEMA ra;
CREATE SCHEMA rb;
CREATE FUNCTION rb.which() RETURNS text LANGUAGE sql AS $$ SELECT 'rb' $$;
SET search_path = ra, rb, public;
PREPARE which_one AS SELECT which() AS planned_with, (SELECT count(*) FROM projections.events) >= 0 AS reads_events;
EXECUTE which_one;
CREATE FUNCTION ra.which() RETURNS text LANGUAGE sql AS $$ SELECT 'ra' $$;
EXECUTE which_one;
SELECT projections.append('s-1', 'E', '{}') > 0 AS appended;
SELECT projections.run('r_tally');
EXECUTE which_one;
SET client_min_messages = error;
SELECT projections.set_mode('r_tally', 'inline');
SELECT projections.set_mode('r_tally', 'async');
RESET client_min_messages;
EXECUTE which_one;
DEALLOCATE which_one;
RESET search_path;

-- a switch's lock_timeout ends with the switch
SET lock_timeout = '7s';
BEGIN;
SELECT projections.set_mode('r_tally', 'inline');
SHOW lock_timeout;
SELECT projections.set_mode('r_tally', 'async');
SHOW lock_timeout;
COMMIT;
RESET lock_timeout;

-- handlers are entered once per event, in every mode: what one event's
-- call sets, the next one does not see, and neither does the caller
CREATE TABLE seen_setting (pos bigint, setting text);
CREATE FUNCTION remember(e projections.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO seen_setting VALUES (e.global_position, current_setting('robustness.last', true));
    PERFORM set_config('robustness.last', e.global_position::text, false);
END $$;
SET client_min_messages = error;
SELECT projections.register('remember', 'remember(projections.events)');
RESET client_min_messages;
SELECT count(projections.append('s-2', 'E', '{}')) AS appended FROM generate_series(1, 3);
SELECT projections.run('remember');
SELECT count(*) AS events, count(*) FILTER (WHERE coalesce(setting, '') <> '') AS saw_a_previous_call
FROM seen_setting;
SELECT coalesce(current_setting('robustness.last', true), '') = '' AS caller_unchanged;

-- events restored with keys ahead of this cluster's transaction ids, with
-- triggers off (so no restore path ran): reads work in a read-only
-- transaction and write nothing; an append refuses until the offset is
-- repaired, then sorts after the restored events
SET session_replication_role = replica;
INSERT INTO projections.events (global_position, stream_id, stream_version, event_type,
                                data, metadata, recorded_at, ordering_key)
VALUES (1000000, 'restored', 1, 'E', '{}', '{}', now(), 900000000000);
RESET session_replication_role;
-- (a new session: a session that already checked the offset knows only
-- what the restore path or a repair tells it)
\c
SELECT key_offset FROM projections.key_offset;
BEGIN READ ONLY;
SELECT projections.head() >= 0 AS head_reads;
SELECT count(*) AS status_reads FROM projections.status;
COMMIT;
SELECT key_offset FROM projections.key_offset;
SELECT try($$SELECT projections.append('s-3', 'E', '{}')$$);
SELECT projections.repair_key_offset();
SELECT key_offset > 0 AS moved FROM projections.key_offset;
SELECT projections.append('s-3', 'E', '{}') > 0 AS appended;
SELECT (SELECT max(ordering_key) FROM projections.events WHERE stream_id = 's-3') >
       (SELECT ordering_key FROM projections.events WHERE stream_id = 'restored') AS sorts_after;
SELECT projections.repair_key_offset() AS moved_again;

DROP SCHEMA ra CASCADE;
DROP SCHEMA rb CASCADE;
SET client_min_messages = warning;
SELECT projections.unregister('r_tally'), projections.unregister('remember');
RESET client_min_messages;
DROP TABLE r_tally, seen_setting;
DROP FUNCTION r_tally_apply(projections.events), remember(projections.events);
