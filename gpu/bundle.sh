#!/usr/bin/env bash
# Builds, on this machine, the GPU tier as one self-contained bundle for a GPU machine that has
# no Rust: the CLI, every test binary that touches a GPU or runs the CLI, the criterion benches,
# a small input file, the runner (gpu/run.sh) and the torch comparisons (gpu/torch_sdpa.py,
# gpu/torch_sdpa_decode.py).
#
#   gpu/bundle.sh [OUT]        # OUT defaults to target/quietattn-gpu.tar.xz
#
# On the GPU machine:  tar -xJf quietattn-gpu.tar.xz && quietattn-gpu/run.sh RESULTS_DIR
#
# Integration tests bake absolute build paths (CARGO_BIN_EXE_quietattn under this checkout), so
# the bundle mirrors the checkout's layout (target/release/quietattn) and records the checkout's
# path in manifest.txt; run.sh makes that path lead to the bundle.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-$root/target/quietattn-gpu.tar.xz}
limit_mib=60
: "${NVCC:=/root/.cache/quietattn/nvcc-13.0/lib/python3.11/site-packages/nvidia/cu13/bin/nvcc}"
export NVCC QUIETATTN_REQUIRE_PTX=1
# Test binaries to ship: their source opens a GPU or runs the CLI.
gpu_marker='cuda_or_skip|gpu_or_skip|Device::cuda|CudaDevice|devices\("|CARGO_BIN_EXE'

log() { printf '[bundle %s] %s\n' "$(date +%T)" "$*" >&2; }

# Executables of one cargo invocation (`--no-run`, JSON messages): "kind name path" per line.
executables() {
  cargo "$@" --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        t = m["target"]
        print(t["kind"][0], t["name"], t["src_path"], m["executable"])
'
}

# Only the test targets to ship are built (tests/NAME.rs, one target each).
test_args=()
for src in tests/*.rs; do
  grep -Eq "$gpu_marker" "$src" && test_args+=(--test "$(basename "$src" .rs)")
done
log "building the CLI, $((${#test_args[@]} / 2)) test binaries and the benches (release, NVCC=$NVCC, QUIETATTN_REQUIRE_PTX=1)"
cargo build --release --bin quietattn
tests=$(executables test --release "${test_args[@]}")
benches=$(executables bench --benches)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b=$stage/quietattn-gpu
mkdir -p "$b/target/release" "$b/tests" "$b/benches" "$b/data"

ship() { # ship SRC DST: stripped copy
  cp "$1" "$2"
  strip --strip-all "$2"
}
ship target/release/quietattn "$b/target/release/quietattn"
while read -r kind name src exe; do
  if [ "$kind" = test ]; then ship "$exe" "$b/tests/$name"; fi
done <<<"$tests"
while read -r kind name src exe; do
  if [ "$kind" = bench ]; then ship "$exe" "$b/benches/$name"; fi
done <<<"$benches"

python3 gpu/make_input.py "$b/data/small.safetensors"
python3 gpu/make_input.py --activations "$b/data/act.safetensors"
python3 gpu/make_input.py --paged --heads 4 --kv-heads 2 "$b/data/paged-f32.safetensors"
python3 gpu/make_input.py --paged --dtype bf16 --heads 4 --kv-heads 2 "$b/data/paged-bf16.safetensors"
cp gpu/run.sh gpu/torch_common.py gpu/torch_sdpa.py gpu/torch_sdpa_decode.py "$b/"
chmod +x "$b/run.sh"
{
  echo "build_root=$root"
  echo "commit=$(git rev-parse HEAD)$(git diff --quiet HEAD -- . || echo +dirty)"
  echo "built=$(date -u +%FT%TZ)"
  echo "nvcc=$("$NVCC" --version | tail -1)"
  echo "rustc=$(rustc --version)"
  echo "tests=$(ls "$b/tests" | tr '\n' ' ')"
  echo "benches=$(ls "$b/benches" | tr '\n' ' ')"
} >"$b/manifest.txt"

log "compressing"
mkdir -p "$(dirname "$out")"
# One xz stream whose window (192 MiB, ~2 GiB of memory to compress, 192 MiB to unpack) spans
# more than one binary: the kernels and emulator every binary embeds compress once.
tar -C "$stage" -cf - quietattn-gpu | xz -T1 --lzma2=preset=6,dict=192MiB >"$out"
unpacked=$(du -sm "$b" | cut -f1)
packed=$(($(stat -c %s "$out") / 1048576))
log "$out: ${packed} MiB (unpacked ${unpacked} MiB, $(ls "$b/tests" | wc -l) test binaries, $(ls "$b/benches" | wc -l) benches)"
if [ "$packed" -gt "$limit_mib" ]; then
  log "FAIL: the bundle is over ${limit_mib} MiB"
  exit 1
fi
