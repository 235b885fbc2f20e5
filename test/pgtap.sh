#!/usr/bin/env bash
# Runs the pgTAP tests (test/pgtap/*.sql) through pg_prove on a throwaway
# cluster started with the worker preloaded but off (test/regress.conf):
# tests drive projections with projections.run().  Each file gets a fresh database
# with pgtap and projections installed.  The cluster is always stopped; its
# log is copied to $PROJECTIONS_LOG_DIR/pgtap.log when that is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
# pg_prove runs the psql of the server under test
export PATH="$bindir:$PATH"
dir=$(mktemp -d "${TMPDIR:-/tmp}/projections-pgtap.XXXXXX")
port=$((20000 + RANDOM % 20000))
stop() {
    "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    if [ -n "${PROJECTIONS_LOG_DIR:-}" ] && [ -f "$dir/log" ]; then
        cp "$dir/log" "$PROJECTIONS_LOG_DIR/pgtap.log" || true
    fi
    rm -rf "$dir"
}
trap stop EXIT

"$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
cat test/regress.conf >> "$dir/data/postgresql.conf"
cat >> "$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
CONF
"$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null

status=0
n=0
for file in test/pgtap/*.sql; do
    n=$((n + 1))
    db="pgtap_$n"
    "$bindir/psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres \
        -c "CREATE DATABASE $db" >/dev/null
    "$bindir/psql" -X -q -h "$dir" -p "$port" -U postgres -d "$db" \
        -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION projections" >/dev/null
    if ! pg_prove -h "$dir" -p "$port" -U postgres -d "$db" "$file"; then
        status=1
    fi
done
if [ $status -ne 0 ]; then
    echo "== server log (tail)"
    tail -n 50 "$dir/log"
fi
exit $status
