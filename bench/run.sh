#!/usr/bin/env bash
# Benchmark of projections on the order-summary example (examples/ecommerce),
# on one throwaway cluster, every figure next to a baseline measured in the
# same run:
#
#   bench/run.sh                    1,000,000-event history (about 20 minutes)
#   bench/run.sh --events 200000    another history size
#   bench/run.sh --quick            20,000 events, short runs (CI, about a minute)
#   bench/run.sh --no-install       use what is installed: no apt-get, no build
#   bench/run.sh --output FILE      also write the results as a markdown table
#   bench/run.sh --rounds N         repeat each measurement N times (default 3),
#                                   report the median
#   bench/run.sh --profile          also perf-profile the worker during a replay
#   bench/run.sh --keep             keep the cluster's directory (for debugging)
#
# Exits non-zero only when a result is wrong (the read models built by the
# different methods differ, an event is not visible after wait(), a step
# fails); never because of a timing.  The cluster is always stopped and its
# directory removed.  See bench/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

events=1000000
quick=0
install=1
output=""
profile=0
keep=0
rounds=3
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --events) events=${2:?--events needs a number}; shift 2 ;;
        --events=*) events=${1#*=}; shift ;;
        --quick) quick=1; shift ;;
        --no-install) install=0; shift ;;
        --output) output=${2:?--output needs a file name}; shift 2 ;;
        --output=*) output=${1#*=}; shift ;;
        --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
        --rounds=*) rounds=${1#*=}; shift ;;
        --profile) profile=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$events" in ''|*[!0-9]*) echo "bench/run.sh: --events must be a number" >&2; exit 2 ;; esac
case "$rounds" in ''|0|*[!0-9]*) echo "bench/run.sh: --rounds must be a positive number" >&2; exit 2 ;; esac
if [ $quick -eq 1 ] && [ "$events" -eq 1000000 ]; then events=20000; fi
# an absolute path: the driver runs from elsewhere
if [ -n "$output" ]; then
    case "$output" in /*) ;; *) output="$PWD/$output" ;; esac
fi

# the example that is measured (BENCH_EXAMPLE_DIR: only for work on the bench itself)
example=${BENCH_EXAMPLE_DIR:-$root/examples/ecommerce}

. "$root/scripts/common.sh"
if [ $install -eq 1 ]; then
    ensure_packages python3-psycopg2
    (cd "$root" && build_and_install)
fi
bindir=$("$PG_CONFIG" --bindir)

# Debian's python3, whose psycopg2 comes from python3-psycopg2 (not a pyenv shim)
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if ! "$py" -c 'import psycopg2' 2>/dev/null; then
    echo "bench/run.sh: $py cannot import psycopg2: install python3-psycopg2 (or run without --no-install)" >&2
    exit 1
fi
for f in schema.sql handlers.sql register.sql generate.sql; do
    if [ ! -f "$example/$f" ]; then
        echo "bench/run.sh: $example/$f is missing" >&2
        exit 1
    fi
done

# a free port in 40000-49999 (the server listens only on its own socket
# directory, but the port names the socket and the shared memory key)
port=$("$py" - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(40000, 49999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("no free port in 40000-49999")
PY
)

dir=$(mktemp -d "${TMPDIR:-/tmp}/projections-bench.XXXXXX")
chmod 755 "$dir"
[ "$(id -u)" -ne 0 ] || chown "$(server_user)" "$dir"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_server_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    # for scripts/test.sh, which searches every server log for crashes
    if [ -n "${PROJECTIONS_LOG_DIR:-}" ] && [ -f "$dir/server.log" ]; then
        cp "$dir/server.log" "$PROJECTIONS_LOG_DIR/bench.log" || true
    fi
    if [ $keep -eq 1 ]; then
        echo "== kept $dir"
    else
        rm -rf "$dir"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== cluster in $dir, port $port"
as_server_user "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
cat >> "$dir/data/postgresql.conf" <<CONF
# projections benchmark
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'projections'
max_connections = 50
shared_buffers = 256MB
work_mem = 64MB
maintenance_work_mem = 256MB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
# durable commits: fsync and synchronous_commit stay on (the defaults)
fsync = on
synchronous_commit = on
# the defaults of projections, said out loud
projections.batch_size = 1000
projections.poll_interval = '1s'
logging_collector = off
log_min_messages = warning
log_checkpoints = off
# bench.py reads the exchange's log line of 11 and its time (Unix epoch)
log_line_prefix = '%n [%p] '
CONF
as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null

set +e
PGHOST="$dir" PGPORT="$port" PGUSER=postgres \
    "$py" "$here/bench.py" \
        --host "$dir" --port "$port" --bindir "$bindir" \
        --example "$example" --events "$events" --rounds "$rounds" \
        --server-log "$dir/server.log" \
        $( [ $quick -eq 1 ] && echo --quick ) \
        $( [ $profile -eq 1 ] && echo --profile ) \
        ${output:+--output "$output"}
rc=$?
set -e
if [ $rc -ne 0 ]; then
    echo "== server log (tail)"
    tail -n 40 "$dir/server.log" || true
fi
exit $rc
