# Installs the pinned CUDA compiler set and libclang, idempotently, outside the repository.
# Source it, then call install_tools; it exports QA_NVCC, QA_PTXAS, QA_CUOBJDUMP.
# Pins (see README "Toolchain"): nvcc 13.0 (PTX ISA 9.0, loads on driver >= 580); cuobjdump 13.2
# (no 13.0 on PyPI; 13.2 reads 13.0 cubins).

QA_TOOLS="${QUIETATTN_TOOLS:-$HOME/.cache/quietattn}"

install_tools() {
  local nvcc_venv="$QA_TOOLS/nvcc-13.0" sass_venv="$QA_TOOLS/sass-13.2"
  local site
  if [ ! -f "$nvcc_venv/.ok" ]; then
    echo "installing nvcc 13.0 into $nvcc_venv"
    rm -rf "$nvcc_venv"
    python3 -m venv "$nvcc_venv"
    "$nvcc_venv/bin/pip" install -q --disable-pip-version-check \
      "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" \
      "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
    touch "$nvcc_venv/.ok"
  fi
  if [ ! -f "$sass_venv/.ok" ]; then
    echo "installing cuobjdump/nvdisasm 13.2 into $sass_venv"
    rm -rf "$sass_venv"
    python3 -m venv "$sass_venv"
    "$sass_venv/bin/pip" install -q --disable-pip-version-check \
      "nvidia-cuda-cuobjdump==13.2.*" "nvidia-cuda-nvdisasm==13.2.*"
    touch "$sass_venv/.ok"
  fi
  site=$(echo "$nvcc_venv"/lib/python3*/site-packages/nvidia/cu13/bin)
  export QA_NVCC="$site/nvcc" QA_PTXAS="$site/ptxas"
  site=$(echo "$sass_venv"/lib/python3*/site-packages/nvidia/cu13/bin)
  export QA_CUOBJDUMP="$site/cuobjdump"
  "$QA_NVCC" --version | tail -1

  # bindgen needs libclang for the ABI drift test.
  if ! libclang_loadable; then
    echo "installing libclang (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libclang-dev >/dev/null
    libclang_loadable || { echo "libclang-dev installed but clang-sys would still find no libclang"; return 1; }
  fi
}

# True when clang-sys (bindgen's loader, `runtime` feature) would find a libclang to dlopen.
# It mirrors clang-sys 1.x's search: file names libclang.so, libclang-*.so, libclang.so.*,
# libclang-*.so.* but never a name containing "-cpp." (libclang-cpp.so.14 is the C++ library,
# not the C API bindgen loads — an `ldconfig -p | grep libclang` probe mistakes it for one);
# looked for in $LIBCLANG_PATH alone when set, else in `llvm-config --prefix`/{bin,lib,lib64},
# $LD_LIBRARY_PATH and the directory globs below. QA_PROBE_ROOT prefixes every fixed
# directory, so .ci/test-tools.sh can run the probe against a made-up file listing.
libclang_loadable() {
  local root="${QA_PROBE_ROOT:-}" dirs=() d f name prefix
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    if [ -f "$LIBCLANG_PATH" ]; then dirs=("$(dirname "$LIBCLANG_PATH")"); else dirs=("$LIBCLANG_PATH"); fi
  else
    if [ -z "$root" ] && prefix=$(llvm-config --prefix 2>/dev/null); then
      dirs+=("$prefix/bin" "$prefix/lib" "$prefix/lib64")
    fi
    local IFS=:
    for d in ${LD_LIBRARY_PATH:-}; do dirs+=("$d"); done
    unset IFS
    shopt -s nullglob
    for d in "$root"/usr/local/llvm*/lib* "$root"/usr/local/lib*/*/* "$root"/usr/local/lib*/* \
             "$root"/usr/local/lib* "$root"/usr/lib*/*/* "$root"/usr/lib*/* "$root"/usr/lib*; do
      dirs+=("$d")
    done
    shopt -u nullglob
  fi
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/libclang*; do
      name=${f##*/}
      case "$name" in
        *-cpp.*) continue ;;
        libclang.so | libclang-*.so | libclang.so.* | libclang-*.so.*) [ -e "$f" ] && return 0 ;;
      esac
    done
  done
  return 1
}
