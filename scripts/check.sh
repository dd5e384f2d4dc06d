#!/usr/bin/env bash
# The robustness checks (README "Robustness checks"), run by CI after scripts/test.sh:
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer on the unit tests (build-asan/);
#   tsan  ThreadSanitizer on the threaded unit tests, built with the std::thread executor
#         (kernel/executor.hpp: Debian's TBB is not instrumented, so TSan would report every
#         TBB hand-off; this way its verdict is about steep's own sharing) (build-tsan/);
#   fuzz  libFuzzer (clang 19: steep needs C++20's floating-point template arguments, which
#         clang 14 lacks) on the checkpoint loader and the golden-manifest reader: a fixed
#         number of runs from the seed corpus in tests/fuzz/corpus (build-fuzz/).
#
#   scripts/check.sh              # all three
#   scripts/check.sh fuzz         # some: asan, tsan, fuzz
#   FUZZ_RUNS=200000 scripts/check.sh fuzz
#
# Any sanitizer report or fuzzer finding fails the script (halt_on_error, -fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(asan tsan fuzz)
fuzz_runs=${FUZZ_RUNS:-100000}
unit_tests=(test_equivalence test_dsl test_guard test_checkpoint test_muon)
threaded_tests=(test_equivalence test_guard)
started=$(date +%s)
stamp() { echo "check: $1 ($(($(date +%s) - started)) s)"; }

build_tests() { # dir flags tests...
  local dir=$1 flags=$2
  shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DSTEEP_BUILD_BENCH=OFF \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g -fno-omit-frame-pointer $flags" >/dev/null
  cmake --build "$dir" -j"$jobs" --target "$@"
}

for part in "${parts[@]}"; do
  case $part in
  asan)
    build_tests build-asan "-fsanitize=address,undefined -fno-sanitize-recover=all" "${unit_tests[@]}"
    for t in "${unit_tests[@]}"; do
      ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "build-asan/tests/$t"
    done
    stamp "AddressSanitizer + UndefinedBehaviorSanitizer: ${unit_tests[*]} clean"
    ;;
  tsan)
    build_tests build-tsan "-fsanitize=thread -DSTEEP_STD_THREAD_EXECUTOR" "${threaded_tests[@]}"
    for t in "${threaded_tests[@]}"; do
      # OpenBLAS's own pthreads are not instrumented either: one BLAS thread (steep's matrix
      # phase then runs its blocks on the executor's threads, which TSan does see).
      OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 "build-tsan/tests/$t"
    done
    stamp "ThreadSanitizer: ${threaded_tests[*]} clean"
    ;;
  fuzz)
    mkdir -p build-fuzz
    flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude -Idsl -Itools)
    libs=(-lopenblas -ltbb -lz)
    clang++-19 "${flags[@]}" tests/fuzz/fuzz_checkpoint.cpp -o build-fuzz/fuzz-checkpoint "${libs[@]}" &
    clang++-19 "${flags[@]}" tests/fuzz/fuzz_manifest.cpp -o build-fuzz/fuzz-manifest "${libs[@]}"
    wait %1
    for target in checkpoint manifest; do
      rm -rf "build-fuzz/corpus-$target" && mkdir -p "build-fuzz/corpus-$target"
      # New inputs go to build-fuzz/corpus-*; the repo's seeds are only read.
      "build-fuzz/fuzz-$target" "build-fuzz/corpus-$target" "tests/fuzz/corpus/$target" \
        -runs="$fuzz_runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 2>&1 | tail -n 3
    done
    stamp "libFuzzer: checkpoint and manifest, $fuzz_runs runs each, no finding"
    ;;
  *)
    echo "check: unknown part '$part' (asan, tsan, fuzz)" >&2
    exit 2
    ;;
  esac
done
