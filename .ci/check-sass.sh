#!/usr/bin/env bash
# Assembles PTX files with ptxas for real GPUs and checks the machine code:
#   - zero spill stores/loads for every kernel,
#   - expected SASS instructions per module (e.g. the tensor-core GEMM must use HMMA, LDSM and
#     LDGSTS, i.e. mma.sync, ldmatrix and cp.async really reached the hardware path).
#
# usage: .ci/check-sass.sh [--arch sm_80,sm_90] [--expect STEM:INSTR,INSTR ...] FILE.ptx...
#   STEM is the module stem (gemm_tile for gemm_tile.compute_80.ptx). Built-in expectation:
#   gemm_tile:HMMA,LDSM,LDGSTS. Tools: $PTXAS (else next to $NVCC, else PATH) and $CUOBJDUMP
#   (else ~/.cache/quietattn/sass-13.2/.../cuobjdump, else PATH).
# PTX is in target/*/build/quietattn-*/out/ptx/ after a build with NVCC set, e.g.
#   .ci/check-sass.sh target/debug/build/quietattn-*/out/ptx/*.ptx
set -euo pipefail

archs="sm_80,sm_90"
declare -A expect=([gemm_tile]="HMMA,LDSM,LDGSTS")
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) archs="$2"; shift 2 ;;
    --expect) expect["${2%%:*}"]="${2#*:}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) files+=("$1"); shift ;;
  esac
done
[[ ${#files[@]} -gt 0 ]] || { echo "check-sass: no PTX files given" >&2; exit 2; }

find_tool() {  # name, env value, extra candidates...
  local name="$1" env="$2"; shift 2
  if [[ -n "$env" ]]; then echo "$env"; return; fi
  for c in "$@"; do [[ -x "$c" ]] && { echo "$c"; return; }; done
  command -v "$name" || { echo "check-sass: $name not found" >&2; exit 2; }
}
ptxas=$(find_tool ptxas "${PTXAS:-}" "$(dirname "${NVCC:-/nonexistent/nvcc}")/ptxas")
cuobjdump=$(find_tool cuobjdump "${CUOBJDUMP:-}" \
  /root/.cache/quietattn/sass-13.2/lib/python3*/site-packages/nvidia/cu13/bin/cuobjdump \
  "$HOME"/.cache/quietattn/sass-13.2/lib/python3*/site-packages/nvidia/cu13/bin/cuobjdump)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
for ptx in "${files[@]}"; do
  stem=$(basename "$ptx"); stem=${stem%%.*}
  for arch in ${archs//,/ }; do
    cubin="$tmp/$stem.$arch.cubin"
    if ! "$ptxas" -arch="$arch" -v -o "$cubin" "$ptx" >"$tmp/log" 2>&1; then
      echo "FAIL $stem $arch: ptxas failed"; cat "$tmp/log"; failures=$((failures + 1)); continue
    fi
    ok=1
    spills=$(grep -Eo '[0-9]+ bytes spill (stores|loads)' "$tmp/log" | awk '{s += $1} END {print s + 0}')
    if [[ "$spills" != 0 ]]; then
      echo "FAIL $stem $arch: $spills bytes of register spills"; grep -E 'Compiling|spill' "$tmp/log"
      failures=$((failures + 1)); ok=0
    fi
    sass=$("$cuobjdump" -sass "$cubin")
    missing=()
    want=${expect[$stem]:-}
    for instr in ${want//,/ }; do
      grep -q "\b$instr" <<<"$sass" || missing+=("$instr")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
      echo "FAIL $stem $arch: SASS lacks ${missing[*]}"; failures=$((failures + 1))
    elif [[ $ok == 1 ]]; then
      echo "ok   $stem $arch: no spills${want:+, has $want}"
    fi
  done
done
[[ $failures -eq 0 ]] || { echo "check-sass: $failures failure(s)"; exit 1; }
