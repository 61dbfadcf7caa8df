#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (or the ones named: scripts/fuzz.sh jwt canonical) for
# FUZZ_SECONDS each (default 20; 0 builds only), starting from a copy of its seed corpus in
# fuzz/corpus/<target>/, so a run never changes the repository. Fails on any crash, naming the
# target and the input (kept in fuzz/artifacts/<target>/, which git ignores).
#
# Needs a nightly toolchain: under CI=true a missing one is a failure, elsewhere a skip.
# Installs cargo-fuzz when it is missing. Builds every target in one `cargo fuzz build`, so
# certgate and its dependencies compile once. Without a sanitizer by default: certgate has no
# unsafe code and cargo-fuzz does not instrument aws-lc's C code, while AddressSanitizer about
# doubled the build from clean on two cores (6m50s against 3m30s) and ran 2 to 8 times fewer
# inputs. FUZZ_SANITIZER=address builds with it. Debug assertions and overflow checks are on (-a).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-none}"
case "$seconds" in
  '' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS must be a number of seconds, not '$seconds'" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "fuzz: FAILED: no nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
  fi
  echo "fuzz: SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi

# `cargo install` puts cargo-fuzz here; `cargo fuzz` finds it on PATH.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi

# cargo fuzz has no --locked: check here that fuzz/Cargo.lock needs no change.
if ! cargo +nightly fetch --locked --manifest-path fuzz/Cargo.toml --quiet; then
  echo "fuzz: FAILED: fuzz/Cargo.lock is out of date. Refresh it with the main crate's versions:" >&2
  echo "  cp Cargo.lock fuzz/Cargo.lock && cargo +nightly fetch --manifest-path fuzz/Cargo.toml" >&2
  exit 1
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== cargo +nightly fuzz build -O -a --sanitizer $sanitizer (${targets[*]})"
cargo +nightly fuzz build -O -a --sanitizer "$sanitizer"
if [ "$seconds" -eq 0 ]; then
  exit 0
fi

host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin="fuzz/target/$host/release"
work="$(mktemp -d "${TMPDIR:-/tmp}/certgate-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

failed=()
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -R "fuzz/corpus/$target/." "$corpus/"
  fi
  log="$work/$target.log"
  # -timeout: one input running 10 s is a failure too (libFuzzer's default is 20 minutes).
  # TMPDIR: what a target writes there (config's CA file) goes with $work.
  if TMPDIR="$work" "$bin/$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1; then
    echo "fuzz: $target ok: $(grep -m1 '^Done' "$log" || echo 'no summary')"
  else
    failed+=("$target")
    input="$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)"
    echo "---- fuzz: $target FAILED; the panic and the end of its log:"
    sed -n '/panicked at/,/stack backtrace/p' "$log" | head -n 20
    grep -v '^"' "$log" | tail -n 12   # without libFuzzer's dictionary of recommended words
    echo "----"
    if [ -n "$input" ] && [ -f "$input" ]; then
      echo "fuzz: $target crashed on $input (base64: $(head -c 4096 "$input" | base64 -w0))"
      echo "fuzz: reproduce with: cargo +nightly fuzz run -O -a --sanitizer $sanitizer $target $input"
    else
      echo "fuzz: $target failed without writing a crash input"
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash (${targets[*]})"
