# Shared by scripts/test.sh, scripts/demo.sh and bench/run.sh: find or install
# what projections needs from Debian's packages, then build and install it.
# Sourced, not run.

PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}

# run a command as root (directly, or through sudo)
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# install the Debian packages that are missing
ensure_debs() {
    local missing=() pkg
    for pkg in "$@"; do
        case "$pkg" in
            make|gcc) command -v "$pkg" >/dev/null 2>&1 && continue ;;
        esac
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing from Debian: ${missing[*]}" >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# the same, with the server and its development files for PG_MAJOR
ensure_packages() {
    ensure_debs make gcc "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "$@"
}

# where scripts/pgbuild.sh keeps the PostgreSQL versions it builds
pg_cache_dir() {
    if [ -n "${PROJECTIONS_PG_CACHE:-}" ]; then
        echo "$PROJECTIONS_PG_CACHE"
    elif [ "$(id -u)" -eq 0 ]; then
        echo /var/cache/projections-pg
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/projections-pg"
    fi
}

# build with warnings as errors and install into the server's directories
build_and_install() {
    echo "== building and installing projections"
    make -s clean PG_CONFIG="$PG_CONFIG" >/dev/null
    make -s PG_CONFIG="$PG_CONFIG" \
        PG_CFLAGS='-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers'
    # into a server of one's own (a private build) without root
    if [ -w "$("$PG_CONFIG" --pkglibdir)" ] && [ -w "$("$PG_CONFIG" --sharedir)/extension" ]; then
        make -s install PG_CONFIG="$PG_CONFIG" >/dev/null
    else
        as_root make -s install PG_CONFIG="$PG_CONFIG" >/dev/null
    fi
}

# the unprivileged user that runs servers (initdb refuses root)
server_user() {
    if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

# run a command as the server user
as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
