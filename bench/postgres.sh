#!/bin/sh
# `provision new` on PostgreSQL with 20 migrations, against plain
# `git worktree add`, in the same run on the same machine.
#
#   cargo build --release && bench/postgres.sh [path/to/provision]
#
# RUNS (default 10) sandboxes of each. The server is DATABASE_URL's if set,
# else a private one started here (initdb + pg_ctl on a free loopback port,
# as the postgres user when run as root) and stopped on exit.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$here/target}/release/provision}
runs=${RUNS:-10}
[ -x "$bin" ] || { echo "no provision binary at $bin (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d /tmp/provision-bench-XXXXXX)
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

app=$work/app
mkdir -p "$app/migrations"
i=1
while [ $i -le 20 ]; do
    n=$(printf %04d $i)
    cat >"$app/migrations/${n}_table_$i.sql" <<EOF
CREATE TABLE t$i (id bigserial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now());
CREATE INDEX t${i}_name ON t$i (name);
EOF
    i=$((i + 1))
done
printf '[database]\nkind = "postgres"\nurl = "%s"\nname = "bench_{slug}"\n' "$url" >"$app/provision.toml"
echo 'console.log(1)' >"$app/index.js"
git -C "$app" init -q -b main
git -C "$app" add -A
git -C "$app" commit -q -m app

now() { date +%s%N; }
git_ns=
new_ns=
i=1
while [ $i -le "$runs" ]; do
    t0=$(now)
    git -C "$app" worktree add -q -b "plain$i" "$work/plain$i"
    t1=$(now)
    (cd "$app" && "$bin" new "sandbox$i" >/dev/null 2>&1)
    t2=$(now)
    git_ns="$git_ns $((t1 - t0))"
    new_ns="$new_ns $((t2 - t1))"
    i=$((i + 1))
done

stats() { # label, then nanoseconds
    label=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v label="$label" '
        { v[NR] = $1 / 1e6; sum += v[NR] }
        END { printf "%-40s median %7.1f ms  mean %7.1f ms  min %7.1f ms  max %7.1f ms  (n=%d)\n",
              label, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), sum / NR, v[1], v[NR], NR }'
}
# shellcheck disable=SC2086
stats "git worktree add" $git_ns
# shellcheck disable=SC2086
stats "provision new (postgres, 20 migrations)" $new_ns
