#!/usr/bin/env bash
# Runs every test of projections on this machine:
#   pg_regress (SQL surface), isolation specs (concurrency), pgTAP (behaviour),
#   Perl TAP (restarts, crashes, replicas), the quick benchmark and the demo.
# Installs what is missing from Debian's packages, builds with -Werror,
# installs, and leaves no server running.  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_packages "postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl libipc-run-perl \
    python3-psycopg2
build_and_install

# run the suites as the server user, in a copy of the tree it owns
work=$(mktemp -d "${TMPDIR:-/tmp}/projections-test.XXXXXX")
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
tar --exclude=.git -cf - . | tar -C "$work" -xf -
[ "$(id -u)" -ne 0 ] || chown -R postgres "$work"

status=0
suite() {
    local name=$1; shift
    echo "== $name"
    if ! as_server_user "$@"; then
        echo "!! $name FAILED"
        status=1
    fi
}
cd "$work"
suite "pg_regress" make -s regresscheck PG_CONFIG="$PG_CONFIG" || true
suite "isolation" make -s isolationcheck PG_CONFIG="$PG_CONFIG" || true
suite "pgTAP" make -s pgtapcheck PG_CONFIG="$PG_CONFIG" || true
suite "Perl TAP" make -s tapcheck PG_CONFIG="$PG_CONFIG" || true
if [ -x bench/run.sh ]; then
    suite "benchmark (quick)" env PG_CONFIG="$PG_CONFIG" bench/run.sh --quick --no-install || true
fi
if [ -x scripts/demo.sh ]; then
    suite "demo" env PG_CONFIG="$PG_CONFIG" scripts/demo.sh --no-install || true
fi

if [ $status -ne 0 ]; then
    for f in regression.diffs output_iso/regression.diffs; do
        [ -f "$f" ] && { echo "== $f"; cat "$f"; }
    done
    for f in tmp_check/log/regress_log_*; do
        [ -f "$f" ] && grep -q "not ok" "$f" && { echo "== $f (tail)"; tail -n 60 "$f"; }
    done
    echo "== FAILED"
else
    echo "== all tests passed"
fi
exit $status
