#!/usr/bin/env bash
# Times `provision status` and `provision gc --dry-run` in a repository with
# N sandboxes (default 100), and `provision new` against plain
# `git worktree add` in the same repository, with hyperfine.
#
#   cargo build --release && bench/lifecycle.sh
#
# Env: PROVISION (binary, default target/release/provision under
# CARGO_TARGET_DIR), N (sandboxes), RUNS (hyperfine runs per command).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PROVISION=${PROVISION:-${CARGO_TARGET_DIR:-$here/target}/release/provision}
PROVISION=$(realpath "$PROVISION")
N=${N:-100}
RUNS=${RUNS:-20}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Hermetic git, as the tests use.
export HOME=$work/home GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
mkdir -p "$HOME"

cp -r "$here/fixtures/app" "$work/app"
cd "$work/app"
git init -q -b main && git add -A && git commit -q -m "fixture app"

echo "== building $N sandboxes with provision new"
start=$(date +%s.%N)
for i in $(seq 1 "$N"); do
  "$PROVISION" new "s$i" >/dev/null 2>&1
done
end=$(date +%s.%N)
echo "built $N sandboxes in $(echo "$end - $start" | bc) s"
"$PROVISION" status | tail -n 3

echo "== status and gc --dry-run with $N sandboxes"
hyperfine -N --warmup 3 --runs "$RUNS" \
  "$PROVISION status" \
  "$PROVISION status --json" \
  "$PROVISION gc --dry-run" \
  "git worktree list --porcelain"

echo "== provision new vs git worktree add (same repository, $N sandboxes present)"
hyperfine --runs "$RUNS" \
  --prepare "git worktree remove --force ../bench-plain >/dev/null 2>&1; git branch -D bench-plain >/dev/null 2>&1; true" \
  "git worktree add -q -b bench-plain ../bench-plain" \
  --prepare "$PROVISION remove --force bench-new >/dev/null 2>&1; true" \
  "$PROVISION new bench-new"
