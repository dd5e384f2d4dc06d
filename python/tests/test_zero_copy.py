"""No copies: steep steps the tensors' own memory, and its state is what self.state shows."""
import unittest

import numpy as np
import torch

import steep.numpy
import steep.torch as st
from helpers import clones, params_like, set_grads


class ZeroCopy(unittest.TestCase):
    def test_parameters_and_state_stay_in_place(self):
        ps = params_like([(32, 16), (16,)])
        opt = st.AdamW(ps, lr=1e-2)
        set_grads(zip(ps, clones(ps)), 0)
        opt.step()
        addresses = [p.data_ptr() for p in ps]
        state = [(opt.state[p]["exp_avg"].data_ptr(), opt.state[p]["exp_avg_sq"].data_ptr()) for p in ps]
        for t in range(1, 5):
            before = [p.detach().clone() for p in ps]
            set_grads(zip(ps, clones(ps)), t)
            opt.step()
            self.assertEqual([p.data_ptr() for p in ps], addresses)
            self.assertEqual([(opt.state[p]["exp_avg"].data_ptr(), opt.state[p]["exp_avg_sq"].data_ptr())
                              for p in ps], state)
            for p, b in zip(ps, before):
                self.assertFalse(torch.equal(p, b), "the step did not change the parameter in place")

    def test_a_write_through_the_tensor_is_seen(self):
        ps = params_like([(8, 4)])
        qs = clones(ps)
        a, b = st.SGD(ps, lr=0.1, momentum=0.9), torch.optim.SGD(qs, lr=0.1, momentum=0.9)
        for t in range(3):
            set_grads(zip(ps, qs), t)
            a.step()
            b.step()
        with torch.no_grad():
            for p, q in ((ps[0], qs[0]),):
                p.mul_(0.5), q.mul_(0.5)  # the parameter, written by the user
                a.state[p]["momentum_buffer"].fill_(0.25)  # and steep's state, through its view
                b.state[q]["momentum_buffer"].fill_(0.25)
        set_grads(zip(ps, qs), 3)
        a.step()
        b.step()
        # Not bitwise (test_torch_parity: the sums round in another order), but a write steep did
        # not see would leave a difference of the parameter's size, 0.5 and more.
        self.assertLess(float((ps[0] - qs[0]).abs().max()), 1e-6)
        buffers = a.state[ps[0]]["momentum_buffer"], b.state[qs[0]]["momentum_buffer"]
        self.assertLess(float((buffers[0] - buffers[1]).abs().max()), 1e-6)

    def test_fresh_gradients_after_set_to_none(self):
        ps = params_like([(8, 4), (4,)])
        qs = clones(ps)
        a, b = st.AdamW(ps, lr=1e-2), torch.optim.AdamW(qs, lr=1e-2)
        w = torch.randn(4, 3)
        for t in range(5):
            for opt, params in ((a, ps), (b, qs)):
                opt.zero_grad(set_to_none=True)
                loss = ((params[0] @ torch.ones(4, 3) - w.sum(0)) ** 2).sum() + (params[1] ** 2).sum()
                loss.backward()
            self.assertEqual([p.grad.data_ptr() != 0 for p in ps], [True, True])
            a.step()
            b.step()
        for p, q in zip(ps, qs):
            self.assertLess(float((p - q).abs().max()), 1e-5)

    def test_zero_grad_in_place(self):
        ps = params_like([(8, 4)])
        opt = st.AdamW(ps, lr=1e-2)
        ps[0].grad = torch.ones(8, 4)
        opt.step()
        grad = ps[0].grad
        opt.zero_grad(set_to_none=False)
        self.assertIs(ps[0].grad, grad)
        self.assertEqual(float(grad.abs().sum()), 0.0)
        opt.zero_grad(set_to_none=True)
        self.assertIsNone(ps[0].grad)

    def test_what_a_step_binds_again(self):
        # A step reads a tensor through DLPack again only when it is not the one bound last (the
        # same object at the same address); whichever way it goes, the step equals torch's.
        ps = params_like([(8, 4), (4,)])
        qs = clones(ps)
        a, b = st.Adam(ps, lr=1e-2), torch.optim.Adam(qs, lr=1e-2)
        reads, calls = [], []

        def step(t, how):
            g = torch.Generator().manual_seed(t)
            for p, q in zip(ps, qs):
                grad = torch.randn(p.shape, generator=g)
                if how == "in place" and p.grad is not None:
                    p.grad.copy_(grad), q.grad.copy_(grad)   # the tensors bound last: no capsule
                else:
                    p.grad, q.grad = grad.clone(), grad.clone()  # new gradients: read again
            a.step()
            b.step()
            for p, q in zip(ps, qs):
                self.assertTrue(torch.equal(p, q), f"step {t} ({how})")
            if calls:
                reads.append(t)
                calls.clear()
            engine = a._engines[0]
            if not hasattr(engine, "counted"):  # count the steps that read capsules
                engine.counted, capsules = True, engine.capsules
                engine.capsules = lambda group: calls.append(1) or capsules(group)

        for t, how in enumerate(["new", "in place", "in place", "new", "in place"]):
            step(t, how)
        self.assertEqual(reads, [3])
        # A parameter given new memory (model.to(), p.data = ...) is stepped there, not in the old.
        old = ps[0].data
        with torch.no_grad():
            ps[0].data = old.clone()
            qs[0].data = qs[0].data.clone()
        frozen = old.clone()
        step(5, "in place")
        self.assertTrue(torch.equal(old, frozen), "the step wrote the parameter's old memory")
        # ... and one given memory steep cannot step in place is refused by name.
        with torch.no_grad():
            ps[0].data = torch.zeros(4, 8).t()
        with self.assertRaisesRegex(ValueError, "group0.param0.*not contiguous"):
            a.step()

    def test_hyperparameters_read_when_changed(self):
        # The group's values are read again when one changes, replaced or (a list) changed in place.
        ps = params_like([(6,)])
        qs = clones(ps)
        a = st.Adam(ps, lr=1e-2, betas=[0.9, 0.999])
        b = torch.optim.Adam(qs, lr=1e-2, betas=[0.9, 0.999])
        for t in range(6):
            set_grads(zip(ps, qs), t)
            if t == 2:
                for opt in (a, b):
                    opt.param_groups[0]["lr"] = 3e-2
            if t == 4:
                for opt in (a, b):
                    opt.param_groups[0]["betas"][0] = 0.5
            a.step()
            b.step()
            self.assertTrue(torch.equal(ps[0], qs[0]), f"step {t}")
        self.assertEqual(dict(a._engines[0].core.hyperparameters(0))["beta1"], 0.5)

    def test_profiler_sees_the_step(self):
        # steep's step() skips torch's profiling wrapper unless a profiler runs; then it is labelled.
        ps = params_like([(4,)])
        opt = st.AdamW(ps)
        set_grads(zip(ps, clones(ps)), 0)
        with torch.autograd.profiler.profile() as prof:
            opt.step()
        self.assertIn("Optimizer.step#AdamW.step", [e.name for e in prof.function_events])
        self.assertEqual(float(opt.state[ps[0]]["step"]), 1.0)

    def test_numpy_arrays_step_in_place(self):
        w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
        b = np.zeros(3, dtype=np.float32)
        wt, bt = torch.nn.Parameter(torch.from_numpy(w.copy())), torch.nn.Parameter(torch.from_numpy(b.copy()))
        address = w.ctypes.data
        opt = steep.numpy.Optimizer("adamw", {"W": w, "b": b}, lr=0.1, weight_decay=0.01)
        ref = torch.optim.AdamW([wt, bt], lr=0.1, weight_decay=0.01)
        for t in range(4):
            gw = np.full((4, 3), 0.5 + t, dtype=np.float32)
            gb = np.arange(3, dtype=np.float32) - t
            self.assertEqual(opt.step({"W": gw, "b": gb}), "applied")
            wt.grad, bt.grad = torch.from_numpy(gw), torch.from_numpy(gb)
            ref.step()
        self.assertEqual(w.ctypes.data, address)
        np.testing.assert_allclose(w, wt.detach().numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(b, bt.detach().numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(opt.state("W", "exp_avg"), ref.state[wt]["exp_avg"].numpy(), rtol=1e-6)
        self.assertEqual(opt.steps, 4)


if __name__ == "__main__":
    unittest.main()
