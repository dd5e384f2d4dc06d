"""SteepOptimizer: what every steep.torch optimizer shares (steep/torch.py has the rules).

A torch.optim.Optimizer whose step is one call into steep._C per parameter group, over the
tensors' own memory (DLPack, no copy), without the GIL. Subclasses say which steep rule a group
runs (_rules), which of them each parameter goes to (_route), and the group's hyperparameters
in steep's names (_hypers), read from the group at every step, so lr schedulers work.

State: self.state[p] holds torch tensors that ARE steep's state (views of its memory, made
with torch.utils.dlpack.from_dlpack), so state_dict(), torch.save and load_state_dict work as for
any torch optimizer; 'step' is a float32 0-d tensor, as torch's Adam and AdamW keep it.
load_state_dict copies the loaded values into steep's memory and sets steep's step counter.

A step reads each tensor through DLPack (a capsule: no copy, every check) when the group first
steps and whenever a tensor is not the one read last; otherwise it steps the addresses bound
last with one call and no capsule (python/README.md, "What a step does"). "The one read last":
each gradient is the same object (id) at the same data_ptr(), and so is each parameter. torch
keeps a gradient's shape, dtype and device equal to its parameter's (it checks an assignment to
.grad) and its layout dense, so a new gradient at the same id and address (the allocators reuse
both after zero_grad(set_to_none=True)) is bound the same way; `p.data = x` gives the parameter
a new address unless x views the same memory. Likewise the hyperparameters are read from the
group again only when one of its values changed (or is mutable: a list, a tensor).

A group's parameters are fixed when it first steps (or loads state): those with a gradient then.
A parameter that never has a gradient (frozen) is left out, as torch skips it; a parameter that
had one and has None later, or one that gets its first gradient later, is refused by name.
A group whose gradients are all None is skipped, as torch does.
"""
import itertools
import operator

import torch
import torch.optim.optimizer as _torch_optimizer
from torch.utils.dlpack import from_dlpack, to_dlpack

from steep import _C

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}
_POLICIES = ("refuse", "skip", "mask", "off")
# The keys torch.optim's optimizers keep in a group that steep does not read: accepted with
# torch's defaults, so a torch checkpoint loads and a steep one loads into torch.
TORCH_FLAGS = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False,
               "fused": None}
# A pass over fewer parameters than this runs on the calling thread (optimizer_options::
# serial_below): in a training loop steep's workers sleep through the forward and backward pass,
# and waking them costs more than a second thread saves below 2^18 parameters (docs/dsl.md,
# "Options and policies"; steep-bench-dispatch --gap-us).
SERIAL_BELOW = 1 << 18

_profiling = torch._C._autograd._profiler_enabled
_HOOKS = hasattr(_torch_optimizer, "_global_optimizer_pre_hooks")  # torch >= 2.0: step hooks
_grad_of = operator.attrgetter("grad")
_data_ptr = torch.Tensor.data_ptr
_IMMUTABLE = (bool, int, float, str, type(None))


def _frozen(value):
    """Whether a group's value can only change by being replaced (so == sees the change)."""
    return isinstance(value, _IMMUTABLE) or (type(value) is tuple and all(map(_frozen, value)))


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
                             opt._threads, opt._nonfinite, opt.serial_below)
        self.views = [{} for _ in active]
        for k, slot, capsule in self.core.state():
            self.views[k][slot] = from_dlpack(capsule)
        self.counts = from_dlpack(self.core.step_counts())
        for k, view in enumerate(self.views):
            view["step"] = self.counts[k]
        chosen = set(active)
        self.inactive = [i for i in range(len(params)) if i not in chosen]
        # What steep._C holds, as SteepOptimizer.step compares it: (the gradients' ids, the
        # parameters' and the gradients' data_ptr()) of the tensors bound last, and the group's
        # values its hyperparameters were last set from; None: unknown (read and set again).
        self.bound = None
        self.settings = None
        self.keys = tuple(k for k in group if k not in ("params", "param_names"))

    def tensors_now(self):
        """[the gradients' ids, the parameters' and the gradients' data_ptr()], or None if a
        gradient is None: what `bound` holds for the tensors bound last."""
        grads = list(map(_grad_of, self.params))
        try:
            return [*map(id, grads), *map(_data_ptr, self.params), *map(_data_ptr, grads)]
        except TypeError:  # a gradient is None
            return None

    def check_inactive(self, group):
        """Refuses a gradient on a parameter the group left out when it first stepped."""
        for i in self.inactive:
            if group["params"][i].grad is not None:
                raise ValueError(f"parameter '{group['param_names'][i]}' has a gradient, but it had none when its "
                                 "group first stepped, so steep left it out; a group's parameters are fixed then: "
                                 "put it in a group of its own (add_param_group)")

    def capsules(self, group):
        """The parameters' and gradients' capsules for this step."""
        ps, gs = [], []
        for n, p in zip(self.names, self.params):
            ps.append(_capsule(p, f"parameter '{n}'"))
            g = p.grad
            gs.append(None if g is None else _capsule(g, f"the gradient of parameter '{n}'"))
        return ps, gs


class SteepOptimizer(torch.optim.Optimizer):
    """Base of steep.torch's optimizers; see the module docstring.

    threads: steep's threads for this optimizer (0: every core TBB sees); a group of fewer than
      SERIAL_BELOW parameters steps on the calling thread (the attribute serial_below, read when
      a group first steps; 0: every pass splits).
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
        self.serial_below = SERIAL_BELOW
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

    def step(self, closure=None):
        """One step of every group; returns closure() if given. last_outcome says what it did:
        'applied', 'held_back' (some coordinates kept their values: held_back()) or 'refused'
        (nonfinite='skip': nothing was written). Every group is prepared (read-only, the
        non-finite guard) before any is written, so a refusal writes nothing anywhere.
        No torch operation runs here (steep writes the tensors' memory), so, unlike torch's
        optimizers, it needs no torch.no_grad()."""
        if _profiling() or self._step_hooks():
            return self._observed_step(closure)
        return self._step(closure)

    # torch.optim.Optimizer wraps each optimizer class's step() once (_hook_for_profile in
    # torch 1.x, _patch_step_function in 2.x) in a wrapper that labels it for the profiler
    # (record_function) and, from torch 2.0, runs the step hooks. On every call, profiler or
    # not, that wrapper cost more than a 50K-parameter model's whole step here. Marked as
    # wrapped already, steep's step() runs the wrapper's work itself, and only when a profiler
    # is running or a hook is registered (_observed_step).
    step.hooked = True

    def _step_hooks(self):
        """Whether a step hook (torch >= 2.0) is registered on this optimizer or on every one."""
        return _HOOKS and bool(getattr(self, "_optimizer_step_pre_hooks", None)
                               or getattr(self, "_optimizer_step_post_hooks", None)
                               or _torch_optimizer._global_optimizer_pre_hooks
                               or _torch_optimizer._global_optimizer_post_hooks)

    def _observed_step(self, closure):
        """step() as torch's wrapper runs an optimizer's step: under record_function, with the
        step hooks of torch >= 2.0 before and after it."""
        args, kwargs = (self,), {"closure": closure}
        with torch.autograd.profiler.record_function(f"Optimizer.step#{type(self).__name__}.step"):
            for hook in itertools.chain(getattr(_torch_optimizer, "_global_optimizer_pre_hooks", {}).values(),
                                        getattr(self, "_optimizer_step_pre_hooks", {}).values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"{hook} must return None or a tuple of (new_args, new_kwargs), but got "
                                           f"{result}.")
                    args, kwargs = result
            out = self._step(*args[1:], **kwargs)
            self._optimizer_step_code()
            for hook in itertools.chain(getattr(self, "_optimizer_step_post_hooks", {}).values(),
                                        getattr(_torch_optimizer, "_global_optimizer_post_hooks", {}).values()):
                hook(self, args, kwargs)
        return out

    def _step(self, closure=None):
        """step() itself."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        engines = self._engines
        for gi, group in enumerate(self.param_groups):
            engine = engines[gi]
            fresh = engine is None
            if fresh:
                active = [i for i, p in enumerate(group["params"]) if p.grad is not None]
                if not active:
                    continue
                self._check_group(group)
                engine = self._build(gi, group, active)
            elif engine.inactive:
                engine.check_inactive(group)
            tensors = None
            if fresh or engine.bound is None or engine.tensors_now() != engine.bound:
                if all(p.grad is None for p in group["params"]):
                    continue
                engine.bound = None  # until steep._C has read them
                tensors = engine.capsules(group)
            settings = tuple(map(group.get, engine.keys))
            hypers = None
            if fresh or settings != engine.settings:
                if not fresh:
                    if engine.key != self._rule_key(group):
                        raise ValueError(f"group {gi}: {self._rule_key(group)} differs from {engine.key}, which its "
                                         "rules were built with when it first stepped; start a new optimizer to "
                                         "change them")
                    self._check_group(group)
                hypers = self._hypers(group)
                engine.settings = None  # until steep._C has set them
            work.append((engine, tensors, hypers, settings))
        if len(work) == 1:
            engine, tensors, hypers, settings = work[0]
            if tensors is None:
                self.last_outcome = engine.core.step_bound(hypers)
                if hypers is not None:
                    self._note(work)
            else:
                self.last_outcome = engine.core.step(tensors[0], tensors[1], hypers)
                self._note(work)
        elif work:
            ready = []
            for engine, tensors, hypers, _ in work:
                ready.append(engine.core.prepare_bound(hypers) if tensors is None
                             else engine.core.prepare(tensors[0], tensors[1], hypers))
            self._note(work)
            if all(ready):
                outcomes = [engine.core.commit() for engine, _, _, _ in work]
                self.last_outcome = "held_back" if "held_back" in outcomes else "applied"
            else:
                self.last_outcome = "refused"
        return loss

    @staticmethod
    def _note(work):
        """After steep._C read a group's tensors or set its hyperparameters: what it now holds."""
        for engine, tensors, hypers, settings in work:
            if tensors is not None:
                engine.bound = engine.tensors_now()
            if hypers is not None and all(map(_frozen, settings)):
                engine.settings = settings

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
