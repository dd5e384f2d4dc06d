#!/usr/bin/env bash
# Configures and builds steep into build/ (Release), installing Debian packages first if any is
# missing. Used by run.sh, test.sh and bench.sh; safe to call repeatedly.
#
#   scripts/build.sh                          # every target (tests, benchmarks, tools, examples)
#   scripts/build.sh -DSTEEP_BENCH_TORCH=ON   # options before any --target go to CMake's configure
#   scripts/build.sh --target implicit_bias   # only these targets (and what they need)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
configure=()
targets=()
while [ $# -gt 0 ]; do
  if [ "$1" = --target ]; then
    shift
    targets=("$@")
    break
  fi
  configure+=("$1")
  shift
done
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${configure[@]}" >/dev/null
if [ ${#targets[@]} -gt 0 ]; then
  cmake --build build -j"$jobs" --target "${targets[@]}"
else
  cmake --build build -j"$jobs"
fi
