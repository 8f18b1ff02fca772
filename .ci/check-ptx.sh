#!/usr/bin/env bash
# Checks of the kernel images quietattn ships (written by `quietattn ptx --out-dir DIR`: one
# DIR/<module>.fatbin per module and DIR/manifest.tsv), read with cuobjdump — no recompilation,
# so what is checked is exactly what the binary loads.
#   usage: check-ptx.sh DIR
# For each module:
#  - the fatbin holds SASS for exactly the architectures the manifest lists and the PTX of its
#    virtual architecture (the JIT fallback for GPUs none of the SASS serves); an arch-specific
#    module (manifest PTX column `-`, SASS `sm_90a`) holds that SASS and no PTX, so a build that
#    dropped the `a` (a generic sm_90 cubin) fails here;
#  - no kernel of any SASS uses local memory or a stack frame (LOCAL:0 STACK:0 — in particular
#    zero register spills), except where .ci/spill-allow names the kernel with a bound (known
#    spills under review: each entry says why; a spill above its bound, or anywhere else, fails);
#    registers / shared memory per kernel go to DIR/resources.tsv and the largest per module and
#    architecture are printed;
#  - .ci/sass-expect lists instructions that must appear in a module's SASS (the only check of
#    inline PTX without a GPU: it proves the device branch of kernels/qa/ptx.cuh is what runs);
#    every module it names must be in the manifest, so a module that silently stopped being
#    built (e.g. the sm_90a probe under a SASS list without sm_90) fails too.
set -euo pipefail
dir=${1:?usage: check-ptx.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${QA_CUOBJDUMP:-}" ]; then
  # shellcheck source=.ci/tools.sh
  source "$here/tools.sh"
  install_tools >/dev/null
fi
expect="$here/sass-expect"
allow="$here/spill-allow"
manifest="$dir/manifest.tsv"
[ -s "$manifest" ] || { echo "no $manifest"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }
resources="$dir/resources.tsv"
printf 'module\tsm\tkernel\tregs\tsmem_B\tstack_B\tlocal_B\n' >"$resources"
printf '%-18s %-7s %7s %8s %9s %s\n' module sm kernels max_regs max_smem_B local+stack
total_kernels=0
while IFS=$'\t' read -r module ptx_arch sass bytes; do
  fatbin="$dir/$module.fatbin"
  [ -f "$fatbin" ] || { fail "$fatbin missing"; continue; }
  [ "$(stat -c %s "$fatbin")" = "$bytes" ] || fail "$module: $bytes bytes in the manifest, $(stat -c %s "$fatbin") on disk"

  # Contents: "ELF file N: x.N.sm_90.cubin" per SASS, "PTX file N: x.N.sm_75.ptx" for compute_75.
  # cuobjdump notes on stderr that an arch-specific module has no PTX; that is expected there.
  "$QA_CUOBJDUMP" -lelf -lptx "$fatbin" >"$work/list" 2>"$work/list.err"
  grep -v "No PTX file found" "$work/list.err" >&2 || true
  have=$(grep -o 'sm_[0-9]*[af]*\.cubin' "$work/list" | sed 's/\.cubin//' | sort -V | paste -sd, -)
  want=$(tr ',' '\n' <<<"$sass" | sort -V | paste -sd, -)
  [ "$have" = "$want" ] || fail "$module: SASS {$have} in the fatbin, the manifest says {$want}"
  if [ "$ptx_arch" = "-" ]; then
    ! grep -q "PTX file" "$work/list" || fail "$module: PTX in the fatbin, the manifest says none"
  else
    ptx_sm="sm_${ptx_arch#compute_}"
    grep -q "PTX file.*\.$ptx_sm\.ptx" "$work/list" || fail "$module: no $ptx_arch PTX in the fatbin"
  fi

  # Resource usage: "arch = sm_90" starts a cubin; "Function K:" then "REG:r STACK:s SHARED:m LOCAL:l".
  "$QA_CUOBJDUMP" -res-usage "$fatbin" >"$work/res"
  awk -v mod="$module" -v out="$resources" -v allowfile="$allow" '
    BEGIN {
      # spill-allow lines: module  kernel-glob  sm-glob  max local+stack bytes  (# comments)
      while ((getline line < allowfile) > 0) {
        if (line ~ /^[ \t]*(#|$)/) continue
        split(line, f, /[ \t]+/)
        if (f[1] != mod) continue
        na++; am[na] = f[2]; as[na] = f[3]; ab[na] = f[4]
      }
    }
    function glob_re(g) { gsub(/\*/, ".*", g); return "^" g "$" }
    function allowed(k, s, bytes,   i) {
      for (i = 1; i <= na; i++) if (k ~ glob_re(am[i]) && s ~ glob_re(as[i]) && bytes <= ab[i]) return 1
      return 0
    }
    /^arch = / { sm = $3 }
    /^ Function / { k = $2; sub(/:$/, "", k) }
    /REG:[0-9]+ STACK:/ {
      for (i = 1; i <= NF; i++) { split($i, kv, ":"); r[kv[1]] = kv[2] }
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mod, sm, k, r["REG"], r["SHARED"], r["STACK"], r["LOCAL"] >> out
      n[sm]++; if (r["REG"] > regs[sm]) regs[sm] = r["REG"]; if (r["SHARED"] > smem[sm]) smem[sm] = r["SHARED"]
      lb = r["STACK"] + r["LOCAL"]
      if (lb > 0 && allowed(k, sm, lb)) print "  allowed by spill-allow: " mod " " sm " " k " STACK " r["STACK"] " LOCAL " r["LOCAL"]
      else if (lb > 0) { bad[sm] += lb; print "FAIL: " mod " " sm " " k " uses local memory / stack (spills?): STACK " r["STACK"] " LOCAL " r["LOCAL"] }
    }
    END {
      for (s in n) printf "%-18s %-7s %7d %8d %9d %d\n", mod, s, n[s], regs[s], smem[s], bad[s] + 0
      for (s in bad) if (bad[s] > 0) exit 1
    }' "$work/res" | sort || failed=1
  total_kernels=$((total_kernels + $(grep -c '^ Function ' "$work/res")))

  if [ -f "$expect" ]; then
    while read -r emod esm instrs; do
      [ -n "$emod" ] && [ "${emod:0:1}" != "#" ] || continue
      [ "$emod" = "$module" ] || continue
      "$QA_CUOBJDUMP" -sass -arch "$esm" "$fatbin" >"$work/sass" 2>/dev/null || true
      for ins in $instrs; do
        n=$(grep -c "$ins" "$work/sass" || true)
        if [ "$n" -gt 0 ]; then echo "  SASS $module $esm: $ins x$n"; else fail "no $ins in the $esm SASS of $module"; fi
      done
    done <"$expect"
  fi
done <"$manifest"
if [ -f "$expect" ]; then
  for emod in $(awk '$1 !~ /^#/ && NF { print $1 }' "$expect" | sort -u); do
    awk -F'\t' -v m="$emod" '$1 == m { found = 1 } END { exit !found }' "$manifest" || fail "$emod: named in $(basename "$expect") but not in the manifest (not built?)"
  done
fi
echo "$total_kernels kernel x architecture entries checked; per-kernel table: $resources"
[ "$failed" = 0 ] && echo "kernel image check: OK" || { echo "kernel image check: FAILED"; exit 1; }
