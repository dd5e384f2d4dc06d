#!/usr/bin/env python3
"""A whole optimizer.step() from Python: steep.torch.AdamW against torch.optim.AdamW (for-loop,
foreach, and fused where the installed torch has a fused CPU AdamW), same sizes, tensors, threads.

    PYTHONPATH=build/python MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
      /usr/bin/python3 bench/python_optim_step.py --sizes 50000,1048576,16777216 --tensors 1,200 --out python-optim.json

float32, lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 1e-2, the defaults of both. What is
timed is what a training loop calls, opt.step(), with the gradients in place: for steep that is
the Python side (reading each group's parameters and gradients, one DLPack capsule each), the
call into steep._C, steep's checks and its fused pass; for torch its own step. Variants
alternate within each round (torch_timing.py); medians. steep's threads = torch's threads
(torch.set_num_threads and its OpenBLAS). Run it with the allocator settings above, as
torch_optim_step.py says: torch's temporaries otherwise fault in fresh pages every step.

--variants adds steep's own variants, to see where its time goes:
  steep_reread     every step reads each tensor through DLPack and sets the hyperparameters, as
                   a step did before steep.torch kept what it bound (and as it does when a tensor
                   changed): the cost of the capsules;
  steep_threaded   serial_below = 0: a small group's passes split over the threads too;
  steep_order      the catalogue's rule adamw (steep's order of operations) instead of
                   adamw_torch (torch's, bitwise equal to torch.optim.AdamW): the cost of parity.
"""
import argparse
import json
import os
import statistics

import torch

import steep.torch
from torch_timing import interleaved, set_threads


class _CatalogueAdamW(steep.torch.AdamW):
    _rule = "adamw"  # steep's order of operations (dsl/steep/rules/adamw.hpp)


def _reread(opt):
    def step():
        for engine in opt._engines:
            if engine is not None:
                engine.bound = engine.settings = None
        opt.step()
    return step


def make(impl, sizes, threads):
    ps = [torch.zeros(s, requires_grad=True) for s in sizes]
    for p in ps:
        p.grad = torch.randn(p.shape)
    kw = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    if impl.startswith("steep"):
        opt = (_CatalogueAdamW if impl == "steep_order" else steep.torch.AdamW)(ps, threads=threads, **kw)
        if impl == "steep_threaded":
            opt.serial_below = 0
        return _reread(opt) if impl == "steep_reread" else opt.step
    if impl == "torch_fused":
        return torch.optim.AdamW(ps, fused=True, **kw).step
    return torch.optim.AdamW(ps, foreach=impl == "torch_foreach", **kw).step


def impls(variants=()):
    out = ["steep", *variants, "torch_forloop", "torch_foreach"]
    try:
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)], fused=True)
        out.append("torch_fused")
    except (TypeError, RuntimeError, ValueError):
        pass  # no fused CPU AdamW in this torch (1.13)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="50000,1048576,16777216")
    p.add_argument("--tensors", default="1,200")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--variants", default="", help="steep_reread,steep_threaded,steep_order (the docstring)")
    p.add_argument("--out", default="python-optim.json")
    a = p.parse_args()
    keepmem = os.environ.get("MALLOC_MMAP_MAX_") == "0"
    load = os.getloadavg()  # the records say how busy the machine was
    records = []
    for threads in [int(t) for t in a.threads.split(",")]:
        pinned = set_threads(torch, threads)
        for n in [int(s) for s in a.sizes.split(",")]:
            for k in [int(t) for t in a.tensors.split(",")]:
                sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
                variants = [v for v in a.variants.split(",") if v]
                steps = {impl: make(impl, sizes, threads) for impl in impls(variants)}
                samples = interleaved(steps, a.rounds, a.steps)
                base = statistics.median(samples["steep"])
                for name, s in samples.items():
                    med = statistics.median(s)
                    records.append({"name": "adamw", "impl": name, "params": n, "tensors": k, "threads": threads,
                                    "dtype": "float32", "median_s": med, "min_s": min(s), "max_s": max(s),
                                    "vs_steep": med / base, "keepmem": keepmem, "blas_threads_pinned": pinned})
                    print(f"{name:14s} n={n:>9d} tensors={k:>4d} threads={threads} {med * 1e6:10.1f} us "
                          f"({med / base:5.2f}x steep)")
                del steps
    with open(a.out, "w") as f:
        json.dump({"torch": torch.__version__, "cpus": os.cpu_count(), "loadavg_before": load,
                   "loadavg_after": os.getloadavg(), "records": records}, f, indent=2)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
