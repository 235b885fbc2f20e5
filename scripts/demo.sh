#!/usr/bin/env bash
# A one-command demo of projections: the e-commerce example (examples/ecommerce)
# on a throwaway PostgreSQL cluster.
#
#   scripts/demo.sh [--no-install] [--keep] [--events N]
#
# Installs what is missing from Debian's packages, builds and installs the
# extension (skip both with --no-install), starts a cluster in a temporary
# directory with projections preloaded, registers the four read models,
# appends a generated history of N events (default 20000) while the
# background worker applies it, waits for the projections, rebuilds
# order_summary online while new orders keep coming (and verifies it), and
# shows the status view, the read models and a full-text product search.  The cluster
# is stopped and removed at the end, unless --keep is given: then it is left
# running and the commands to connect to it and to stop it are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

install=1
keep=
events=20000
while [ $# -gt 0 ]; do
    case "$1" in
        --no-install) install= ;;
        --keep) keep=1 ;;
        --events) events=${2:?--events needs a number}; shift ;;
        --events=*) events=${1#--events=} ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$events" in
    ''|*[!0-9]*) echo "--events needs a positive number" >&2; exit 2 ;;
esac

started_at=$(date +%s)
if [ -n "$install" ]; then
    ensure_packages
    build_and_install
fi
bindir=$("$PG_CONFIG" --bindir)
example=examples/ecommerce

# the cluster lives in a temporary directory owned by the server user
dir=$(mktemp -d "${TMPDIR:-/tmp}/projections-demo.XXXXXX")
[ "$(id -u)" -ne 0 ] || chown "$(server_user)" "$dir"
port=$((30000 + RANDOM % 10000))
running=
done_ok=
cleanup() {
    local status=$?
    if [ -n "$running" ] && { [ -z "$keep" ] || [ -z "$done_ok" ]; }; then
        if [ -z "$done_ok" ] && [ -f "$dir/log" ]; then
            echo "== the demo failed; server log (tail):" >&2
            tail -n 30 "$dir/log" >&2 || true
        fi
        as_server_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
        running=
    fi
    # for scripts/test.sh, which searches every server log for crashes
    if [ -z "$running" ] && [ -n "${PROJECTIONS_LOG_DIR:-}" ] && [ -f "$dir/log" ]; then
        cp "$dir/log" "$PROJECTIONS_LOG_DIR/demo.log" || true
    fi
    if [ -z "$running" ]; then
        rm -rf "$dir"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting a throwaway cluster in $dir (port $port)"
as_server_user "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
cat >> "$dir/data/postgresql.conf" <<CONF
shared_preload_libraries = 'projections'
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
projections.poll_interval = '100ms'
CONF
as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
running=1

# psql on the demo database; SQL comes on stdin (so the server user needs no
# access to this directory)
sql() {
    as_server_user env PGOPTIONS='-c client_min_messages=warning' \
        "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -P pager=off -h "$dir" -p "$port" \
        -U postgres -d demo "$@"
}

as_server_user "$bindir/createdb" -h "$dir" -p "$port" -U postgres demo
echo "== loading the e-commerce example: read-model tables, handlers, generator"
sql -c 'CREATE EXTENSION projections'
sql < "$example/schema.sql"
sql < "$example/handlers.sql"
sql < "$example/generate.sql"
echo "== registering the four projections (async: applied by the background worker)"
sql -At -v mode=async < "$example/register.sql"

echo "== appending $events events (committing every 1000) while the worker applies them"
t0=$(date +%s.%N)
sql -At -c "CALL ecommerce.load_history($events, 0.42, 1000)" >/dev/null &
loader=$!
for _ in $(seq 1 20); do
    sleep 0.3
    kill -0 "$loader" 2>/dev/null || break
    sql -At -c "SELECT format('  while loading: %s events appended; lag %s',
                              (SELECT count(*) FROM projections.events),
                              string_agg(name || ' ' || lag, ', ' ORDER BY name))
                FROM projections.status" || true
done
wait "$loader"
t1=$(date +%s.%N)
sql -At -c "SELECT format('appended %s events in %s s', count(*), round(($t1 - $t0)::numeric, 1))
            FROM projections.events"

echo "== waiting for the projections to catch up"
sql -At -c "SELECT format('%s: %s', name, CASE WHEN projections.wait(name, NULL, '30 seconds')
                                             THEN 'caught up' ELSE 'TIMED OUT' END)
            FROM projections.status ORDER BY name" | tee "$dir/wait.out"
if grep -q 'TIMED OUT' "$dir/wait.out"; then
    echo "some projections did not catch up" >&2
    exit 1
fi
t2=$(date +%s.%N)
sql -At -c "SELECT format('caught up %s s after the last append', round(($t2 - $t1)::numeric, 1))"

echo "== an online rebuild of order_summary while more events keep coming"
sql -At -c "SELECT format('before: %s orders in ecommerce.order_summary', count(*)) FROM ecommerce.order_summary"
# new orders, one per transaction, all along the rebuild
sql -At -c "DO \$\$
BEGIN
    FOR i IN 1..400 LOOP
        PERFORM projections.append('order-demo-' || i, 'OrderCreated',
            jsonb_build_object('order_id', 'demo-' || i, 'customer_id', '1',
                               'created_at', '2026-12-01T10:00:00Z'));
        PERFORM projections.append('order-demo-' || i, 'OrderItemAdded',
            jsonb_build_object('order_id', 'demo-' || i, 'product_id', '1',
                               'price', 10, 'quantity', 1));
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
END \$\$" >/dev/null &
loader=$!
sql -At -c "SELECT projections.rebuild('order_summary', online => true)" >/dev/null
for _ in $(seq 1 600); do
    line=$(sql -At -c "SELECT CASE WHEN rebuild_position IS NULL THEN 'done'
                              ELSE format('  rebuilding beside the live model: new model at position %s, %s events to go;'
                                          ' the live model has %s orders', rebuild_position, rebuild_lag,
                                          (SELECT count(*) FROM ecommerce.order_summary)) END
                       FROM projections.status WHERE name = 'order_summary'")
    [ "$line" = done ] && break
    echo "$line"
    sleep 0.2
done
if [ "$line" != done ]; then
    echo "the online rebuild did not finish" >&2
    exit 1
fi
wait "$loader"
sql -At -c "SELECT format('after the exchange: %s orders; %s', count(*),
                          CASE WHEN projections.wait('order_summary', NULL, '30 seconds')
                               THEN 'caught up with the new events' ELSE 'NOT CAUGHT UP' END)
            FROM ecommerce.order_summary"
sql -At -c "SELECT format('verify: %s rows missing, %s extra in %s', missing_rows, extra_rows, table_name)
            FROM projections.verify('order_summary')" | tee "$dir/verify.out"
if grep -qv ' 0 rows missing, 0 extra' "$dir/verify.out"; then
    echo "verify() found differences" >&2
    exit 1
fi

sql <<'SQL'
\echo
\echo == projections.status
SELECT name, mode, state, position, head, lag, events_applied, worker_state
FROM projections.status ORDER BY name;

\echo == events by type
SELECT event_type, count(*) AS events FROM projections.events GROUP BY 1 ORDER BY 2 DESC;

\echo == order_summary: orders by status, and the biggest orders
SELECT status, count(*) AS orders, sum(total_amount) AS amount
FROM ecommerce.order_summary GROUP BY 1 ORDER BY 2 DESC;
SELECT order_id, customer_id, status, total_amount, item_count,
       created_at::date AS created, completed_at::date AS completed
FROM ecommerce.order_summary ORDER BY total_amount DESC, order_id LIMIT 5;

\echo == daily_sales: the best days
SELECT day, total_orders, total_revenue, total_items, total_refunds
FROM ecommerce.daily_sales ORDER BY total_revenue DESC, day LIMIT 5;

\echo == customer_activity: top customers (customers + customer_activity_summary)
SELECT c.customer_id, c.name, c.tier, s.total_orders, s.total_spent, s.total_reviews,
       s.last_order_at::date AS last_order
FROM ecommerce.customers c JOIN ecommerce.customer_activity_summary s USING (customer_id)
ORDER BY s.total_spent DESC, c.customer_id LIMIT 5;
SELECT count(*) AS completed_orders_in_history FROM ecommerce.customer_order_history;

\echo == product_search: the catalogue
SELECT product_id, name, category, price, tags FROM ecommerce.products ORDER BY product_id::int LIMIT 5;

\echo '== full-text search: SELECT * FROM ecommerce.search_products(''backpack'', 5)'
SELECT * FROM ecommerce.search_products('backpack', 5);
\echo '== full-text search: SELECT * FROM ecommerce.search_products(''"coffee grinder" -steel'', 5)'
SELECT * FROM ecommerce.search_products('"coffee grinder" -steel', 5);
SQL

done_ok=1
echo "== demo finished in $(( $(date +%s) - started_at )) s"
if [ -n "$keep" ]; then
    stop_cmd="$bindir/pg_ctl -D $dir/data -m fast stop && rm -rf $dir"
    psql_cmd="$bindir/psql -h $dir -p $port -U postgres demo"
    if [ "$(id -u)" -eq 0 ]; then
        stop_cmd="runuser -u postgres -- $bindir/pg_ctl -D $dir/data -m fast stop && rm -rf $dir"
    fi
    echo "The cluster is still running (--keep). Connect with:"
    echo "    $psql_cmd"
    echo "Try: SELECT * FROM projections.status;  SELECT * FROM ecommerce.search_products('wool scarf');"
    echo "     SELECT projections.append('customer-1', 'CustomerTierChanged', '{\"customer_id\": \"1\", \"new_tier\": \"gold\", \"changed_at\": \"2025-01-01T00:00:00Z\"}');"
    echo "Stop and remove it with:"
    echo "    $stop_cmd"
else
    echo "The cluster is stopped and removed (pass --keep to keep it running)."
fi
