#!/usr/bin/env bash
# The README's test command: installs what the suite needs, then checks formatting, lints,
# and runs every test (unit and integration, against real nginx, curl and openssl), then
# every fuzz target for a short while (scripts/fuzz.sh; FUZZ_SECONDS per target, default 20).
# Under CI=true a missing tool fails the suite instead of skipping a test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export PATH="$PWD/target/test-tools/bin:$PATH"   # traefik and caddy from the venv

echo "== cargo fmt --check"
cargo fmt --check
rustfmt --edition 2021 --check fuzz/fuzz_targets/*.rs   # every target, enabled or not

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

echo "== cargo test"
cargo test --locked

echo "== scripts/fuzz.sh"
scripts/fuzz.sh
