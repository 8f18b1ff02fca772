#!/usr/bin/env bash
# Tests of .ci/tools.sh's libclang probe against made-up file listings: the probe must agree with
# what clang-sys would load (see libclang_loadable), in particular a machine with only
# libclang-cpp.so.14 has NO loadable libclang (the case that broke a fresh CI machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=.ci/tools.sh
source "$here/tools.sh"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
passed=0 failed=0
check() { # check EXPECTED DESCRIPTION FILE...
  local expected=$1 what=$2 got
  shift 2
  rm -rf "${root:?}"/*
  for f in "$@"; do mkdir -p "$root/$(dirname "$f")"; : >"$root/$f"; done
  if QA_PROBE_ROOT=$root LIBCLANG_PATH='' LD_LIBRARY_PATH='' libclang_loadable; then got=yes; else got=no; fi
  if [ "$got" = "$expected" ]; then echo "ok   $what: $got"; passed=$((passed + 1)); else echo "FAIL $what: probe says $got, clang-sys: $expected"; failed=$((failed + 1)); fi
}
unset LIBCLANG_PATH
check no  "libclang-cpp only (Debian clang-14 runtime)" usr/lib/x86_64-linux-gnu/libclang-cpp.so.14
check no  "libclang-cpp.so symlink only" usr/lib/llvm-14/lib/libclang-cpp.so
check no  "nothing" usr/lib/x86_64-linux-gnu/libc.so.6
check yes "libclang1-14 (libclang-14.so.1)" usr/lib/x86_64-linux-gnu/libclang-14.so.1
check yes "libclang-dev (llvm-14/lib/libclang.so)" usr/lib/llvm-14/lib/libclang.so
check yes "versioned libclang.so.14" usr/lib/x86_64-linux-gnu/libclang.so.14
check yes "/usr/local/llvm build" usr/local/llvm17/lib/libclang.so
check no  "too deep for the globs" usr/lib/a/b/c/libclang.so
# LIBCLANG_PATH alone is searched when set.
rm -rf "${root:?}"/*; mkdir -p "$root/custom" "$root/usr/lib"; : >"$root/usr/lib/libclang.so"
if QA_PROBE_ROOT=$root LIBCLANG_PATH="$root/custom" libclang_loadable; then echo "FAIL LIBCLANG_PATH without a libclang: probe says yes"; failed=$((failed + 1)); else echo "ok   LIBCLANG_PATH without a libclang: no"; passed=$((passed + 1)); fi
: >"$root/custom/libclang-15.so"
if QA_PROBE_ROOT=$root LIBCLANG_PATH="$root/custom" libclang_loadable; then echo "ok   LIBCLANG_PATH with libclang-15.so: yes"; passed=$((passed + 1)); else echo "FAIL LIBCLANG_PATH with libclang-15.so: probe says no"; failed=$((failed + 1)); fi
echo "tools probe: $passed passed, $failed failed"
[ "$failed" = 0 ]
