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
  if ! ldconfig -p | grep 'libclang.*\.so' >/dev/null; then
    echo "installing libclang (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libclang-dev >/dev/null
  fi
}
