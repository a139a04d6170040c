#!/bin/sh
# `provision new` on PostgreSQL with COUNT (default 200) generated
# migrations (tables, indexes, functions, triggers), against plain
# `git worktree add` of the same repository, in the same run on the same
# machine; then `provision db reset` of one sandbox. Prints medians, the
# targets (new <= 1.5x git worktree add, db reset <= 0.25 s) and a verdict.
#
#   cargo build --release && bench/postgres.sh [path/to/provision]
#
# RUNS (default 10) sandboxes of each. The first `new` fills the store of
# migrated states (see the README) and is shown on its own; the medians are
# of the runs after it. Runs are SETTLE (default 2) seconds apart, as
# sandboxes made by people and agents are: enough for the spare copy of the
# store's entry that each `new` has made in the background. Before each
# measurement `sync` writes back what the page cache holds, so that none
# pays for the writeback of the one before (without it, `git worktree add`
# alone ranged 17-204 ms in one run, and a `new` right after one took
# 140 ms where it took 60 ms alone: its first fsync waited for git's files). The server is DATABASE_URL's if set, else
# a private one started here (initdb + pg_ctl on a free loopback port, as the
# postgres user when run as root) and stopped on exit.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$here/target}/release/provision}
runs=${RUNS:-10}
count=${COUNT:-200}
settle=${SETTLE:-2}
[ -x "$bin" ] || { echo "no provision binary at $bin (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d /tmp/provision-bench-XXXXXX)
. "$here/bench/server.sh"

app=$work/app
mkdir -p "$app/migrations"
python3 - "$app/migrations" "$count" <<'PY'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(1, count + 1):
    sql = (f"CREATE TABLE t{i} (id bigserial PRIMARY KEY, name text NOT NULL, "
           f"created timestamptz DEFAULT now(), updated timestamptz);\n"
           f"CREATE INDEX t{i}_name ON t{i} (name);\n")
    if i % 4 == 0:
        sql += (f"CREATE FUNCTION touch{i}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN NEW.updated := now(); RETURN NEW; END;\n$$;\n"
                f"CREATE TRIGGER t{i}_touch BEFORE UPDATE ON t{i} "
                f"FOR EACH ROW EXECUTE FUNCTION touch{i}();\n")
    with open(os.path.join(root, f"{i:04d}_m{i}.sql"), "w") as f:
        f.write(sql)
PY
printf '[database]\nkind = "postgres"\nurl = "%s"\nname = "bench_{slug}"\n' "$url" >"$app/provision.toml"
echo 'console.log(1)' >"$app/index.js"
git -C "$app" init -q -b main
git -C "$app" add -A
git -C "$app" commit -q -m app

now() { date +%s%N; }
# The first sandbox fills the store: timed on its own.
t0=$(now)
(cd "$app" && "$bin" new cold >/dev/null 2>&1)
t1=$(now)
cold_ns=$((t1 - t0))
sleep "$settle"
sync
git_ns=
new_ns=
i=1
while [ $i -le "$runs" ]; do
    t0=$(now)
    git -C "$app" worktree add -q -b "plain$i" "$work/plain$i"
    t1=$(now)
    sync
    t2=$(now)
    (cd "$app" && "$bin" new "sandbox$i" >/dev/null 2>&1)
    t3=$(now)
    git_ns="$git_ns $((t1 - t0))"
    new_ns="$new_ns $((t3 - t2))"
    i=$((i + 1))
    sleep "$settle"
    sync
done
reset_ns=
i=1
while [ $i -le "$runs" ]; do
    t0=$(now)
    "$bin" -C "$work/worktree-sandbox1" db reset >/dev/null 2>&1
    t1=$(now)
    reset_ns="$reset_ns $((t1 - t0))"
    i=$((i + 1))
    sleep "$settle"
    sync
done
"$bin" -C "$work/worktree-sandbox1" verify >/dev/null

median_ms() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 / 1e6 } END { printf "%.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
stats() { # label, then nanoseconds
    label=$1
    shift
    printf '%s\n' "$@" | sort -n | awk -v label="$label" '
        { v[NR] = $1 / 1e6; sum += v[NR] }
        END { printf "%-52s median %7.1f ms  mean %7.1f ms  min %7.1f ms  max %7.1f ms  (n=%d)\n",
              label, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), sum / NR, v[1], v[NR], NR }'
}
verdict() { # what, value, target, unit
    awk -v what="$1" -v value="$2" -v target="$3" -v unit="$4" 'BEGIN {
        printf "%-52s %8.2f%s  target <= %s%s  %s\n", what, value, unit, target, unit,
            (value <= target ? "MET" : "MISSED") }'
}
# shellcheck disable=SC2086
stats "git worktree add" $git_ns
# shellcheck disable=SC2086
stats "provision new (postgres, $count migrations)" $new_ns
stats "provision new, first (fills the store)" $cold_ns
# shellcheck disable=SC2086
stats "provision db reset (postgres, $count migrations)" $reset_ns
# shellcheck disable=SC2086
git_ms=$(median_ms $git_ns)
# shellcheck disable=SC2086
new_ms=$(median_ms $new_ns)
# shellcheck disable=SC2086
reset_ms=$(median_ms $reset_ns)
verdict "new / git worktree add (medians)" "$(awk -v a="$new_ms" -v b="$git_ms" 'BEGIN { print a / b }')" 1.5 x
verdict "db reset (median)" "$(awk -v a="$reset_ms" 'BEGIN { print a / 1000 }')" 0.25 " s"
