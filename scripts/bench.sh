#!/usr/bin/env bash
# The performance benchmark (the `descry-bench` binary, crate bench/): for each real model,
# naive per-decision scoring vs descry's plan (the radix tree of the prompts, each distinct
# prefix computed once) on the repeated-matrix games (native and transcript), GLEE
# bargaining, persuasion (both variants) and negotiation, side by side in one run: tokens
# computed beside the trie minimum, wall seconds, decisions/s, peak memory, model FLOP/s
# against the engine's fp32 matrix-multiply rate (the backend's matmul_rate entry), a memory
# check at 10x the decisions, and the targets (README, Performance) beside the figures.
#
#   scripts/bench.sh                          # default subsets: a few minutes per model
#   scripts/bench.sh --limit 16               # more matrix episodes (later options win)
#   scripts/bench.sh --full-plan              # also the plan over every episode
#   BENCH_MODELS="smollm2-135m-instruct" scripts/bench.sh
#
# The naive method runs ~100-300 tokens/s per model on two cores and the whole matrix set is
# ~2M prompt tokens (hours), so the default benches the first episodes of each data set;
# the limit is in the JSON and the tables. Results: target/bench/results-<model>.json
# (and .txt). Other work on the machine slows every phase and the sgemm measurement alike;
# the load average is recorded.
set -euo pipefail
cd "$(dirname "$0")/.."

export DESCRY_HOME="${DESCRY_HOME:-$HOME/.cache/descry}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$DESCRY_HOME/onnxruntime/libonnxruntime.so.1.31.1}"
models="${BENCH_MODELS:-smollm2-135m-instruct gemma-3-270m}"
# Matrix episodes are ~5,700 naive tokens each, a GLEE persuasion episode ~28,000.
defaults=(--limit 4 --limit glee-persuasion=1 --limit glee-persuasion-transcript=1)

# The bench binary finds the plugins beside it, so build them into the same folder.
cargo build --release -p descry-bench -p descry-backend-onnx -p descry-game-matrix -p descry-game-persuasion \
    -p descry-game-bargaining -p descry-game-negotiation
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release/descry-bench"
out_dir="$target_dir/bench"
mkdir -p "$out_dir"

for model in $models; do
    dir="$DESCRY_HOME/models/$model"
    if [ ! -f "$dir/descry-model.json" ]; then
        echo "error: $dir is not an imported model folder; run scripts/setup-models.sh" >&2
        exit 1
    fi
    echo "== $model" >&2
    "$bin" --model "$dir" --out "$out_dir/results-$model.json" "${defaults[@]}" "$@" | tee "$out_dir/results-$model.txt"
done
echo "results: $out_dir/results-*.json" >&2
