"""steep.compile_rule: a new optimizer from a rule written in steep's C++ DSL, compiled at run time.

    import steep
    Signum = steep.compile_rule('-lr * sign(ema<"m">(grad, beta))', hyper={"lr": 1e-3, "beta": 0.9})
    opt = Signum(model.parameters(), lr=3e-4)          # a torch.optim.Optimizer; lr read at every step
    Signum.rule.implied_norm                            # ('linf', True, '...'): the margin it maximizes
    rule = steep.jit.compile('-lr * grad', hyper={"lr": 0.1})   # no torch: rule.numpy({"w": w})

The expression is C++ in namespace steep::rules (dsl/steep/rules/common.hpp: grad, param, ema<"name">,
sign, sqrt, debias, dual<norms::spectral>, ... and the catalogue's rules, e.g. 'lion(lr)'), the change
of a parameter per step: p <- p + rule. Each name in `hyper` is a run-time hyperparameter (hyper<"name">,
range-checked as the catalogue's: lr, eps, weight_decay >= 0; beta, beta1, beta2, momentum in [0, 1);
any other name: finite), its value the default; the source does not depend on the values, so one
compiled object serves every value. The unit is compiled once per content (steep/_jit_build.py:
cache, lock, precompiled header) and loaded with ctypes over its C ABI (python/jit/steep_jit.hpp).
"""
import ctypes
import time
from collections import namedtuple

from steep import _jit_abi, _jit_build
from steep._jit_build import RuleError  # noqa: F401

RANGES = {"lr": "nonnegative", "eps": "nonnegative", "weight_decay": "nonnegative", "beta": "unit_interval",
          "beta1": "unit_interval", "beta2": "unit_interval", "momentum": "unit_interval"}
ImpliedNorm = namedtuple("ImpliedNorm", "name known reason")


def generate(expression, names, dtype):
    """The C++ unit of a rule for one element type: the user's expression alone on line 1 of file 'rule'."""
    if dtype not in _jit_abi.SIZES:
        raise ValueError(f"dtype {dtype!r}: steep steps float32 or float64")
    for n in names:
        if not n.isidentifier() or n.startswith("_"):
            raise ValueError(f"hyperparameter name {n!r}: expected a C++ identifier not starting with '_'")
    if "\n#" in "\n" + expression:
        raise ValueError("a rule is one C++ expression; a preprocessor line is not allowed in it")
    decl = "".join(f'  [[maybe_unused]] const auto {n} = named<"{n}", range::{RANGES.get(n, "finite")}>(h[{i}]);\n'
                   for i, n in enumerate(names))
    return ('#include "steep_jit.hpp"\n'
            "namespace steep_jit_rule {\n"
            "using namespace steep::rules;\n"
            "namespace norms = steep::norms;\n"
            "inline auto make([[maybe_unused]] const double* h) {\n"
            f"{decl}"
            "  return (\n"
            f'#line 1 "{_jit_build.RULE_FILE}"\n'
            f"{expression}\n"
            '#line 1000000 "rule.cpp"\n'
            "  );\n"
            "}\n"
            "} // namespace steep_jit_rule\n"
            f"STEEP_JIT_EXPORT(steep_jit_rule::make, {'float' if dtype == 'float32' else 'double'})\n")


class CompiledRule:
    """A loaded rule: its hyperparameters' defaults, implied norm, and optimizers over it."""

    def __init__(self, expression, hyper, dtype):
        self.expression, self.hyper = expression, dict(hyper)
        self.compile_seconds, self.load_seconds, self.paths, self._libs = {}, {}, {}, {}
        self.lib(dtype)

    def lib(self, dtype):
        """The loaded object for `dtype`, compiled (or taken from the cache) on first use."""
        if dtype not in self._libs:
            source = generate(self.expression, list(self.hyper), dtype)
            self.paths[dtype], self.compile_seconds[dtype] = _jit_build.build(source, self.expression)
            t0 = time.perf_counter()
            self._libs[dtype] = _jit_abi.load(self.paths[dtype])
            self.load_seconds[dtype] = time.perf_counter() - t0
        return self._libs[dtype]

    @property
    def implied_norm(self):
        """(name, known, reason): steep::implied_norm<Rule> of the compiled rule's type."""
        lib = next(iter(self._libs.values()))
        return ImpliedNorm(lib.steep_jit_norm_name().decode(), bool(lib.steep_jit_norm_known()),
                           lib.steep_jit_norm_reason().decode())

    def session(self, dtype, names, shapes, params, grads, hyper=None, threads=0, nonfinite="refuse", roles=None):
        values = dict(self.hyper)
        for k, v in (hyper or {}).items():
            if k not in values:
                raise ValueError(f"hyperparameter {k!r}: the rule has {sorted(values)}")
            values[k] = v
        return _jit_abi.Session(self.lib(dtype), names, shapes, params, grads, [float(values[k]) for k in self.hyper],
                                threads, nonfinite, roles)

    def describe(self, shape=(4, 4), dtype=None):
        """What steep compiled the rule to, for one block of `shape` (dtype: the first compiled)."""
        import numpy as np
        dtype = dtype or next(iter(self._libs))
        p, g = np.zeros(shape, dtype), np.zeros(shape, dtype)
        return self.session(dtype, ["W"], [tuple(shape)], [p.ctypes.data], [g.ctypes.data]).describe()

    def numpy(self, params, threads=0, nonfinite="refuse", **hyper):
        """An optimizer over NumPy arrays {name: array}, stepping them in place: opt.step({name: grad})."""
        return NumpyOptimizer(self, params, threads, nonfinite, hyper)


def compile(expression, hyper=None, dtype="float32"):  # noqa: A001 (steep.jit.compile, as re.compile)
    """The CompiledRule of `expression`, compiled now for `dtype` (or taken from the cache) and for the
    other dtype on its first use; RuleError if it does not compile."""
    return CompiledRule(expression, hyper or {}, dtype)


def view(address, shape, dtype, owner):
    """A NumPy array over `address`, steep's memory held by `owner` (a Session): the array (and a
    torch tensor made from it) keeps the session alive, so a view outliving its optimizer stays valid."""
    import numpy as np
    n = 1
    for d in shape:
        n *= d
    ct = ctypes.c_float if dtype == "float32" else ctypes.c_double
    buffer = (ct * n).from_address(address)
    buffer.owner = owner
    return np.ctypeslib.as_array(buffer).reshape(shape)


class NumpyOptimizer:
    """A compiled rule over writeable C-contiguous float32/float64 arrays, stepped in place."""

    def __init__(self, rule, params, threads, nonfinite, hyper):
        import numpy as np
        self.rule, self.names, self.params = rule, list(params), list(params.values())
        dtypes = {str(a.dtype) for a in self.params}
        if len(dtypes) != 1 or not dtypes <= {"float32", "float64"}:
            raise ValueError(f"parameters of dtypes {sorted(dtypes)}: steep steps one of float32 or float64")
        for n, a in params.items():
            if not (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable):
                raise ValueError(f"parameter '{n}': expected a writeable C-contiguous NumPy array")
        self.dtype = dtypes.pop()
        self._threads, self._nonfinite, self.hyper = threads, nonfinite, dict(hyper)
        self.session = None

    def step(self, grads):
        import numpy as np
        gs = []
        for n, p in zip(self.names, self.params):
            g = grads.get(n)
            if not (isinstance(g, np.ndarray) and g.dtype == p.dtype and g.shape == p.shape and g.flags.c_contiguous):
                raise ValueError(f"the gradient of '{n}': expected a C-contiguous {p.dtype} array of shape {p.shape}")
            gs.append(g.ctypes.data)
        ps = [p.ctypes.data for p in self.params]
        if self.session is None:
            self.session = self.rule.session(self.dtype, self.names, [p.shape for p in self.params], ps, gs,
                                             self.hyper, self._threads, self._nonfinite)
        return self.session.step(ps, gs)

    def state(self, name, slot):
        for b, s, addr, shape in self.session.slots():
            if self.names[b] == name and s == slot:
                v = view(addr, shape, self.dtype, self.session)
                v.flags.writeable = False
                return v
        raise KeyError(f"no state slot '{slot}' of parameter '{name}'")

    def describe(self):
        return self.session.describe()


def compile_rule(expression, hyper=None, dtype="float32", name="CompiledRule"):
    """A torch.optim.Optimizer subclass stepping with `expression` (see the module docstring);
    its `rule` attribute is the CompiledRule (implied_norm, describe(), numpy())."""
    from steep import _jit_torch
    return _jit_torch.optimizer_class(compile(expression, hyper, dtype), name)
