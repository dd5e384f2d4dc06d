#!/usr/bin/env python3
"""The main job's training step in PyTorch (CPU, float64), for steep-bench-train's comparison.

    /usr/bin/python3 bench/torch_train_step.py --samples 1000 --width 64 --threads 1,2 --out torch.json

Same model and step as bench/train_step_bench.cpp: f(x) = a^T relu(W x)^2 (bias-free, no
autocast), summed logistic loss softplus(-y f(x)), backward, then one optimizer step: Adam
(eps = 1e-300, the closest torch gets to eps = 0 without 0/0) with torch.optim.Adam's for-loop
and foreach implementations. Works with whichever PyTorch is installed (Debian's python3-torch
here). Rounds alternate the variants (torch_timing.py); the median per-step time is reported.
torch's threads and those of the OpenBLAS its matrix products call are both held to the count under
test (torch_timing.set_threads; torch.set_num_threads alone leaves OpenBLAS on every core).
"""
import argparse
import json
import statistics

import torch

from torch_timing import interleaved, set_threads


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--dim", type=int, default=784)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default="bench-train-torch.json")
    a = p.parse_args()
    torch.manual_seed(1)
    x = torch.rand(a.samples, a.dim, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    y = torch.tensor([1.0 if i % 2 else -1.0 for i in range(a.samples)], dtype=torch.float64)
    records = []
    for t in [int(s) for s in a.threads.split(",")]:
        pinned = set_threads(torch, t)
        variants = {}
        for impl in ("torch_forloop", "torch_foreach"):
            W = (0.1 / a.dim ** 0.5 * torch.randn(a.width, a.dim, dtype=torch.float64)).requires_grad_()
            v = (0.1 / a.width ** 0.5 * torch.randn(1, a.width, dtype=torch.float64)).requires_grad_()
            opt = torch.optim.Adam([W, v], lr=1e-3, eps=1e-300, foreach=(impl == "torch_foreach"))

            def step(W=W, v=v, opt=opt):
                opt.zero_grad(set_to_none=False)
                f = (torch.relu(x @ W.t()) ** 2) @ v.t()
                loss = torch.nn.functional.softplus(-y * f.squeeze(1)).sum()
                loss.backward()
                opt.step()

            variants[impl] = step
        for name, samples in interleaved(variants, a.rounds, a.steps, warmup=5).items():
            med = statistics.median(samples)
            flops = 4.0 * a.samples * a.dim * a.width + 6.0 * a.samples * a.width
            print(f"{name:24s} {t:8d} {med * 1e3:12.3f} {flops / med * 1e-9:12.2f}")
            records.append({"name": "train_step_adam", "impl": name, "threads": t, "dtype": "float64",
                            "median_s": med, "min_s": min(samples), "max_s": max(samples),
                            "gflop_per_s": flops / med * 1e-9, "blas_threads_pinned": pinned})
    with open(a.out, "w") as f:
        json.dump({"torch": torch.__version__, "shape": vars(a), "records": records}, f, indent=2)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
