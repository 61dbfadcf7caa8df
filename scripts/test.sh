#!/usr/bin/env bash
# The README's test command: installs what the suite needs, then checks formatting, lints,
# and runs every test (unit and integration, against real nginx, curl and openssl).
# Under CI=true a missing tool fails the suite instead of skipping a test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export PATH="$PWD/target/test-tools/bin:$PATH"   # traefik and caddy from the venv

echo "== cargo fmt --check"
cargo fmt --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

echo "== cargo test"
cargo test --locked
