#!/usr/bin/env bash
# Builds a PostgreSQL major version from Debian's source package, with pgTAP,
# into a cache directory outside the clone, and prints the path of its
# pg_config (nothing else goes to standard output):
#
#   scripts/pgbuild.sh MAJOR [--cassert] [--rebuild]
#
#   --cassert   --enable-cassert --enable-debug
#   --rebuild   build again even if the cache has this build
#
# Exit status: 0 built (or cached), 3 the source could not be downloaded,
# 1 any other failure.
# The cache is $PROJECTIONS_PG_CACHE, or /var/cache/projections-pg for root,
# or ${XDG_CACHE_HOME:-~/.cache}/projections-pg; each build is installed in
# its own prefix there, named by major and flags (18, 18-cassert, ...).  A
# build found complete there is used as it is: no network, a second run
# starts in seconds.
#
# The sources come from Debian's archive through a private apt configuration
# in the cache (its own sources list, lists and cache directories; the
# system's apt sources are not touched): deb-src lines for bookworm, trixie
# and sid, so 15 comes from bookworm, 17 from trixie, 18 from sid, and pgTAP
# 1.3 from sid (or trixie).  `apt-get source --download-only` fetches the
# package; the upstream tarball in it, checked against the SHA-256 of the
# signed index, is built as it is (when the mirror has not caught up with its
# index, an earlier point release from the pool, whose .dsc is signed by a
# Debian developer: see fetch_earlier): Debian's patches (versioned directories
# under /usr/lib/postgresql, sockets in /var/run/postgresql) are for system
# packages and would not install into a private prefix.
#
# PostgreSQL is configured for what the tests need and no more:
# --enable-tap-tests (the PostgreSQL::Test modules and pg_regress land in the
# prefix's PGXS directory, where `make tapcheck` finds them), zlib (pg_dump
# -Fc), no ICU, no readline.  Build dependencies come from bookworm's binary
# packages.  A failed build is an error; nothing falls back to another server.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
umask 022

usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; }
major=
cassert=0
rebuild=0
while [ $# -gt 0 ]; do
    case "$1" in
        --cassert) cassert=1 ;;
        --rebuild) rebuild=1 ;;
        -h|--help) usage; exit 0 ;;
        [0-9]*) major=$1 ;;
        *) echo "pgbuild.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case "$major" in
    ''|*[!0-9]*) echo "pgbuild.sh: give a major version, e.g. 18" >&2; exit 2 ;;
esac

# what the build is made of: a change here (or in pgTAP's wanted version)
# makes the cached build stale
recipe=2
configure_opts=(--enable-tap-tests --with-zlib --without-icu --without-readline)
[ $cassert -eq 0 ] || configure_opts+=(--enable-cassert --enable-debug)
pgtap_wanted='1.3.*'

cache=$(pg_cache_dir)
key=$major$([ $cassert -eq 0 ] || echo -cassert)
prefix=$cache/$key
stamp=$prefix/.projections-build
pg_config=$prefix/bin/pg_config
want="recipe $recipe; configure ${configure_opts[*]}; pgtap $pgtap_wanted"

say() { echo "pgbuild: $*" >&2; }
cached() { [ -f "$stamp" ] && [ -x "$pg_config" ] && grep -qxF "$want" "$stamp"; }

if [ $rebuild -eq 0 ] && cached; then
    echo "$pg_config"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.$key.lock"
if ! flock -n 9; then
    say "waiting for another build of $key"
    flock 9
fi
# another run may have finished it while we waited
if [ $rebuild -eq 0 ] && cached; then
    echo "$pg_config"
    exit 0
fi

ensure_debs make gcc bison flex perl libipc-run-perl zlib1g-dev dpkg-dev bzip2 xz-utils gpgv

# the private apt configuration: source indexes only, under the cache
aptdir=$cache/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$cache/src"
cat > "$aptdir/sources.list" <<'EOF'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
EOF
apt_private() {
    local cmd=$1; shift
    "$cmd" -o Dir::Etc::sourcelist="$aptdir/sources.list" -o Dir::Etc::sourceparts=/nonexistent \
        -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" \
        -o APT::Sandbox::User="$(id -un)" "$@"
}
updated=0
apt_update() {
    [ $updated -eq 0 ] || return 0
    say "updating the private source indexes in $aptdir"
    apt_private apt-get update -qq >&2
    updated=1
}

mkdir -p "$cache/build"
log=$cache/build/$key.log
: > "$log"
say "building $key (log: $log)"

# Fetch the upstream tarball of source package $1, the highest version that
# matches glob $2 (and that the mirror has), into $cache/src, checked against
# the index's SHA-256.  Sets orig (the file) and srcver (the Debian version).
fetch_orig() {
    local pkg=$1 glob=$2 versions v upstream line sha file
    versions=$(apt_private apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -Vru)
    if [ -z "$versions" ] && [ $updated -eq 0 ]; then
        apt_update
        versions=$(apt_private apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -Vru)
    fi
    if [ -z "$versions" ]; then
        say "no source package $pkg in bookworm, trixie or sid"
        return 1
    fi
    for v in $versions; do
        upstream=${v%-*}
        upstream=${upstream#*:}
        # shellcheck disable=SC2254
        case "$upstream" in $glob) ;; *) continue ;; esac
        line=$(apt_private apt-cache showsrc "$pkg" 2>/dev/null |
            awk -v RS= -v v="$v" 'index($0, "\nVersion: " v "\n")' |
            sed -n '/^Checksums-Sha256:/,/^[^ ]/p' | grep -E " ${pkg}_${upstream//./\\.}\.orig\.tar\.[a-z0-9]+$" | head -n 1 || true)
        [ -n "$line" ] || continue
        sha=$(echo "$line" | awk '{print $1}')
        file=$(echo "$line" | awk '{print $3}')
        if [ ! -f "$cache/src/$file" ] || ! echo "$sha  $cache/src/$file" | sha256sum -c --status; then
            rm -f "$cache/src/$file"
            say "apt-get source --download-only $pkg=$v"
            # the .dsc and Debian's patches are not used: a mirror that lacks
            # them does not matter as long as the upstream tarball arrives
            (cd "$cache/src" && apt_private apt-get source --download-only -qq "$pkg=$v") >>"$log" 2>&1 || true
            if [ ! -f "$cache/src/$file" ] && [ $updated -eq 0 ]; then
                apt_update
                (cd "$cache/src" && apt_private apt-get source --download-only -qq "$pkg=$v") >>"$log" 2>&1 || true
            fi
        fi
        if [ -f "$cache/src/$file" ] && echo "$sha  $cache/src/$file" | sha256sum -c --status; then
            orig=$cache/src/$file
            srcver=$v
            return 0
        fi
        say "$pkg $v: the mirror did not serve $file ($(grep -m1 -o '[0-9]\{3\}  *Not Found' "$log" || echo 'see the log'))"
        fetch_earlier "$pkg" "$v" && return 0
    done
    say "no version $glob of $pkg could be downloaded"
    return 1
}

# The mirror may lag behind its index by a point release: try the earlier
# point releases of Debian version $2 (17.12-0+deb13u1: 17.11-0+deb13u1, ...)
# in the pool.  Outside the index, a .dsc is trusted only with a good
# signature by a Debian developer (debian-keyring), and the tarball only with
# the SHA-256 in that .dsc.  Sets orig and srcver.
fetch_earlier() {
    local pkg=$1 v=$2 upstream rev major minor m cand dsc sha file url
    upstream=${v%%-*}
    rev=${v#"$upstream"}
    major=${upstream%%.*}
    minor=${upstream#*.}
    case "$minor" in ''|*[!0-9]*) return 1 ;; esac
    ensure_debs debian-keyring
    url=http://deb.debian.org/debian/pool/main/${pkg:0:1}/$pkg
    for m in $(seq $((minor - 1)) -1 $((minor > 4 ? minor - 4 : 0))); do
        cand=$major.$m$rev
        dsc=$cache/src/${pkg}_$cand.dsc
        rm -f "$dsc"
        /usr/lib/apt/apt-helper download-file "$url/${pkg}_$cand.dsc" "$dsc" >>"$log" 2>&1 || continue
        if ! gpgv --keyring /usr/share/keyrings/debian-keyring.gpg "$dsc" >>"$log" 2>&1; then
            say "$pkg $cand: the .dsc has no good signature by a Debian developer; not used"
            continue
        fi
        file=${pkg}_$major.$m.orig.tar.bz2
        sha=$(sed -n '/^Checksums-Sha256:/,/^[^ ]/p' "$dsc" | awk -v f="$file" '$3 == f {print $1}')
        [ -n "$sha" ] || continue
        if [ ! -f "$cache/src/$file" ] || ! echo "$sha  $cache/src/$file" | sha256sum -c --status; then
            rm -f "$cache/src/$file"
            /usr/lib/apt/apt-helper download-file "$url/$file" "$cache/src/$file" "SHA256:$sha" >>"$log" 2>&1 || continue
        fi
        if echo "$sha  $cache/src/$file" | sha256sum -c --status; then
            say "$pkg $cand from the pool (signed by a Debian developer), in place of $v"
            orig=$cache/src/$file
            srcver=$cand
            return 0
        fi
    done
    return 1
}

fail() {
    say "FAILED: $*"
    say "last lines of $log:"
    tail -n 30 "$log" >&2
    exit 1
}

if ! fetch_orig "postgresql-$major" "$major.*"; then
    say "FAILED: PostgreSQL $major: no source package could be downloaded (Debian has 15 in bookworm, 17 in trixie, 18 in sid)"
    exit 3
fi
pg_orig=$orig
pg_srcver=$srcver
fetch_orig pgtap "$pgtap_wanted" || fail "pgTAP $pgtap_wanted: no source package could be downloaded"
pgtap_orig=$orig
pgtap_srcver=$srcver

build=$cache/build/$key
rm -rf "$build" "$prefix"
mkdir -p "$build/postgresql" "$build/pgtap"
tar -xf "$pg_orig" -C "$build/postgresql" --strip-components=1
tar -xf "$pgtap_orig" -C "$build/pgtap" --strip-components=1

jobs=$(nproc)
start=$(date +%s)
say "postgresql-$major $pg_srcver: configure ${configure_opts[*]}"
(cd "$build/postgresql" && ./configure --prefix="$prefix" "${configure_opts[@]}") >>"$log" 2>&1 ||
    fail "configure"
say "make -j$jobs"
make -C "$build/postgresql" -j"$jobs" >>"$log" 2>&1 || fail "make"
make -C "$build/postgresql" install >>"$log" 2>&1 || fail "make install"
pg_done=$(date +%s)
say "PostgreSQL built and installed in $((pg_done - start)) s"

say "pgTAP $pgtap_srcver"
make -C "$build/pgtap" PG_CONFIG="$pg_config" >>"$log" 2>&1 || fail "pgTAP make"
make -C "$build/pgtap" PG_CONFIG="$pg_config" install >>"$log" 2>&1 || fail "pgTAP make install"
say "pgTAP built and installed in $(($(date +%s) - pg_done)) s"

# what the suites use from the prefix
pgxs=$("$pg_config" --pkglibdir)/pgxs
for f in "$pgxs/src/makefiles/pgxs.mk" "$pgxs/src/test/regress/pg_regress" \
    "$pgxs/src/test/isolation/pg_isolation_regress" "$pgxs/src/test/isolation/isolationtester" \
    "$pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm" "$("$pg_config" --sharedir)/extension/pgtap.control" \
    "$("$pg_config" --bindir)/pg_upgrade" "$("$pg_config" --bindir)/pgbench"; do
    [ -e "$f" ] || fail "missing after the install: $f"
done
grep -qE '^enable_tap_tests[[:space:]]*=[[:space:]]*yes' "$pgxs/src/Makefile.global" || fail "TAP tests are not enabled in $pgxs"

{
    echo "$want"
    echo "postgresql-$major $pg_srcver from $(basename "$pg_orig")"
    echo "pgtap $pgtap_srcver from $(basename "$pgtap_orig")"
    echo "built $(date -u +%FT%TZ) in $(($(date +%s) - start)) s"
} > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
rm -rf "$build"
say "done: $prefix"
echo "$pg_config"
