#!/usr/bin/env bash
# Checks the packaging of projections, from clean copies of the tree:
#
#   * META.json validates against the PGXN Meta Spec 1.0.0, its version is
#     projections.control's default_version, the files it names exist
#     (scripts/pgxn_meta.py);
#   * `make dist` in a fresh clone of the committed tree writes a zip that
#     validates the same way, with a single NAME-VERSION/ directory;
#   * `dpkg-buildpackage -us -uc -b` builds postgresql-N-projections for each
#     major that debian/pgversions and the installed postgresql-server-dev-N
#     packages give (pg_buildext supported-versions), and each package holds
#     exactly the files that `make install DESTDIR=...` installs for that
#     major (besides Debian's /usr/share/doc/PACKAGE).
#
#   scripts/packaging.sh [--keep]    (--keep: keep the work directory)
#
# Needs git (for make dist), dpkg-dev, debhelper and postgresql-server-dev-all
# (scripts/test.sh installs them).  Exits non-zero on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
keep=0
[ "${1:-}" != --keep ] || keep=1

work=$(mktemp -d "${TMPDIR:-/tmp}/projections-packaging.XXXXXX")
cleanup() { if [ $keep -eq 1 ]; then echo "== kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
status=0
fail() { echo "!! packaging: $*"; status=1; }

# a clean copy of the tree as it is (committed or not): the files git knows
# or would add, none of the build's products
copy_tree() {
    local dst=$1
    mkdir -p "$dst"
    if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$root" ls-files -z --cached --others --exclude-standard |
            (cd "$root" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
            (cd "$root" && xargs -0 cp -a --parents -t "$dst")
    else
        tar -C "$root" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
            --exclude='tmp_check*' --exclude=results --exclude=output_iso -cf - . | tar -C "$dst" -xf -
    fi
}

echo "-- META.json"
python3 scripts/pgxn_meta.py META.json || fail "META.json"

echo "-- make dist (from a fresh clone of HEAD)"
if git rev-parse --git-dir >/dev/null 2>&1; then
    git clone -q --no-hardlinks "$root" "$work/clone"
    if make -s -C "$work/clone" dist >"$work/dist.log" 2>&1; then
        zip=$(ls "$work"/clone/projections-*.zip)
        python3 scripts/pgxn_meta.py "$zip" || fail "the distribution zip"
        # everything committed is in it, except what .gitattributes leaves out
        top=$(basename "$zip" .zip)
        diff <(git -C "$work/clone" ls-files | grep -vE '^(\.ci/|\.gitignore$|\.gitattributes$)' | sort) \
             <(python3 -c 'import sys, zipfile
for n in zipfile.ZipFile(sys.argv[1]).namelist():
    if not n.endswith("/"): print(n.split("/", 1)[1])' "$zip" | sort) >"$work/dist.diff" ||
            { fail "the zip's files differ from the committed tree's (< committed, > zip):"; cat "$work/dist.diff"; }
    else
        cat "$work/dist.log"
        fail "make dist"
    fi
else
    fail "not a git clone: make dist cannot be checked"
fi

echo "-- dpkg-buildpackage -us -uc -b"
copy_tree "$work/pkg/projections"
versions=$(cd "$work/pkg/projections" && pg_buildext supported-versions)
if [ -z "$versions" ]; then
    fail "pg_buildext supported-versions gives no major (is postgresql-server-dev-N installed?)"
fi
if ! (cd "$work/pkg/projections" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) >"$work/deb.log" 2>&1; then
    tail -n 40 "$work/deb.log"
    fail "dpkg-buildpackage"
else
    # (and the -dbgsym packages of the debug symbols, which dh_strip makes)
    built=$(cd "$work/pkg" && ls ./*.deb | sed 's|^\./||; s|_.*||' | grep -v -- '-dbgsym$' | sort | tr '\n' ' ')
    want=$(for v in $versions; do echo "postgresql-$v-projections"; done | sort | tr '\n' ' ')
    [ "$built" = "$want" ] || fail "built packages: $built; expected: $want"
    for v in $versions; do
        pkg=postgresql-$v-projections
        deb=$(ls "$work"/pkg/"${pkg}"_*.deb 2>/dev/null | head -n 1)
        [ -n "$deb" ] || continue
        copy_tree "$work/plain-$v"
        if ! { make -C "$work/plain-$v" -s PG_CONFIG="/usr/lib/postgresql/$v/bin/pg_config" &&
               make -C "$work/plain-$v" -s install PG_CONFIG="/usr/lib/postgresql/$v/bin/pg_config" \
                   DESTDIR="$work/destdir-$v"; } >"$work/install-$v.log" 2>&1; then
            cat "$work/install-$v.log"
            fail "make install DESTDIR=... for $v"
            continue
        fi
        (cd "$work/destdir-$v" && find . ! -type d | sed 's|^\./|/|' | sort) >"$work/make-install-$v.list"
        dpkg-deb --fsys-tarfile "$deb" | tar -tf - | grep -v '/$' | sed 's|^\./|/|' |
            grep -v "^/usr/share/doc/$pkg/" | sort >"$work/deb-$v.list"
        if diff "$work/make-install-$v.list" "$work/deb-$v.list" >"$work/diff-$v"; then
            echo "$(basename "$deb"): $(wc -l <"$work/deb-$v.list") files, the same as make install"
        else
            fail "$(basename "$deb") differs from make install (< make install, > package):"
            cat "$work/diff-$v"
        fi
    done
fi

[ $status -eq 0 ] && echo "-- packaging OK"
exit $status
