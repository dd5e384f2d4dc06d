"""steep.torch in float64 against the golden trajectories (tests/data/golden: PyTorch 2.11 and
optax in float64), for the rules torch 1.13 lacks (Lion, Muon, Muon + AdamW) and a scheduled SGD;
Adam-mini against a NumPy re-implementation of its update (steep/rules/adam_mini.hpp)."""
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

    def test_sgd_schedule(self):
        # lr_t = 0.1 / sqrt(t) through torch's LambdaLR: steep reads the group's lr at every step.
        def make(p):
            opt = st.SGD(p, lr=0.1, momentum=0.9)
            return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 / math.sqrt(k + 1))
        self.run_case("sgd_momentum_schedule", make)

    def test_adam_mini(self):
        entry, init, grads, _ = golden_case("adam")
        names = entry["params"]
        lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.05
        params = {n: torch.nn.Parameter(torch.from_numpy(init[n].copy())) for n in names}
        opt = st.AdamMini([(n, params[n]) for n in names], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
        ref = {n: init[n].copy() for n in names}
        m = {n: np.zeros_like(init[n]) for n in names}
        v = {n: 0.0 for n in names}
        for t in range(1, grads[names[0]].shape[0] + 1):
            for n in names:
                g = grads[n][t - 1]
                params[n].grad = torch.from_numpy(g.copy())
                m[n] = b1 * m[n] + (1 - b1) * g
                v[n] = b2 * v[n] + (1 - b2) * np.mean(g * g)
                update = (m[n] / (1 - b1 ** t)) / (math.sqrt(v[n] / (1 - b2 ** t)) + eps)
                ref[n] = ref[n] * (1 - lr * wd) - lr * update
            opt.step()
            for n in names:
                rel = np.linalg.norm(params[n].detach().numpy() - ref[n]) / np.linalg.norm(ref[n])
                self.assertLess(rel, TOL, f"{n} at step {t}")
        self.assertEqual(tuple(opt.state[params["W1"]]["v"].shape), (1,))


if __name__ == "__main__":
    unittest.main()
