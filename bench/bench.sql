-- Objects of the benchmark, created in every database it uses (bench/bench.py).
CREATE SCHEMA bench;

-- checkpoints of the PL/pgSQL loop and of the external projector
CREATE TABLE bench.checkpoint (
    name text PRIMARY KEY,
    ordering_key bigint NOT NULL,
    global_position bigint NOT NULL,
    applied bigint NOT NULL DEFAULT 0
);

-- 2. The baseline: the handler called from a PL/pgSQL loop over the events
-- in (ordering_key, global_position) order, below the safe key, filtered by
-- the projection's event types, COMMIT (with the checkpoint) per batch.
-- The same query as the worker's fetch, one keyset page per batch.
CREATE PROCEDURE bench.plpgsql_loop(types text[], batch integer DEFAULT 1000)
LANGUAGE plpgsql AS $$
DECLARE
    k bigint := 0;
    p bigint := 0;
    safe bigint;
    n integer;
    total bigint := 0;
    e projections.events;
BEGIN
    INSERT INTO bench.checkpoint (name, ordering_key, global_position)
    VALUES ('plpgsql_loop', 0, 0)
    ON CONFLICT (name) DO UPDATE SET ordering_key = 0, global_position = 0, applied = 0;
    COMMIT;
    LOOP
        safe := projections._safe_key();
        n := 0;
        FOR e IN
            SELECT ev.* FROM projections.events ev
            WHERE (ev.ordering_key, ev.global_position) > (k, p)
              AND ev.ordering_key < safe
              AND (types IS NULL OR ev.event_type = ANY (types))
            ORDER BY ev.ordering_key, ev.global_position
            LIMIT batch
        LOOP
            PERFORM ecommerce.order_summary_apply(e);
            k := e.ordering_key;
            p := e.global_position;
            n := n + 1;
        END LOOP;
        total := total + n;
        UPDATE bench.checkpoint
        SET ordering_key = k, global_position = p, applied = total
        WHERE name = 'plpgsql_loop';
        COMMIT;
        EXIT WHEN n < batch;
    END LOOP;
END
$$;

-- 6. The bare INSERT baseline: a plain table with the columns, constraints
-- and indexes of projections.events, no triggers; positions from a sequence.
CREATE SEQUENCE bench.plain_events_seq AS bigint;
CREATE TABLE bench.plain_events (
    LIKE projections.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES
);
ALTER TABLE bench.plain_events
    ALTER COLUMN global_position SET DEFAULT nextval('bench.plain_events_seq');

-- 6. A copy of order_summary and of its handler and reset function under
-- another schema, for several inline projections each writing its own copy.
CREATE FUNCTION bench.copy_order_summary(target name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    f regprocedure;
    def text;
BEGIN
    EXECUTE format('CREATE SCHEMA %I', target);
    EXECUTE format('CREATE TABLE %I.order_summary (LIKE ecommerce.order_summary INCLUDING ALL)',
                   target);
    FOREACH f IN ARRAY ARRAY['ecommerce.order_summary_apply(projections.events)',
                             'ecommerce.order_summary_reset()']::regprocedure[]
    LOOP
        def := regexp_replace(pg_get_functiondef(f), '\mecommerce\.', quote_ident(target) || '.', 'g');
        IF def ~ '\mecommerce\M' THEN
            RAISE EXCEPTION 'cannot copy %: it names schema ecommerce in a way this copy does not rewrite', f;
        END IF;
        EXECUTE def;
    END LOOP;
END
$$;

-- 9. A copy of the PL/pgSQL loop of 2 that calls the handler of a copy of
-- order_summary (bench.copy_order_summary) and keeps its checkpoint under
-- the copy's name: copies side by side show what as many processes doing
-- this work get out of the machine, without projections.
CREATE FUNCTION bench.copy_plpgsql_loop(target name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    def text;
BEGIN
    def := pg_get_functiondef('bench.plpgsql_loop(text[], integer)'::regprocedure);
    def := replace(def, 'bench.plpgsql_loop(', quote_ident(target) || '.plpgsql_loop(');
    def := replace(def, 'ecommerce.order_summary_apply(', quote_ident(target) || '.order_summary_apply(');
    def := replace(def, '''plpgsql_loop''', quote_literal(target));
    IF def ~ '\mecommerce\M' OR def ~ '''plpgsql_loop''' THEN
        RAISE EXCEPTION 'cannot copy bench.plpgsql_loop: it changed in a way this copy does not rewrite';
    END IF;
    EXECUTE def;
END
$$;

-- 10. The small live projection measured while another projection is
-- rebuilt: events of its own type (BenchPing), one cheap INSERT each.
CREATE TABLE bench.live_ping (
    id text PRIMARY KEY,
    recorded_at timestamptz NOT NULL
);
CREATE FUNCTION bench.live_ping_apply(e projections.events) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench.live_ping (id, recorded_at) VALUES (e.data->>'id', e.recorded_at);
END
$$;

-- 11. A copy of order_summary (bench.copy_order_summary) whose model holds
-- about a tenth of the orders: its handler passes the events of the orders
-- whose id hashes to 0 modulo 10 to the copied handler, and drops the others.
-- bench.tenth(order_id) is the same test, to filter the reference.
CREATE FUNCTION bench.tenth(order_id text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT abs(hashtext(order_id)::bigint) % 10 = 0 $$;

CREATE FUNCTION bench.copy_order_summary_tenth(target name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bench.copy_order_summary(target);
    EXECUTE format($f$
        CREATE FUNCTION %1$I.order_summary_apply_tenth(e projections.events) RETURNS void
        LANGUAGE plpgsql AS $b$
        BEGIN
            IF abs(hashtext(e.data->>'order_id')::bigint) %% 10 = 0 THEN
                PERFORM %1$I.order_summary_apply(e);
            END IF;
        END
        $b$
    $f$, target);
END
$$;
