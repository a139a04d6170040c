# provision's tasks. `just --list` shows them.

# Run the whole test suite (the command CI runs).
test:
    sh tests/run.sh

# End to end on the fixture app with the SQLite default.
demo:
    sh fixtures/demo.sh

# Formatting, lints, and the flakes parsed and evaluated as far as they go without nixpkgs.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets --locked -- -D warnings
    NIX_CONFIG="build-users-group =" nix-instantiate --parse flake.nix >/dev/null
    NIX_CONFIG="build-users-group =" nix-instantiate --parse nix/template/flake.nix >/dev/null
    NIX_CONFIG="build-users-group =" nix-instantiate --eval --strict -A ok nix/check.nix >/dev/null

# Benchmarks beside git's own commands, in one run: `just bench` (all of
# them), `just bench --peers` (also worktrunk's `wt`, installed into
# target/peers when missing), `just bench --runs 5 --sizes 10,100` (a
# quicker look).
bench *ARGS:
    cargo build --release --locked
    python3 bench/bench.py {{ARGS}}
    sh bench/postgres.sh
    sh bench/migrations.sh

# kill -9, syscall faults and hostile state, then the documented recovery
# and the data-safety invariants: `just chaos` (all of it, ~35 minutes on
# 2 cores), `just chaos --quick`, `just chaos --kinds hostile`,
# `just chaos --kinds pgkill,pgstep` (PostgreSQL: a private server it starts),
# `just chaos --only syscall:new/write/EIO/4`. Needs python3, git, strace,
# and PostgreSQL's initdb, pg_ctl and psql.
chaos *ARGS:
    cargo build --release --locked
    python3 chaos/chaos.py {{ARGS}}

# What CI runs on a fresh machine.
ci:
    .ci/run

# Each fuzz target in fuzz/ for SECONDS (cargo-fuzz on stable via RUSTC_BOOTSTRAP).
fuzz SECONDS="120":
    #!/usr/bin/env sh
    set -eu
    cd fuzz
    for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
        echo "== $target"
        RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time={{SECONDS}} -max_len=4096 2>&1 | grep -E "^(#[0-9]+.*DONE|Done [0-9]+ runs|==[0-9]+== ERROR|SUMMARY)" || true
        test ! -d "artifacts/$target" || test -z "$(ls "artifacts/$target")" || { echo "crash: fuzz/artifacts/$target"; exit 1; }
    done
