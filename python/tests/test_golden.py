"""steep.torch in float64 against the golden trajectories (tests/data/golden: PyTorch 2.11 and
optax in float64), for the rules torch 1.13 lacks (Lion, Muon, Muon + AdamW), a scheduled SGD,
and Adam and AdamW, whose rules here (adam_torch, adamw_torch) are the float64 golden check of
those catalogue rules (torch 2.11 orders a few operations otherwise than 1.13: lerp for m);
Adam-mini, NorMuon and Shampoo, which no peer there runs, against float64 NumPy
re-implementations of their equations (their headers under dsl/steep/rules/ and
include/steep/precond/), on the golden inputs."""
import math
import unittest

import numpy as np
import torch

import steep.torch as st
from helpers import golden_case

TOL = 1e-12  # relative, per step and parameter: the golden README expects ~1e-13 of a float64 rule


class Golden(unittest.TestCase):
    def run_case(self, case, make, after_step=None):
        entry, init, grads, traj = golden_case(case)
        names = entry["params"]
        params = {n: torch.nn.Parameter(torch.from_numpy(init[n].copy())) for n in names}
        opt, sched = make([(n, params[n]) for n in names])
        worst = 0.0
        for t in range(grads[names[0]].shape[0]):
            for n in names:
                params[n].grad = torch.from_numpy(grads[n][t].copy())
            opt.step()
            if sched is not None:
                sched.step()
            for n in names:
                ref = traj[n][t]
                rel = np.linalg.norm(params[n].detach().numpy() - ref) / np.linalg.norm(ref)
                worst = max(worst, rel)
        print(f"{case}: worst relative difference {worst:.2e} over {t + 1} steps")
        self.assertLess(worst, TOL)
        return opt

    def test_lion(self):
        for case in ("lion", "lion_zs"):
            self.run_case(case, lambda p: (st.Lion(p, lr=1e-3, betas=(0.9, 0.99)), None))

    def test_muon(self):
        self.run_case("muon", lambda p: (st.Muon(p, lr=0.02, weight_decay=0.1, momentum=0.95), None))

    def test_muon_adamw(self):
        # The golden muon_adam: Muon on the 2-D parameters, torch.optim.Adam (lr 0.01) on v,
        # which is AdamW with no decay.
        opt = self.run_case("muon_adam", lambda p: (st.MuonAdamW(p, lr=0.02, weight_decay=0.1, momentum=0.95,
                                                                 adamw_lr=0.01, adamw_weight_decay=0.0), None))
        self.assertEqual(opt.routes(), {"W1": 0, "W2": 0, "W3": 0, "v": 1})

    def test_adamw(self):
        self.run_case("adamw", lambda p: (st.AdamW(p, lr=0.01, weight_decay=0.1), None))

    def test_adam(self):
        self.run_case("adam", lambda p: (st.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8), None))

    def test_sgd_schedule(self):
        # lr_t = 0.1 / sqrt(t) through torch's LambdaLR: steep reads the group's lr at every step.
        def make(p):
            opt = st.SGD(p, lr=0.1, momentum=0.9)
            return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 / math.sqrt(k + 1))
        self.run_case("sgd_momentum_schedule", make)

    def against_reference(self, make, update, case="muon", tol=TOL):
        """steep.torch's `make` over the golden inputs of `case` against `update(name, p, g, t)`, a
        float64 NumPy re-implementation of the rule's equations (its header's), step by step."""
        entry, init, grads, _ = golden_case(case)
        names = entry["params"]
        params = {n: torch.nn.Parameter(torch.from_numpy(init[n].copy())) for n in names}
        opt = make([(n, params[n]) for n in names])
        ref = {n: init[n].copy() for n in names}
        worst = 0.0
        for t in range(1, grads[names[0]].shape[0] + 1):
            for n in names:
                g = grads[n][t - 1]
                params[n].grad = torch.from_numpy(g.copy())
                ref[n] = update(n, ref[n], g, t)
            opt.step()
            for n in names:
                rel = np.linalg.norm(params[n].detach().numpy() - ref[n]) / np.linalg.norm(ref[n])
                worst = max(worst, rel)
        print(f"{type(opt).__name__} against NumPy: worst relative difference {worst:.2e} over {t} steps")
        self.assertLess(worst, tol)
        return opt, params

    def test_adam_mini(self):
        lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.05
        m, v = {}, {}

        def update(n, p, g, t):
            m[n] = b1 * m.get(n, 0.0) + (1 - b1) * g
            v[n] = b2 * v.get(n, 0.0) + (1 - b2) * np.mean(g * g)
            return p * (1 - lr * wd) - lr * (m[n] / (1 - b1 ** t)) / (math.sqrt(v[n] / (1 - b2 ** t)) + eps)
        opt, params = self.against_reference(
            lambda p: st.AdamMini(p, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd), update, case="adam")
        self.assertEqual(tuple(opt.state[params["W1"]]["v"].shape), (1,))

    def test_normuon(self):
        # Li et al. 2025 as steep/rules/normuon.hpp writes it, with torch.optim.Muon's Newton-Schulz.
        lr, wd, mu, b2, eps = 0.02, 0.1, 0.95, 0.95, 1e-10
        buf, v = {}, {}

        def update(n, p, g, t):
            buf[n] = buf.get(n, 0.0) + (1 - mu) * (g - buf.get(n, 0.0))
            o = newton_schulz5(g + mu * (buf[n] - g))
            v[n] = b2 * v.get(n, 0.0) + (1 - b2) * np.mean(o * o, axis=1)
            o_hat = o / (np.sqrt(v[n])[:, None] + eps)
            o_hat *= np.linalg.norm(o) / (np.linalg.norm(o_hat) + eps)
            return p * (1 - lr * wd) - lr * math.sqrt(max(1, o.shape[0] / o.shape[1])) * o_hat
        opt, params = self.against_reference(
            lambda p: st.NorMuon(p, lr=lr, weight_decay=wd, momentum=mu, beta2=b2, eps=eps), update)
        self.assertEqual(tuple(opt.state[params["W1"]]["second_momentum_buffer"].shape), (48,))

    def test_shampoo(self):
        # Gupta et al. 2018 (beta2 = 1: sums) and the EMA factors of Shi et al. 2023 (beta2 < 1),
        # roots from an eigendecomposition, eigenvalues shifted to >= 0 and eps added
        # (steep/precond/shampoo.hpp).
        for beta2 in (1.0, 0.9):
            with self.subTest(beta2=beta2):
                lr, eps = 0.01, 1e-6
                left, right = {}, {}

                def update(n, p, g, t):
                    keep = beta2 if beta2 < 1 else 1.0
                    add = 1 - beta2 if beta2 < 1 else 1.0
                    left[n] = keep * left.get(n, 0.0) + add * g @ g.T
                    right[n] = keep * right.get(n, 0.0) + add * g.T @ g
                    return p - lr * inverse_root(left[n], eps) @ g @ inverse_root(right[n], eps)
                self.against_reference(lambda p: st.Shampoo(p, lr=lr, beta2=beta2, eps=eps), update)


def newton_schulz5(g, eps=1e-7):
    """torch.optim.Muon's quintic Newton-Schulz, 5 steps, on the wide orientation."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (np.linalg.norm(g) + eps)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for _ in range(5):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if tall else x


def inverse_root(a, eps, power=-0.25):
    lam, q = np.linalg.eigh(a)
    lam = lam - min(lam.min(), 0.0) + eps
    return (q * lam ** power) @ q.T


if __name__ == "__main__":
    unittest.main()
