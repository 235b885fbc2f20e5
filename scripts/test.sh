#!/usr/bin/env bash
# Runs every test of projections on this machine:
#   pg_regress (SQL surface), isolation specs (concurrency), pgTAP (behaviour),
#   Perl TAP (restarts, crashes, replicas), the quick benchmark, the demo, and
#   the packaging (PGXN metadata and zip, Debian package).
#
#   scripts/test.sh                  against Debian's PostgreSQL 15 packages
#   scripts/test.sh --pg N           against PostgreSQL N built from Debian's
#                                    source package (scripts/pgbuild.sh; cached)
#   scripts/test.sh --pg N --cassert the same, built with assertions
#
# Installs what is missing from Debian's packages, builds with -Werror,
# installs, and leaves no server running.  Every server log of every suite is
# then searched for assertion failures and crashes (TRAP:, PANIC:, a process
# terminated by a signal), which fail the run even when every test passed.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
pg=15
cassert=0
while [ $# -gt 0 ]; do
    case "$1" in
        --pg) pg=${2:?--pg needs a major version}; shift ;;
        --pg=*) pg=${1#--pg=} ;;
        --cassert) cassert=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "scripts/test.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case "$pg" in ''|*[!0-9]*) echo "scripts/test.sh: --pg needs a major version, e.g. 18" >&2; exit 2 ;; esac

export PG_MAJOR=$pg
if [ "$pg" = 15 ] && [ $cassert -eq 0 ]; then
    packaged=1
else
    packaged=0
    unset PG_CONFIG
fi
. scripts/common.sh

started=$(date +%s)
if [ $packaged -eq 1 ]; then
    ensure_packages "postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl libipc-run-perl \
        python3-psycopg2 dpkg-dev debhelper postgresql-server-dev-all git
else
    ensure_debs make gcc libtap-parser-sourcehandler-pgtap-perl libipc-run-perl python3-psycopg2
    echo "== PostgreSQL $pg$([ $cassert -eq 0 ] || echo ' with assertions') from Debian's source package"
    t0=$(date +%s)
    built=0
    PG_CONFIG=$(scripts/pgbuild.sh "$pg" $([ $cassert -eq 0 ] || echo --cassert)) || built=$?
    if [ $built -ne 0 ]; then
        echo "!! could not build PostgreSQL $pg: nothing was tested"
        echo "== FAILED"
        # 3: its source could not be downloaded
        exit $([ $built -eq 3 ] && echo 3 || echo 1)
    fi
    echo "   $PG_CONFIG ($(($(date +%s) - t0)) s)"
fi
export PG_CONFIG
bindir=$("$PG_CONFIG" --bindir)

# the server under test, as a running instance reports it
show_server() {
    local d port=$((40000 + RANDOM % 10000))
    d=$(mktemp -d "${TMPDIR:-/tmp}/projections-version.XXXXXX")
    [ "$(id -u)" -ne 0 ] || chown postgres "$d"
    as_server_user "$bindir/initdb" -D "$d/data" -A trust -U postgres --no-sync >/dev/null
    as_server_user "$bindir/pg_ctl" -D "$d/data" -l "$d/log" -w -s \
        -o "-c listen_addresses='' -c unix_socket_directories='$d' -p $port" start >/dev/null
    as_server_user "$bindir/psql" -X -At -h "$d" -p "$port" -U postgres -d postgres \
        -c 'SELECT version()' -c "SELECT 'debug_assertions = ' || current_setting('debug_assertions')" || true
    as_server_user "$bindir/pg_ctl" -D "$d/data" -m fast -w -s stop >/dev/null
    rm -rf "$d"
}
echo "== server under test ($PG_CONFIG):"
show_server | sed 's/^/   /'

build_and_install

# the suites run as the server user, in a copy of the tree it owns
work=$(mktemp -d "${TMPDIR:-/tmp}/projections-test.XXXXXX")
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
tar --exclude=.git -cf - . | tar -C "$work" -xf -
logs=$work/server-logs
mkdir -p "$logs"
[ "$(id -u)" -ne 0 ] || chown -R postgres "$work"

status=0
timings=()
suite() {
    local name=$1 t0 rc=0; shift
    echo "== $name"
    t0=$(date +%s)
    "$@" || rc=$?
    timings+=("$(printf '%-20s %5d s  %s' "$name" $(($(date +%s) - t0)) "$([ $rc -eq 0 ] && echo ok || echo FAILED)")")
    if [ $rc -ne 0 ]; then
        echo "!! $name FAILED"
        status=1
    fi
}
# pg_regress and isolation remove their instance when every test passes:
# their log goes to the logging collector, in a directory that stays
keep_log_conf() {
    printf "logging_collector = on\nlog_directory = '%s'\nlog_filename = 'postmaster-%%Y%%m%%d-%%H%%M%%S.log'\n" \
        "$logs/$1" >"$work/keep-log-$1.conf"
    echo "--temp-config=$work/keep-log-$1.conf"
}
cd "$work"
suite "pg_regress" as_server_user make -s regresscheck PG_CONFIG="$PG_CONFIG" \
    EXTRA_REGRESS_OPTS="$(keep_log_conf regress)"
suite "isolation" as_server_user make -s isolationcheck PG_CONFIG="$PG_CONFIG" \
    EXTRA_REGRESS_OPTS="$(keep_log_conf isolation)"
suite "pgTAP" as_server_user env PROJECTIONS_LOG_DIR="$logs" make -s pgtapcheck PG_CONFIG="$PG_CONFIG"
suite "Perl TAP" as_server_user make -s tapcheck PG_CONFIG="$PG_CONFIG"
suite "benchmark (quick)" as_server_user env PG_CONFIG="$PG_CONFIG" PROJECTIONS_LOG_DIR="$logs" \
    bench/run.sh --quick --no-install
suite "demo" as_server_user env PG_CONFIG="$PG_CONFIG" PROJECTIONS_LOG_DIR="$logs" \
    scripts/demo.sh --no-install
if [ $packaged -eq 1 ]; then
    # packaging is about Debian's packages: checked in the run on them
    suite "packaging" "$root/scripts/packaging.sh"
fi

# Assertion failures and crashes in any server log fail the run, even if the
# test that caused them passed.  The exceptions: 010_crash_recovery and
# 091_online_rebuild_crash kill the worker with SIGKILL on purpose.
scan_logs() {
    local found=0 f rel hits
    while IFS= read -r -d '' f; do
        rel=${f#"$work"/}
        hits=$(grep -nE 'TRAP:|PANIC:|terminated by signal|terminated by exception|server process .* was terminated' "$f" || true)
        case "$(basename "$f")" in
            010_crash_recovery_*|091_online_rebuild_crash_*) hits=$(printf '%s\n' "$hits" | grep -v 'was terminated by signal 9: Killed' || true) ;;
        esac
        [ -n "$hits" ] || continue
        found=1
        echo "!! $rel:"
        printf '%s\n' "$hits" | grep -v 'TRAP:' | head -n 20 | sed 's/^/   /' || true
        # each trap with the lines after it: what the process was doing
        grep -n -A 4 'TRAP:' "$f" | head -n 40 | sed 's/^/   /' || true
    done < <(find "$work/tmp_check/log" "$logs" "$work/tmp_check_regress" "$work/tmp_check_iso" \
                 -type f \( -name '*.log' -o -name 'postmaster*' \) ! -name 'regress_log_*' -print0 2>/dev/null)
    return $found
}
echo "== server logs: assertion failures and crashes"
nlogs=$(find "$work/tmp_check/log" "$logs" -type f ! -name 'regress_log_*' 2>/dev/null | wc -l)
if scan_logs; then
    echo "   none in $nlogs logs"
else
    echo "!! assertion failures or crashes in the server logs (above)"
    status=1
fi

if [ $status -ne 0 ]; then
    for f in regression.diffs output_iso/regression.diffs; do
        [ -f "$f" ] && { echo "== $f"; cat "$f"; }
    done
    for f in tmp_check/log/regress_log_*; do
        [ -f "$f" ] && grep -q "not ok" "$f" && { echo "== $f (tail)"; tail -n 60 "$f"; }
    done
fi
echo "== PostgreSQL $pg$([ $cassert -eq 0 ] || echo ' --cassert'): $(($(date +%s) - started)) s in all"
printf '   %s\n' "${timings[@]}"
if [ $status -ne 0 ]; then
    echo "== FAILED"
else
    echo "== all tests passed"
fi
exit $status
