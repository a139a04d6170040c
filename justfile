# provision's tasks. `just --list` shows them.

# Run the whole test suite (the command CI runs).
test:
    cargo test --locked

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

# Benchmarks: provision beside plain `git worktree add`, in the same run.
bench:
    cargo build --release --locked
    for script in bench/*.sh; do bash "$script"; done

# What CI runs on a fresh machine.
ci:
    .ci/run
