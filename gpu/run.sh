#!/usr/bin/env bash
# The GPU tier in one command, from an unpacked bundle (gpu/bundle.sh) on a machine without Rust.
#
#   ./run.sh OUT_DIR [--require-gpu] [--quick]
#
# Writes exactly two files: OUT_DIR/gpu-tier.log (every step's output) and
# OUT_DIR/summary.txt (one line per step: PASS/FAIL/SKIP, seconds, note). Every step has a time
# budget (the whole run stays under ~8 minutes on an H200). Without a GPU the GPU steps print
# SKIP and the run still goes to the end; the exit status is 1 only for real failures (with
# --require-gpu a missing GPU is one). --quick shortens the benchmarks (for trying it out).
# QUIETATTN_GPU_BUDGET_S (default 450) caps the whole run: steps that would start after it print
# SKIP with the reason.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run.sh OUT_DIR [--require-gpu] [--quick]}
shift
require_gpu=0
quick=0
total_budget=${QUIETATTN_GPU_BUDGET_S:-450} # whole run; 8 minutes minus the tail
for a in "$@"; do
  case $a in
    --require-gpu) require_gpu=1 ;;
    --quick) quick=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/gpu-tier.log
summary=$out/summary.txt
: >"$log"
: >"$summary"
failures=0
start_all=$(date +%s)
qa=$here/target/release/quietattn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { echo "$*" | tee -a "$log"; }
record() { # record STEP STATUS SECONDS NOTE
  printf '%-34s %-4s %6ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary" >>"$log"
  [ "$2" = FAIL ] && failures=$((failures + 1))
  return 0
}

# step NAME BUDGET_S CMD...: runs CMD with a time budget, output into the log. PASS on exit 0,
# FAIL otherwise (a budget overrun is a FAIL that says so). NOTE_FILE may hold a note.
step() {
  local name=$1 budget=$2
  shift 2
  local left=$((total_budget - ($(date +%s) - start_all)))
  if [ "$left" -lt 15 ]; then
    skip "$name" "the run's ${total_budget}s budget is spent"
    return 0
  fi
  [ "$budget" -gt "$left" ] && budget=$left
  say ""
  say "===== $name (budget ${budget}s): $*"
  local t0 rc note="" part=$work/step.log
  t0=$(date +%s)
  timeout --kill-after=10 "$budget" "$@" >"$part" 2>&1
  rc=$?
  cat "$part" >>"$log"
  local dt=$(($(date +%s) - t0))
  if [ $rc -eq 0 ]; then
    grep -q "^SKIP " "$part" && note="$(grep -c '^SKIP ' "$part") SKIP line(s)"
    record "$name" PASS "$dt" "$note"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    record "$name" FAIL "$dt" "over its ${budget}s budget"
  else
    record "$name" FAIL "$dt" "exit $rc"
  fi
}

skip() { record "$1" SKIP 0 "$2"; say "===== $1: SKIP ($2)"; }

# ---- header ----
say "quietattn GPU tier, $(date -u +%FT%TZ) on $(hostname)"
say "$(cat "$here/manifest.txt")"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >>"$log" 2>&1; then
  gpu=1
  nvidia-smi >>"$log" 2>&1
else
  gpu=0
  say "no GPU: nvidia-smi missing or lists no device"
fi
if [ $gpu = 0 ] && [ $require_gpu = 1 ]; then
  record gpu FAIL 0 "--require-gpu and no GPU"
else
  record gpu "$([ $gpu = 1 ] && echo PASS || echo SKIP)" 0 "$([ $gpu = 1 ] && nvidia-smi -L | head -1 || echo 'no GPU')"
fi

# ---- cuBLAS for the probe's dense layers (tests/probe_cublas.rs, probe --device cuda) ----
# cudarc dlopens libcublas.so.13 (or .12) by name. When the dynamic linker does not know one, use
# the CUDA toolkit's copy or the one inside a Python wheel (torch's nvidia-* packages).
if ! ldconfig -p 2>/dev/null | grep -Eq 'libcublas\.so\.1[23] '; then
  cublas_dir=$(
    {
      ls -d /usr/local/cuda/lib64/libcublas.so.1[23] 2>/dev/null
      python3 -c 'import glob, os, site
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for p in sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib", "libcublas.so.1[23]"))):
        print(p)' 2>/dev/null
    } | head -1 | xargs -r dirname
  )
  if [ -n "$cublas_dir" ]; then
    export LD_LIBRARY_PATH="$cublas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "cuBLAS: $cublas_dir put on LD_LIBRARY_PATH"
  else
    say "cuBLAS: no libcublas.so.13/.12 found; the probe's GPU dense-layer tests will fail"
  fi
fi

# ---- the build-time paths the test binaries baked in must lead here ----
build_root=$(sed -n 's/^build_root=//p' "$here/manifest.txt")
if [ "$(cd "$build_root" 2>/dev/null && pwd -P)" = "$(cd "$here" && pwd -P)" ]; then
  say "build root $build_root is this bundle"
elif [ ! -e "$build_root" ]; then
  mkdir -p "$(dirname "$build_root")" && ln -sfn "$here" "$build_root" &&
    say "linked build root $build_root -> $here"
else
  say "build root $build_root exists and is not this bundle: CLI tests use the binary there"
fi
[ -x "$build_root/target/release/quietattn" ] || record build-root FAIL 0 "$build_root/target/release/quietattn missing"

# ---- tests: every shipped test binary, GPU required when there is one ----
export QUIETATTN_REQUIRE_GPU=$((gpu | require_gpu))
for t in "$here"/tests/*; do
  step "test $(basename "$t")" 150 "$t"
done

# ---- the CLI on the GPU: the whole check matrix, the demo ----
if [ $gpu = 1 ]; then
  step "quietattn check --device cuda" 90 "$qa" check --device cuda
  step "quietattn demo --device cuda" 60 "$qa" demo --device cuda
else
  step "quietattn check --device emulator" 60 "$qa" check --device emulator
  skip "quietattn check --device cuda" "no GPU"
fi

# ---- benchmarks ----
if [ $gpu = 1 ]; then
  iters=$([ $quick = 1 ] && echo 3 || echo 10)
  step "quietattn bench --device cuda" 120 "$qa" bench --device cuda --iters "$iters"
  # The shapes of issue #8 (bf16, 16k tokens, 16 heads), softmax, for the torch comparison.
  for d in 64 128; do
    for s in 1024 4096 16384; do
      step "bench d$d s$s (json)" 60 "$qa" bench --device cuda --dtype bf16 --dim "$d" \
        --seq "$s" --heads 16 --batch $((16384 / s)) --variant softmax --iters "$iters" \
        --json "$work/bench-d$d-s$s.json"
    done
  done
  # Short mode: the headline shape only, criterion's samples short; its files stay in $work.
  # benches/decode.rs writes its rows for the torch decode comparison below.
  export QUIETATTN_BENCH_QUICK=1 CRITERION_HOME=$work/criterion
  export QUIETATTN_DECODE_BENCH_JSON=$work/decode.json
  for bench in "$here"/benches/*; do
    step "criterion $(basename "$bench")" 90 "$bench" --bench --warm-up-time 0.5 \
      --measurement-time 1 --sample-size 10
  done
else
  step "quietattn bench --device emulator" 60 "$qa" bench --device emulator --seq 16 --dim 64
  skip "GPU benchmarks" "no GPU"
fi

# ---- torch SDPA, pinned backends, against quietattn's numbers of this run ----
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >>"$log" 2>&1; then
  step "torch SDPA comparison" 120 python3 "$here/torch_sdpa.py" --quietattn-json "$work"/bench-*.json
  decode_json=()
  [ -s "$work/decode.json" ] && decode_json=(--quietattn-json "$work/decode.json")
  step "torch SDPA decode comparison" 90 python3 "$here/torch_sdpa_decode.py" "${decode_json[@]}"
else
  step "torch SDPA comparison (no torch/CUDA)" 30 python3 "$here/torch_sdpa.py"
  step "torch SDPA decode comparison (no torch/CUDA)" 30 python3 "$here/torch_sdpa_decode.py"
fi

# ---- compute-sanitizer: every normaliser (stats on, a gate), activation statistics, decode ----
# Last, so a short GPU loan measures first; steps past the budget say SKIP.
sanitizer=${COMPUTE_SANITIZER:-/usr/local/cuda/bin/compute-sanitizer}
input=$here/data/small.safetensors
variants="softmax off-by-one sink clipped softpick sigmoid"
if [ $gpu = 1 ] && [ -x "$sanitizer" ]; then
  for tool in memcheck racecheck synccheck initcheck; do
    for v in $variants; do
      step "sanitizer $tool $v" 60 "$sanitizer" --tool "$tool" --error-exitcode 9 \
        "$qa" run --device cuda --input "$input" --output "$work/o.safetensors" \
        --variant "$v" --causal --gate sigmoid-headwise --stats "$work/s.json"
    done
    step "sanitizer $tool act-stats" 60 "$sanitizer" --tool "$tool" --error-exitcode 9 \
      "$qa" stats --device cuda --input "$here/data/act.safetensors"
    # Decode over pages, split: the tensor-core chunk (bf16; clipped runs two passes) and the
    # CUDA-core chunk (f32), both with the combine, statistics and a gate.
    for paged in "bf16 softmax" "bf16 clipped" "f32 sink"; do
      read -r dt v <<<"$paged"
      step "sanitizer $tool decode $dt $v" 60 "$sanitizer" --tool "$tool" --error-exitcode 9 \
        "$qa" run --device cuda --input "$here/data/paged-$dt.safetensors" \
        --output "$work/o.safetensors" --variant "$v" --causal --gate sigmoid-headwise \
        --stats "$work/s.json"
    done
  done
else
  skip "compute-sanitizer" "$([ $gpu = 1 ] && echo "no $sanitizer" || echo 'no GPU')"
fi

total=$(($(date +%s) - start_all))
record total "$([ $failures = 0 ] && echo PASS || echo FAIL)" "$total" "$failures failing step(s)"
say ""
say "===== summary"
cat "$summary" | tee -a "$log" >/dev/null
cat "$summary"
[ $failures = 0 ]
