#!/usr/bin/env bash
# The benchmark suite in one command (docs/benchmarks.md): builds steep, runs steep-bench
# (generated rules vs hand-written loops and the roofline), steep-bench-ns (Newton-Schulz vs SGEMM),
# steep-bench-train (the main job's training step vs DGEMM), steep-bench-dispatch (TBB vs a
# spinning pool on small steps), steep-bench-precond (Shampoo, SOAP and Dion: steps amortized over
# their refresh intervals, eigh vs LAPACK, state bytes) and the PyTorch peers: libtorch's
# Adam interleaved with steep's in one process (steep-bench-torch, where libtorch-dev is
# installed) and torch.optim from Python (python3-torch: Adam, the training step, and Muon on
# steep-bench-ns's shapes, steep.torch.AdamW's whole step against torch.optim.AdamW's, and the
# authors' SOAP, with Shampoo's and Dion's updates written from the authors' code, against
# steep.torch's on steep-bench-precond's shapes); writes
# every JSON, all.json and report.md into one directory.
#
#   scripts/bench.sh                      # bench/results/run-<date>/ (steep-bench grid ~9 min on 2 cores)
#   scripts/bench.sh --quick              # a smoke-sized run (seconds)
#   SIZES=65536,1048576 BIG= THREADS=1,2 scripts/bench.sh   # a part of the grid
#   NS_SHAPES=8x256x256,1024x1024 scripts/bench.sh          # Muon / Newton-Schulz shapes (BxRxC)
#   PRECOND_SHAPES=128x128 scripts/bench.sh                  # Shampoo / SOAP / Dion shapes (default:
#                                                            # a quarter of NS_SHAPES', docs/benchmarks.md)
#
# The elementwise grid: SIZES in float32 and float64 (the guard and bfloat16 variants in float32
# only), then BIG (256M parameters) in float32 for Adam, AdamW, Lion, Signum and momentum with the
# two layouts one after the other, and in float64 for Adam alone (every rule at once needs more
# memory than this 23 GB machine has).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
scripts/install-deps.sh --peers
torch_cmake=()
if dpkg-query -W -f='${Status}' libtorch-dev 2>/dev/null | grep -q "install ok installed"; then
  torch_cmake=(-DSTEEP_BENCH_TORCH=ON)
fi
scripts/build.sh "${torch_cmake[@]}" >/dev/null
dir=bench/results/run-$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$dir"
threads=${THREADS:-1,$(nproc)}
sizes=${SIZES:-50000,65536,1048576,16777216,67108864}
big=${BIG-268435456}
# glibc keeps freed memory, so torch's per-step temporaries do not fault in fresh pages (docs/benchmarks.md).
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
if [ $quick = 1 ]; then
  ./build/bench/steep-bench --quick --out "$dir/steep-float32.json"
  ./build/bench/steep-bench-ns --quick --out "$dir/ns.json"
  ./build/bench/steep-bench-train --quick --out "$dir/train.json"
  ./build/bench/steep-bench-dispatch --sizes 65536 --rounds 2 --gap-us 0,100 --out "$dir/dispatch.json"
  ./build/bench/steep-bench-precond --quick --out "$dir/precond.json"
  torch_args=(--sizes 100003 --tensors 1,200 --threads 1 --rounds 2 --steps 3)
  inproc_args=(--sizes 100003 --threads 1 --rounds 2)
  train_args=(--samples 100 --width 16 --threads 1 --rounds 2 --steps 3)
  muon_args=(--shapes 64x64,6x64x64 --threads 1 --rounds 2 --steps 1)
  python_args=(--sizes 100003 --tensors 1,200 --threads 1 --rounds 2 --steps 3)
  precond_args=(--shapes 32x32,32x96,3x32x32 --threads 1 --rounds 2)
else
  ./build/bench/steep-bench --dtype float32 --sizes "$sizes" --threads "$threads" --out "$dir/steep-float32.json"
  ./build/bench/steep-bench --dtype float64 --guard-max 0 --sizes "$sizes" --threads "$threads" \
    --out "$dir/steep-float64.json"
  if [ -n "$big" ]; then
    big_args=(--sizes "$big" --threads "$threads" --sequential-layouts --rounds 5 --steps-per-round 1 --warmup 1)
    ./build/bench/steep-bench --dtype float32 --rules adam,adamw,lion,signum,momentum "${big_args[@]}" \
      --out "$dir/steep-float32-big.json"
    ./build/bench/steep-bench --dtype float64 --rules adam "${big_args[@]}" --out "$dir/steep-float64-big.json"
  fi
  ns_shapes=${NS_SHAPES:-1024x1024,1024x4096,24x1024x1024}
  ./build/bench/steep-bench-ns --shapes "$ns_shapes" --threads "$threads" --out "$dir/ns.json"
  ./build/bench/steep-bench-train --threads "$threads" --rounds 9 --steps 10 --out "$dir/train.json"
  ./build/bench/steep-bench-dispatch --threads "$(nproc)" --gap-us 0,1000 --out "$dir/dispatch.json"
  precond_shapes=${PRECOND_SHAPES:-256x256,256x1024,8x256x256}
  ./build/bench/steep-bench-precond --shapes "$precond_shapes" --threads "$threads" --rounds 3 --samples 1 \
    --out "$dir/precond.json"
  torch_args=(--sizes "$sizes" --tensors 1,200 --threads "$threads" --dtypes float32,float64)
  inproc_args=(--sizes "${INPROC_SIZES:-50000,65536,1048576,16777216}" --threads "$threads")
  train_args=(--threads "$threads" --rounds 9 --steps 10)
  muon_args=(--shapes "$ns_shapes" --threads "$threads" --rounds 3 --steps 1)
  # With the variants that say where steep's step goes: DLPack every step, the catalogue's adamw.
  python_args=(--sizes "${PYTHON_SIZES:-50000,1048576,16777216}" --tensors 1,200 --threads "$threads"
               --variants steep_reread,steep_order)
  precond_args=(--shapes "$precond_shapes" --threads "$threads" --rounds 3)
fi
if [ ${#torch_cmake[@]} -gt 0 ]; then
  ./build/bench/steep-bench-torch "${inproc_args[@]}" --out "$dir/torch-inproc.json"
else
  echo "bench.sh: libtorch-dev is not installed; no in-process PyTorch rows" >&2
fi
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  /usr/bin/python3 bench/torch_optim_step.py "${torch_args[@]}" --out "$dir/torch-optim.json"
  /usr/bin/python3 bench/torch_train_step.py "${train_args[@]}" --out "$dir/torch-train.json"
  /usr/bin/python3 bench/torch_muon_step.py "${muon_args[@]}" --out "$dir/torch-muon.json"
  # steep.torch.AdamW's whole step from Python against torch.optim.AdamW (python/README.md, "Speed").
  if [ -d build/python/steep ]; then
    PYTHONPATH=build/python /usr/bin/python3 bench/python_optim_step.py "${python_args[@]}" \
      --out "$dir/python-optim.json"
  fi
  # The authors' SOAP (and Shampoo's and Dion's updates from their code) against steep.torch's,
  # checked equal in float64 first; without steep._C, the torch rows alone.
  PYTHONPATH=build/python /usr/bin/python3 bench/torch_precond_step.py "${precond_args[@]}" \
    --out "$dir/torch-precond.json"
else
  echo "bench.sh: python3-torch is not installed; no PyTorch rows" >&2
fi
python3 bench/report.py "$dir"
echo "bench.sh: results in $dir"
