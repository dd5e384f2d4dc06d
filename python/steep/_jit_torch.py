"""The torch.optim.Optimizer of a compiled rule (steep.compile_rule; steep/jit.py compiles it).

    Signum = steep.compile_rule('-lr * sign(ema<"m">(grad, beta))', hyper={"lr": 1e-3, "beta": 0.9})
    opt = Signum(model.parameters(), lr=3e-4, threads=1)    # hyperparameters as keyword arguments
    loss.backward(); opt.step(); opt.zero_grad()
    opt.state[p]["m"]                                       # steep's state memory, as a torch tensor

One steep optimizer per parameter group, built at the group's first step over the parameters that
have a gradient then (a later None gradient, or a new one, is refused by name). Every step reads
each tensor's address again and the group's hyperparameters (lr schedulers work). Tensors must be
CPU, contiguous, float32 or float64, one dtype per group: anything else is refused, never copied.
state_dict() saves the state; load_state_dict() is not implemented for compiled rules and raises.
"""
import torch

from steep import _jit_abi
from steep.jit import view

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def _address(t, what, dtype):
    if t.device.type != "cpu" or not t.is_contiguous() or t.dtype != dtype:
        raise ValueError(f"{what}: steep steps a contiguous CPU tensor of the group's dtype {dtype} in place; this one "
                         f"is {t.dtype} on {t.device}, contiguous={t.is_contiguous()} (steep never copies)")
    return t.data_ptr()


class CompiledOptimizer(torch.optim.Optimizer):
    """Base of the classes compile_rule returns; `rule` is the class's CompiledRule."""

    rule = None

    def __init__(self, params, *, threads=0, nonfinite="refuse", **hyper):
        unknown = set(hyper) - set(self.rule.hyper)
        if unknown:
            raise ValueError(f"{type(self).__name__}: no hyperparameter {sorted(unknown)}; "
                             f"the rule has {sorted(self.rule.hyper)}")
        if nonfinite not in _jit_abi.POLICIES:
            raise ValueError(f"nonfinite={nonfinite!r}: expected one of {tuple(_jit_abi.POLICIES)}")
        self._threads, self._nonfinite = threads, nonfinite
        self._groups = []  # per group: (session, its parameters) once it has stepped
        self.last_outcome = None
        super().__init__(params, {**self.rule.hyper, **hyper})

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        self._groups.append(None)

    def _hypers(self, group):
        return {k: group[k] for k in self.rule.hyper}

    def _build(self, gi, group):
        params = [p for p in group["params"] if p.grad is not None]
        dtype = params[0].dtype
        if dtype not in _DTYPES:
            raise ValueError(f"group {gi}: dtype {dtype}; steep steps float32 or float64")
        ps = [_address(p, f"group {gi} parameter {i}", dtype) for i, p in enumerate(params)]
        gs = [_address(p.grad, f"group {gi} gradient {i}", dtype) for i, p in enumerate(params)]
        names = [f"group{gi}.param{i}" for i in range(len(params))]
        session = self.rule.session(_DTYPES[dtype], names, [tuple(p.shape) for p in params], ps, gs,
                                    self._hypers(group), self._threads, self._nonfinite)
        for p in params:
            self.state[p] = {"step": torch.zeros((), dtype=torch.float32)}
        for b, slot, addr, shape in session.slots():
            self.state[params[b]][slot] = torch.from_numpy(view(addr, shape, _DTYPES[dtype], session))
        self._groups[gi] = (session, params)
        return self._groups[gi]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        outcomes = []
        for gi, group in enumerate(self.param_groups):
            if all(p.grad is None for p in group["params"]):
                continue
            session, params = self._groups[gi] or self._build(gi, group)
            chosen = {id(p) for p in params}
            for i, p in enumerate(group["params"]):
                if (p.grad is None) == (id(p) in chosen):
                    raise ValueError(f"group {gi} parameter {i}: its gradient is "
                                     f"{'None' if p.grad is None else 'new'}, but the group's parameters were fixed "
                                     "at its first step as those with a gradient; put it in a group of its own")
            dtype = params[0].dtype
            ps = [_address(p, f"group {gi} parameter {i}", dtype) for i, p in enumerate(params)]
            gs = [_address(p.grad, f"group {gi} gradient {i}", dtype) for i, p in enumerate(params)]
            session.set_hypers(self._hypers(group))
            outcomes.append(session.step(ps, gs))
            for p in params:
                self.state[p]["step"].fill_(session.steps)
        self.last_outcome = ("refused" if "refused" in outcomes else "held_back" if "held_back" in outcomes
                             else "applied") if outcomes else None
        return loss

    def load_state_dict(self, state_dict):
        raise NotImplementedError(f"{type(self).__name__}: loading state into a compiled rule's optimizer is not "
                                  "implemented yet (state_dict() saves it)")

    def describe(self):
        return "\n".join(g[0].describe() for g in self._groups if g is not None)


def optimizer_class(rule, name):
    return type(name, (CompiledOptimizer,), {"rule": rule, "__doc__": f"steep rule {rule.expression!r}"})
