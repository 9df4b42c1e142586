#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests.
#
#   scripts/pg-cluster.sh start DIR   create + start a cluster under DIR; prints
#                                     exactly one line on stdout: the connection URL
#                                     postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-cluster.sh stop DIR    stop the cluster (if running) and rm -rf DIR
#
# DIR is owned by the cluster: data in DIR/data, server log in DIR/log, Unix
# socket in DIR itself (never /var/run/postgresql). Keep DIR short (Unix socket
# paths are limited to ~107 bytes), e.g. a `mktemp -d` directory.
#
# As root the server runs as the `postgres` OS user (via runuser); when the
# PostgreSQL binaries are missing and we are root they are installed with
# apt-get. As a non-root user initdb/pg_ctl run directly as that user.
#
# Environment:
#   PG_BINDIR   use the PostgreSQL binaries in this directory (default: the
#               highest version under /usr/lib/postgresql, else $PATH).
#
# All diagnostics go to stderr; stdout carries only the URL.
set -euo pipefail

# Keep the real stdout on fd 3 for the URL; everything else goes to stderr.
# fd 3 must not leak into the server (see `3>&-` on pg_ctl start): a caller
# doing URL=$(pg-cluster.sh start DIR) would otherwise wait forever for EOF.
exec 3>&1 1>&2

MARKER=.switchboard-pg-cluster

log() { printf 'pg-cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat >&2 <<'USAGE'
usage: scripts/pg-cluster.sh start DIR
       scripts/pg-cluster.sh stop DIR
USAGE
    exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the cluster owner: `postgres` when we are root, else ourselves.
as_owner() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        [ -x "$PG_BINDIR/initdb" ] || return 1
        printf '%s\n' "$PG_BINDIR"
        return 0
    fi
    local best
    best=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' -perm -u+x 2>/dev/null \
        | sort -V | tail -n 1 || true)
    if [ -n "$best" ]; then
        dirname "$best"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

ensure_bindir() {
    local dir
    # An explicit PG_BINDIR is never "fixed" by installing packages.
    if [ -n "${PG_BINDIR:-}" ] && [ ! -x "$PG_BINDIR/initdb" ]; then
        die "PG_BINDIR=$PG_BINDIR has no executable initdb"
    fi
    if dir=$(find_bindir); then
        printf '%s\n' "$dir"
        return 0
    fi
    if ! is_root; then
        die "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH.
Install them (Debian/Ubuntu: sudo apt-get install -y postgresql) or set PG_BINDIR."
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "PostgreSQL binaries not found and apt-get is unavailable; install PostgreSQL or set PG_BINDIR"
    log "PostgreSQL binaries not found; installing with apt-get (this takes a minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends postgresql </dev/null >&2 \
        || die "apt-get install postgresql failed"
    dir=$(find_bindir) || die "postgresql installed but no initdb found under /usr/lib/postgresql/*/bin"
    printf '%s\n' "$dir"
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
    else
        # Fallback: random high port; start() retries if it is taken.
        echo $(( 20000 + RANDOM % 40000 ))
    fi
}

abs_dir() {
    local d=$1
    [ -n "$d" ] || usage
    case "$d" in
        /*) ;;
        *) d="$PWD/$d" ;;
    esac
    # Normalise without requiring existence.
    realpath -m -- "$d"
}

cmd_start() {
    local dir=$1 bindir port url attempt
    bindir=$(ensure_bindir)
    log "using PostgreSQL binaries in $bindir ($("$bindir/postgres" --version 2>/dev/null || echo unknown version))"

    if is_root; then
        command -v runuser >/dev/null 2>&1 || die "runuser not found (needed to run PostgreSQL as user postgres)"
        id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist (install the postgresql package)"
    fi

    # Unix socket path DIR/.s.PGSQL.NNNNN must fit in sun_path (108 bytes incl. NUL).
    if [ $(( ${#dir} + 18 )) -gt 107 ]; then
        die "DIR path is too long for a Unix socket (${#dir} chars): $dir"
    fi

    if [ -e "$dir/data" ]; then
        die "$dir/data already exists; refusing to reuse it (stop it first: scripts/pg-cluster.sh stop $dir)"
    fi

    mkdir -p -- "$dir"
    : >"$dir/$MARKER"
    if is_root; then
        chown -R postgres: -- "$dir"
        # The postgres user must be able to reach DIR through its parents.
        runuser -u postgres -- test -x "$dir" -a -w "$dir" \
            || die "user postgres cannot access $dir (make its parent directories traversable, e.g. chmod 755)"
    fi
    chmod 700 -- "$dir"

    # Run from a directory the cluster owner can read (root's cwd may be /root).
    cd "$dir"

    log "initdb -D $dir/data"
    if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale \
            >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2 || true
        die "initdb failed"
    fi

    local started=0
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        log "starting server on 127.0.0.1:$port (attempt $attempt)"
        # Truncate (keeping ownership) so the bind-error check below only sees this attempt.
        if [ -f "$dir/log" ]; then : >"$dir/log"; fi
        if as_owner "$bindir/pg_ctl" -D "$dir/data" \
                -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=300" \
                -l "$dir/log" -w -t 60 start >&2 3>&-; then
            started=1
            break
        fi
        log "pg_ctl start failed; server log tail:"
        tail -n 20 "$dir/log" >&2 || true
        # Only retry when another process grabbed the port in the meantime.
        if ! grep -q -e 'could not bind' -e 'could not create any TCP/IP sockets' "$dir/log" 2>/dev/null; then
            break
        fi
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    done
    [ "$started" -eq 1 ] || die "could not start PostgreSQL (log: $dir/log)"

    local deadline=$(( SECONDS + 30 ))
    until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 50 "$dir/log" >&2 || true
            die "server did not become ready on 127.0.0.1:$port within 30s"
        fi
        sleep 0.5
    done

    url="postgres://postgres@127.0.0.1:$port/postgres"
    printf '%s\n' "$url" >"$dir/url"
    log "ready: $url (socket dir $dir, log $dir/log)"
    printf '%s\n' "$url" >&3
}

cmd_stop() {
    local dir=$1 bindir
    case "$dir" in
        / | /tmp | /var | /usr | /root | /home | "$HOME") die "refusing to operate on $dir" ;;
    esac
    if [ ! -e "$dir" ]; then
        log "$dir does not exist; nothing to do"
        return 0
    fi
    [ -d "$dir" ] || die "$dir is not a directory"

    # Only delete directories that we created (marker) or that are empty
    # (e.g. a mktemp dir whose `start` failed before writing anything).
    if [ ! -e "$dir/$MARKER" ] && [ -n "$(ls -A -- "$dir")" ]; then
        die "$dir does not look like a pg-cluster.sh directory (no $MARKER); not deleting it"
    fi

    if [ -f "$dir/data/postmaster.pid" ]; then
        if bindir=$(find_bindir); then
            cd /
            log "stopping server in $dir/data"
            if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2; then
                log "fast shutdown failed; trying immediate"
                as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >&2 || true
            fi
        else
            log "warning: PostgreSQL binaries not found; cannot stop server in $dir/data"
        fi
    fi

    rm -rf -- "$dir"
    log "removed $dir"
}

[ $# -eq 2 ] || usage
case "$1" in
    start) cmd_start "$(abs_dir "$2")" ;;
    stop) cmd_stop "$(abs_dir "$2")" ;;
    *) usage ;;
esac
