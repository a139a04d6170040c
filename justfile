# provision's tasks. `just --list` shows them.

# Run the whole test suite (the command CI runs).
test:
    cargo test --locked

# End to end on the fixture app with the SQLite default.
demo:
    sh fixtures/demo.sh

# Formatting, lints and the flake's syntax.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets --locked -- -D warnings
    python3 .ci/check-flake.py flake.nix

# Benchmarks beside git's own commands, in one run: `just bench` (all of
# them), `just bench --runs 5 --sizes 10,100` (a quicker look).
bench *ARGS:
    cargo build --release --locked
    python3 bench/bench.py {{ARGS}}
    sh bench/postgres.sh

# What CI runs on a fresh machine.
ci:
    .ci/run
