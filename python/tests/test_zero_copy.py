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
