"""steep.torch: torch.optim.Optimizer subclasses that step with steep's compiled rules.

    import steep.torch
    opt = steep.torch.AdamW(model.named_parameters(), lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1000)
    for x, y in data:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step(); sched.step()

| class | steep rule (dsl/steep/rules/) | torch counterpart, state keys |
|---|---|---|
| SGD | sgd, momentum_torch, nesterov_torch | torch.optim.SGD (dampening 0, no weight decay), in torch's order of operations; momentum_buffer |
| Adam, AdamW | adam_torch, adamw_torch | torch.optim.Adam (no weight decay), torch.optim.AdamW, in torch's order of operations (bitwise in float32); step, exp_avg, exp_avg_sq |
| Lion | lion | Chen et al. 2023; exp_avg |
| AdamMini | adam_mini | Zhang et al. 2024, one v per tensor; m, v |
| Muon | muon | torch.optim.Muon (torch >= 2.9; Newton-Schulz in float32/64); momentum_buffer |
| NorMuon | normuon | Li et al. 2025; momentum_buffer, second_momentum_buffer |
| MuonAdamW | muon + adamw_torch | Muon on the routed matrices, AdamW on the rest |
| Shampoo, SOAP | shampoo, soap | matrices only: L, R and their roots / bases |

Every class takes threads= and nonfinite= (SteepOptimizer, steep/_torch_base.py), and an option
steep does not implement (amsgrad, maximize, capturable, dampening, Adam's or SGD's L2 weight
decay) is refused when the optimizer is built, never ignored.
"""
import fnmatch

from steep._torch_base import SteepOptimizer

__all__ = ["SteepOptimizer", "SGD", "Adam", "AdamW", "Lion", "AdamMini", "Muon", "NorMuon", "MuonAdamW",
           "Shampoo", "SOAP"]


def _adam_hypers(group, lr="lr", betas="betas", eps="eps", weight_decay="weight_decay"):
    b1, b2 = group[betas]
    out = {"lr": float(group[lr]), "beta1": float(b1), "beta2": float(b2), "eps": float(group[eps])}
    if weight_decay is not None:
        out["weight_decay"] = float(group[weight_decay])
    return out


class SGD(SteepOptimizer):
    """torch.optim.SGD: plain, heavy-ball (momentum > 0) or Nesterov; dampening 0 and no weight
    decay (torch's is L2, added to the gradient). Whether momentum is 0 is fixed at the first step."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, threads=0, nonfinite="refuse"):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable), threads=threads, nonfinite=nonfinite)

    def _check_group(self, group):
        super()._check_group(group)
        for key in ("dampening", "weight_decay"):
            if group[key] != 0:
                raise ValueError(f"SGD {key}={group[key]}: steep's SGD has none (use AdamW or decoupled decay)")
        if group["nesterov"] and group["momentum"] <= 0:
            raise ValueError("SGD nesterov=True needs momentum > 0, as torch's does")

    def _rules(self, group):
        rule = "sgd" if group["momentum"] == 0 else "nesterov_torch" if group["nesterov"] else "momentum_torch"
        return [(rule, {})]

    def _hypers(self, group):
        if group["momentum"] == 0:
            return [{"lr": float(group["lr"])}]
        return [{"lr": float(group["lr"]), "momentum": float(group["momentum"])}]


class AdamW(SteepOptimizer):
    """torch.optim.AdamW: p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps), rounded as torch
    rounds it (steep's rule adamw_torch, dsl/steep/rules/torch_order.hpp). State keys are
    torch's (step, exp_avg, exp_avg_sq): a checkpoint moves between the two both ways."""

    _rule = "adamw_torch"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None, threads=0,
                 nonfinite="refuse"):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused),
                         threads=threads, nonfinite=nonfinite)

    def _check_group(self, group):
        super()._check_group(group)
        if group.get("amsgrad", False):
            raise ValueError(f"amsgrad=True is not supported by steep.torch.{type(self).__name__}")

    def _rules(self, group):
        return [(self._rule, {})]

    def _hypers(self, group):
        return [_adam_hypers(group)]


class Adam(AdamW):
    """torch.optim.Adam without weight decay (torch's is L2, added to the gradient: use AdamW),
    rounded as torch rounds it (steep's rule adam_torch)."""

    _rule = "adam_torch"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, **kw):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kw)

    def _check_group(self, group):
        super()._check_group(group)
        if group["weight_decay"] != 0:
            raise ValueError("Adam weight_decay: torch's is L2 (added to the gradient), which steep's Adam does "
                             "not have; use steep.torch.AdamW for decoupled decay")

    def _hypers(self, group):
        return [_adam_hypers(group, weight_decay=None)]


class Lion(SteepOptimizer):
    """Lion (Chen et al. 2023): p <- p - lr (sign(b1 m + (1 - b1) g) + wd p); m <- b2 m + (1 - b2) g."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, *, threads=0, nonfinite="refuse"):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay), threads=threads,
                         nonfinite=nonfinite)

    def _rules(self, group):
        return [("lion", {})]

    def _hypers(self, group):
        b1, b2 = group["betas"]
        return [{"lr": float(group["lr"]), "beta1": float(b1), "beta2": float(b2),
                 "weight_decay": float(group["weight_decay"])}]


class AdamMini(SteepOptimizer):
    """Adam-mini (Zhang et al. 2024), one second moment per tensor: v <- b2 v + (1 - b2) mean(g^2),
    p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps). State: m (per element), v (per tensor)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, threads=0,
                 nonfinite="refuse"):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay), threads=threads,
                         nonfinite=nonfinite)

    def _rules(self, group):
        return [("adam_mini", {})]

    def _hypers(self, group):
        return [_adam_hypers(group)]


class Muon(SteepOptimizer):
    """torch.optim.Muon (torch >= 2.9) on matrices: Nesterov momentum, Newton-Schulz's quintic (5
    steps, torch's coefficients) in the parameters' dtype, decoupled decay, lr sqrt(max(1, rows/cols)).
    Every parameter must be a matrix (route the rest with MuonAdamW)."""

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, *, threads=0,
                 nonfinite="refuse"):
        if not nesterov:
            raise ValueError("Muon nesterov=False is not in steep.torch (steep's rules::muon is torch's default)")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov),
                         threads=threads, nonfinite=nonfinite)

    def _rules(self, group):
        return [("muon", {})]

    def _hypers(self, group):
        return [{k: float(group[k]) for k in ("lr", "weight_decay", "momentum")}]


class NorMuon(SteepOptimizer):
    """NorMuon (Li et al. 2025): Muon's polar factor normalized per row by an EMA (beta2) of its
    mean square, rescaled to the polar factor's norm. Matrices only."""

    def __init__(self, params, lr=0.02, weight_decay=0.0, momentum=0.95, beta2=0.95, eps=1e-10, *, threads=0,
                 nonfinite="refuse"):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, beta2=beta2, eps=eps),
                         threads=threads, nonfinite=nonfinite)

    def _rules(self, group):
        return [("normuon", {})]

    def _hypers(self, group):
        return [{k: float(group[k]) for k in ("lr", "weight_decay", "momentum", "beta2", "eps")}]


class MuonAdamW(SteepOptimizer):
    """Muon on the routed matrices, AdamW on every other parameter, stepped together (a refused
    step writes neither). Routing, per parameter name and tensor:
      route='ndim' (default): Muon for ndim >= 2, unless the name matches a glob in adamw_names
                              (embeddings and heads: Jordan et al. 2024 keep them on AdamW);
      route=callable(name, p) -> bool: True for Muon.
    routes() says where each parameter went (0: Muon, 1: AdamW). Hyperparameters: lr,
    weight_decay, momentum for Muon; adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay."""

    def __init__(self, params, lr=0.02, weight_decay=0.1, momentum=0.95, adamw_lr=3e-4, adamw_betas=(0.9, 0.999),
                 adamw_eps=1e-8, adamw_weight_decay=0.0, *, route="ndim", adamw_names=(), threads=0,
                 nonfinite="refuse"):
        if route != "ndim" and not callable(route):
            raise ValueError(f"route={route!r}: expected 'ndim' or a callable(name, tensor) -> bool")
        self._route_fn, self._adamw_names = route, tuple(adamw_names)
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, adamw_lr=adamw_lr,
                                      adamw_betas=adamw_betas, adamw_eps=adamw_eps,
                                      adamw_weight_decay=adamw_weight_decay), threads=threads, nonfinite=nonfinite)

    def _rules(self, group):
        return [("muon", {}), ("adamw_torch", {})]

    def _route(self, group, name, p):
        if callable(self._route_fn):
            return 0 if self._route_fn(name, p) else 1
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self._adamw_names):
            return 1
        return 0 if p.ndim >= 2 else 1

    def _hypers(self, group):
        muon = {k: float(group[k]) for k in ("lr", "weight_decay", "momentum")}
        return [muon, _adam_hypers(group, "adamw_lr", "adamw_betas", "adamw_eps", "adamw_weight_decay")]


class Shampoo(SteepOptimizer):
    """Shampoo on matrices (Gupta et al. 2018; EMA factors with beta2 < 1, Shi et al. 2023):
    p <- p - lr L^left G R^right, the roots recomputed every `every` steps. beta2, eps, left,
    right, one_sided, every and relative_eps (eps times each factor's largest eigenvalue, Anil et
    al. 2020) are fixed when a group first steps (steep's shampoo_settings)."""

    _settings = ("beta2", "eps", "left", "right", "one_sided", "every", "relative_eps")

    def __init__(self, params, lr=1e-3, beta2=1.0, eps=1e-12, left=-0.25, right=-0.25, one_sided=0.0, every=1, *,
                 relative_eps=False, threads=0, nonfinite="refuse"):
        super().__init__(params, dict(lr=lr, beta2=beta2, eps=eps, left=left, right=right, one_sided=one_sided,
                                      every=every, relative_eps=relative_eps), threads=threads, nonfinite=nonfinite)

    def _rules(self, group):
        return [(type(self).__name__.lower(), {k: float(group[k]) for k in self._settings})]

    def _hypers(self, group):
        return [{"lr": float(group["lr"])}]


class SOAP(Shampoo):
    """SOAP (Vyas et al. 2024) on matrices: Adam in the eigenbasis of Shampoo's factors, the bases
    refreshed every precondition_frequency steps. betas, shampoo_beta (< 0: betas[1]), eps,
    precondition_frequency, max_precond_dim and round_trip_every_step are fixed when a group first
    steps. round_trip_every_step=True rotates exp_avg out of the bases and back every step, as the
    authors' code does; by default only at a refresh (the same up to roundoff, less GEMM work)."""

    _settings = ("shampoo_beta", "eps", "precondition_frequency", "max_precond_dim", "round_trip_every_step")

    def __init__(self, params, lr=3e-3, betas=(0.95, 0.95), shampoo_beta=-1.0, eps=1e-8, precondition_frequency=10,
                 max_precond_dim=10000, round_trip_every_step=False, *, threads=0, nonfinite="refuse"):
        SteepOptimizer.__init__(self, params, dict(lr=lr, betas=betas, shampoo_beta=shampoo_beta, eps=eps,
                                                   precondition_frequency=precondition_frequency,
                                                   max_precond_dim=max_precond_dim,
                                                   round_trip_every_step=round_trip_every_step),
                                threads=threads, nonfinite=nonfinite)

    def _rules(self, group):
        settings = {k: float(group[k]) for k in self._settings}
        settings["beta1"], settings["beta2"] = (float(b) for b in group["betas"])
        return [("soap", settings)]

