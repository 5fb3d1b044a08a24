#!/usr/bin/env bash
# Runs every cargo-fuzz target (or the ones named as arguments) for a bounded time each.
#
#   FUZZ_SECONDS=60 ./fuzz/run.sh [target...]
#
# Without arguments every target of `cargo fuzz list` runs (all of fuzz/fuzz_targets).
# FUZZ_TIMEOUT (default 10) is the number of seconds a single input may take before libFuzzer
# reports it as a hang (a crash, like a panic).
#
# Needs the nightly toolchain (`cargo +nightly`) and cargo-fuzz, which is installed from
# crates.io when missing. New corpus entries go to fuzz/corpus/<target> (git-ignored); the
# committed seeds in fuzz/seeds/<target> are read as well. A crash stops the script with a
# non-zero status and leaves the input in fuzz/artifacts/<target>.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-10}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found; installing it from crates.io" >&2
    cargo install cargo-fuzz --locked
fi

# The fuzz build (nightly, sanitizers) keeps its own target directory.
export CARGO_TARGET_DIR="$PWD/target"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    corpora=("corpus/$target")
    if [ -d "seeds/$target" ]; then
        corpora+=("seeds/$target")
    fi
    echo "== fuzzing $target for ${seconds}s" >&2
    cargo +nightly fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout="$timeout"
done
