"""steep.numpy: a steep optimizer over NumPy arrays, stepped in place (no copy).

    import numpy as np, steep.numpy
    w, b = np.zeros((256, 128), np.float32), np.zeros(256, np.float32)
    opt = steep.numpy.Optimizer("adamw", {"W": w, "b": b}, lr=1e-3, weight_decay=0.01)
    opt.step({"W": grad_w, "b": grad_b})      # w and b change in place; 'applied'
    opt.set(lr=1e-4)                           # hyperparameters, in steep's names
    opt.state("W", "exp_avg")                  # a NumPy view of steep's state

rule: one of steep.rule_names() (steep._C builds steep::compiled's instances); settings: the
rule's construction settings (Shampoo, SOAP). Arrays must be C-contiguous, writeable, float32
or float64 (all one dtype); anything else is refused by name. The arrays passed here are the
ones stepped: keep them alive and do not replace them.
"""
import numpy as np

from steep import _C


class _Lent:
    """What np.from_dlpack needs around a capsule of steep's memory."""

    def __init__(self, capsule):
        self._capsule = capsule

    def __dlpack__(self, stream=None):
        return self._capsule

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU


def _capsule(a, what):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{what}: expected a NumPy array, got {type(a).__name__}")
    try:
        return a.__dlpack__()
    except (BufferError, TypeError) as e:  # read-only arrays, unsupported dtypes
        raise ValueError(f"{what}: NumPy cannot export it through DLPack ({e})") from None


class Optimizer:
    def __init__(self, rule, params, *, settings=None, threads=0, nonfinite="refuse", **hypers):
        self.names = list(params)
        self._params = [params[n] for n in self.names]
        dtype = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}.get(
            getattr(self._params[0], "dtype", None), "float32") if self._params else "float32"
        self._group = _C.Group(dtype, [(rule, dict(settings or {}))],
                               [(n, list(np.shape(a)), 0) for n, a in zip(self.names, self._params)],
                               [_capsule(a, f"parameter '{n}'") for n, a in zip(self.names, self._params)],
                               [None] * len(self.names), threads, nonfinite)
        self._hypers = dict(self._group.hyperparameters(0))
        self.set(**hypers)

    def set(self, **hypers):
        """Sets hyperparameters (steep's names: lr, beta1, beta2, eps, weight_decay, momentum)."""
        unknown = set(hypers) - set(self._hypers)
        if unknown:
            raise ValueError(f"no hyperparameter {sorted(unknown)}; this rule has {sorted(self._hypers)}")
        self._hypers.update({k: float(v) for k, v in hypers.items()})

    def get(self, name):
        return self._hypers[name]

    def step(self, grads):
        """One step with grads {name: array}; 'applied', 'held_back' or 'refused'."""
        missing = [n for n in self.names if n not in grads]
        if missing:
            raise ValueError(f"parameter '{missing[0]}' has no gradient in this step's grads")
        ps = [_capsule(a, f"parameter '{n}'") for n, a in zip(self.names, self._params)]
        gs = [_capsule(grads[n], f"the gradient of parameter '{n}'") for n in self.names]
        return self._group.step(ps, gs, [self._hypers])

    def state(self, name, slot):
        """A NumPy view of steep's state `slot` of parameter `name` (writes go to steep)."""
        index = self.names.index(name)
        for k, s, capsule in self._group.state():
            if k == index and s == slot:
                return np.from_dlpack(_Lent(capsule))
        raise KeyError(f"parameter '{name}' has no state slot '{slot}'")

    @property
    def steps(self):
        return self._group.steps

    def describe(self):
        return self._group.describe()
