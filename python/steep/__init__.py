"""steep from Python: steep's compiled optimizers stepping torch tensors and NumPy arrays in place.

    import steep.torch
    opt = steep.torch.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)   # as torch.optim.AdamW
    loss.backward(); opt.step(); opt.zero_grad()

    import steep.numpy
    opt = steep.numpy.Optimizer("adamw", {"W": w, "b": b}, lr=1e-3)          # float32/float64 arrays
    opt.step({"W": gw, "b": gb})

    Signum = steep.compile_rule('-lr * sign(ema<"m">(grad, 0.9))', hyper={"lr": 1e-3})  # a new rule,
    opt = Signum(model.parameters(), lr=3e-4)        # compiled once into ~/.cache/steep (steep/jit.py)

Tensors reach steep's fused loops through DLPack, with no copy: every step reads each tensor's
own memory, and a tensor that is not on the CPU, not contiguous, or not float32/float64 is
refused with an error naming it (python/README.md). steep._C links no libtorch, so one build
serves any torch or NumPy that speaks DLPack.
"""
from steep._C import NonFiniteError, rule_names  # noqa: F401
from steep.jit import RuleError, compile_rule  # noqa: F401

__all__ = ["NonFiniteError", "RuleError", "compile_rule", "rule_names"]
