#!/usr/bin/env bash
# Installs steep's build and test dependencies from Debian's own packages (Debian 12 "bookworm").
# Idempotent: packages already present are not reinstalled, so the quick-start commands can call it
# every time. No PyPI, no downloads outside apt (README: quick start). `--peers` adds libtorch-dev,
# which only the in-process PyTorch benchmark uses.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libxtensor-dev libxsimd-dev xtl-dev nlohmann-json3-dev # containers, SIMD, json (steep-golden manifests)
  libtbb-dev                                             # the parallel work list
  libboost-dev                                           # Boost.Hana: compile-time analysis of rules
  catch2                                                 # Catch2 v2 (bookworm main)
  libxtensor-blas-dev libopenblas-dev                    # BLAS/LAPACK for matrix phases
  libbenchmark-dev libcli11-dev                          # bench/ harness and command lines
  zlib1g-dev                                             # gzip'd IDX files (MNIST format)
  dataset-fashion-mnist                                  # the main job's dataset (README)
  gnuplot-nox                                            # the main job's margin plots (PNG, SVG)
  clang-19 libclang-rt-19-dev                            # libFuzzer targets (scripts/check.sh)
  openmpi-bin libopenmpi-dev                             # dist/: MPI collectives, mpirun for its tests (optional)
  pybind11-dev python3-dev libdlpack-dev                 # steep._C, the Python module (python/README.md)
  python3-numpy python3-torch                            # its tests: steep.torch against torch.optim, NumPy arrays
)
# --peers: also libtorch-dev, for steep-bench-torch (torch.optim.Adam in the same process as
# steep); not needed to build or test. The Python module needs no libtorch: it takes tensors
# through DLPack.
if [ "${1:-}" = "--peers" ]; then
  packages+=(libtorch-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
