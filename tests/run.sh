#!/bin/sh
# The test suite on a fresh machine: installs what the tests drive and the
# machine may lack (PostgreSQL's binaries, sqlite3, zsh, fish, nix-bin for
# `nix-instantiate`, `script`, npm, the Python MCP SDK in a venv, and the
# migration tools dbmate, sqlx-cli and diesel_cli under
# target/test-tools), then runs `cargo test --locked`. Nothing is
# skipped: a test whose tool is missing fails and names it.
#
# Usage: sh tests/run.sh [cargo test arguments…]
set -eu
cd "$(dirname "$0")/.."

say() { printf 'tests: %s\n' "$*" >&2; }

missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need git git
need sqlite3 sqlite3
need zsh zsh
need fish fish
need nix-instantiate nix-bin
need script bsdutils
need runuser util-linux
need strace strace
need python3 python3
need npm npm
need pg_config libpq-dev
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing="$missing postgresql"
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo -n"
else
  sudo="cannot"
fi

if [ -n "$missing" ]; then
  if [ "$sudo" = cannot ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing:$missing"
    say "install these packages (Debian names), then run this again"
    exit 2
  fi
  say "installing$missing (apt-get)"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# initdb refuses to run as root: as root the harness runs it as `postgres`.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  say "adding the system user postgres (initdb refuses to run as root)"
  useradd --system --no-create-home --shell /usr/sbin/nologin postgres
fi

# The official Python MCP SDK, the client `provision mcp` is tested with,
# in a venv of its own (pinned: a test must not change under it).
venv="${CARGO_TARGET_DIR:-target}/test-tools/venv"
if ! "$venv/bin/python" -c "import mcp" 2>/dev/null; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    say "installing python3-venv (apt-get)"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  say "installing the MCP client (PyPI mcp==2.3.0) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check mcp==2.3.0
fi
PROVISION_TEST_PYTHON="$(cd "$(dirname "$venv")" && pwd)/venv/bin/python"
export PROVISION_TEST_PYTHON

# The migration tools whose ledgers provision writes, run against its
# sandboxes (tests/it/tools.rs): dbmate from npm, which ships its binary.
tools="${CARGO_TARGET_DIR:-target}/test-tools"
mkdir -p "$tools/bin"
if ! "$tools/bin/dbmate" --version 2>/dev/null | grep -q " 2.36.0"; then
  say "installing dbmate (npm dbmate@2.36.0) into $tools"
  npm install --no-audit --no-fund --silent --prefix "$tools/npm" dbmate@2.36.0
  ln -sf ../npm/node_modules/.bin/dbmate "$tools/bin/dbmate"
fi
# sqlx-cli and diesel_cli from crates.io, built once (pinned, only the
# features the tests use). Debug builds sharing one target folder took 2.4
# CPU-minutes for both, where release builds took 6.8.
cargo_tool() { # binary crate version features
  if ! "$tools/bin/$1" --version 2>/dev/null | grep -q "$3"; then
    say "installing $2 $3 into $tools (cargo install, once: a few minutes on 2 cores)"
    CARGO_TARGET_DIR="$tools/build" cargo install --debug --locked --quiet \
      --root "$tools" "$2" --version "$3" --no-default-features --features "$4"
  fi
}
cargo_tool sqlx sqlx-cli 0.8.6 rustls,postgres,sqlite
cargo_tool diesel diesel_cli 2.3.14 postgres,sqlite-bundled
PROVISION_TEST_TOOLS="$(cd "$tools" && pwd)"
export PROVISION_TEST_TOOLS

if [ ! -d target/debug/deps ]; then
  say "first run: cargo builds the dependencies and the tests (about 4 minutes on 2 cores), then runs about 320 tests (about 3 minutes)"
fi
exec cargo test --locked "$@"
