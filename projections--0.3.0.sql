/* projections--0.3.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION projections" to load this file. \quit

------------------------------------------------------------------------------
-- Event store
------------------------------------------------------------------------------

CREATE TABLE projections.key_offset (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key_offset bigint NOT NULL DEFAULT 0 CHECK (key_offset >= 0)
);
INSERT INTO projections.key_offset DEFAULT VALUES;
COMMENT ON TABLE projections.key_offset IS
'Internal: added to transaction ids to make ordering keys; moves forward after a restore from another cluster.';

CREATE TABLE projections.streams (
    stream_id text PRIMARY KEY,
    version integer NOT NULL CHECK (version > 0),
    last_key bigint NOT NULL
) WITH (fillfactor = 50);
COMMENT ON TABLE projections.streams IS
'Internal: each stream''s last version and ordering key; its row is locked by the transaction appending to the stream.';

CREATE SEQUENCE projections.events_global_position_seq AS bigint;
COMMENT ON SEQUENCE projections.events_global_position_seq IS
'Global positions of events.';

CREATE TABLE projections.events (
    global_position bigint NOT NULL,
    stream_id text NOT NULL,
    stream_version integer NOT NULL,
    event_type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    ordering_key bigint NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (global_position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
        INCLUDE (ordering_key),
    CONSTRAINT events_stream_id_check CHECK (stream_id <> ''),
    CONSTRAINT events_stream_version_check CHECK (stream_version > 0),
    CONSTRAINT events_event_type_check CHECK (event_type <> ''),
    CONSTRAINT events_data_check CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT events_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);
CREATE INDEX events_ordering_idx ON projections.events (ordering_key, global_position);

COMMENT ON TABLE projections.events IS
'The event store. Append with projections.append() or append_many(); events are immutable.';
COMMENT ON COLUMN projections.events.global_position IS
'Unique position, assigned at insert, never reused. Not a safe cursor: see ordering_key.';
COMMENT ON COLUMN projections.events.stream_id IS 'The stream, e.g. order-42.';
COMMENT ON COLUMN projections.events.stream_version IS 'Version within the stream: 1, 2, 3 ...';
COMMENT ON COLUMN projections.events.event_type IS 'The event type, e.g. OrderCreated.';
COMMENT ON COLUMN projections.events.data IS 'The payload, a JSON object.';
COMMENT ON COLUMN projections.events.metadata IS 'Correlation ids, user, ...: a JSON object.';
COMMENT ON COLUMN projections.events.recorded_at IS 'When the event was appended.';
COMMENT ON COLUMN projections.events.ordering_key IS
'Gap-safe reading order: greatest(appending transaction id + offset, key of the stream''s previous event).';

CREATE FUNCTION projections._events_before_insert() RETURNS trigger
    AS 'MODULE_PATHNAME', 'projections_events_before_insert' LANGUAGE C;
COMMENT ON FUNCTION projections._events_before_insert() IS
'Internal: assigns version, ordering key and position to every inserted event.';
CREATE TRIGGER events_assign BEFORE INSERT ON projections.events
    FOR EACH ROW EXECUTE FUNCTION projections._events_before_insert();

CREATE FUNCTION projections._events_refuse_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'projections_events_refuse_change' LANGUAGE C;
COMMENT ON FUNCTION projections._events_refuse_change() IS
'Internal: events are immutable.';
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON projections.events
    FOR EACH STATEMENT EXECUTE FUNCTION projections._events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON projections.events
    FOR EACH STATEMENT EXECUTE FUNCTION projections._events_refuse_change();

CREATE FUNCTION projections.append(
    stream_id text,
    event_type text,
    data jsonb,
    metadata jsonb DEFAULT '{}',
    expected_version integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'projections_append' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.append(text, text, jsonb, jsonb, integer) IS
'Appends one event and returns its global position. expected_version: NULL = no check, 0 = new stream, N = the stream is at version N (else SQLSTATE 40001).';

CREATE FUNCTION projections.append_many(
    stream_id text,
    events jsonb,
    expected_version integer DEFAULT NULL)
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'projections_append_many' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.append_many(text, jsonb, integer) IS
'Appends a JSON array of events [{"type": ..., "data": {...}, "metadata": {...}}] to one stream atomically; returns their global positions.';

CREATE FUNCTION projections.read_stream(stream_id text, from_version integer DEFAULT 1)
RETURNS SETOF projections.events
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.global_position, e.stream_id, e.stream_version, e.event_type,
           e.data, e.metadata, e.recorded_at, e.ordering_key
    FROM projections.events e
    WHERE e.stream_id = $1 AND e.stream_version >= coalesce($2, 1)
    ORDER BY e.stream_version
$$;
COMMENT ON FUNCTION projections.read_stream(text, integer) IS
'The events of one stream from a version on, in version order.';

CREATE FUNCTION projections.stream_version(stream_id text)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s.version FROM projections.streams s WHERE s.stream_id = $1), 0)
$$;
COMMENT ON FUNCTION projections.stream_version(text) IS
'The version a stream is at (0 if it has no events): what expected_version is compared with.';

------------------------------------------------------------------------------
-- Projections
------------------------------------------------------------------------------

CREATE TABLE projections.projection (
    name text PRIMARY KEY CHECK (name <> '' AND octet_length(name) < 64),
    handler text NOT NULL,
    reset text,
    event_types text[],
    mode text NOT NULL CHECK (mode IN ('async', 'inline')),
    on_error text NOT NULL CHECK (on_error IN ('pause', 'skip')),
    owner regrole NOT NULL,
    search_path text NOT NULL,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'failed')),
    rebuilding boolean NOT NULL DEFAULT false,
    inline_active boolean NOT NULL DEFAULT false,
    checkpoint_key bigint NOT NULL DEFAULT 0,
    checkpoint_position bigint NOT NULL DEFAULT 0,
    skip_position bigint NOT NULL DEFAULT 0,
    position bigint NOT NULL DEFAULT 0,
    events_applied bigint NOT NULL DEFAULT 0,
    events_skipped bigint NOT NULL DEFAULT 0,
    last_applied_at timestamptz,
    last_error text,
    error_sqlstate text,
    error_position bigint,
    error_at timestamptz,
    registered_at timestamptz NOT NULL DEFAULT now(),
    batch boolean NOT NULL DEFAULT false,
    tables regclass[],
    applied_by integer,
    apply_rate real,
    build_schema text,
    build_key bigint,
    build_checkpoint_position bigint,
    build_position bigint,
    build_applied bigint,
    build_skipped bigint,
    build_analyzed boolean,
    build_started_at timestamptz
);
COMMENT ON TABLE projections.projection IS
'Internal catalog of projections; written only by the extension. Query projections.status instead.';

CREATE TABLE projections.failed_event (
    projection text NOT NULL,
    global_position bigint NOT NULL,
    stream_id text NOT NULL,
    stream_version integer NOT NULL,
    event_type text NOT NULL,
    error_message text NOT NULL,
    sqlstate text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    during_rebuild boolean NOT NULL DEFAULT false,
    CONSTRAINT failed_event_pkey PRIMARY KEY (projection, global_position, during_rebuild)
);
COMMENT ON TABLE projections.failed_event IS
'Internal: events skipped under on_error = skip. Query projections.failed_events instead.';

CREATE SEQUENCE projections.build_seq AS bigint;
COMMENT ON SEQUENCE projections.build_seq IS
'Internal: numbers the schemas of online rebuilds (projections_build_N).';

CREATE FUNCTION projections._catalog_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'projections_catalog_guard' LANGUAGE C;
COMMENT ON FUNCTION projections._catalog_guard() IS
'Internal: only the extension updates or deletes catalog rows.';
CREATE TRIGGER projection_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON projections.projection
    FOR EACH STATEMENT EXECUTE FUNCTION projections._catalog_guard();
CREATE TRIGGER failed_event_guard BEFORE UPDATE OR DELETE OR TRUNCATE ON projections.failed_event
    FOR EACH STATEMENT EXECUTE FUNCTION projections._catalog_guard();
CREATE TRIGGER key_offset_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON projections.key_offset
    FOR EACH STATEMENT EXECUTE FUNCTION projections._catalog_guard();
CREATE TRIGGER streams_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON projections.streams
    FOR EACH STATEMENT EXECUTE FUNCTION projections._catalog_guard();

-- pg_dump carries events, positions, projections and checkpoints (streams
-- are rebuilt from the restored events)
SELECT pg_catalog.pg_extension_config_dump('projections.events', '');
SELECT pg_catalog.pg_extension_config_dump('projections.events_global_position_seq', '');
SELECT pg_catalog.pg_extension_config_dump('projections.projection', '');
SELECT pg_catalog.pg_extension_config_dump('projections.failed_event', '');

CREATE FUNCTION projections.register(
    name text,
    handler regprocedure,
    event_types text[] DEFAULT NULL,
    mode text DEFAULT 'async',
    reset regprocedure DEFAULT NULL,
    on_error text DEFAULT 'pause',
    tables regclass[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'projections_register' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.register(text, regprocedure, text[], text, regprocedure, text, regclass[]) IS
'Registers a projection: handler(projections.events), or handler(projections.events[]) for a batch handler, is applied to every matching event from the first on. mode: async or inline; on_error: pause or skip; tables: the read-model tables it writes.';

CREATE FUNCTION projections.unregister(name text) RETURNS void
AS 'MODULE_PATHNAME', 'projections_unregister' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.unregister(text) IS
'Removes a projection and its failed events; its read model is left as it is.';

CREATE FUNCTION projections.rebuild(name text, online boolean DEFAULT false) RETURNS void
AS 'MODULE_PATHNAME', 'projections_rebuild' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.rebuild(text, boolean) IS
'Replays a projection from the first event. Plain: empties the read model (reset function or declared tables) first. Online: builds a new model beside the live one and exchanges them when it has caught up.';

CREATE FUNCTION projections.cancel_rebuild(name text) RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_cancel_rebuild' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.cancel_rebuild(text) IS
'Drops the half-built model of an online rebuild; the live model is untouched. False if none was under way.';

CREATE FUNCTION projections.set_tables(name text, tables regclass[]) RETURNS void
AS 'MODULE_PATHNAME', 'projections_set_tables' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.set_tables(text, regclass[]) IS
'Declares the read-model tables a projection writes (NULL: none); its owner must own them.';

CREATE FUNCTION projections.verify(name text, ignore_columns text[] DEFAULT NULL)
RETURNS TABLE (table_name regclass, missing_rows bigint, extra_rows bigint)
AS 'MODULE_PATHNAME', 'projections_verify' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.verify(text, text[]) IS
'Builds the read model from scratch at the live model''s frontier and compares them per table: rows missing from and extra in the live model, ignoring the named columns. Changes nothing.';

CREATE FUNCTION projections.pause(name text) RETURNS void
AS 'MODULE_PATHNAME', 'projections_pause' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.pause(text) IS
'Stops applying events to a projection until resume().';

CREATE FUNCTION projections.resume(name text) RETURNS void
AS 'MODULE_PATHNAME', 'projections_resume' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.resume(text) IS
'Resumes a paused projection; retries one paused by a handler error.';

CREATE FUNCTION projections.set_mode(name text, mode text) RETURNS void
AS 'MODULE_PATHNAME', 'projections_set_mode' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.set_mode(text, text) IS
'Switches a projection between async and inline without losing or repeating an event.';

CREATE FUNCTION projections.run(name text, max_events bigint DEFAULT NULL) RETURNS bigint
AS 'MODULE_PATHNAME', 'projections_run' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.run(text, bigint) IS
'Applies pending events of a projection now, in this session, through the worker''s code path; returns how many.';

CREATE FUNCTION projections.head() RETURNS bigint
AS 'MODULE_PATHNAME', 'projections_head' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.head() IS
'The highest global position that is safe to read (0 when there is none).';

CREATE FUNCTION projections.wait(name text, up_to bigint DEFAULT NULL,
                                 timeout interval DEFAULT '5 seconds')
RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_wait' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.wait(text, bigint, interval) IS
'Waits until the projection has applied every committed event up to position up_to (NULL: the head now); false on timeout, or at once if it is paused or failed.';

CREATE FUNCTION projections.wait_for_lsn(lsn pg_lsn, name text DEFAULT NULL,
                                         timeout interval DEFAULT '5 seconds')
RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_wait_for_lsn' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.wait_for_lsn(pg_lsn, text, interval) IS
'Read-your-writes on a standby without positions: waits until this server has replayed lsn (taken with pg_current_wal_insert_lsn() after writing on the primary), then until the projection (NULL: every projection that is not paused or failed) has applied every event that is safe to read. False on timeout.';

CREATE FUNCTION projections.repair_key_offset() RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_repair_key_offset' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.repair_key_offset() IS
'Moves the ordering-key offset past restored events (after a restore with triggers disabled); true if it moved. The worker and pg_restore do it by themselves.';

------------------------------------------------------------------------------
-- Inline projections
------------------------------------------------------------------------------

CREATE FUNCTION projections._inline_wanted(event_type text) RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_inline_wanted' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections._inline_wanted(text) IS
'Internal: whether an active inline projection takes this event type.';

CREATE FUNCTION projections._events_apply_inline() RETURNS trigger
AS 'MODULE_PATHNAME', 'projections_events_apply_inline' LANGUAGE C;
COMMENT ON FUNCTION projections._events_apply_inline() IS
'Internal: applies an appended event to the active inline projections.';

CREATE TRIGGER events_inline AFTER INSERT ON projections.events
    FOR EACH ROW WHEN (projections._inline_wanted(NEW.event_type))
    EXECUTE FUNCTION projections._events_apply_inline();

------------------------------------------------------------------------------
-- Status
------------------------------------------------------------------------------

CREATE FUNCTION projections._safe_key() RETURNS bigint
AS 'MODULE_PATHNAME', 'projections_safe_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections._safe_key() IS
'Internal: events with a smaller ordering key are safe to read.';

CREATE FUNCTION projections._worker_status(OUT pid integer, OUT state text, OUT workers integer)
RETURNS record
AS 'MODULE_PATHNAME', 'projections_worker_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections._worker_status() IS
'Internal: this database''s projections workers (the leading one''s pid, their state, how many run).';

-- Other roles' transactions are shown only to roles that may see them in
-- pg_stat_activity (members of that role, or of pg_read_all_stats).
CREATE FUNCTION projections._horizon_holder(
    OUT xid xid8, OUT pid integer, OUT gid text, OUT since timestamptz,
    OUT description text)
RETURNS record
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH h AS (
        SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x,
               (pg_snapshot_xmin(pg_current_snapshot())::text::numeric % 4294967296)::text AS x32,
               pg_has_role('pg_read_all_stats', 'USAGE') AS all_stats
    ), a AS (
        SELECT s.pid, s.state, s.xact_start,
               h.all_stats OR pg_has_role(s.usesysid, 'USAGE') AS visible
        FROM pg_stat_activity s, h
        WHERE s.backend_xid::text = h.x32
        LIMIT 1
    ), p AS (
        SELECT px.gid, px.prepared,
               h.all_stats OR pg_has_role(px.owner, 'USAGE') AS visible
        FROM pg_prepared_xacts px, h
        WHERE px.transaction::text = h.x32
        LIMIT 1
    )
    SELECT h.x,
           CASE WHEN a.visible THEN a.pid END,
           CASE WHEN p.visible THEN p.gid END,
           CASE WHEN a.visible THEN a.xact_start WHEN p.visible THEN p.prepared END,
           CASE
             WHEN a.visible THEN
               format('transaction %s of pid %s (%s, open for %s)', h.x, a.pid,
                      coalesce(a.state, 'unknown state'),
                      date_trunc('second', now() - a.xact_start))
             WHEN p.visible THEN
               format('prepared transaction %L (xid %s, prepared %s ago)', p.gid, h.x,
                      date_trunc('second', now() - p.prepared))
             WHEN a.pid IS NOT NULL OR p.gid IS NOT NULL THEN
               format('transaction %s of another role', h.x)
           END
    FROM h LEFT JOIN a ON true LEFT JOIN p ON true
$$;
COMMENT ON FUNCTION projections._horizon_holder() IS
'Internal: the oldest running transaction of the cluster, which bounds the events that are safe to read (its pid, name and age only for roles that may see them).';

CREATE VIEW projections.status WITH (security_barrier) AS
SELECT p.name,
       p.mode,
       CASE
         WHEN p.state = 'paused' THEN 'paused'
         WHEN p.state = 'failed' THEN 'failed'
         WHEN p.rebuilding THEN 'rebuilding'
         WHEN p.mode = 'inline' AND NOT p.inline_active THEN 'catching_up'
         WHEN l.lag >= coalesce(current_setting('projections.batch_size', true)::bigint, 1000)
           THEN 'catching_up'
         ELSE 'running'
       END AS state,
       CASE WHEN p.inline_active THEN h.head ELSE p.position END AS position,
       h.head,
       l.lag,
       p.last_error,
       p.error_position,
       p.events_applied,
       p.last_applied_at,
       p.error_sqlstate,
       p.error_at,
       p.events_skipped,
       p.event_types,
       p.on_error,
       p.owner,
       p.handler,
       p.checkpoint_key,
       CASE WHEN b.blocked THEN hh.description END AS blocked_by,
       CASE WHEN b.blocked THEN hh.pid END AS blocked_by_pid,
       CASE WHEN b.blocked THEN hh.gid END AS blocked_by_gid,
       CASE WHEN b.blocked THEN hh.since END AS blocked_since,
       w.pid AS worker_pid,
       CASE WHEN p.mode = 'inline' AND p.inline_active THEN 'inline' ELSE w.state END AS worker_state,
       p.batch,
       p.tables,
       p.build_position AS rebuild_position,
       r.rebuild_lag,
       p.build_started_at AS rebuild_started_at,
       p.applied_by AS applier_pid,
       CASE WHEN p.last_applied_at > now() - interval '1 minute'
            THEN coalesce(p.apply_rate, 0) ELSE 0 END AS events_per_second,
       w.workers
FROM projections.projection p
CROSS JOIN LATERAL (
    SELECT k.safe_key,
           coalesce((SELECT e.global_position FROM projections.events e
                     WHERE e.ordering_key < k.safe_key
                     ORDER BY e.global_position DESC LIMIT 1), 0) AS head
    FROM (SELECT projections._safe_key() AS safe_key) k
) h
CROSS JOIN LATERAL (
    SELECT CASE WHEN p.inline_active THEN 0::bigint ELSE (
        SELECT count(*) FROM projections.events e
        WHERE (e.ordering_key, e.global_position) > (p.checkpoint_key, p.checkpoint_position)
          AND e.global_position > p.skip_position
          AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))
    ) END AS lag
) l
CROSS JOIN LATERAL (
    SELECT CASE WHEN p.build_schema IS NOT NULL THEN (
        SELECT count(*) FROM projections.events e
        WHERE (e.ordering_key, e.global_position) > (p.build_key, p.build_checkpoint_position)
          AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))
    ) END AS rebuild_lag
) r
CROSS JOIN LATERAL (
    SELECT NOT p.inline_active AND p.state = 'active' AND EXISTS (
        SELECT 1 FROM projections.events e
        WHERE (e.ordering_key, e.global_position) > (p.checkpoint_key, p.checkpoint_position)
          AND e.ordering_key >= h.safe_key
    ) AS blocked
) b
LEFT JOIN LATERAL projections._horizon_holder() hh ON b.blocked
CROSS JOIN projections._worker_status() w
WHERE pg_has_role(p.owner, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE');
COMMENT ON VIEW projections.status IS
'One row per projection (those you own, or all with pg_read_all_stats): state, position, lag, errors, what holds it back, online rebuild progress, who applies it and how fast.';

CREATE VIEW projections.failed_events WITH (security_barrier) AS
SELECT f.projection, f.global_position, f.stream_id, f.stream_version, f.event_type,
       f.error_message, f.sqlstate, f.failed_at
FROM projections.failed_event f
JOIN projections.projection p ON p.name = f.projection
WHERE NOT f.during_rebuild
  AND (pg_has_role(p.owner, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE'));
COMMENT ON VIEW projections.failed_events IS
'Events skipped under on_error = skip: projection, position, error message and SQLSTATE.';

------------------------------------------------------------------------------
-- Guards against DDL that would break registered projections
------------------------------------------------------------------------------

CREATE FUNCTION projections._guard_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    IF to_regclass('projections.events') IS NULL
       OR to_regclass('projections.projection') IS NULL THEN
        -- the extension itself is being dropped, or its tables were renamed
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'projections') THEN
            RAISE EXCEPTION 'cannot rename, move or drop the tables of extension projections'
                USING ERRCODE = 'dependent_objects_still_exist',
                      HINT = 'The extension refers to them by name.';
        END IF;
        RETURN;
    END IF;
    FOR r IN
        SELECT p.name, p.handler AS fn FROM projections.projection p
        WHERE to_regprocedure(p.handler) IS NULL
        UNION ALL
        SELECT p.name, p.reset FROM projections.projection p
        WHERE p.reset IS NOT NULL AND to_regprocedure(p.reset) IS NULL
    LOOP
        RAISE EXCEPTION 'function % is used by projection "%"', r.fn, r.name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'Dropping, renaming or moving it would stop the projection.',
                  HINT = format('Unregister the projection first: SELECT projections.unregister(%L);', r.name);
    END LOOP;
END
$$;
COMMENT ON FUNCTION projections._guard_ddl() IS
'Internal: refuses DDL that would leave a projection without its handler or reset function.';

CREATE EVENT TRIGGER projections_guard_drop ON sql_drop
    EXECUTE FUNCTION projections._guard_ddl();
CREATE EVENT TRIGGER projections_guard_alter ON ddl_command_end
    WHEN TAG IN ('ALTER FUNCTION', 'ALTER SCHEMA', 'ALTER TABLE', 'ALTER EXTENSION')
    EXECUTE FUNCTION projections._guard_ddl();

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but the status views and their helpers.
-- Grant USAGE on the schema and EXECUTE on the API to the roles that use it.
------------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA projections FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA projections FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA projections FROM PUBLIC;
GRANT SELECT ON projections.status, projections.failed_events TO PUBLIC;
GRANT EXECUTE ON FUNCTION projections._safe_key(), projections._worker_status(),
    projections._horizon_holder(), projections._inline_wanted(text) TO PUBLIC;
