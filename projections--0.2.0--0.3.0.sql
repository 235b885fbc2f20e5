/* projections--0.2.0--0.3.0.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION projections UPDATE TO '0.3.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Catalog: batch handlers, read-model tables, online rebuilds, who applies
------------------------------------------------------------------------------

ALTER TABLE projections.projection
    ADD COLUMN batch boolean NOT NULL DEFAULT false,
    ADD COLUMN tables regclass[],
    ADD COLUMN applied_by integer,
    ADD COLUMN apply_rate real,
    ADD COLUMN build_schema text,
    ADD COLUMN build_key bigint,
    ADD COLUMN build_checkpoint_position bigint,
    ADD COLUMN build_position bigint,
    ADD COLUMN build_applied bigint,
    ADD COLUMN build_skipped bigint,
    ADD COLUMN build_analyzed boolean,
    ADD COLUMN build_started_at timestamptz;

ALTER TABLE projections.failed_event
    ADD COLUMN during_rebuild boolean NOT NULL DEFAULT false,
    DROP CONSTRAINT failed_event_pkey,
    ADD CONSTRAINT failed_event_pkey PRIMARY KEY (projection, global_position, during_rebuild);

CREATE SEQUENCE projections.build_seq AS bigint;
COMMENT ON SEQUENCE projections.build_seq IS
'Internal: numbers the schemas of online rebuilds (projections_build_N).';
REVOKE ALL ON SEQUENCE projections.build_seq FROM PUBLIC;

------------------------------------------------------------------------------
-- Functions
------------------------------------------------------------------------------

DROP FUNCTION projections.register(text, regprocedure, text[], text, regprocedure, text);
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
REVOKE ALL ON FUNCTION projections.register(text, regprocedure, text[], text, regprocedure, text, regclass[]) FROM PUBLIC;

DROP FUNCTION projections.rebuild(text);
CREATE FUNCTION projections.rebuild(name text, online boolean DEFAULT false) RETURNS void
AS 'MODULE_PATHNAME', 'projections_rebuild' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.rebuild(text, boolean) IS
'Replays a projection from the first event. Plain: empties the read model (reset function or declared tables) first. Online: builds a new model beside the live one and exchanges them when it has caught up.';
REVOKE ALL ON FUNCTION projections.rebuild(text, boolean) FROM PUBLIC;

CREATE FUNCTION projections.cancel_rebuild(name text) RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_cancel_rebuild' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.cancel_rebuild(text) IS
'Drops the half-built model of an online rebuild; the live model is untouched. False if none was under way.';
REVOKE ALL ON FUNCTION projections.cancel_rebuild(text) FROM PUBLIC;

CREATE FUNCTION projections.set_tables(name text, tables regclass[]) RETURNS void
AS 'MODULE_PATHNAME', 'projections_set_tables' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.set_tables(text, regclass[]) IS
'Declares the read-model tables a projection writes (NULL: none); its owner must own them.';
REVOKE ALL ON FUNCTION projections.set_tables(text, regclass[]) FROM PUBLIC;

CREATE FUNCTION projections.verify(name text, ignore_columns text[] DEFAULT NULL)
RETURNS TABLE (table_name regclass, missing_rows bigint, extra_rows bigint)
AS 'MODULE_PATHNAME', 'projections_verify' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.verify(text, text[]) IS
'Builds the read model from scratch at the live model''s frontier and compares them per table: rows missing from and extra in the live model, ignoring the named columns. Changes nothing.';
REVOKE ALL ON FUNCTION projections.verify(text, text[]) FROM PUBLIC;

CREATE FUNCTION projections.repair_key_offset() RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_repair_key_offset' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.repair_key_offset() IS
'Moves the ordering-key offset past restored events (after a restore with triggers disabled); true if it moved. The worker and pg_restore do it by themselves.';
REVOKE ALL ON FUNCTION projections.repair_key_offset() FROM PUBLIC;

CREATE FUNCTION projections.wait_for_lsn(lsn pg_lsn, name text DEFAULT NULL,
                                         timeout interval DEFAULT '5 seconds')
RETURNS boolean
AS 'MODULE_PATHNAME', 'projections_wait_for_lsn' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections.wait_for_lsn(pg_lsn, text, interval) IS
'Read-your-writes on a standby without positions: waits until this server has replayed lsn (taken with pg_current_wal_insert_lsn() after writing on the primary), then until the projection (NULL: every projection that is not paused or failed) has applied every event that is safe to read. False on timeout.';
REVOKE ALL ON FUNCTION projections.wait_for_lsn(pg_lsn, text, interval) FROM PUBLIC;

------------------------------------------------------------------------------
-- Status: who sees which transaction, the rebuild, the workers
------------------------------------------------------------------------------

DROP VIEW projections.status;
DROP FUNCTION projections._worker_status();
CREATE FUNCTION projections._worker_status(OUT pid integer, OUT state text, OUT workers integer)
RETURNS record
AS 'MODULE_PATHNAME', 'projections_worker_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION projections._worker_status() IS
'Internal: this database''s projections workers (the leading one''s pid, their state, how many run).';

-- Other roles' transactions are shown only to roles that may see them in
-- pg_stat_activity (members of that role, or of pg_read_all_stats).
CREATE OR REPLACE FUNCTION projections._horizon_holder(
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

CREATE OR REPLACE VIEW projections.failed_events WITH (security_barrier) AS
SELECT f.projection, f.global_position, f.stream_id, f.stream_version, f.event_type,
       f.error_message, f.sqlstate, f.failed_at
FROM projections.failed_event f
JOIN projections.projection p ON p.name = f.projection
WHERE NOT f.during_rebuild
  AND (pg_has_role(p.owner, 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE'));

REVOKE ALL ON FUNCTION projections._worker_status() FROM PUBLIC;
GRANT SELECT ON projections.status TO PUBLIC;
GRANT EXECUTE ON FUNCTION projections._worker_status() TO PUBLIC;
