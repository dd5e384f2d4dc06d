#!/usr/bin/env python3
"""PyTorch's Muon step on the CPU, the peer rows of steep-bench-ns's muon_step (same shapes, threads).

    /usr/bin/python3 bench/torch_muon_step.py --shapes 8x256x256,1x1024x1024 --threads 1,2 --out torch-muon.json
    /usr/bin/python3 bench/torch_muon_step.py --check-only     # the mirror against the golden `muon` case

Shapes are BxRxC: B matrices of R x C, float32, lr 0.02, weight decay 0.1, momentum 0.95, Nesterov, five
Newton-Schulz steps: the hyperparameters of steep's rules::muon and of torch.optim.Muon's defaults.
Implementations:
  torch_muon_mirror  torch.optim.Muon's update written with the same torch ops in the same order, in the
                     parameter's dtype (torch.optim.Muon casts the Newton-Schulz input to bfloat16; the
                     golden trajectories leave that cast out, and so does steep). Runs on any torch, 1.13
                     included. Before anything is timed it is checked against the golden `muon` case in float64
                     (tests/data/golden: torch 2.11's Muon without the cast), to 1e-12 relative.
  torch_muon         torch.optim.Muon itself (torch >= 2.9), stock, where the installed torch has it.
Variants alternate within each round (torch_timing.py); per-step times, medians reported. Run it with
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736, as scripts/bench.sh does: torch allocates its
temporaries every step (docs/benchmarks.md).
"""
import argparse
import json
import math
import os
import statistics
import sys

import torch

from torch_timing import block_shape, interleaved, set_threads

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "tests", "data", "golden")
LR, WD, MU, EPS, NS_STEPS = 0.02, 0.1, 0.95, 1e-7, 5
NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)


def newton_schulz(u):
    """torch.optim.Muon's _zeropower_via_newtonschulz without its bfloat16 cast (torch 2.11)."""
    a, b, c = NS_COEFFICIENTS
    x = u.clone()
    tall = u.size(0) > u.size(1)
    if tall:
        x = x.T
    x.div_(x.norm().clamp(min=EPS))
    for _ in range(NS_STEPS):
        gram = x @ x.T
        gram_update = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, gram_update, x, beta=a)
    return x.T if tall else x


class MuonMirror:
    """One optimizer over a list of 2-D parameters, torch.optim.Muon's single-tensor loop."""

    def __init__(self, params):
        self.params = params
        self.bufs = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.bufs):
            g = p.grad
            buf.lerp_(g, 1 - MU)
            update = newton_schulz(g.lerp(buf, MU))
            rows, cols = p.shape[:2]
            p.mul_(1 - LR * WD)
            p.add_(update, alpha=-LR * math.sqrt(max(1, rows / cols)))


def check_against_golden():
    """Max relative Frobenius error of the float64 mirror over the golden `muon` case's steps and matrices."""
    import numpy as np

    manifest = json.load(open(os.path.join(GOLDEN, "manifest.json")))
    hp = manifest["cases"]["muon"]["groups"][0]["hp"]
    assert (hp["lr"], hp["momentum"], hp["eps"], hp["ns_steps"], tuple(hp["ns_coefficients"])) == \
        (LR, MU, EPS, NS_STEPS, NS_COEFFICIENTS), "the golden muon case's hyperparameters changed"
    names = sorted(f[len("init_"):-len(".npy")] for f in os.listdir(os.path.join(GOLDEN, "inputs"))
                   if f.startswith("init_") and np.load(os.path.join(GOLDEN, "inputs", f)).ndim == 2)
    load = lambda *p: torch.from_numpy(np.load(os.path.join(GOLDEN, *p)))
    params = [load("inputs", f"init_{n}.npy").clone() for n in names]
    grads = [load("inputs", f"grads_{n}.npy") for n in names]
    want = [load("cases", "muon", f"{n}.npy") for n in names]
    opt = MuonMirror(params)
    worst = 0.0
    for t in range(manifest["T"]):
        for p, g in zip(params, grads):
            p.grad = g[t].clone()
        opt.step()
        for p, w in zip(params, want):
            worst = max(worst, float((p - w[t]).norm() / w[t].norm()))
    return worst, names


def variants(params_of):
    out = {"torch_muon_mirror": MuonMirror(params_of()).step}
    if hasattr(torch.optim, "Muon"):
        out["torch_muon"] = torch.optim.Muon(params_of(), lr=LR, weight_decay=WD, momentum=MU).step
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="1x1024x1024,1x1024x4096,24x1024x1024")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--out", default="bench-torch-muon.json")
    p.add_argument("--check-only", action="store_true", help="check the mirror against the golden case and exit")
    a = p.parse_args()
    worst, names = check_against_golden()
    print(f"torch_muon_mirror vs golden muon ({', '.join(names)}, float64): max relative error {worst:.2e}")
    if not worst <= 1e-12:
        sys.exit("torch_muon_step.py: the mirror does not reproduce torch.optim.Muon's golden trajectory")
    if a.check_only:
        return
    keepmem = os.environ.get("MALLOC_MMAP_MAX_") == "0"
    records = []
    gen = torch.Generator().manual_seed(0)
    for threads in [int(t) for t in a.threads.split(",")]:
        pinned = set_threads(torch, threads)
        for label in a.shapes.split(","):
            blocks, rows, cols, label = block_shape(label)

            def params_of():
                ps = [(0.02 * torch.randn(rows, cols, generator=gen)).requires_grad_() for _ in range(blocks)]
                for q in ps:
                    q.grad = torch.randn(rows, cols, generator=gen)
                return ps

            for impl, samples in interleaved(variants(params_of), a.rounds, a.steps, warmup=1).items():
                med = statistics.median(samples)
                records.append({"name": "muon_step", "impl": impl, "shape": label, "blocks": blocks, "rows": rows,
                                "cols": cols, "threads": threads, "dtype": "float32", "median_s": med,
                                "min_s": min(samples), "max_s": max(samples), "keepmem": keepmem,
                                "blas_threads_pinned": pinned})
                print(f"{impl:18s} {label:>14s} threads={threads} {med * 1e3:10.2f} ms")
    with open(a.out, "w") as f:
        json.dump({"torch": torch.__version__, "mirror_vs_golden_max_rel": worst, "records": records}, f, indent=2)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
