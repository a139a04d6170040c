#!/bin/sh
# `provision new` applying COUNT (default 300) migrations in diesel's
# layout (one folder each: a table, an index, a trigger function on
# PostgreSQL), on SQLite and on PostgreSQL, then `provision verify` of the
# sandbox: medians of RUNS (default 5) sandboxes each.
#
#   cargo build --release && sh bench/migrations.sh [path/to/provision]
#
# The server is DATABASE_URL's if set, else a private one started here
# (initdb + pg_ctl on a free loopback port, as the postgres user when run
# as root) and stopped on exit.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$here/target}/release/provision}
runs=${RUNS:-5}
count=${COUNT:-300}
[ -x "$bin" ] || { echo "no provision binary at $bin (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d /tmp/provision-bench-migrations-XXXXXX)
. "$here/bench/server.sh"
export PROVISION_TRUST=1

# One repository per database: the same folders, the SQL each understands.
make_repo() { # dir kind
    mkdir -p "$1"
    git -C "$1" init -q -b main
    python3 - "$1/migrations" "$2" "$count" <<'PY'
import os, sys
root, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    folder = os.path.join(root, f"2024-01-01-{i:06d}_m{i}")
    os.makedirs(folder)
    sql = f"CREATE TABLE t{i} (id integer PRIMARY KEY, body text);\nCREATE INDEX t{i}_body ON t{i} (body);\n"
    if kind == "postgres" and i % 10 == 0:
        sql += (f"CREATE FUNCTION f{i}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN NEW.body := lower(NEW.body); RETURN NEW; END;\n$$;\n"
                f"CREATE TRIGGER tr{i} BEFORE INSERT ON t{i} FOR EACH ROW EXECUTE FUNCTION f{i}();\n")
    open(os.path.join(folder, "up.sql"), "w").write(sql)
    open(os.path.join(folder, "down.sql"), "w").write(f"DROP TABLE t{i};\n")
PY
    if [ "$2" = postgres ]; then
        printf '[database]\nkind = "postgres"\nurl = "%s"\nname = "bench_{slug}"\n' "$url" > "$1/provision.toml"
    fi
    git -C "$1" add -A
    git -C "$1" commit -q -m migrations
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

for kind in sqlite postgres; do
    repo=$work/$kind/app
    make_repo "$repo" "$kind"
    : > "$work/new.txt"
    : > "$work/verify.txt"
    n=1
    while [ "$n" -le "$runs" ]; do
        start=$(now_ms)
        "$bin" -C "$repo" -q new "s$n" >/dev/null
        end=$(now_ms)
        echo $((end - start)) >> "$work/new.txt"
        start=$(now_ms)
        "$bin" -C "$work/$kind/worktree-s$n" verify >/dev/null
        end=$(now_ms)
        echo $((end - start)) >> "$work/verify.txt"
        n=$((n + 1))
    done
    printf '%-8s provision new, %s migrations: %s ms median; provision verify: %s ms median (%s runs)\n' \
        "$kind" "$count" "$(median < "$work/new.txt")" "$(median < "$work/verify.txt")" "$runs"
done
