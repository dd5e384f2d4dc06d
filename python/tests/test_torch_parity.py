"""steep.torch against torch.optim, step by step, in float32 and float64.

Per step both optimizers start from the same parameters and state (steep's is set to torch's
through its state views before each step) and take the same gradient.

Adam and AdamW run steep's rules in torch's order of operations (adam_torch, adamw_torch:
dsl/steep/rules/torch_order.hpp). Adam must then equal torch bit for bit, state and parameters,
every step and over a free-running trajectory. So must AdamW: its parameter is torch's
p (1 - lr wd) + u, written (p (1 - lr wd) + u) - param, which the engine's update sets the
parameter to rather than adding it to p (engine/passes/update.hpp). The per-step check still
measures, for a rule that is not bitwise, the parameters in ulps of max(|old|, |new|).

SGD runs sgd, momentum_torch and nesterov_torch, and must agree bitwise. Its check reports each
entry's difference in ulps of the largest term that step adds up for it (for a momentum buffer
mu b + g: |mu b|, |g| and the result; for a parameter: the old and new values and lr times the
update's terms), within ULPS for a rule in another order than torch's. The worst ulps and the
share of bitwise-equal entries are printed. Then free-running trajectories: 50 steps must stay
within a small relative distance.
"""
import unittest

import numpy as np
import torch

import steep.torch as st
from helpers import clones, params_like, set_grads

SHAPES = [(16, 8), (8,), (3, 5, 7), ()]
# Per step: also one long enough for whole SIMD batches and a tail (torch's AVX2, steep's AVX-512).
ADAM_SHAPES = SHAPES + [(1000, 37)]
ULPS = 2.0


def f64(t):
    return t.detach().numpy().astype(np.float64)


def sgd_scales(hp, t, g, p_old, p_new, old, new):
    """The terms of torch.optim.SGD's step, per entry (1-based step t)."""
    lr, mu = hp["lr"], hp.get("momentum", 0.0)
    if mu == 0:
        return {"param": [p_old, p_new, lr * g]}
    b_old = old["momentum_buffer"] if t > 1 else np.zeros_like(g)
    b_new = new["momentum_buffer"]
    return {"momentum_buffer": [mu * b_old, g, b_new],
            "param": [p_old, p_new, lr * g, lr * b_old, lr * b_new]}


def per_step(test, make_steep, make_torch, scales, hp, dtype, steps=12, keys=(), limits=None):
    ps = params_like(ADAM_SHAPES, dtype)
    qs = clones(ps)
    a, b = make_steep(ps), make_torch(qs)
    worst, bitwise, total = {}, 0, 0
    for t in range(steps):
        set_grads(zip(ps, qs), t)
        if t > 0:  # start from torch's values: one step's difference, not an accumulated one
            with torch.no_grad():
                for p, q in zip(ps, qs):
                    p.copy_(q)
                    for k in keys:
                        a.state[p][k].copy_(b.state[q][k])
        before = [(f64(q), {k: f64(b.state[q][k]) for k in keys} if t > 0 else {}) for q in qs]
        a.step()
        b.step()
        for p, q, (p_old, old) in zip(ps, qs, before):
            new = {k: f64(b.state[q][k]) for k in keys}
            terms = scales(hp, t + 1, f64(q.grad), p_old, f64(q), old, new)
            for k, x, y in [("param", p, q)] + [(k, a.state[p][k], b.state[q][k]) for k in keys]:
                scale = np.max(np.abs(np.stack(np.broadcast_arrays(*terms[k]))), axis=0)
                ulp = np.spacing(scale.astype(y.detach().numpy().dtype)).astype(np.float64)
                diff = np.abs(f64(x) - f64(y))
                worst[k] = max(worst.get(k, 0.0), float((diff / ulp).max(initial=0)))
                bitwise += int((diff == 0).sum())
                total += diff.size
    for k, w in worst.items():
        test.assertLessEqual(w, (limits or {}).get(k, ULPS), f"{k}: {w} ulps")
    return worst, bitwise / total


def torch_order(test, make_steep, make_torch, dtype, steps=12):
    """Adam / AdamW per step: the state bitwise; the parameters bitwise where the step moved them
    by less than half their value, and within 1 ulp of max(|old|, |new|) elsewhere. Returns the
    worst parameter difference in those ulps and the share of bitwise-equal parameter entries."""
    keys = ("exp_avg", "exp_avg_sq")
    ps = params_like(ADAM_SHAPES, dtype)
    qs = clones(ps)
    a, b = make_steep(ps), make_torch(qs)
    worst, bitwise, total = 0.0, 0, 0
    for t in range(steps):
        set_grads(zip(ps, qs), t)
        if t > 0:
            with torch.no_grad():
                for p, q in zip(ps, qs):
                    p.copy_(q)
                    for k in keys:
                        a.state[p][k].copy_(b.state[q][k])
        before = [f64(q) for q in qs]
        a.step()
        b.step()
        for p, q, old in zip(ps, qs, before):
            for k in keys:
                test.assertTrue(torch.equal(a.state[p][k], b.state[q][k]), f"step {t + 1}: {k} differs")
            x, y = f64(p), f64(q)
            diff = np.abs(x - y)
            small_move = np.abs(y - old) <= np.abs(old) / 2
            test.assertEqual(int((diff[small_move] > 0).sum()), 0, f"step {t + 1}: a parameter that moved by less "
                             "than half its value differs")
            largest = np.maximum(np.abs(old), np.maximum(np.abs(x), np.abs(y))).astype(q.detach().numpy().dtype)
            worst = max(worst, float((diff / np.spacing(largest).astype(np.float64)).max(initial=0)))
            bitwise += int((diff == 0).sum())
            total += diff.size
    test.assertLessEqual(worst, 1.0)
    return worst, bitwise / total


def free_running(test, make_steep, make_torch, dtype, steps=50, rtol=None):
    ps = params_like(SHAPES, dtype, seed=3)
    qs = clones(ps)
    a, b = make_steep(ps), make_torch(qs)
    for t in range(steps):
        set_grads(zip(ps, qs), t, seed=4)
        a.step()
        b.step()
    for p, q in zip(ps, qs):
        d = float((p - q).norm() / (q.norm() + 1e-30))
        test.assertLess(d, rtol or (1e-5 if dtype == torch.float32 else 1e-13), d)


class Parity(unittest.TestCase):
    def check(self, name, make_steep, make_torch, scales, hp, keys, bitwise_expected=False, limits=None):
        for dtype in (torch.float32, torch.float64):
            with self.subTest(dtype=dtype):
                worst, same = per_step(self, make_steep, make_torch, scales, hp, dtype, keys=keys, limits=limits)
                print(f"{name} {dtype}: worst ulps per step {worst}, {100 * same:.1f}% of entries bitwise")
                if bitwise_expected:
                    self.assertEqual(max(worst.values()), 0.0)
                free_running(self, make_steep, make_torch, dtype)

    def check_torch_order(self, name, make_steep, torch_class, kw, bitwise):
        for dtype in (torch.float32, torch.float64):
            for foreach in (False, True):  # torch's two CPU paths make the same per-tensor calls
                with self.subTest(dtype=dtype, foreach=foreach):
                    make_torch = lambda p: torch_class(p, foreach=foreach, **kw)  # noqa: E731
                    worst, same = torch_order(self, lambda p: make_steep(p, **kw), make_torch, dtype)
                    print(f"{name} {dtype} foreach={foreach}: parameters within {worst} ulp of max(|old|, |new|), "
                          f"{100 * same:.2f}% bitwise; state bitwise")
                    if bitwise:
                        self.assertEqual(worst, 0.0)
                        self.assertEqual(same, 1.0)
            with self.subTest(dtype=dtype, free_running=True):
                ps = params_like(SHAPES, dtype, seed=3)
                qs = clones(ps)
                a, b = make_steep(ps, **kw), torch_class(qs, **kw)
                for t in range(50):
                    set_grads(zip(ps, qs), t, seed=4)
                    a.step()
                    b.step()
                for p, q in zip(ps, qs):
                    if bitwise:
                        self.assertTrue(torch.equal(p, q), f"{name}: 50 steps are not bitwise equal")
                    d = float((p - q).norm() / (q.norm() + 1e-30))
                    self.assertLess(d, 1e-6 if dtype == torch.float32 else 1e-15, d)

    def test_adamw(self):
        self.check_torch_order("AdamW", st.AdamW, torch.optim.AdamW,
                               dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1), bitwise=True)

    def test_adam(self):
        self.check_torch_order("Adam", st.Adam, torch.optim.Adam, dict(lr=3e-3, betas=(0.9, 0.999), eps=1e-8),
                               bitwise=True)

    def test_sgd(self):
        self.check("SGD", lambda p: st.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1), sgd_scales,
                   dict(lr=0.1), (), bitwise_expected=True)

    def test_sgd_momentum(self):
        kw = dict(lr=0.05, momentum=0.9)
        for foreach in (False, True):
            self.check(f"SGD momentum foreach={foreach}", lambda p: st.SGD(p, **kw),
                       lambda p: torch.optim.SGD(p, foreach=foreach, **kw), sgd_scales, kw, ("momentum_buffer",),
                       bitwise_expected=True)

    def test_sgd_nesterov(self):
        kw = dict(lr=0.05, momentum=0.9, nesterov=True)
        for foreach in (False, True):
            self.check(f"SGD nesterov foreach={foreach}", lambda p: st.SGD(p, **kw),
                       lambda p: torch.optim.SGD(p, foreach=foreach, **kw), sgd_scales, kw, ("momentum_buffer",),
                       bitwise_expected=True)

    def test_step_state_is_torchs(self):
        ps = params_like(SHAPES)
        qs = clones(ps)
        a, b = st.AdamW(ps), torch.optim.AdamW(qs)
        for t in range(3):
            set_grads(zip(ps, qs), t)
            a.step()
            b.step()
        for p, q in zip(ps, qs):
            self.assertEqual(set(a.state[p]), set(b.state[q]))
            self.assertEqual(a.state[p]["step"].dtype, b.state[q]["step"].dtype)
            self.assertEqual(a.state[p]["step"].shape, b.state[q]["step"].shape)
            self.assertEqual(float(a.state[p]["step"]), 3.0)


if __name__ == "__main__":
    unittest.main()
