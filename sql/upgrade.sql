-- ALTER EXTENSION projections UPDATE from 0.1.0, through every shipped
-- upgrade script, keeps events, projections and checkpoints, and gives
-- exactly the objects of a fresh install of the current version (made from
-- its full script): definitions, privileges and comments.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS projections CASCADE;
CREATE EXTENSION projections VERSION '0.1.0';
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'projections';

-- the event store works with the current library at every version
SELECT count(projections.append('s-' || (i % 4), 'E', jsonb_build_object('i', i))) AS appended
FROM generate_series(1, 50) i;

-- a projection of the old version that had applied the first 25 events (in
-- the projection's order) when the library was upgraded: its row as the
-- old version wrote it, and its read model
CREATE TABLE upgrade_counts (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION upgrade_count(e projections.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO upgrade_counts VALUES (e.stream_id, 1)
    ON CONFLICT (stream_id) DO UPDATE SET n = upgrade_counts.n + 1
$$;
CREATE TEMP TABLE first25 AS
    SELECT * FROM projections.events ORDER BY ordering_key, global_position LIMIT 25;
INSERT INTO upgrade_counts SELECT stream_id, count(*) FROM first25 GROUP BY stream_id;
INSERT INTO projections.projection (name, handler, mode, on_error, owner, search_path,
                                    checkpoint_key, checkpoint_position, position, events_applied)
SELECT 'upgrade_counts', 'public.upgrade_count(projections.events)', 'async', 'pause',
       current_user::regrole, current_setting('search_path'),
       e.ordering_key, e.global_position, e.global_position, 25
FROM first25 e ORDER BY e.ordering_key DESC, e.global_position DESC LIMIT 1;

-- the library says what the old version lacks, and the event store still works
SELECT try($$SELECT projections.run('upgrade_counts')$$);
SELECT projections.append('s-1', 'E', '{}') > 0 AS appended;

CREATE TEMP TABLE before_events AS SELECT * FROM projections.events;
CREATE TEMP TABLE before_projection AS
    SELECT name, handler, mode, state, checkpoint_key, checkpoint_position, position, events_applied
    FROM projections.projection;

ALTER EXTENSION projections UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'projections';

-- nothing lost, nothing moved
SELECT count(*) AS events_changed FROM (
    (SELECT * FROM projections.events EXCEPT ALL SELECT * FROM before_events)
    UNION ALL
    (SELECT * FROM before_events EXCEPT ALL SELECT * FROM projections.events)) d;
SELECT count(*) AS projections_changed FROM (
    (SELECT name, handler, mode, state, checkpoint_key, checkpoint_position, position, events_applied
     FROM projections.projection EXCEPT ALL SELECT * FROM before_projection)
    UNION ALL
    (SELECT * FROM before_projection EXCEPT ALL
     SELECT name, handler, mode, state, checkpoint_key, checkpoint_position, position, events_applied
     FROM projections.projection)) d;

-- the projection resumes exactly where it was: every event counted once
SET client_min_messages = error;
SELECT projections.run('upgrade_counts');
RESET client_min_messages;
SELECT count(*) AS differs FROM (
    (SELECT stream_id, n FROM upgrade_counts
     EXCEPT ALL SELECT stream_id, count(*)::integer FROM projections.events GROUP BY stream_id)
    UNION ALL
    (SELECT stream_id, count(*)::integer FROM projections.events GROUP BY stream_id
     EXCEPT ALL SELECT stream_id, n FROM upgrade_counts)) d;
-- and what 0.2.0 and 0.3.0 brought works
SELECT projections.stream_version('s-1'), projections.stream_version('nope');
SELECT projections.set_tables('upgrade_counts', ARRAY['upgrade_counts']::regclass[]);
SELECT table_name, missing_rows, extra_rows FROM projections.verify('upgrade_counts');

-- Every object of the extension, described by what a user can see of it:
-- definitions, owners, columns, constraints, indexes, triggers (and whether
-- they fire), row-level security, privileges (of columns too), comments,
-- settings.  No OIDs, so two installs compare.
CREATE FUNCTION pg_temp.extension_objects()
RETURNS TABLE (object text, detail text) LANGUAGE sql AS $$
    WITH ext AS (SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'projections'),
    members AS (
        SELECT d.classid, d.objid, pg_describe_object(d.classid, d.objid, 0) AS object
        FROM pg_depend d, ext
        WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
    )
    SELECT m.object, x.detail
    FROM members m
    CROSS JOIN LATERAL (
        -- every member, even one described by nothing below
        SELECT 'member' AS detail
        UNION ALL
        -- functions: the whole definition, owner, privileges, comment
        SELECT pg_get_functiondef(p.oid) || ' owner=' || p.proowner::regrole
               || ' acl=' || coalesce(p.proacl::text, '')
               || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
        FROM pg_proc p WHERE m.classid = 'pg_proc'::regclass AND p.oid = m.objid AND p.prokind <> 'a'
        UNION ALL
        -- relations: kind, options, privileges, comment, view definition
        SELECT format('kind=%s persistence=%s options=%s owner=%s acl=%s rls=%s/%s comment=%s view=%s',
                      c.relkind, c.relpersistence, c.reloptions, c.relowner::regrole, c.relacl,
                      c.relrowsecurity, c.relforcerowsecurity,
                      obj_description(c.oid, 'pg_class'),
                      CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END)
        FROM pg_class c WHERE m.classid = 'pg_class'::regclass AND c.oid = m.objid
        UNION ALL
        -- columns, in order
        SELECT format('column %s %s %s notnull=%s default=%s acl=%s comment=%s', a.attnum, a.attname,
                      format_type(a.atttypid, a.atttypmod), a.attnotnull,
                      pg_get_expr(ad.adbin, ad.adrelid), a.attacl, col_description(a.attrelid, a.attnum))
        FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        WHERE m.classid = 'pg_class'::regclass AND a.attrelid = m.objid AND a.attnum > 0
          AND NOT a.attisdropped
        UNION ALL
        -- constraints, indexes, triggers
        SELECT format('constraint %s %s', co.conname, pg_get_constraintdef(co.oid))
        FROM pg_constraint co WHERE m.classid = 'pg_class'::regclass AND co.conrelid = m.objid
        UNION ALL
        SELECT 'index ' || pg_get_indexdef(i.indexrelid)
        FROM pg_index i WHERE m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
        UNION ALL
        SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
        FROM pg_trigger t WHERE m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid
          AND NOT t.tgisinternal
        UNION ALL
        SELECT format('policy %s %s %s %s %s', po.polname, po.polcmd, po.polroles::regrole[],
                      pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
        FROM pg_policy po WHERE m.classid = 'pg_class'::regclass AND po.polrelid = m.objid
        UNION ALL
        -- sequences
        SELECT format('sequence %s %s %s %s %s %s', s.seqtypid::regtype, s.seqstart, s.seqincrement,
                      s.seqmax, s.seqmin, s.seqcycle)
        FROM pg_sequence s WHERE m.classid = 'pg_class'::regclass AND s.seqrelid = m.objid
        UNION ALL
        -- dumped with pg_dump (configuration tables)
        SELECT 'dumped, condition ' || coalesce((SELECT ext.extcondition[i] FROM ext,
               generate_subscripts(ext.extconfig, 1) i WHERE ext.extconfig[i] = m.objid), '')
        FROM ext WHERE m.classid = 'pg_class'::regclass AND m.objid = ANY (ext.extconfig)
        UNION ALL
        -- event triggers, schemas, types
        SELECT format('event trigger on %s tags %s function %s enabled %s', e.evtevent, e.evttags,
                      e.evtfoid::regprocedure, e.evtenabled)
        FROM pg_event_trigger e WHERE m.classid = 'pg_event_trigger'::regclass AND e.oid = m.objid
        UNION ALL
        SELECT format('schema acl=%s comment=%s', n.nspacl, obj_description(n.oid, 'pg_namespace'))
        FROM pg_namespace n WHERE m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
        UNION ALL
        SELECT format('type %s', format_type(ty.oid, NULL))
        FROM pg_type ty WHERE m.classid = 'pg_type'::regclass AND ty.oid = m.objid
    ) x
$$;

CREATE TEMP TABLE upgraded AS SELECT * FROM pg_temp.extension_objects();
SELECT count(*) > 100 AS described_in_detail FROM upgraded;
SET client_min_messages = warning;
DROP EXTENSION projections CASCADE;
CREATE EXTENSION projections;
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'projections';
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.extension_objects();

-- what the upgrade left different from a fresh install (nothing, both ways)
SELECT 'only upgraded' AS side, object, detail FROM (
    SELECT * FROM upgraded EXCEPT ALL SELECT * FROM fresh) d
UNION ALL
SELECT 'only fresh', object, detail FROM (
    SELECT * FROM fresh EXCEPT ALL SELECT * FROM upgraded) d
ORDER BY 1, 2, 3;
DROP TABLE upgrade_counts;
