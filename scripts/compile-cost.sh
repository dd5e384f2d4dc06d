#!/usr/bin/env bash
# Compile-time cost of steep (docs/compile-time.md): wall time and peak memory of g++ on
#   one_rule   a TU that builds and steps one optimizer (Adam, float), with <steep/steep.hpp>;
#   two_rules  the same plus Lion: the added cost of one more rule;
#   one_rule_lean, two_rules_lean  the same with only what they use: <steep/engine.hpp> (no
#              checkpoints) and the rule headers (<steep/rules/adam.hpp>, <steep/rules/lion.hpp>);
#   adam_muon_lean  one_rule_lean plus Muon (<steep/rules/muon.hpp>): the added cost of a rule
#              with a matrix stage;
#   catalogue  every rule of the catalogue (dsl/), plain and routed, stepped once (float);
#   catalogue_lean  the same with <steep/engine.hpp> and <steep/rules.hpp> only;
#   catalogue_23  the 23 rules the catalogue had when its 20 s goal was set (no bf16 Adam,
#              Adam-mini, stacked Muon, NorMuon, AdaMuon, Scion or the paper's rules);
#   pch        building a precompiled <steep/steep.hpp> (what steep::precompiled does once per
#              CMake target, docs/compile-time.md);
#   one_rule_pch, two_rules_pch  one_rule_lean and two_rules_lean with that precompiled header;
#   one_rule_umbrella_pch  one_rule with it: a newcomer's unit through steep::precompiled;
#   first_rule examples/my_first_rule.cpp (a rule, its training, margins and timing: the unit a
#              newcomer copies), as a plain unit;
#   pch_train, first_rule_pch  the precompiled header its target builds (<steep/steep.hpp> and
#              <steep/train.hpp>), and the example compiled with it (an edit of the rule);
#   syntax     -fsyntax-only on <steep/rules/sgd.hpp> alone (what a rule header costs to parse).
# With steep::compiled (the catalogue compiled once into a library, steep/compiled/instance.hpp):
#   one_rule_compiled, two_rules_compiled, adam_muon_compiled  the lean units, including
#              <steep/compiled/adam.hpp> (lion.hpp, muon.hpp) instead of the rule headers;
#   catalogue_compiled  the catalogue unit as a target linking steep::compiled compiles it
#              (STEEP_COMPILED, <steep/steep.hpp>); each of these checks that its rules are in
#              the library (has_instance), so none is compiled in the unit;
#   library    the library itself: each of its sources (one per header under steep/compiled/)
#              compiled once, one at a time; the JSON has each source's time and their sum (a
#              -j2 build takes about half of it). Once per build, not per unit; RUNS does not apply.
# Same flags as steep's own targets (-O3 -march=native -std=c++20). One compile at a time; the
# median of RUNS (default 3) runs. Writes bench/results/compile-cost-<date>.json (or $OUT).
#
#   scripts/compile-cost.sh
#   RUNS=5 scripts/compile-cost.sh
#   CASES="pch one_rule_pch" scripts/compile-cost.sh     # some cases (pch before the *_pch ones)
#   AGAINST=8d57e87 CASES="catalogue one_rule_lean" scripts/compile-cost.sh
#
# With AGAINST=<commit>, each case is compiled from this tree and from that commit's headers side
# by side, one compile per core, RUNS times, and the JSON adds the commit's median and the median
# of the per-run ratios (this tree / commit). A compile's time drifts by 10-20% within an hour on
# these shared VMs, and tables from different VMs differ by 1.5-1.8x (docs/compile-time.md), so
# only compiles that run together compare; a ratio is what to report (docs/compile-time.md).
# Not for the pch cases. Every JSON records the CPU, cores, memory and load average.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(-std=c++20 -O3 -DNDEBUG -march=native -Iinclude -Idsl)
against=${AGAINST:-}
if [ -n "$against" ]; then
  mkdir "$work/against"
  git archive "$against" include dsl | tar -x -C "$work/against"
  against_flags=(-std=c++20 -O3 -DNDEBUG -march=native -I"$work/against/include" -I"$work/against/dsl")
fi

tu() { # name, then the rule expressions (headers: $includes, default <steep/steep.hpp>)
  local name=$1
  shift
  {
    [ -n "${compiled:-}" ] && echo '#define STEEP_COMPILED'
    for h in ${includes:-steep/steep.hpp}; do echo "#include <$h>"; done
    echo 'template <class Rule> void run(Rule r) { steep::param_store<float> s({{"W", {8, 4}}, {"b", {4}}}); steep::optimizer o(r, s); o.step(); }'
    [ -n "${compiled:-}" ] && echo 'template <class Rule> void check(Rule) { static_assert(steep::compiled::has_instance<Rule, float>); }'
    echo 'int main() {'
    for r in "$@"; do echo "  run($r);"; done
    if [ -n "${compiled:-}" ]; then for r in "$@"; do echo "  check($r);"; done; fi
    echo '}'
  } >"$work/$name.cpp"
}

tu one_rule 'steep::rules::adam(1e-3f)'
tu two_rules 'steep::rules::adam(1e-3f)' 'steep::rules::lion(1e-4f)'
includes="steep/engine.hpp steep/rules/adam.hpp" tu one_rule_lean 'steep::rules::adam(1e-3f)'
includes="steep/engine.hpp steep/rules/adam.hpp steep/rules/lion.hpp" \
  tu two_rules_lean 'steep::rules::adam(1e-3f)' 'steep::rules::lion(1e-4f)'
includes="steep/engine.hpp steep/rules/adam.hpp steep/rules/muon.hpp" \
  tu adam_muon_lean 'steep::rules::adam(1e-3f)' 'steep::rules::muon(0.02)'
catalogue=('steep::rules::sgd(0.1f)' 'steep::rules::momentum(0.1f, 0.9)' 'steep::rules::nesterov(0.1f, 0.9)'
  'steep::rules::adam(1e-3f)' 'steep::rules::adam_eps0(1e-3f)' 'steep::rules::amsgrad(1e-3f)'
  'steep::rules::adamw(1e-3f)' 'steep::rules::adagrad(1e-2f)' 'steep::rules::rmsprop(1e-3f)'
  'steep::rules::lion(1e-4f)' 'steep::rules::signum(1e-3f)' 'steep::rules::adam_optax(1e-3f)'
  'steep::rules::nadamw_optax(1e-3f)' 'steep::rules::normalized_gd(1e-2f)'
  'steep::rules::normalized_gd_per_block(1e-2f)' 'steep::rules::adam_bf16(1e-3f)'
  'steep::rules::adam_mini(1e-3f)' 'steep::rules::adam_mini_sliced(1e-3f, 1, 4)'
  'steep::rules::muon(0.02)' 'steep::rules::muon(0.02, 0.1, 0.95, steep::norms::polar_express())'
  'steep::rules::muon_exact(0.02)' 'steep::rules::muon_plain_rms(0.02)' 'steep::rules::muon_optax(0.02)'
  'steep::rules::muon_stacked(0.02, 2, 4)' 'steep::rules::normuon(0.02)' 'steep::rules::normuon_stacked(0.02, 2, 4)'
  'steep::rules::adamuon(0.02)' 'steep::rules::muon_adam()' 'steep::rules::muon_signum()'
  'steep::rules::muon_optax_full(0.02)' 'steep::rules::scion(1e-3)' 'steep::rules::scion_colnorm(1e-3)'
  'steep::rules::scion_rownorm(1e-3)' 'steep::rules::momentum_gd(0.1)' 'steep::rules::adam_paper(1e-3)'
  'steep::rules::spectral_msd(0.02)' 'steep::rules::muon_paper(0.02)' 'steep::rules::muon_signum_paper(0.02, 0.01)'
  'steep::rules::muon_adam_paper(0.02, 0.01)')
tu catalogue "${catalogue[@]}"
later='adam_bf16|adam_mini|adam_mini_sliced|muon_stacked|normuon|normuon_stacked|adamuon|scion|scion_colnorm|scion_rownorm|momentum_gd|adam_paper|spectral_msd|muon_paper|muon_signum_paper|muon_adam_paper'
catalogue_23=()
for r in "${catalogue[@]}"; do
  [[ $r =~ ^steep::rules::($later)\( ]] || catalogue_23+=("$r")
done
[ "${#catalogue_23[@]}" = 23 ] || { echo "compile-cost.sh: catalogue_23 has ${#catalogue_23[@]} rules" >&2; exit 1; }
tu catalogue_23 "${catalogue_23[@]}"
includes="steep/engine.hpp steep/rules.hpp" tu catalogue_lean "${catalogue[@]}"
compiled=1 includes="steep/compiled/adam.hpp" tu one_rule_compiled 'steep::rules::adam(1e-3f)'
compiled=1 includes="steep/compiled/adam.hpp steep/compiled/lion.hpp" \
  tu two_rules_compiled 'steep::rules::adam(1e-3f)' 'steep::rules::lion(1e-4f)'
compiled=1 includes="steep/compiled/adam.hpp steep/compiled/muon.hpp" \
  tu adam_muon_compiled 'steep::rules::adam(1e-3f)' 'steep::rules::muon(0.02)'
compiled=1 tu catalogue_compiled "${catalogue[@]}"
# steep::compiled's sources, as CMakeLists.txt generates them.
library_sources=()
for h in include/steep/compiled/*.hpp; do
  family=$(basename "$h" .hpp)
  [ "$family" = instance ] && continue
  printf '#define STEEP_COMPILED_DEFINE\n#include <steep/compiled/%s.hpp>\n' "$family" >"$work/library_$family.cpp"
  library_sources+=("$family")
done
echo '#include <steep/rules/sgd.hpp>' >"$work/syntax.cpp"
echo '#include <steep/steep.hpp>' >"$work/steep_pch.hpp"
printf '#include <steep/steep.hpp>\n#include <steep/train.hpp>\n' >"$work/train_pch.hpp"
cp examples/my_first_rule.cpp "$work/first_rule.cpp"

measure() { # source, extra flags... (prints the median seconds and peak KB)
  local f=$1
  shift
  for _ in $(seq "$runs"); do
    if ! /usr/bin/time -f "%e %M" -o "$work/time" g++ "${flags[@]}" "$@" "$f" >"$work/log" 2>&1; then
      echo "compile-cost.sh: $f does not compile:" >&2
      head -20 "$work/log" >&2
      exit 1
    fi
    cat "$work/time"
  done | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2) { print $1, $2 }'
}

# Side by side (AGAINST): prints "median_seconds median_kb against_median_seconds median_ratio ratios".
measure_pair() {
  local f=$1
  shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/time" g++ "${flags[@]}" "$@" "$f" -o "$work/out.o" >"$work/log" 2>&1 &
    local pid=$!
    /usr/bin/time -f "%e" -o "$work/time_against" g++ "${against_flags[@]}" "$@" "$f" -o "$work/out_against.o" \
      >"$work/log_against" 2>&1 || { echo "compile-cost.sh: $f does not compile at $against" >&2; exit 1; }
    wait "$pid" || { echo "compile-cost.sh: $f does not compile:" >&2; head -20 "$work/log" >&2; exit 1; }
    echo "$(cat "$work/time") $(cat "$work/time_against")"
  done | awk '{ t[NR] = $1; m[NR] = $2; a[NR] = $3; r[NR] = $1 / $3 }
    function med(x, n,   i, j, s, y) { for (i = 1; i <= n; i++) y[i] = x[i];
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (y[j] < y[i]) { s = y[i]; y[i] = y[j]; y[j] = s }
      return y[int((n + 1) / 2)] }
    END { rs = ""; for (i = 1; i <= NR; i++) rs = rs (i > 1 ? ", " : "") sprintf("%.3f", r[i]);
      printf "%s %s %s %.3f [%s]\n", med(t, NR), med(m, NR), med(a, NR), med(r, NR), rs }'
}

out=${OUT:-bench/results/compile-cost-$(date -u +%Y-%m-%d).json}
echo "{" >"$out"
first=1
pch_use=(-include "$work/steep_pch.hpp" -Werror=invalid-pch -c -o "$work/out.o")
train_pch_use=(-include "$work/train_pch.hpp" -Werror=invalid-pch -c -o "$work/out.o")
all_cases="one_rule two_rules one_rule_lean two_rules_lean adam_muon_lean pch one_rule_pch two_rules_pch one_rule_umbrella_pch first_rule pch_train first_rule_pch catalogue catalogue_lean catalogue_23 syntax one_rule_compiled two_rules_compiled adam_muon_compiled catalogue_compiled library"
for case in ${CASES:-$all_cases}; do
  if [ "$case" = library ]; then # each source once; the sum, the largest memory, and each time
    [ -z "$against" ] || { echo "compile-cost.sh: AGAINST does not take library" >&2 && exit 1; }
    total=0 peak=0 each=""
    for family in "${library_sources[@]}"; do
      /usr/bin/time -f "%e %M" -o "$work/time" g++ "${flags[@]}" -c "$work/library_$family.cpp" -o "$work/out.o" \
        >"$work/log" 2>&1 || { echo "compile-cost.sh: steep::compiled's $family does not compile:" >&2; head -20 "$work/log" >&2; exit 1; }
      read -r t k <"$work/time"
      total=$(awk -v a="$total" -v b="$t" 'BEGIN { print a + b }')
      [ "$k" -gt "$peak" ] && peak=$k
      each="$each${each:+, }\"$family\": $t"
    done
    printf '%-10s %7.1f s %8.0f MB   (the sum over %d sources, one at a time)\n' library "$total" "$((peak / 1024))" \
      "${#library_sources[@]}"
    [ $first = 1 ] || echo "," >>"$out"
    first=0
    printf '  "library": {"seconds": %s, "peak_mb": %d, "sources": {%s}}' "$total" "$((peak / 1024))" "$each" >>"$out"
    continue
  fi
  case $case in
    pch) args=("$work/steep_pch.hpp" -x c++-header -o "$work/steep_pch.hpp.gch") ;;
    one_rule_pch) args=("$work/one_rule_lean.cpp" "${pch_use[@]}") ;;
    two_rules_pch) args=("$work/two_rules_lean.cpp" "${pch_use[@]}") ;;
    one_rule_umbrella_pch) args=("$work/one_rule.cpp" "${pch_use[@]}") ;;
    pch_train) args=("$work/train_pch.hpp" -x c++-header -o "$work/train_pch.hpp.gch") ;;
    first_rule_pch) args=("$work/first_rule.cpp" "${train_pch_use[@]}") ;;
    syntax) args=("$work/syntax.cpp" -fsyntax-only) ;;
    *) args=("$work/$case.cpp" -c -o "$work/out.o") ;;
  esac
  [ $first = 1 ] || echo "," >>"$out"
  first=0
  if [ -n "$against" ]; then
    case $case in *pch* | *compiled*) echo "compile-cost.sh: AGAINST does not take $case" >&2 && exit 1 ;; esac
    [ "$case" = syntax ] && only=-fsyntax-only || only=-c
    read -r secs kb old_secs ratio ratios < <(measure_pair "$work/$case.cpp" "$only")
    printf '%-10s %7.1f s %8.0f MB   %s: %7.1f s   ratio %s %s\n' "$case" "$secs" "$((kb / 1024))" "$against" \
      "$old_secs" "$ratio" "$ratios"
    printf '  "%s": {"seconds": %s, "peak_mb": %d, "against_seconds": %s, "ratio": %s, "ratios": %s}' \
      "$case" "$secs" "$((kb / 1024))" "$old_secs" "$ratio" "$ratios" >>"$out"
    continue
  fi
  read -r secs kb < <(measure "${args[@]}")
  printf '%-10s %7.1f s %8.0f MB\n' "$case" "$secs" "$((kb / 1024))"
  printf '  "%s": {"seconds": %s, "peak_mb": %d}' "$case" "$secs" "$((kb / 1024))" >>"$out"
done
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
printf '\n  ,"rules_in_catalogue": %d, "compiler": "%s", "flags": "%s", "runs": %d, "against": "%s",\n' \
  "${#catalogue[@]}" "$(g++ --version | head -1)" "${flags[*]}" "$runs" "$against" >>"$out"
printf '  "machine": {"cpu": "%s", "cores": %d, "memory_kb": %d, "load_average_1min": %s}\n}\n' "$cpu" "$(nproc)" \
  "$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)" "$(cut -d' ' -f1 /proc/loadavg)" >>"$out"
echo "wrote $out"
