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
ensure_packages() {
    local wanted=(make gcc "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "$@")
    local missing=() pkg
    for pkg in "${wanted[@]}"; do
        case "$pkg" in
            make|gcc) command -v "$pkg" >/dev/null 2>&1 && continue ;;
        esac
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing from Debian: ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# build with warnings as errors and install into the server's directories
build_and_install() {
    echo "== building and installing projections"
    make -s clean PG_CONFIG="$PG_CONFIG" >/dev/null
    make -s PG_CONFIG="$PG_CONFIG" \
        PG_CFLAGS='-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers'
    as_root make -s install PG_CONFIG="$PG_CONFIG" >/dev/null
}

# the unprivileged user that runs servers (initdb refuses root)
server_user() {
    if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

# run a command as the server user
as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
