"""Checkpoints: state_dict / load_state_dict / torch.save with steep.torch, and both directions
with torch.optim.AdamW (the same state keys); param groups and a scheduler across a load."""
import io
import unittest

import torch

import steep.torch as st
from helpers import clones, params_like, set_grads

SHAPES = [(12, 6), (6,), (3, 4)]


def saved(opt):
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf)


def groups(params, **kw):
    return [{"params": params[:2], **kw}, {"params": params[2:], "lr": 3e-3, "weight_decay": 0.0}]


class StateDict(unittest.TestCase):
    def continue_both(self, a, ps, b, qs, steps=5, tol=2e-6):
        for t in range(steps):
            set_grads(zip(ps, qs), 100 + t)
            a.step()
            b.step()
        for p, q in zip(ps, qs):
            self.assertLess(float((p - q).abs().max()), tol)
        for p, q in zip(ps, qs):
            for k in ("exp_avg", "exp_avg_sq"):
                self.assertLess(float((a.state[p][k] - b.state[q][k]).abs().max()), tol)
            self.assertEqual(float(a.state[p]["step"]), float(b.state[q]["step"]))

    def moved(self, make_from, make_to, steps=7):
        """Trains `make_from` for some steps, then loads its checkpoint into a `make_to` over a
        copy of the parameters: (source, its params, destination, its params)."""
        ps = params_like(SHAPES)
        qs = clones(ps)
        src = make_from(groups(ps, lr=1e-2))
        for t in range(steps):
            set_grads(zip(ps, clones(ps)), t)
            src.step()
        with torch.no_grad():
            for p, q in zip(ps, qs):
                q.copy_(p)
        dst = make_to(groups(qs, lr=1e-2))
        dst.load_state_dict(saved(src))
        for p, q in zip(ps, qs):
            for k in ("exp_avg", "exp_avg_sq"):
                self.assertTrue(torch.equal(src.state[p][k], dst.state[q][k]))
            self.assertEqual(float(dst.state[q]["step"]), float(steps))
        self.assertEqual([g["lr"] for g in dst.param_groups], [1e-2, 3e-3])
        return src, ps, dst, qs

    def test_torch_to_steep(self):
        b, qs, a, ps = self.moved(torch.optim.AdamW, st.AdamW)
        self.continue_both(a, ps, b, qs)

    def test_steep_to_torch(self):
        self.continue_both(*self.moved(st.AdamW, torch.optim.AdamW))

    def test_steep_round_trip_is_steeps_own_memory(self):
        for cls, kw in ((st.AdamW, {}), (st.Lion, {}), (st.AdamMini, {}), (st.SGD, dict(lr=0.1, momentum=0.9)),
                        (st.Muon, {}), (st.NorMuon, {}), (st.Shampoo, dict(every=2)),
                        (st.SOAP, dict(precondition_frequency=2)), (st.MuonAdamW, {})):
            with self.subTest(rule=cls.__name__):
                matrices = cls in (st.Muon, st.NorMuon, st.Shampoo, st.SOAP)
                shapes = [(12, 6), (3, 4)] if matrices else SHAPES
                ps = params_like(shapes, torch.float64)
                qs = clones(ps)
                a = cls(ps, **kw)
                for t in range(5):
                    set_grads(zip(ps, clones(ps)), t)
                    a.step()
                with torch.no_grad():
                    for p, q in zip(ps, qs):
                        q.copy_(p)
                b = cls(qs, **kw)
                b.load_state_dict(saved(a))
                for p, q in zip(ps, qs):
                    self.assertEqual(set(a.state[p]), set(b.state[q]))
                    for k, v in b.state[q].items():
                        self.assertTrue(torch.equal(v, a.state[p][k]), k)
                # The loaded values are steep's memory: the next steps agree bitwise.
                for t in range(3):
                    set_grads(zip(ps, qs), 50 + t)
                    a.step()
                    b.step()
                for p, q in zip(ps, qs):
                    self.assertTrue(torch.equal(p, q))
                    for k, v in b.state[q].items():
                        self.assertTrue(torch.equal(v, a.state[p][k]), k)

    def test_a_bad_checkpoint_changes_nothing(self):
        ps = params_like(SHAPES)
        a = st.AdamW(ps, lr=1e-2)
        set_grads(zip(ps, clones(ps)), 0)
        a.step()
        before = {k: v.clone() for k, v in a.state[ps[0]].items()}
        bad = saved(a)
        bad["state"][0]["exp_avg"] = torch.zeros(5)
        with self.assertRaises(ValueError) as cm:
            a.load_state_dict(bad)
        self.assertIn("exp_avg", str(cm.exception))
        self.assertIn("group0.param0", str(cm.exception))
        odd = saved(a)
        odd["state"][1]["step"] = torch.tensor(4.0)
        with self.assertRaises(ValueError):
            a.load_state_dict(odd)
        for k, v in before.items():
            self.assertTrue(torch.equal(a.state[ps[0]][k], v))
        set_grads(zip(ps, clones(ps)), 1)
        a.step()
        self.assertEqual(float(a.state[ps[0]]["step"]), 2.0)

    def test_groups_and_a_scheduler(self):
        ps = params_like(SHAPES)
        qs = clones(ps)
        a, b = st.AdamW(groups(ps, lr=1e-2)), torch.optim.AdamW(groups(qs, lr=1e-2))
        sa = torch.optim.lr_scheduler.StepLR(a, step_size=2, gamma=0.5)
        sb = torch.optim.lr_scheduler.StepLR(b, step_size=2, gamma=0.5)
        for t in range(6):
            set_grads(zip(ps, qs), t)
            a.step()
            b.step()
            sa.step()
            sb.step()
        self.assertEqual([g["lr"] for g in a.param_groups], [g["lr"] for g in b.param_groups])
        self.continue_both(a, ps, b, qs, steps=1)
        # a group added later steps with its own settings
        extra = torch.nn.Parameter(torch.ones(3))
        a.add_param_group({"params": [("late", extra)], "lr": 0.5, "weight_decay": 0.0})
        extra.grad = torch.ones(3)
        set_grads(zip(ps, clones(ps)), 9)
        a.step()
        self.assertAlmostEqual(float(extra[0]), 0.5, places=5)  # 1 - lr * sign-like first Adam step

    def test_closure(self):
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        opt = st.SGD([p], lr=0.1)

        def closure():
            opt.zero_grad()
            loss = (p ** 2).sum()
            loss.backward()
            return loss
        loss = opt.step(closure)
        self.assertAlmostEqual(float(loss), 5.0)
        self.assertTrue(torch.allclose(p, torch.tensor([0.8, -1.6])))


if __name__ == "__main__":
    unittest.main()
