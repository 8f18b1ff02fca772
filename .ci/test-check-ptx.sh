#!/usr/bin/env bash
# Tests of .ci/check-ptx.sh against a fatbin whose kernel must spill (.ci/testdata/spill.cu built
# with -maxrregcount=16): the check fails without a spill-allow entry, passes with one whose
# bound covers the spill, and fails again when the bound is too small. Needs QA_NVCC/QA_CUOBJDUMP
# (.ci/tools.sh). Ends with the plain "N passed, N failed" line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ci" "$work/d"
cp "$here/check-ptx.sh" "$here/tools.sh" "$work/ci/"
: >"$work/ci/sass-expect"
"$QA_NVCC" --fatbin -O3 -maxrregcount=16 -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_80,code=compute_80 -o "$work/d/spmod.fatbin" "$here/testdata/spill.cu" 2>/dev/null
printf 'spmod\tcompute_80\tsm_80\t%s\n' "$(stat -c %s "$work/d/spmod.fatbin")" >"$work/d/manifest.tsv"
passed=0 failed=0
case_() { # case_ EXPECTED(pass|fail) DESCRIPTION [ALLOW LINE]
  local expected=$1 what=$2 got
  printf '%s\n' "${3:-}" >"$work/ci/spill-allow"
  if bash "$work/ci/check-ptx.sh" "$work/d" >"$work/log" 2>&1; then got=pass; else got=fail; fi
  if [ "$got" = "$expected" ]; then echo "ok   $what: $got"; passed=$((passed + 1));
  else echo "FAIL $what: check says $got"; cat "$work/log"; failed=$((failed + 1)); fi
}
case_ fail "a spill with no allow entry"
case_ pass "a spill within its allow bound" $'spmod\tspill_*\tsm_8*\t4096'
case_ fail "a spill above its allow bound" $'spmod\tspill_*\tsm_8*\t4'
case_ fail "an entry for another module" $'other\tspill_*\tsm_8*\t4096'
echo "check-ptx tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
