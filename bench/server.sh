# Sourced by the PostgreSQL benchmarks, with $work set to their temp dir:
# the hermetic git they run, and $url, the server's: DATABASE_URL's if set,
# else a private one started here (initdb + pg_ctl on a free loopback port,
# as the postgres user when run as root), stopped and $work deleted on exit.

data=$work/pg
pgctl=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    [ -n "$pgctl" ] && as_pg "$pgctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1 \
    GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
    GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

if [ -n "${DATABASE_URL:-}" ]; then
    url=$DATABASE_URL
else
    bindir=$(dirname "$(command -v initdb 2>/dev/null || echo "$(pg_config --bindir)/initdb")")
    [ "$(id -u)" = 0 ] && chown postgres: "$work"
    as_pg "$bindir/initdb" -A trust -U postgres -E UTF8 --no-sync -D "$data" >/dev/null
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    pgctl=$bindir/pg_ctl
    as_pg "$pgctl" -w -D "$data" -l "$work/pg.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $work -c fsync=off" start >/dev/null
    url=postgres://postgres@127.0.0.1:$port/postgres
fi
