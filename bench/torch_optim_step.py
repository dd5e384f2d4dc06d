#!/usr/bin/env python3
"""torch.optim.Adam's step on the CPU, the peer rows of steep-bench (same sizes, tensors, threads).

    /usr/bin/python3 bench/torch_optim_step.py --sizes 65536,1048576 --tensors 1,200 --threads 1,2 --out torch.json

float32 (--dtypes float32,float64 for both), lr 1e-3 and torch's defaults (betas 0.9/0.999, eps 1e-8), the same rule as steep's
rules::adam. Implementations: for-loop, foreach, and fused where the installed torch has a fused
CPU Adam (impl torch_forloop, torch_foreach, torch_fused). Variants alternate within each round
(torch_timing.py); per-step times, medians reported. Works with whichever PyTorch is installed. glibc returning freed
memory to the OS makes torch's temporaries fault in fresh pages every step on this machine: run
it with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 for the fair numbers (the records
say which allocator setting was used).
"""
import argparse
import json
import os
import statistics

import torch

from torch_timing import interleaved, set_threads


def variants(params):
    out = {"torch_forloop": dict(foreach=False), "torch_foreach": dict(foreach=True)}
    try:
        torch.optim.Adam(params, lr=1e-3, fused=True)
        out["torch_fused"] = dict(fused=True)
    except (TypeError, RuntimeError, ValueError):
        pass  # no fused CPU Adam in this torch
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="65536,1048576")
    p.add_argument("--tensors", default="1,200")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--out", default="bench-torch-optim.json")
    a = p.parse_args()
    keepmem = os.environ.get("MALLOC_MMAP_MAX_") == "0"
    records = []
    for threads in [int(t) for t in a.threads.split(",")]:
        pinned = set_threads(torch, threads)
        for n, dtype in [(int(s), d) for d in a.dtypes.split(",") for s in a.sizes.split(",")]:
            dt, width = {"float32": (torch.float32, 4), "float64": (torch.float64, 8)}[dtype]
            for k in [int(t) for t in a.tensors.split(",")]:
                sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
                opts = {}
                for impl, kw in variants([torch.zeros(1, requires_grad=True)]).items():
                    ps = [torch.zeros(s, dtype=dt, requires_grad=True) for s in sizes]
                    for q in ps:
                        q.grad = torch.randn(q.shape, dtype=dt)
                    opts[impl] = torch.optim.Adam(ps, lr=1e-3, **kw).step
                for name, samples in interleaved(opts, a.rounds, a.steps).items():
                    med = statistics.median(samples)
                    records.append({"name": "adam", "impl": name, "params": n, "tensors": k, "threads": threads,
                                    "dtype": dtype, "median_s": med, "min_s": min(samples),
                                    "max_s": max(samples), "bytes_per_param": 7 * width,
                                    "gb_per_s": 7.0 * width * n / med * 1e-9, "keepmem": keepmem,
                                    "blas_threads_pinned": pinned})
                    print(f"{name:14s} {dtype} n={n:>10d} tensors={k:>4d} threads={threads} {med * 1e6:10.1f} us")
    with open(a.out, "w") as f:
        json.dump({"torch": torch.__version__, "records": records}, f, indent=2)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
