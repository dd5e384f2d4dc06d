#!/usr/bin/env bash
# Sweeps eta0 per optimizer for the main job (docs/main-job.md): the paper tunes eta0 per
# optimizer, and so does steep's default run. For each optimizer and each eta0 it trains with
# `examples/implicit_bias --only OPT` and prints the final margin in the optimizer's own (implied)
# norm; the eta0 with the largest own-norm margin is the one to use.
#
#   scripts/tune-eta.sh "gd:1,3,10 signum:0.01,0.03 muon:0.3,1" --steps 10000 --threads 1
#
# Arguments after the first are passed to the example (preset, steps, dataset, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
sweep="$1"
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for spec in $sweep; do
  opt=${spec%%:*}
  flag=$opt
  IFS=, read -r -a etas <<<"${spec#*:}"
  for eta in "${etas[@]}"; do
    ./build/examples/implicit_bias --only "$opt" "--eta-${flag//_/-}" "$eta" --quiet --json "$tmp/r.json" "$@" >/dev/null
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
for name, o in j["optimizers"].items():
    own = o["implied"]
    cols = " ".join("%s %.3e" % (k, o[k]) for k in ("l2", "linf", "spectral", "hybrid"))
    print("%-12s eta0 %8s  own %-9s %.6e   %s  log10 loss %.1f" % (name, sys.argv[2], own, o.get(own, float("nan")), cols, o["log10_loss"]))
' "$tmp/r.json" "$eta"
  done
done
