#!/usr/bin/env python3
"""The authors' torch SOAP, and distributed Shampoo's and Dion's updates written in torch, against
steep's (steep.torch) on steep-bench-precond's shapes: checked equal first, then timed interleaved.

    PYTHONPATH=build/python /usr/bin/python3 bench/torch_precond_step.py --shapes 256x256,256x1024,8x256x256 \\
      --threads 1,2 --out torch-precond.json
    PYTHONPATH=build/python /usr/bin/python3 bench/torch_precond_step.py --check-only

--only soap,dion keeps the rows whose names start so; --intervals 10,100 the refresh intervals.
Shapes are BxRxC: B matrices of R x C, float32, each gradient fixed; one sample = --batch optimizer
steps over all B matrices (per-step times reported), so an interval-k sample holds batch / k
refreshes and its median is the amortized step, as in steep-bench-precond. Rows (name, impl):
  soap_everyK      torch_authors      the authors' SOAP (Vyas et al. 2024, arXiv:2409.11321): their
                                      soap.py, vendored unmodified (bench/third_party/soap/ORIGIN.md),
                                      precondition_frequency K, weight_decay 0, the rest their defaults
                   steep              steep.torch.SOAP with the same settings
                   steep_round_trip   the same with round_trip_every_step=True (K > 1): exp_avg
                                      rotated out of the bases and back every step, as the code does
  shampoo_everyK   torch_transcribed  distributed Shampoo's preconditioner (Shi et al. 2023,
                                      arXiv:2309.06497) written in torch 1.13 ops (ShampooTranscribed):
                                      its package (facebookresearch/optimizers) needs torch >= 2.8 and
                                      Python >= 3.12 and does not import here. Factors summed (beta2 1),
                                      the roots by eigh every K steps, epsilon 1e-6, no grafting
                   steep              steep.torch.Shampoo(beta2=1, eps=1e-6, every=K)
  dion_step        torch_transcribed  microsoft/dion's reference update (dion_reference.dion_update
                                      and power_iteration, Ahn et al. 2025, arXiv:2504.05295) in torch
                                      1.13 ops (DionTranscribed): the package needs torch >= 2.7.1
                                      (torch.compile, DTensor). Rank min(R, C), mu 0.95, qr_method "qr",
                                      no weight decay. Dion has no refresh interval: one row per shape.
                                      steep.torch has no Dion: steep's time is steep-bench-precond's
                                      dion_step (another process of the same run).
Before anything is timed, in float64 (tests/data/variants, from scripts/reference-variants.py):
  - the authors' SOAP against the reference trajectories soap, soap_every2 and soap_capped (the
    last two cross refreshes), run with float64 as torch's default dtype and torch.Tensor.float as
    the identity, so that its eigh and QR (float32 in its code) run in float64 as the reference's;
    then steep.torch.SOAP against the authors' SOAP on the same cases;
  - ShampooTranscribed against the reference `shampoo`, and steep.torch.Shampoo against it there
    and with EMA factors (beta2 0.99, eps 1e-3) and the roots every 2 steps (refreshes at 1, 3, 5);
  - DionTranscribed against the references `dion` and `dion_low_rank` (with steep's first Q, the
    reference's splitmix64 one: the authors' torch.randn is no reproducible input).
Each must agree to 1e-12 relative (Frobenius, every step), or the script exits 1 before timing.
Variants alternate within each round (torch_timing.py), one sample each per round; the steep /
torch ratios are medians over rounds of per-round ratios. Run it with MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=68719476736, as scripts/bench.sh does (docs/benchmarks.md).
"""
import argparse
import contextlib
import importlib.util
import json
import math
import os
import statistics
import sys

import numpy as np
import torch

from torch_timing import block_shape, interleaved, set_threads

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = os.path.join(HERE, "..", "tests", "data", "variants")
INTERVALS = (1, 10, 100)
TOL = 1e-12
sys.path.insert(0, os.path.join(HERE, "third_party", "soap"))
from soap import SOAP as AuthorsSOAP  # noqa: E402

try:
    import steep.torch as steep_torch
except ImportError:  # no steep._C in this build (STEEP_PYTHON off): the torch rows only
    steep_torch = None


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ShampooTranscribed:
    """Distributed Shampoo's preconditioner for 2-D parameters (facebookresearch/optimizers f606606):
    shampoo_preconditioner_list.py's factor update (tensordot outer products; beta2 = 1: the sum,
    else factor * beta2 + (1 - beta2) outer) and _precondition_grad (tensordot(g, root, [[0], [0]])
    per dimension: L^(-1/4) G R^(-1/4)), and matrix_functions.py's inverse root by eigh with its
    default perturbation (perturb_before_computation: eigh of A + eps I, then, if the smallest
    eigenvalue is below eps, all shifted by it and eps added), recomputed every `every` steps
    (precondition_frequency) with the stale roots between. p <- p - lr times that, no grafting,
    no momentum (both compositions around it, in steep too)."""

    def __init__(self, params, lr, beta2=1.0, eps=1e-12, every=1, root=4):
        self.params, self.lr, self.beta2, self.eps, self.every, self.root = params, lr, beta2, eps, every, root
        self.factors = [[torch.zeros(n, n, dtype=p.dtype) for n in p.shape] for p in params]
        self.roots = [[None, None] for _ in params]
        self.t = 0

    def inverse_root(self, a):
        eye = torch.eye(a.shape[0], dtype=a.dtype)
        lam, q = torch.linalg.eigh(a + self.eps * eye)
        lam_min = torch.min(lam).item()
        if lam_min < self.eps:
            lam = lam - lam_min + self.eps
        return q * lam.pow(-1.0 / self.root).unsqueeze(0) @ q.T

    @torch.no_grad()
    def step(self):
        self.t += 1
        refresh = (self.t - 1) % self.every == 0
        for p, factors, roots in zip(self.params, self.factors, self.roots):
            g = p.grad
            for k, f in enumerate(factors):
                outer = torch.tensordot(g, g, dims=[[1 - k], [1 - k]])
                if self.beta2 != 1.0:
                    f.mul_(self.beta2)
                f.add_(outer, alpha=1.0 if self.beta2 == 1.0 else 1.0 - self.beta2)
                if refresh:
                    roots[k] = self.inverse_root(f)
            u = g
            for r in roots:
                u = torch.tensordot(u, r, dims=[[0], [0]])
            p.add_(u, alpha=-self.lr)


class DionTranscribed:
    """microsoft/dion's reference Dion for 2-D parameters on one device (0a059a4,
    dion/dion_reference.py): dion_update with power_iteration, orthogonalize(qr_method="qr") and
    fix_all_zero_or_nan, a wide block transposed (is_transposed = m < n, Q then m x r), rank
    rank_fraction min(m, n) rounded up to rank_multiple_of. q0(n, r) gives the first Q (theirs:
    torch.randn)."""

    def __init__(self, params, lr, mu=0.95, weight_decay=0.0, rank_fraction=1.0, rank_multiple_of=1, eps=1e-8,
                 q0=None):
        self.params, self.lr, self.mu, self.wd, self.eps = params, lr, mu, weight_decay, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.q = []
        for p in params:
            rows, cols = p.shape
            r = rank_multiple_of * math.ceil(rank_fraction * min(rows, cols) / rank_multiple_of)
            r = min(r, rows, cols)
            n = rows if rows < cols else cols
            self.q.append(q0(n, r).to(p.dtype) if q0 else torch.randn(n, r, dtype=p.dtype))

    @torch.no_grad()
    def step(self):
        for k, p in enumerate(self.params):
            m, q = self.m[k], self.q[k]
            transpose = p.shape[0] < p.shape[1]
            m.add_(p.grad)
            b = m.T if transpose else m
            pp, _ = torch.linalg.qr(b @ q)  # power_iteration, one step; orthogonalize "qr"
            r = b.T @ pp
            all_zero = bool((m == 0).all())  # fix_all_zero_or_nan
            pp = pp.nan_to_num() * (not all_zero)
            r = r.nan_to_num() * (not all_zero) + q * all_zero
            if not transpose:
                m.add_(pp @ r.T, alpha=-(1 - self.mu))
            else:
                m.add_(r @ pp.T, alpha=-(1 - self.mu))
            r32 = r.to(torch.float32) if p.dtype != torch.float64 else r
            q = (r32 / (r32.norm(dim=0, keepdim=True) + self.eps)).to(pp.dtype)
            self.q[k] = q
            p.mul_(1 - self.lr * self.wd)
            scaled_lr = ((p.size(0) / p.size(1)) ** 0.5) * self.lr
            p.add_(pp @ q.T if not transpose else q @ pp.T, alpha=-scaled_lr)


@contextlib.contextmanager
def authors_in_float64():
    """The authors' SOAP with its eigh and QR in float64: default dtype float64 (its factors are
    torch.zeros(n, n)) and Tensor.float the identity (its casts before eigh and QR)."""
    dtype, to_float = torch.get_default_dtype(), torch.Tensor.float
    torch.set_default_dtype(torch.float64)
    torch.Tensor.float = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.float = to_float
        torch.set_default_dtype(dtype)


def trajectory(make_opt, names, lr_steps=None):
    """Each step's parameters (float64) for the variants inputs `names` under make_opt(params)."""
    params = [torch.from_numpy(np.load(os.path.join(VARIANTS, f"{n}_p0.npy"))).clone().requires_grad_()
              for n in names]
    grads = [torch.from_numpy(np.load(os.path.join(VARIANTS, f"{n}_grads.npy"))) for n in names]
    opt = make_opt(params)
    out = []
    for t in range(grads[0].shape[0]):
        for p, g in zip(params, grads):
            p.grad = g[t].clone()
        opt.step()
        out.append([p.detach().clone() for p in params])
    return out


def stored(case, names):
    arrays = [np.load(os.path.join(VARIANTS, f"{case}_{n}.npy")) for n in names]
    return [[torch.from_numpy(a[t]) for a in arrays] for t in range(arrays[0].shape[0])]


def max_rel(a, b):
    return max(float((x - y).norm() / y.norm()) for sa, sb in zip(a, b) for x, y in zip(sa, sb))


def checks():
    """[(what, max relative error)] of the float64 checks (see the module docstring)."""
    ref = load_module(os.path.join(HERE, "..", "scripts", "reference-variants.py"), "reference_variants")
    q0 = lambda n, r: torch.from_numpy(ref.splitmix_q0(n, r))
    wide = ["W1", "W2", "W3"]
    out = []
    soap_cases = (("soap", {}, ["S1", "S2"]),
                  ("soap_every2", dict(betas=(0.9, 0.99), shampoo_beta=0.9, precondition_frequency=2), ["S1", "S2"]),
                  ("soap_capped", dict(precondition_frequency=2, max_precond_dim=6), wide))
    for case, kw, names in soap_cases:
        with authors_in_float64():
            authors = trajectory(lambda ps: AuthorsSOAP(ps, lr=0.1, weight_decay=0.0, **kw), names)
        out.append((f"authors' SOAP vs reference {case}", max_rel(authors, stored(case, names))))
        if steep_torch:
            mine = trajectory(lambda ps: steep_torch.SOAP(ps, lr=0.1, threads=1, **kw), names)
            out.append((f"steep.torch.SOAP vs authors' SOAP, {case}", max_rel(mine, authors)))
            mine = trajectory(lambda ps: steep_torch.SOAP(ps, lr=0.1, threads=1, round_trip_every_step=True, **kw),
                              names)
            out.append((f"steep.torch.SOAP(round_trip_every_step) vs authors' SOAP, {case}", max_rel(mine, authors)))
    shampoo = trajectory(lambda ps: ShampooTranscribed(ps, lr=0.1), wide)
    out.append(("ShampooTranscribed vs reference shampoo", max_rel(shampoo, stored("shampoo", wide))))
    if steep_torch:
        mine = trajectory(lambda ps: steep_torch.Shampoo(ps, lr=0.1, threads=1), wide)
        out.append(("steep.torch.Shampoo vs ShampooTranscribed, shampoo", max_rel(mine, shampoo)))
        kw = dict(beta2=0.99, eps=1e-3, every=2)
        theirs = trajectory(lambda ps: ShampooTranscribed(ps, lr=0.1, **kw), wide)
        mine = trajectory(lambda ps: steep_torch.Shampoo(ps, lr=0.1, threads=1, **kw), wide)
        out.append(("steep.torch.Shampoo vs ShampooTranscribed, beta2 0.99, eps 1e-3, every 2", max_rel(mine, theirs)))
    for case, kw in (("dion", {}), ("dion_low_rank", dict(rank_fraction=0.5, weight_decay=0.1))):
        dion = trajectory(lambda ps: DionTranscribed(ps, lr=0.1, q0=q0, **kw), wide)
        out.append((f"DionTranscribed vs reference {case}", max_rel(dion, stored(case, wide))))
    return out


def make_variants(blocks, rows, cols, threads, batch, gen, only=(), intervals=INTERVALS):
    """{(name, impl): callable running `batch` steps} for one shape, every optimizer on its own copy
    of the same parameters and gradients; only the rows whose name starts with one of `only`, if
    given."""
    p0 = [0.02 * torch.randn(rows, cols, generator=gen) for _ in range(blocks)]
    g0 = [torch.randn(rows, cols, generator=gen) for _ in range(blocks)]

    def params():
        ps = [p.clone().requires_grad_() for p in p0]
        for p, g in zip(ps, g0):
            p.grad = g.clone()
        return ps

    def run(opt):
        def steps():
            for _ in range(batch):
                opt.step()
        return steps

    lr = 1e-4
    out = {}
    wanted = lambda name: not only or any(name.startswith(o) for o in only)
    for k in intervals:
        if wanted("shampoo"):
            out[(f"shampoo_every{k}", "torch_transcribed")] = run(ShampooTranscribed(params(), lr, eps=1e-6, every=k))
            if steep_torch:
                out[(f"shampoo_every{k}", "steep")] = run(steep_torch.Shampoo(params(), lr, eps=1e-6, every=k,
                                                                              threads=threads))
        if wanted("soap"):
            out[(f"soap_every{k}", "torch_authors")] = run(
                AuthorsSOAP(params(), lr=lr, weight_decay=0.0, precondition_frequency=k))
            if steep_torch:
                out[(f"soap_every{k}", "steep")] = run(steep_torch.SOAP(params(), lr, precondition_frequency=k,
                                                                        threads=threads))
                # The code's order: exp_avg rotated back and forth every step (before the round
                # trip between refreshes was skipped; the same at K = 1).
                if k > 1:
                    out[(f"soap_every{k}", "steep_round_trip")] = run(
                        steep_torch.SOAP(params(), lr, precondition_frequency=k, round_trip_every_step=True,
                                         threads=threads))
    if wanted("dion"):
        out[("dion_step", "torch_transcribed")] = run(DionTranscribed(params(), lr))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="256x256,256x1024,8x256x256")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=100, help="optimizer steps per sample (a multiple of 100)")
    p.add_argument("--out", default="bench-torch-precond.json")
    p.add_argument("--check-only", action="store_true", help="run the float64 checks and exit")
    p.add_argument("--only", default="", help="rows whose name starts with one of these (soap,shampoo,dion)")
    p.add_argument("--intervals", default=",".join(str(k) for k in INTERVALS), help="refresh intervals K")
    a = p.parse_args()
    results = checks()
    for what, err in results:
        print(f"{what}: max relative error {err:.2e}")
    if not all(err <= TOL for _, err in results):
        sys.exit(f"torch_precond_step.py: a check is off by more than {TOL} (above); nothing timed")
    if steep_torch is None:
        print("torch_precond_step.py: steep._C is not importable (PYTHONPATH=build/python?): torch rows only")
    if a.check_only:
        return
    keepmem = os.environ.get("MALLOC_MMAP_MAX_") == "0"
    load = os.getloadavg()
    records, ratios = [], []
    gen = torch.Generator().manual_seed(0)
    for threads in [int(t) for t in a.threads.split(",")]:
        pinned = set_threads(torch, threads)
        for label in a.shapes.split(","):
            blocks, rows, cols, label = block_shape(label)
            variants = make_variants(blocks, rows, cols, threads, a.batch, gen,
                                     tuple(o for o in a.only.split(",") if o),
                                     tuple(int(k) for k in a.intervals.split(",")))
            samples = interleaved({f"{n}/{i}": f for (n, i), f in variants.items()}, a.rounds, 1, warmup=1)
            for key, s in samples.items():
                name, impl = key.split("/")
                per = [x / a.batch for x in s]
                med = statistics.median(per)
                records.append({"name": name, "impl": impl, "shape": label, "blocks": blocks, "rows": rows,
                                "cols": cols, "threads": threads, "dtype": "float32", "steps_per_sample": a.batch,
                                "median_s": med, "min_s": min(per), "max_s": max(per), "samples": len(per),
                                "keepmem": keepmem, "blas_threads_pinned": pinned})
                print(f"{name:17s} {impl:18s} {label:>12s} threads={threads} {med * 1e3:10.3f} ms")
            for key in samples:
                name, impl = key.split("/")
                if impl.startswith("steep"):
                    theirs = next(k for k in samples if k.startswith(name + "/torch"))
                    r = statistics.median(x / y for x, y in zip(samples[theirs], samples[key]))
                    ratios.append({"name": name, "shape": label, "threads": threads, "steep": impl,
                                   "torch": theirs.split("/")[1], "torch_over_steep_time": r})
                    print(f"  {name}: {theirs.split('/')[1]} / {impl} {r:.2f}")
            del variants
            # Written after every setting, so that a long run cut short keeps what it measured.
            write(a.out, {"torch": torch.__version__, "cpus": os.cpu_count(), "loadavg_before": load,
                          "loadavg_after": os.getloadavg(), "steep_module": steep_torch is not None,
                          "checks": [{"what": w, "max_rel": e} for w, e in results], "settings": vars(a),
                          "records": records, "ratios": ratios})
    print("wrote", a.out)


def write(path, result):
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
