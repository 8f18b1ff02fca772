#!/usr/bin/env bash
# ptxas + SASS checks of the PTX quietattn embeds (written by `quietattn ptx --out-dir DIR`).
#   usage: check-ptx.sh DIR
# Every DIR/<module>.<compute_XY>.ptx is assembled for each of sm_75, sm_80, sm_90 at or above
# its virtual architecture. Fails on any spill. Prints registers / shared memory per kernel.
# .ci/sass-expect lists instructions that must appear in a module's SASS (the only check of
# inline PTX without a GPU: it proves the device branch of kernels/qa/ptx.cuh is what runs).
set -euo pipefail
dir=${1:?usage: check-ptx.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${QA_PTXAS:-}" ]; then
  # shellcheck source=.ci/tools.sh
  source "$here/tools.sh"
  install_tools >/dev/null
fi
expect="$here/sass-expect"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
shopt -s nullglob
files=("$dir"/*.ptx)
[ ${#files[@]} -gt 0 ] || { echo "no PTX in $dir"; exit 1; }
printf '%-34s %-7s %5s %8s %8s %s\n' kernel sm regs smem_B spill_B module
for ptx in "${files[@]}"; do
  base=$(basename "$ptx" .ptx)      # module.compute_XY
  module=${base%.*}
  arch=${base##*.}
  vnum=${arch#compute_}; vnum=${vnum%%[af]}
  for sm in 75 80 90; do
    [ "$sm" -ge "$vnum" ] || continue
    cubin="$work/$base.sm_$sm.cubin"
    if ! "$QA_PTXAS" -arch=sm_$sm -v -o "$cubin" "$ptx" >"$work/log" 2>&1; then
      echo "FAIL ptxas sm_$sm $ptx"; cat "$work/log"; failed=1; continue
    fi
    # ptxas -v prints, per entry: "Compiling entry function 'X'", then "N bytes spill stores,
    # M bytes spill loads" and "Used R registers, ... S bytes smem".
    awk -v sm="sm_$sm" -v mod="$module" '
      /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); k = substr($0, RSTART+1, RLENGTH-2); spill = 0; smem = 0 }
      /spill stores/ { for (i = 1; i <= NF; i++) if ($(i+1) == "bytes" && $(i+2) == "spill") spill += $i }
      /Used [0-9]+ registers/ {
        for (i = 1; i <= NF; i++) { if ($(i+1) == "registers,") regs = $i; if ($(i+1) == "bytes" && $(i+2) ~ /^smem/) smem = $i }
        printf "%-34s %-7s %5s %8s %8s %s\n", k, sm, regs, smem, spill, mod
        if (spill > 0) bad = 1
      }
      END { exit bad }' "$work/log" || { echo "FAIL: spills in $module for sm_$sm"; failed=1; }
    if [ -f "$expect" ]; then
      while read -r emod esm instrs; do
        [ -n "$emod" ] && [ "${emod:0:1}" != "#" ] || continue
        [ "$emod" = "$module" ] && [ "$esm" = "sm_$sm" ] || continue
        "$QA_CUOBJDUMP" -sass "$cubin" >"$work/sass"
        for ins in $instrs; do
          n=$(grep -c "$ins" "$work/sass" || true)
          if [ "$n" -gt 0 ]; then echo "  SASS $module sm_$sm: $ins x$n"; else echo "FAIL: no $ins in the SASS of $module (sm_$sm)"; failed=1; fi
        done
      done <"$expect"
    fi
  done
done
[ "$failed" = 0 ] && echo "ptx check: OK" || { echo "ptx check: FAILED"; exit 1; }
