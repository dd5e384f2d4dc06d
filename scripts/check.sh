#!/usr/bin/env bash
# The robustness checks (docs/robustness.md, "Robustness checks"), run by CI after scripts/test.sh:
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer on the unit tests (build-asan/), with
#         tails unmasked so that ASan checks them, and a planted use-after-free it must report;
#   tsan  ThreadSanitizer on the threaded unit tests, built with the std::thread executor
#         (kernel/executor.hpp: Debian's TBB is not instrumented, so TSan would report every
#         TBB hand-off; this way its verdict is about steep's own sharing) (build-tsan/);
#   fuzz  libFuzzer (clang 19: steep needs C++20's floating-point template arguments, which
#         clang 14 lacks) on the checkpoint loader and the golden-manifest reader: a fixed
#         number of runs from the seed corpus in tests/fuzz/corpus (build-fuzz/).
#
#   scripts/check.sh              # all three, CI's scope (~12 min on 2 cores)
#   scripts/check.sh fuzz         # some: asan, tsan, fuzz
#   scripts/check.sh --full       # every unit test under the sanitizers (~35 min on 2 cores)
#   FUZZ_RUNS=200000 scripts/check.sh fuzz
#
# CI's scope keeps the run within its budget: under ASan + UBSan the checkpoint tests (the
# loader, every refusal, a killed save, the bit-flip sweep) and the equivalence tests (every rule on unaligned
# external buffers, 1, 2 and 8 threads); under TSan the equivalence tests. --full adds the DSL,
# guard and Muon tests to ASan and the guard tests to TSan.
#
# Any sanitizer report or fuzzer finding fails the script (halt_on_error, -fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
scope=ci
parts=()
for a in "$@"; do
  if [ "$a" = --full ]; then scope=full; else parts+=("$a"); fi
done
[ ${#parts[@]} -eq 0 ] && parts=(asan tsan fuzz)
fuzz_runs=${FUZZ_RUNS:-100000}
# The targets steep_{ci,full}_{sanitized,threaded}_tests (tests/CMakeLists.txt) build these.
if [ "$scope" = full ]; then
  unit_tests=(test_equivalence test_checkpoint test_checkpoint_integrity test_dsl test_guard test_muon)
  threaded_tests=(test_equivalence test_guard)
else
  unit_tests=(test_equivalence test_checkpoint test_checkpoint_integrity)
  threaded_tests=(test_equivalence)
fi
started=$(date +%s)
stamp() { echo "check: $1 ($(($(date +%s) - started)) s)"; }

build_tests() { # dir flags target (one target: make builds its dependencies in parallel)
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=Debug -DSTEEP_BUILD_BENCH=OFF \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g -fno-omit-frame-pointer $2" >/dev/null
  cmake --build "$1" -j"$jobs" --target "$3"
}

for part in "${parts[@]}"; do
  case $part in
  asan)
    # STEEP_UNMASKED_TAILS: ASan does not check AVX-512's masked loads and stores, which are
    # all a block under one SIMD batch gets; this build moves a tail's values through ordinary
    # (checked) accesses instead (kernel/simd.hpp). The unsanitized tests run the masked ones.
    asan_flags="-fsanitize=address,undefined -fno-sanitize-recover=all -DSTEEP_UNMASKED_TAILS"
    build_tests build-asan "$asan_flags" "steep_${scope}_sanitized_tests"
    for t in "${unit_tests[@]}"; do
      ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "build-asan/tests/$t"
    done
    # The canary: a use-after-free in a block's tail that ASan must report (exit code 66).
    # shellcheck disable=SC2086
    g++ -std=c++20 -O1 -g -march=native $asan_flags -Iinclude -Idsl tests/sanitizers/tail_canary.cpp \
      -o build-asan/tail-canary -ltbb -lopenblas
    rc=0
    ASAN_OPTIONS=exitcode=66 build-asan/tail-canary >build-asan/tail-canary.log 2>&1 || rc=$?
    if [ "$rc" -ne 66 ] || ! grep -q heap-use-after-free build-asan/tail-canary.log; then
      echo "check: AddressSanitizer missed the use-after-free in a tail (tests/sanitizers/tail_canary.cpp, exit $rc)" >&2
      exit 1
    fi
    stamp "AddressSanitizer + UndefinedBehaviorSanitizer: ${unit_tests[*]} clean (unmasked tails); the planted use-after-free was reported"
    ;;
  tsan)
    build_tests build-tsan "-fsanitize=thread -DSTEEP_STD_THREAD_EXECUTOR" "steep_${scope}_threaded_tests"
    for t in "${threaded_tests[@]}"; do
      # OpenBLAS's own pthreads are not instrumented either: one BLAS thread (steep's matrix
      # phase then runs its blocks on the executor's threads, which TSan does see).
      OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 "build-tsan/tests/$t"
    done
    # The canary: a planted race TSan must report (exit code 66), so that "clean" means something.
    g++ -std=c++20 -O1 -g -fsanitize=thread -DSTEEP_STD_THREAD_EXECUTOR -Iinclude \
      tests/sanitizers/race_canary.cpp -o build-tsan/race-canary -ltbb
    rc=0
    TSAN_OPTIONS=exitcode=66 build-tsan/race-canary >/dev/null 2>&1 || rc=$?
    if [ "$rc" -ne 66 ]; then
      echo "check: ThreadSanitizer missed the planted race in tests/sanitizers/race_canary.cpp (exit $rc)" >&2
      exit 1
    fi
    stamp "ThreadSanitizer: ${threaded_tests[*]} clean; the planted race was reported"
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
