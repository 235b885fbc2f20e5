#!/usr/bin/env bash
# How fast the e-commerce batch handlers (examples/ecommerce/handlers.sql)
# build their read models, next to the per-event handlers and to one
# set-based statement (bench/setbased.sql for order_summary, a GROUP BY day
# for daily_sales), all from the same history, in the calling session (no
# worker, no projection registered):
#
#   bench/batch_examples.sh [--rounds N] [--sizes "1000 5000 10000"] [psql options]
#
# The database must have the extension, the example (schema.sql,
# handlers.sql) and a history, e.g.  CALL ecommerce.load_history(200000).
# Each method starts from an empty read model (TRUNCATE, CHECKPOINT) and runs
# in one transaction:
#   per-event   the per-event handler once per event, in a PL/pgSQL loop over
#               the projection's events in (ordering_key, global_position)
#               order
#   batch N     the batch handler once per N of those events, as arrays
#   in handler N  the part of "batch N" spent in the handler's calls (not in
#               building the arrays)
#   set-based   one INSERT ... SELECT over projections.events
# The handlers read the events from a numbered copy of each projection's
# events (made once), so that what is timed is the handlers, not a keyset
# query on projections.events; the set-based statement reads
# projections.events.  Every result is compared with the per-event one (as
# text, both ways).  Prints the median of N rounds (default 3) per method,
# and the ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=3
sizes="1000 5000 10000"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --sizes) sizes=$2; shift 2 ;;
        *) break ;;
    esac
done
psql_() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

setup=$(cat <<'SQL'
DROP SCHEMA IF EXISTS batch_bench CASCADE;
CREATE SCHEMA batch_bench;
CREATE TABLE batch_bench.result (method text, projection text, round integer, seconds float8, events bigint);
CREATE TABLE batch_bench.order_summary_ref (LIKE ecommerce.order_summary);
CREATE TABLE batch_bench.daily_sales_ref (LIKE ecommerce.daily_sales);

-- each projection's events, numbered in applying order
CREATE TABLE batch_bench.events (projection text, i bigint, e projections.events,
                                 PRIMARY KEY (projection, i));
INSERT INTO batch_bench.events
SELECT p.name, row_number() OVER (PARTITION BY p.name ORDER BY e.ordering_key, e.global_position), e
FROM projections.events e
JOIN (VALUES ('order_summary', '{OrderCreated,OrderItemAdded,OrderItemRemoved,OrderShipped,OrderCompleted,OrderCancelled}'::text[]),
             ('daily_sales', '{OrderCompleted,OrderRefunded}')) p(name, types)
  ON e.event_type = ANY (p.types);
ANALYZE batch_bench.events;

-- per-event: the handler once per event, in applying order
CREATE FUNCTION batch_bench.per_event(proj text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    e projections.events;
    n bigint := 0;
BEGIN
    FOR e IN SELECT (x.e).* FROM batch_bench.events x WHERE x.projection = proj ORDER BY x.i
    LOOP
        IF proj = 'order_summary' THEN
            PERFORM ecommerce.order_summary_apply(e);
        ELSE
            PERFORM ecommerce.daily_sales_apply(e);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- batch: the events `size` at a time, as one array each; also records, as
-- method "in handler N", the time spent in the handler's calls alone
CREATE FUNCTION batch_bench.batch(proj text, size integer, round integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint := 0;
    events projections.events[];
    n bigint := 0;
    t0 timestamptz;
    inside interval := '0';
BEGIN
    LOOP
        SELECT array_agg(x.e ORDER BY x.i) INTO events
        FROM batch_bench.events x WHERE x.projection = proj AND x.i > lo AND x.i <= lo + size;
        EXIT WHEN events IS NULL;
        t0 := clock_timestamp();
        IF proj = 'order_summary' THEN
            PERFORM ecommerce.order_summary_apply_batch(events);
        ELSE
            PERFORM ecommerce.daily_sales_apply_batch(events);
        END IF;
        inside := inside + (clock_timestamp() - t0);
        lo := lo + size;
        n := n + cardinality(events);
    END LOOP;
    INSERT INTO batch_bench.result
    VALUES ('in handler ' || size, proj, round, extract(epoch FROM inside), n);
    RETURN n;
END $$;
SQL
)
psql_ "$@" -c "$setup"

setbased_os=$(sed -e 's/;[[:space:]]*$//' "$here/setbased.sql")
setbased_ds="SELECT ((CASE e.event_type WHEN 'OrderCompleted' THEN e.data->>'completed_at'
                                    ELSE e.data->>'original_completed_at' END)::timestamptz
                     AT TIME ZONE 'UTC')::date AS day,
               sum(CASE e.event_type WHEN 'OrderCompleted' THEN 1 ELSE -1 END),
               sum(CASE e.event_type WHEN 'OrderCompleted' THEN (e.data->>'total_amount')::numeric
                                     ELSE -(e.data->>'refund_amount')::numeric END),
               sum(CASE e.event_type WHEN 'OrderCompleted' THEN (e.data->>'item_count')::integer
                                     ELSE 0 END),
               sum(CASE e.event_type WHEN 'OrderCompleted' THEN 0
                                     ELSE (e.data->>'refund_amount')::numeric END)
        FROM projections.events e WHERE e.event_type IN ('OrderCompleted', 'OrderRefunded')
        GROUP BY 1"

# one measurement: method, projection, round, the statement (returns events)
measure() {
    local method=$1 proj=$2 round=$3 stmt=$4
    psql_ "${@:5}" -c "TRUNCATE ecommerce.$proj" -c "CHECKPOINT" >/dev/null
    psql_ "${@:5}" <<SQL
SET search_path = ecommerce, pg_catalog, pg_temp;
SELECT clock_timestamp() AS t0 \gset
$stmt \gset
INSERT INTO batch_bench.result
VALUES ('$method', '$proj', $round, extract(epoch FROM clock_timestamp() - :'t0'), :n);
SQL
    if [ "$method" = per-event ]; then
        psql_ "${@:5}" -c "TRUNCATE batch_bench.${proj}_ref; INSERT INTO batch_bench.${proj}_ref TABLE ecommerce.$proj"
    else
        local diff
        diff=$(psql_ "${@:5}" -c "SELECT count(*) FROM ((SELECT x::text FROM ecommerce.$proj x EXCEPT ALL
                                                       SELECT r::text FROM batch_bench.${proj}_ref r)
                                                      UNION ALL (SELECT r::text FROM batch_bench.${proj}_ref r EXCEPT ALL
                                                       SELECT x::text FROM ecommerce.$proj x)) d")
        if [ "$diff" != 0 ]; then
            echo "batch_examples.sh: $method on $proj differs from per-event in $diff rows" >&2
            exit 1
        fi
    fi
}

for round in $(seq 1 "$rounds"); do
    echo "== round $round/$rounds" >&2
    for proj in order_summary daily_sales; do
        if [ $proj = order_summary ]; then setbased=$setbased_os; else setbased=$setbased_ds; fi
        measure per-event $proj "$round" \
            "SELECT batch_bench.per_event('$proj') AS n" "$@"
        measure set-based $proj "$round" \
            "WITH ins AS (INSERT INTO ecommerce.$proj $setbased RETURNING 1) SELECT count(*) AS n FROM ins" "$@"
        for size in $sizes; do
            measure "batch $size" $proj "$round" \
                "SELECT batch_bench.batch('$proj', $size, $round) AS n" "$@"
        done
    done
done

psql -X -q -v ON_ERROR_STOP=1 "$@" <<'SQL'
\pset footer off
WITH m AS (
    SELECT projection, method, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS s,
           max(events) AS events   -- set-based: rows, not events
    FROM batch_bench.result GROUP BY 1, 2
)
SELECT m.projection, m.method, round(m.s::numeric, 3) AS seconds,
       round(pe.events / m.s) AS events_per_s,
       round((sb.s / m.s)::numeric, 2) AS vs_set_based,
       round((pe.s / m.s)::numeric, 2) AS vs_per_event
FROM m
JOIN m sb ON sb.projection = m.projection AND sb.method = 'set-based'
JOIN m pe ON pe.projection = m.projection AND pe.method = 'per-event'
ORDER BY m.projection DESC, m.method ~ '^in handler', m.s DESC;
DROP SCHEMA batch_bench CASCADE;
SQL
