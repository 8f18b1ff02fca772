#!/usr/bin/env bash
# Tests of .ci/check-ptx.sh:
#  - against a fatbin whose kernel must spill (.ci/testdata/spill.cu built with -maxrregcount=16):
#    the check fails without a spill-allow entry, passes with one whose bound covers the spill,
#    and fails again when the bound is too small;
#  - against an arch-specific module (.ci/testdata/arch_specific.cu built for sm_90a, no PTX):
#    the check passes, and fails when the build dropped the `a` (a generic sm_90 cubin + PTX
#    under the same manifest line), when the manifest claims PTX it lacks, or when a module
#    .ci/sass-expect names is missing from the manifest.
# Needs QA_NVCC/QA_CUOBJDUMP (.ci/tools.sh). Ends with the plain "N passed, N failed" line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ci" "$work/d" "$work/a" "$work/g"
cp "$here/check-ptx.sh" "$here/tools.sh" "$work/ci/"
"$QA_NVCC" --fatbin -O3 -maxrregcount=16 -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_80,code=compute_80 -o "$work/d/spmod.fatbin" "$here/testdata/spill.cu" 2>/dev/null
printf 'spmod\tcompute_80\tsm_80\t%s\n' "$(stat -c %s "$work/d/spmod.fatbin")" >"$work/d/manifest.tsv"
# The arch-specific module as the build writes it, and the same line over a build without the `a`.
"$QA_NVCC" --fatbin -O3 -gencode=arch=compute_90a,code=sm_90a \
  -o "$work/a/hmod.fatbin" "$here/testdata/arch_specific.cu"
"$QA_NVCC" --fatbin -O3 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90 \
  -o "$work/g/hmod.fatbin" "$here/testdata/arch_specific.cu"
for d in a g; do
  printf 'hmod\t-\tsm_90a\t%s\n' "$(stat -c %s "$work/$d/hmod.fatbin")" >"$work/$d/manifest.tsv"
done
passed=0 failed=0
case_() { # case_ EXPECTED(pass|fail) DESCRIPTION DIR [ALLOW LINE] [EXPECT LINES]
  local expected=$1 what=$2 dir=$3 got
  printf '%s\n' "${4:-}" >"$work/ci/spill-allow"
  printf '%s\n' "${5:-}" >"$work/ci/sass-expect"
  if bash "$work/ci/check-ptx.sh" "$work/$dir" >"$work/log" 2>&1; then got=pass; else got=fail; fi
  if [ "$got" = "$expected" ]; then echo "ok   $what: $got"; passed=$((passed + 1));
  else echo "FAIL $what: check says $got"; cat "$work/log"; failed=$((failed + 1)); fi
}
case_ fail "a spill with no allow entry" d
case_ pass "a spill within its allow bound" d $'spmod\tspill_*\tsm_8*\t4096'
case_ fail "a spill above its allow bound" d $'spmod\tspill_*\tsm_8*\t4'
case_ fail "an entry for another module" d $'other\tspill_*\tsm_8*\t4096'
hexpect=$'hmod\tsm_90a\tUSETMAXREG'
case_ pass "an sm_90a module with its arch-specific SASS and no PTX" a "" "$hexpect"
case_ fail "the same manifest line over a build that dropped the a" g "" "$hexpect"
case_ fail "the same build without the sass-expect line (SASS sm_90, PTX)" g ""
printf 'hmod\tcompute_90a\tsm_90a\t%s\n' "$(stat -c %s "$work/a/hmod.fatbin")" >"$work/a/manifest.tsv"
case_ fail "a manifest that claims PTX the arch-specific fatbin lacks" a "" "$hexpect"
printf 'hmod\t-\tsm_90a\t%s\n' "$(stat -c %s "$work/a/hmod.fatbin")" >"$work/a/manifest.tsv"
case_ fail "a sass-expect module missing from the manifest" a "" "$hexpect"$'\nabsent\tsm_90a\tUSETMAXREG'
echo "check-ptx tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
