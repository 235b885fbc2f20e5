-- ALTER EXTENSION projections UPDATE from 0.1.0, with the shipped scripts,
-- keeps events, projections and checkpoints, and adds what 0.2.0 brings.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections VERSION '0.1.0';
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'projections';

CREATE TABLE upgrade_counts (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION upgrade_count(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO upgrade_counts VALUES (e.stream_id, 1)
    ON CONFLICT (stream_id) DO UPDATE SET n = upgrade_counts.n + 1
$$;
SET client_min_messages = error;
SELECT projections.register('upgrade_counts', 'upgrade_count(projections.events)');
RESET client_min_messages;
SELECT count(projections.append('s-' || (i % 4), 'E', jsonb_build_object('i', i))) AS appended
FROM generate_series(1, 40) i;
SELECT projections.run('upgrade_counts', 25);
SELECT count(projections.append('s-' || (i % 4), 'E', jsonb_build_object('i', i))) AS appended
FROM generate_series(41, 50) i;

CREATE TEMP TABLE before_events AS SELECT * FROM projections.events;
CREATE TEMP TABLE before_projection AS
    SELECT name, handler, mode, state, checkpoint_key, checkpoint_position, position, events_applied
    FROM projections.projection;

ALTER EXTENSION projections UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'projections';

-- nothing lost, nothing moved
SELECT count(*) AS events_changed FROM (
    (SELECT * FROM projections.events EXCEPT SELECT * FROM before_events)
    UNION ALL
    (SELECT * FROM before_events EXCEPT SELECT * FROM projections.events)) d;
SELECT count(*) AS projections_changed FROM (
    SELECT name, handler, mode, state, checkpoint_key, checkpoint_position, position, events_applied
    FROM projections.projection
    EXCEPT SELECT * FROM before_projection) d;

-- the projection resumes exactly where it was, the new function works
SELECT projections.run('upgrade_counts');
SELECT sum(n) AS applied_once FROM upgrade_counts;
SELECT projections.stream_version('s-1'), projections.stream_version('nope');
SELECT projections.append('s-1', 'E', '{}', expected_version => projections.stream_version('s-1')) > 0 AS appended;

-- the upgraded extension has the same objects as a fresh one
CREATE TEMP TABLE upgraded AS
    SELECT pg_describe_object(classid, objid, objsubid) AS object
    FROM pg_depend WHERE refclassid = 'pg_extension'::regclass
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'projections') AND deptype = 'e';
SET client_min_messages = warning;
DROP EXTENSION projections CASCADE;
CREATE EXTENSION projections;
RESET client_min_messages;
SELECT object AS differs FROM (
    (SELECT pg_describe_object(classid, objid, objsubid) AS object
     FROM pg_depend WHERE refclassid = 'pg_extension'::regclass
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'projections') AND deptype = 'e'
     EXCEPT SELECT object FROM upgraded)
    UNION ALL
    (SELECT object FROM upgraded
     EXCEPT SELECT pg_describe_object(classid, objid, objsubid)
     FROM pg_depend WHERE refclassid = 'pg_extension'::regclass
       AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'projections') AND deptype = 'e')) d;
DROP TABLE upgrade_counts;
