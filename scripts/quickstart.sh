#!/usr/bin/env bash
# The main command (README): sets everything up on a fresh machine and runs the quickstart
# study (examples/quickstart.toml) on real human data with the two real small models.
# Ends by printing the path of the report. Extra arguments go to `descry run`
# (e.g. --set games.matrix.limit=50).
set -euo pipefail
cd "$(dirname "$0")/.."

export DESCRY_HOME="${DESCRY_HOME:-$HOME/.cache/descry}"
echo "1/4 fetching the ONNX Runtime library and the two GGUF models into $DESCRY_HOME ..." >&2
scripts/setup-models.sh >/dev/null
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1}"

echo "2/4 building descry and its plugins (release) ..." >&2
cargo build --release --workspace

echo "3/4 importing the models (once) ..." >&2
DESCRY_BIN="$PWD/target/release/descry" scripts/setup-models.sh >/dev/null

study=examples/quickstart.toml
if [ ! -d ../shared/data ]; then
    # Outside the project: the public Akata and choices13k releases, verified by sha256
    # (the GLEE human data is published with the GLEE repository; point data.root at it).
    echo "    no ../shared/data here: fetching the public data releases into $DESCRY_HOME/data" >&2
    target/release/descry data fetch >/dev/null
    study=examples/quickstart-public.toml
fi

echo "4/4 running $study ..." >&2
exec target/release/descry run "$study" "$@"
