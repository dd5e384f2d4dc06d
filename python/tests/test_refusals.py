"""What steep.torch and steep._C refuse, by name, with parameters and state left as they were."""
import ctypes
import unittest

import numpy as np
import torch

import steep
import steep.torch as st
from steep import _C
from helpers import params_like


def snapshot(opt, params):
    return ([p.detach().clone() for p in params],
            [{k: v.clone() for k, v in opt.state[p].items()} for p in params if p in opt.state])


def assert_unchanged(test, opt, params, snap):
    now = snapshot(opt, params)
    for a, b in zip(now[0], snap[0]):
        test.assertTrue(torch.equal(a, b), "a refused step changed a parameter")
    test.assertEqual(len(now[1]), len(snap[1]))
    for a, b in zip(now[1], snap[1]):
        for k in b:
            test.assertTrue(torch.equal(a[k], b[k]), f"a refused step changed state '{k}'")


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Device), ("ndim", ctypes.c_int), ("dtype", _DType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


class _Managed(ctypes.Structure):
    _fields_ = [("dl_tensor", _Tensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.CFUNCTYPE(None, ctypes.c_void_p))]


def cuda_capsule(keep):
    """A DLPack capsule that says its float32 (4,) tensor is on CUDA device 0 (this machine has no GPU)."""
    shape = (ctypes.c_int64 * 1)(4)
    data = (ctypes.c_float * 4)()
    m = _Managed(_Tensor(ctypes.cast(data, ctypes.c_void_p), _Device(2, 0), 1, _DType(2, 32, 1), shape, None, 0),
                 None, ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None))
    keep += [shape, data, m]
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(ctypes.addressof(m), b"dltensor", None)


class Refusals(unittest.TestCase):
    def step_refused(self, opt, params, error, *words):
        snap = snapshot(opt, params)
        with self.assertRaises(error) as cm:
            opt.step()
        for w in words:
            self.assertIn(w, str(cm.exception))
        assert_unchanged(self, opt, params, snap)
        return cm.exception

    def test_not_contiguous(self):
        w = torch.nn.Parameter(torch.randn(8, 4).t())
        w.grad = torch.ones(4, 8)
        opt = st.AdamW([("fc.weight", w)])
        self.step_refused(opt, [w], ValueError, "fc.weight", "not contiguous")
        v = torch.nn.Parameter(torch.randn(4, 8))
        v.grad = torch.ones(8, 4).t()
        self.step_refused(st.AdamW([("fc2.weight", v)]), [v], ValueError, "gradient of parameter 'fc2.weight'",
                          "not contiguous")

    def test_unsupported_dtypes(self):
        for dtype in (torch.float16, torch.bfloat16):
            with self.subTest(dtype=dtype):
                w = torch.nn.Parameter(torch.randn(4, 3).to(dtype))
                w.grad = torch.ones(4, 3, dtype=dtype)
                self.step_refused(st.AdamW([("w", w)]), [w], ValueError, "'w'", "dtype")

    def test_mixed_dtypes_in_one_group(self):
        a = torch.nn.Parameter(torch.randn(3))
        b = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
        a.grad, b.grad = torch.ones(3), torch.ones(3, dtype=torch.float64)
        self.step_refused(st.SGD([("a", a), ("b", b)], lr=0.1), [a, b], ValueError, "'b'", "float64")

    def test_not_on_the_cpu(self):
        keep = []
        x = np.zeros(4, np.float32)
        with self.assertRaises(ValueError) as cm:
            _C.Group("float32", [("sgd", {})], [("w", [4], 0)], [cuda_capsule(keep)], [None])
        self.assertIn("parameter 'w' is not in CPU memory", str(cm.exception))
        g = _C.Group("float32", [("sgd", {})], [("w", [4], 0)], [x.__dlpack__()], [None])
        with self.assertRaises(ValueError) as cm:
            g.step([x.__dlpack__()], [cuda_capsule(keep)], [{"lr": 0.1}])
        self.assertIn("the gradient of parameter 'w' is not in CPU memory", str(cm.exception))
        self.assertEqual(g.steps, 0)
        m = torch.nn.Parameter(torch.zeros(3, device="meta"))
        m.grad = torch.zeros(3, device="meta")
        with self.assertRaises(ValueError) as cm:
            st.SGD([("m", m)], lr=0.1).step()
        self.assertIn("parameter 'm'", str(cm.exception))

    def test_missing_and_late_gradients(self):
        a, b, frozen = params_like([(4, 3), (3,), (2,)])
        a.grad, b.grad = torch.ones(4, 3), torch.ones(3)
        opt = st.AdamW([("a", a), ("b", b), ("frozen", frozen)], lr=0.1)
        opt.step()  # frozen has no gradient: left out, as torch skips it
        self.assertNotIn(frozen, opt.state)
        b.grad = None
        self.step_refused(opt, [a, b], ValueError, "parameter 'b' has no gradient")
        b.grad = torch.ones(3)
        frozen.grad = torch.ones(2)
        self.step_refused(opt, [a, b], ValueError, "parameter 'frozen' has a gradient")
        a.grad = b.grad = frozen.grad = None
        opt.step()  # no gradient anywhere: nothing to do, as in torch
        self.assertEqual(float(opt.state[a]["step"]), 1.0)

    def test_nonfinite_refuses_every_group(self):
        a, b = params_like([(4, 3), (5,)])
        opt = st.AdamW([{"params": [("a", a)]}, {"params": [("b", b)], "lr": 0.5}], lr=0.1)
        a.grad, b.grad = torch.ones(4, 3), torch.ones(5)
        opt.step()
        b.grad = torch.tensor([1.0, 2.0, float("nan"), 0.0, 1.0])
        e = self.step_refused(opt, [a, b], steep.NonFiniteError, "block 'b'", "NaN at flat index 2")
        self.assertIsInstance(e, ValueError)
        self.assertEqual([float(opt.state[p]["step"]) for p in (a, b)], [1.0, 1.0])

    def test_nonfinite_skip(self):
        a, = params_like([(4, 3)])
        opt = st.AdamW([("a", a)], lr=0.1, nonfinite="skip")
        a.grad = torch.ones(4, 3)
        opt.step()
        a.grad = torch.full((4, 3), float("inf"))
        snap = snapshot(opt, [a])
        self.assertIsNone(opt.step())
        self.assertEqual(opt.last_outcome, "refused")
        self.assertEqual(opt.skipped_steps, 1)
        assert_unchanged(self, opt, [a], snap)
        self.assertEqual(float(opt.state[a]["step"]), 1.0)

    def test_nonfinite_mask(self):
        a, = params_like([(4,)])
        opt = st.AdamW([("a", a)], lr=0.1, nonfinite="mask")
        before = a.detach().clone()
        a.grad = torch.tensor([1.0, float("nan"), 1.0, 1.0])
        opt.step()
        self.assertEqual(opt.last_outcome, "held_back")
        self.assertEqual(float(a[1]), float(before[1]))
        self.assertNotEqual(float(a[0]), float(before[0]))
        self.assertIn("flat index 1", opt.held_back())

    def test_options_steep_lacks(self):
        p = params_like([(3,)])
        for make in (lambda: st.AdamW(p, amsgrad=True), lambda: st.AdamW(p, maximize=True),
                     lambda: st.SGD(p, lr=0.1, weight_decay=0.1), lambda: st.SGD(p, lr=0.1, dampening=0.1),
                     lambda: st.Adam(p, weight_decay=0.1), lambda: st.AdamW(p, nonfinite="ignore"),
                     lambda: st.Muon(p, nesterov=False)):
            with self.assertRaises(ValueError):
                make()

    def test_bad_hyperparameter_changes_nothing(self):
        a, = params_like([(4, 3)])
        opt = st.AdamW([("a", a)], lr=0.1)
        a.grad = torch.ones(4, 3)
        opt.step()
        opt.param_groups[0]["lr"] = -1.0
        self.step_refused(opt, [a], ValueError, "lr")
        opt.param_groups[0]["lr"] = 0.1
        opt.step()
        self.assertEqual(float(opt.state[a]["step"]), 2.0)

    def test_matrix_rules_name_a_vector(self):
        w, v = params_like([(4, 3), (3,)])
        w.grad, v.grad = torch.ones(4, 3), torch.ones(3)
        for cls in (st.Muon, st.NorMuon, st.Shampoo, st.SOAP):
            with self.subTest(rule=cls.__name__):
                self.step_refused(cls([("w", w), ("bias", v)]), [w, v], ValueError, "block 'bias'", "not a matrix")


if __name__ == "__main__":
    unittest.main()
