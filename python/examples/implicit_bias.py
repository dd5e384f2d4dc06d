"""The main job (examples/implicit_bias.cpp) from Python: the same network in plain torch, trained
by steep's optimizers from the C++ run's data and initialization, with margins that agree.

    PYTHONPATH=build/python /usr/bin/python3 python/examples/implicit_bias.py \\
        --cxx build/examples/implicit_bias --steps 1000         # runs the C++ job, then this, and compares

The C++ job writes its data and the initialization every optimizer starts from (--dump-init) and its
margins (--json); this script builds f(x) = W2 relu(W1 x)^2 (degree L = 3) in torch, float64, with
the logistic loss summed over the samples, and trains it with the C++ job's own rules, compiled
from their C++ spelling by steep.compile_rule (dsl/steep/rules/implicit_bias.hpp: MomentumGD,
Signum, Adam with eps = 0, Muon with the exact polar factor, each with lr eta0 t^-a; the hybrids
route Muon to W1 and Signum or Adam, lr c times Muon's, to the head W2, by block role). Then it
measures the normalized margin gamma_N = min_i y_i f(x_i) / N(theta)^L in the norms the C++ job
reports (l2, l_inf, max spectral, hybrid) and fails (exit 1) where one differs from the C++ run's
by more than --rtol. Only the network, the loss and its gradient are torch's here (autograd, summed
in another order than steep's GEMMs), so the two runs differ by rounding alone; where a trajectory
amplifies rounding (muon_signum after about 400 steps, muon after about 1500) they part by more.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import steep

# The C++ job's rules (examples/implicit_bias.cpp, run_all), by the name its --only takes.
RULES = {
    "gd": "momentum_gd(inv_power({eta!r}, {a!r}), {beta!r})",
    "signum": "signum(inv_power({eta!r}, {a!r}), {beta!r})",
    "adam": "adam_paper(inv_power({eta!r}, {a!r}), {beta!r}, {beta2!r})",
    "muon": "muon_paper(inv_power({eta!r}, {a!r}), {beta!r})",
    # Muon on W1, Signum or Adam on the head W2 with c times its lr (a route by role).
    "muon_signum": "muon_signum_paper(inv_power({eta!r}, {a!r}), inv_power({c_eta!r}, {a!r}), {beta!r})",
    "muon_adam": ("muon_adam_paper(inv_power({eta!r}, {a!r}), inv_power({c_eta!r}, {a!r}), {beta!r}, {beta!r}, "
                  "{beta2!r})"),
}


def norms(params, c):
    """The model norms of steep::train::model_norm the C++ job reports: l2, linf, spectral (max over
    the matrices, the head's 1 x m its l2) and hybrid, max(c ||W1||_sp, ||W2||_inf)."""
    w1, w2 = (p.detach() for p in params)
    flat = torch.cat([w1.reshape(-1), w2.reshape(-1)])
    sp1, sp2 = (torch.linalg.matrix_norm(w, ord=2).item() for w in (w1, w2))
    return {"l2": flat.norm().item(), "linf": flat.abs().max().item(), "spectral": max(sp1, sp2),
            "hybrid": max(c * sp1, w2.abs().max().item())}


def forward(params, x):
    w1, w2 = params
    return (torch.relu(x @ w1.T) ** 2 @ w2.T).squeeze(1)


def train(rule, init, x, y, steps, c):
    params = [torch.nn.Parameter(torch.from_numpy(init[k].copy())) for k in ("W1", "W2")]
    opt = rule([{"params": params, "role": ["hidden_matrix", "head"]}], threads=1)  # the C++ network's roles
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.softplus(-y * forward(params, x)).sum().backward()  # logistic loss, summed
        opt.step()
    with torch.no_grad():
        q_min = (y * forward(params, x)).min().item()
    return {k: q_min / v ** 3 for k, v in norms(params, c).items()}


def run_cxx(cxx, steps, only, work):
    """The C++ job at its defaults for `steps`: its data and initialization in work/init, its JSON."""
    out = os.path.join(work, "cxx.json")
    cmd = [cxx, "--steps", str(steps), "--only", ",".join(only), "--records", "2", "--quiet", "--threads", "1",
           "--dump-init", os.path.join(work, "init"), "--json", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    with open(out) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cxx", required=True, help="the C++ job's binary (build/examples/implicit_bias)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--only", default="gd,signum,adam,muon,muon_adam", help=f"a subset of {','.join(RULES)}")
    ap.add_argument("--rtol", type=float, default=1e-10, help="largest relative difference of a margin allowed")
    args = ap.parse_args()
    only = args.only.split(",")
    for n in only:
        if n not in RULES:
            sys.exit(f"--only: '{n}' is not one of {sorted(RULES)}")
    with tempfile.TemporaryDirectory(prefix="implicit-bias-") as work:
        cxx = run_cxx(args.cxx, args.steps, only, work)
        init = {k: np.load(os.path.join(work, "init", f"{k}.npy")) for k in ("x", "y", "W1", "W2")}
    s = cxx["settings"]
    if (s["depth"], s["activation"], s["loss"], s["degree"]) != (2, "relu2", "logistic", 3):
        sys.exit(f"this script builds the default network (depth 2, relu2, logistic); the C++ run used {s}")
    x, y = torch.from_numpy(init["x"]), torch.from_numpy(init["y"])
    print(f"{len(y)} samples (dim {x.shape[1]}), width {s['width']}, {args.steps} steps, "
          f"eta0 t^-{s['schedule_exponent']}")
    print(f"{'optimizer':<12}{'norm':<10}{'gamma (Python)':>24}{'gamma (C++)':>24}{'relative':>11}")
    worst = 0.0
    for name in only:
        eta = s["eta0"][name]
        expr = RULES[name].format(eta=eta, c_eta=s["c"] * eta, a=s["schedule_exponent"], beta=s["beta"],
                                  beta2=s["beta2"])
        rule = steep.compile_rule(expr, dtype="float64", name=name)
        ours, theirs = train(rule, init, x, y, args.steps, s["c"]), cxx["optimizers"][name]
        for norm in ("l2", "linf", "spectral", "hybrid"):
            rel = abs(ours[norm] - theirs[norm]) / abs(theirs[norm])
            worst = max(worst, rel)
            print(f"{name:<12}{norm:<10}{ours[norm]:>24.16e}{theirs[norm]:>24.16e}{rel:>11.1e}")
    print(f"largest relative difference {worst:.1e} (allowed {args.rtol:.0e})")
    if not worst <= args.rtol:
        sys.exit("the margins differ from the C++ run's by more than --rtol")
    print("margins agree with the C++ run")


if __name__ == "__main__":
    main()
