"""What the Python tests share: the golden trajectories (tests/data/golden) and ulp distances."""
import json
import os

import numpy as np
import torch

GOLDEN = os.environ.get("STEEP_GOLDEN_DIR",
                        os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "golden"))


def golden_case(case):
    """(manifest entry, {name: init}, {name: grads (T, ...)}, {name: trajectory (T, ...)})."""
    with open(os.path.join(GOLDEN, "manifest.json")) as f:
        entry = json.load(f)["cases"][case]
    names = entry["params"]
    init = {n: np.load(os.path.join(GOLDEN, "inputs", f"init_{n}.npy")) for n in names}
    grads = {n: np.load(os.path.join(GOLDEN, "inputs", f"{entry['grads']}_{n}.npy")) for n in names}
    traj = {n: np.load(os.path.join(GOLDEN, "cases", case, f"{n}.npy")) for n in names}
    return entry, init, grads, traj


def ulps(a, b):
    """Per entry, |a - b| in units of the last place of b (float32 or float64 tensors)."""
    a, b = a.detach().numpy(), b.detach().numpy()
    return np.abs(a.astype(np.float64) - b.astype(np.float64)) / np.spacing(np.abs(b)).astype(np.float64)


def params_like(shapes, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]


def clones(params):
    return [torch.nn.Parameter(p.detach().clone()) for p in params]


def set_grads(pairs, step, seed=1):
    """The same gradient (a function of the step) on both tensors of every pair."""
    g = torch.Generator().manual_seed(seed * 1000 + step)
    for a, b in pairs:
        grad = torch.randn(a.shape, generator=g, dtype=a.dtype) * (1 + step % 3)
        a.grad, b.grad = grad.clone(), grad.clone()
