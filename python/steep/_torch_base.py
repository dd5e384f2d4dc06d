"""SteepOptimizer: what every steep.torch optimizer shares (steep/torch.py has the rules).

A torch.optim.Optimizer whose step is one call into steep._C per parameter group, over the
tensors' own memory (DLPack, no copy), without the GIL. Subclasses say which steep rule a group
runs (_rules), which of them each parameter goes to (_route), and the group's hyperparameters
in steep's names (_hypers), read from the group at every step, so lr schedulers work.

State: self.state[p] holds torch tensors that ARE steep's state (views of its memory, made
with torch.utils.dlpack.from_dlpack), so state_dict(), torch.save and load_state_dict work as for
any torch optimizer; 'step' is a float32 0-d tensor, as torch's Adam and AdamW keep it.
load_state_dict copies the loaded values into steep's memory and sets steep's step counter.

A group's parameters are fixed when it first steps (or loads state): those with a gradient then.
A parameter that never has a gradient (frozen) is left out, as torch skips it; a parameter that
had one and has None later, or one that gets its first gradient later, is refused by name.
A group whose gradients are all None is skipped, as torch does.
"""
import torch
from torch.utils.dlpack import from_dlpack, to_dlpack

from steep import _C

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}
_POLICIES = ("refuse", "skip", "mask", "off")
# The keys torch.optim's optimizers keep in a group that steep does not read: accepted with
# torch's defaults, so a torch checkpoint loads and a steep one loads into torch.
TORCH_FLAGS = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False,
               "fused": None}


def _capsule(t, what):
    try:
        return to_dlpack(t)
    except (RuntimeError, BufferError, TypeError) as e:  # meta tensors, conjugate views, ...
        raise ValueError(f"{what}: torch cannot export it through DLPack ({e})") from None


class _Engine:
    """One group's steep._C.Group, the positions of its parameters and its state views."""

    def __init__(self, opt, group, active):
        params, names = group["params"], group["param_names"]
        self.active = active
        self.params = [params[i] for i in active]
        self.names = [names[i] for i in active]
        self.key = opt._rule_key(group)
        first = self.params[0]
        dtype = _DTYPES.get(first.dtype, "float32")  # steep._C refuses any other, naming it
        blocks = [(n, list(p.shape), opt._route(group, n, p)) for n, p in zip(self.names, self.params)]
        self.core = _C.Group(dtype, opt._rules(group), blocks,
                             [_capsule(p, f"parameter '{n}'") for n, p in zip(self.names, self.params)],
                             [None if p.grad is None else _capsule(p.grad, f"the gradient of parameter '{n}'")
                              for n, p in zip(self.names, self.params)],
                             opt._threads, opt._nonfinite)
        self.views = [{} for _ in active]
        for k, slot, capsule in self.core.state():
            self.views[k][slot] = from_dlpack(capsule)
        self.counts = from_dlpack(self.core.step_counts())
        for k, view in enumerate(self.views):
            view["step"] = self.counts[k]
        chosen = set(active)
        self.inactive = [i for i in range(len(params)) if i not in chosen]

    def capsules(self, group):
        """The parameters' and gradients' capsules for this step; refuses a changed group."""
        for i in self.inactive:
            if group["params"][i].grad is not None:
                raise ValueError(f"parameter '{group['param_names'][i]}' has a gradient, but it had none when its "
                                 "group first stepped, so steep left it out; a group's parameters are fixed then: "
                                 "put it in a group of its own (add_param_group)")
        ps, gs = [], []
        for n, p in zip(self.names, self.params):
            ps.append(_capsule(p, f"parameter '{n}'"))
            g = p.grad
            gs.append(None if g is None else _capsule(g, f"the gradient of parameter '{n}'"))
        return ps, gs


class SteepOptimizer(torch.optim.Optimizer):
    """Base of steep.torch's optimizers; see the module docstring.

    threads: steep's threads for this optimizer (0: every core TBB sees).
    nonfinite: what a NaN or Inf gradient does (python/README.md, "Non-finite gradients"):
      'refuse' (default) step() raises steep.NonFiniteError naming the parameter, and no
               parameter or state of any group is written;
      'skip'   step() writes nothing and returns; last_outcome is 'refused', skipped_steps counts it;
      'mask'   elementwise rules only: coordinates with a non-finite gradient keep their values;
      'off'    no check.
    Parameters may be given as (name, tensor) pairs (model.named_parameters()), so errors and
    routing use the names; otherwise they are named 'group<g>.param<i>'.
    """

    def __init__(self, params, defaults, *, threads=0, nonfinite="refuse"):
        if nonfinite not in _POLICIES:
            raise ValueError(f"nonfinite={nonfinite!r}: expected one of {_POLICIES}")
        if not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads={threads!r}: expected 0 (every core) or a positive count")
        self._threads, self._nonfinite = threads, nonfinite
        self._engines = []
        self.last_outcome = None
        super().__init__(params, defaults)

    # ---- what a subclass says -----------------------------------------------------------------
    def _rules(self, group):
        """[(steep rule name, construction settings)] for this group."""
        raise NotImplementedError

    def _route(self, group, name, p):
        """The index in _rules(group) of the rule that steps `p`."""
        return 0

    def _hypers(self, group):
        """Per rule of _rules(group): {steep hyperparameter: value} for this step."""
        raise NotImplementedError

    def _rule_key(self, group):
        """What fixes a group's rules when it first steps; a later change is refused."""
        return tuple((r, tuple(sorted(s.items()))) for r, s in self._rules(group))

    def _check_group(self, group):
        """Raises ValueError for an option steep does not implement."""
        for key, default in TORCH_FLAGS.items():
            if key in ("foreach", "fused"):
                continue  # how torch would run it; steep always runs its own fused loops
            if group.get(key, default) != default:
                raise ValueError(f"{key}={group[key]!r} is not supported by steep.torch.{type(self).__name__}")

    # ---- torch.optim.Optimizer ------------------------------------------------------------------
    def add_param_group(self, param_group):
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        names = group.get("param_names")
        if params and isinstance(params[0], tuple):
            names = [n for n, _ in params]
            params = [p for _, p in params]
        if names is None:
            names = [f"group{len(self.param_groups)}.param{i}" for i in range(len(params))]
        if len(names) != len(params):
            raise ValueError(f"param_names has {len(names)} names for {len(params)} parameters")
        group["params"], group["param_names"] = params, list(names)
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)
        super().add_param_group(group)
        self._engines.append(None)

    @torch.no_grad()
    def step(self, closure=None):
        """One step of every group; returns closure() if given. last_outcome says what it did:
        'applied', 'held_back' (some coordinates kept their values: held_back()) or 'refused'
        (nonfinite='skip': nothing was written). Every group is prepared (read-only, the
        non-finite guard) before any is written, so a refusal writes nothing anywhere."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for gi, group in enumerate(self.param_groups):
            engine = self._engines[gi]
            if engine is None:
                active = [i for i, p in enumerate(group["params"]) if p.grad is not None]
                if not active:
                    continue
                self._check_group(group)
                engine = self._build(gi, group, active)
            elif all(p.grad is None for p in group["params"]):
                continue
            elif engine.key != self._rule_key(group):
                raise ValueError(f"group {gi}: {self._rule_key(group)} differs from {engine.key}, which its rules "
                                 "were built with when it first stepped; start a new optimizer to change them")
            else:
                self._check_group(group)
            work.append((engine, engine.capsules(group), self._hypers(group)))
        if len(work) == 1:
            (engine, (ps, gs), hypers), = work
            self.last_outcome = engine.core.step(ps, gs, hypers)
        elif work:
            ready = [engine.core.prepare(ps, gs, hypers) for engine, (ps, gs), hypers in work]
            if all(ready):
                outcomes = [engine.core.commit() for engine, _, _ in work]
                self.last_outcome = "held_back" if "held_back" in outcomes else "applied"
            else:
                self.last_outcome = "refused"
        return loss

    def load_state_dict(self, state_dict):
        """torch's load_state_dict, then each group's loaded state copied into steep's memory and
        its step count restored. On any error the optimizer is left as it was."""
        saved = (self.param_groups, self.state, self._engines)
        try:
            super().load_state_dict(state_dict)
            for group, old in zip(self.param_groups, saved[0]):
                group.setdefault("param_names", old["param_names"])
                for key, default in self.defaults.items():
                    group.setdefault(key, default)
                self._check_group(group)
            self._engines = [None] * len(self.param_groups)
            for gi, group in enumerate(self.param_groups):
                self._load_group(gi, group)
        except BaseException:
            self.param_groups, self.state, self._engines = saved
            raise

    # ---- steep's side -------------------------------------------------------------------------
    @property
    def skipped_steps(self):
        """Steps refused (nonfinite='skip') or held back, summed over groups."""
        return sum(e.core.skipped_steps for e in self._engines if e is not None)

    def held_back(self):
        """What the last step held back, as a sentence, or None."""
        for e in self._engines:
            if e is not None and (h := e.core.held_back()) is not None:
                return h
        return None

    def describe(self):
        """What steep compiled each group's rules to (passes, slots, bytes per parameter)."""
        return "\n".join(e.core.describe() for e in self._engines if e is not None)

    def routes(self):
        """{parameter name: index of its rule} over every group that has stepped."""
        out = {}
        for gi, group in enumerate(self.param_groups):
            for n, p in zip(group["param_names"], group["params"]):
                out[n] = self._route(group, n, p)
        return out

    def _build(self, gi, group, active):
        engine = _Engine(self, group, active)
        for p, view in zip(engine.params, engine.views):
            self.state[p] = view
        self._engines[gi] = engine
        return engine

    def _load_group(self, gi, group):
        params = group["params"]
        loaded = {i: self.state[p] for i, p in enumerate(params)
                  if p in self.state and any(v is not None for v in self.state[p].values())}
        if not loaded:
            return
        engine = self._build(gi, group, sorted(loaded))
        steps = set()
        for k, i in enumerate(engine.active):
            name, src, dst = engine.names[k], loaded[i], engine.views[k]
            for key, value in src.items():
                if key == "step":
                    steps.add(int(value.item() if torch.is_tensor(value) else value))
                elif value is not None and key not in dst:
                    raise ValueError(f"parameter '{name}': the state has '{key}', which steep's "
                                     f"{type(self).__name__} does not keep (it keeps {sorted(dst)})")
            for key, view in dst.items():
                if key == "step":
                    continue
                value = src.get(key)
                if value is None:
                    raise ValueError(f"parameter '{name}': the state has no '{key}', which steep's "
                                     f"{type(self).__name__} needs")
                if tuple(value.shape) != tuple(view.shape):
                    raise ValueError(f"parameter '{name}': state '{key}' has shape {tuple(value.shape)}; "
                                     f"steep keeps it as {tuple(view.shape)}")
                view.copy_(value)
        if len(steps) > 1:
            raise ValueError(f"group {gi}: its parameters' state has different step counts {sorted(steps)}; "
                             "steep steps a group together, with one count")
        engine.core.restore_steps(steps.pop() if steps else 0)
