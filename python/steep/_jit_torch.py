"""The torch.optim.Optimizer of a compiled rule (steep.compile_rule; steep/jit.py compiles it).

    Signum = steep.compile_rule('-lr * sign(ema<"m">(grad, beta))', hyper={"lr": 1e-3, "beta": 0.9})
    opt = Signum(model.parameters(), lr=3e-4, threads=1)    # hyperparameters as keyword arguments
    loss.backward(); opt.step(); opt.zero_grad()
    opt.state[p]["m"]                                       # steep's state memory, as a torch tensor
    Hybrid = steep.compile_rule("muon_signum_paper(muon_lr, signum_lr)", hyper={"muon_lr": 0.3, "signum_lr": 0.3})
    opt = Hybrid([{"params": [w1, w2], "role": ["hidden_matrix", "head"]}])   # a route by role

One steep optimizer per parameter group, built at the group's first step (or state load) over the
parameters that have a gradient then (a later None gradient, or a new one, is refused by name).
A group's "role" (steep::block_role: hidden_matrix, embedding, head, vector, scalar) is every one
of its blocks', or a list, one per parameter; without one a block has its shape's (2-d:
hidden_matrix). Every step reads each tensor's address again and the group's hyperparameters (lr
schedulers work). Tensors must be CPU, contiguous, float32 or float64, one dtype per group:
anything else is refused, never copied. state_dict() saves the state; load_state_dict() copies it
into steep's memory and sets the step count.
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
        self._groups = []  # per group: [session, its parameters, stand-in gradients or None] once built
        self.last_outcome = None
        super().__init__(params, {**self.rule.hyper, "role": None, **hyper})

    def add_param_group(self, param_group):
        role = param_group.get("role")
        roles = role if isinstance(role, (list, tuple)) else [role]
        for r in roles:
            if r is not None and r not in _jit_abi.ROLES:
                raise ValueError(f"role {r!r}: expected one of {_jit_abi.ROLES} (or none: each block's shape's)")
        super().add_param_group(param_group)
        if isinstance(role, (list, tuple)) and len(role) != len(self.param_groups[-1]["params"]):
            raise ValueError(f"group {len(self.param_groups) - 1}: {len(role)} roles for "
                             f"{len(self.param_groups[-1]['params'])} parameters")
        self._groups.append(None)

    @staticmethod
    def _roles(group, params):
        role = group.get("role")
        if role is None:
            return None
        if not isinstance(role, (list, tuple)):
            return [role] * len(params)
        at = {id(p): r for p, r in zip(group["params"], role)}
        return [at[id(p)] for p in params]

    def _hypers(self, group):
        return {k: group[k] for k in self.rule.hyper}

    def _build(self, gi, group, params):
        """The group's session over `params`; a missing gradient gets a zero stand-in until a step."""
        dtype = params[0].dtype
        if dtype not in _DTYPES:
            raise ValueError(f"group {gi}: dtype {dtype}; steep steps float32 or float64")
        stand_ins = [torch.zeros_like(p) if p.grad is None else None for p in params]
        ps = [_address(p, f"group {gi} parameter {i}", dtype) for i, p in enumerate(params)]
        gs = [_address(p.grad if s is None else s, f"group {gi} gradient {i}", dtype)
              for i, (p, s) in enumerate(zip(params, stand_ins))]
        names = [f"group{gi}.param{i}" for i in range(len(params))]
        roles = self._roles(group, params)
        session = self.rule.session(_DTYPES[dtype], names, [tuple(p.shape) for p in params], ps, gs,
                                    self._hypers(group), self._threads, self._nonfinite, roles)
        for p in params:
            self.state[p] = {"step": torch.zeros((), dtype=torch.float32)}
        for b, slot, addr, shape in session.slots():
            self.state[params[b]][slot] = torch.from_numpy(view(addr, shape, _DTYPES[dtype], session))
        self._groups[gi] = [session, params, stand_ins]
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
            built = self._groups[gi] or self._build(gi, group, [p for p in group["params"] if p.grad is not None])
            session, params = built[0], built[1]
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
            built[2] = None  # the stand-in gradients of a loaded group are no longer pointed at
            for p in params:
                self.state[p]["step"].fill_(session.steps)
        self.last_outcome = ("refused" if "refused" in outcomes else "held_back" if "held_back" in outcomes
                             else "applied") if outcomes else None
        return loss

    def load_state_dict(self, state_dict):
        """torch's load_state_dict, then each group's loaded state copied into steep's memory (a
        session built over the parameters that have state) and its step count restored. A key the
        rule does not keep, a missing one, a wrong shape or two step counts in a group are refused
        by name, and the optimizer is left as it was."""
        saved = (self.param_groups, self.state, self._groups)
        try:
            super().load_state_dict(state_dict)
            for group in self.param_groups:
                for key, default in self.defaults.items():
                    group.setdefault(key, default)  # a checkpoint of another optimizer names others
            self._groups = [None] * len(self.param_groups)
            for gi, group in enumerate(self.param_groups):
                loaded = [p for p in group["params"] if self.state.get(p)]
                if loaded:
                    self._load_group(gi, group, loaded, {p: dict(self.state[p]) for p in loaded})
        except BaseException:
            self.param_groups, self.state, self._groups = saved
            raise

    def _load_group(self, gi, group, params, values):
        session = self._build(gi, group, params)[0]
        steps = set()
        for i, p in enumerate(params):
            src, dst = values[p], self.state[p]
            for key, value in src.items():
                if key == "step":
                    steps.add(int(value.item() if torch.is_tensor(value) else value))
                elif key not in dst:
                    raise ValueError(f"group {gi} parameter {i}: the state has '{key}', which the rule does not keep "
                                     f"(it keeps {sorted(dst)})")
            for key, view_ in dst.items():
                if key == "step":
                    continue
                if key not in src:
                    raise ValueError(f"group {gi} parameter {i}: the state has no '{key}', which the rule needs")
                if tuple(src[key].shape) != tuple(view_.shape):
                    raise ValueError(f"group {gi} parameter {i}: state '{key}' has shape {tuple(src[key].shape)}; "
                                     f"steep keeps it as {tuple(view_.shape)}")
                view_.copy_(src[key])
        if len(steps) > 1:
            raise ValueError(f"group {gi}: its parameters' state has different step counts {sorted(steps)}")
        session.restore_steps(steps.pop() if steps else 0)
        for p in params:
            self.state[p]["step"].fill_(session.steps)

    def describe(self):
        return "\n".join(g[0].describe() for g in self._groups if g is not None)


def optimizer_class(rule, name):
    return type(name, (CompiledOptimizer,), {"rule": rule, "__doc__": f"steep rule {rule.expression!r}"})
