#!/usr/bin/env python3
"""Float64 references for the newer rules and maps (tests/data/variants/, tests/data/polar_express/).

Each case runs the published algorithm in NumPy, float64 (the published code runs in bfloat16
on GPUs; a reference must not), on two matrices, a wide 6 x 10 and a tall 12 x 5, for 6 steps
with fixed pseudo-random gradients. It writes, per case and block, the initial parameter, the
gradients (steps x shape) and the parameter after each step (steps x shape). Run from the
repository root:

    /usr/bin/python3 scripts/reference-variants.py

Cases
  adamuon        Si, Zhang & Shen (2025), "AdaMuon: Adaptive Muon Optimizer" (arXiv:2507.11005),
                 the authors' AdaMuon.step: Nesterov momentum, Newton-Schulz (quintic, 5 steps,
                 X / (||X||_F + 1e-7)), element-wise second moment of the polar factor with bias
                 correction, RMS matching sqrt(min(r, c)) / (||O_hat||_F + eps), step
                 lr 0.2 sqrt(max(r, c)), decoupled decay p (1 - lr wd).
  muon_polar     torch 2.11 Muon's update (Nesterov, decay, lr sqrt(max(1, r / c))) with the
                 Polar Express map of Amsel et al. (2025), Algorithm 1, 5 steps.
  polar_express  the map alone (tests/data/polar_express/): Algorithm 1 of Amsel, Persson, Musco,
                 Gower (2025), "The Polar Express", for a wide 6 x 10 and a tall 12 x 5 input, 5 and
                 10 steps.
  normuon        Li et al. (2025), "NorMuon" (arXiv:2510.05491), the authors' normuon_update:
                 Nesterov momentum, Newton-Schulz as AdaMuon's, a per-row EMA of the mean square
                 of the polar factor (no bias correction), division by sqrt(V) + 1e-10, rescaling
                 to the polar factor's Frobenius norm, lr sqrt(max(1, r / c)), decay p (1 - lr wd).
  normuon_eps8   the same with eps 1e-8 in both places and no shape factor (a setting other
                 NorMuon code uses; steep's normuon(..., eps, lr_adjust::none)).
  scion          Pethick et al. (2025), "Scion" (arXiv:2502.07529), the authors' Scion.step with
                 momentum B = (1 - a) B + a g and the constrained step p (1 - lr) - lr radius lmo:
                 W1 ColNorm, W2 Spectral, W3 Sign (output radius); scion_rownorm: W1 RowNorm.
  muon_stacked   torch 2.11 Muon's update (quintic, X / max(||X||, 1e-7)) on each slice of a
                 stacked block: experts E (3, 4, 6) as three 4 x 6 matrices, a fused Q (12, 5) per
                 head as three 4 x 5 matrices.
  normuon_stacked  the NorMuon update above on each slice of those stacked blocks, each slice a
                 matrix of its own: its polar factor, one second moment per row of the slice,
                 rescaled to the slice's polar-factor norm, lr sqrt(max(1, slice rows / cols)).
  adam_mini_sliced  Adam-mini with one partition per slice of those blocks (per expert, per
                 head: the authors' partition of queries and keys): v = EMA of mean(g^2) per slice.
  adam_mini      Zhang et al. (2024), "Adam-mini" (arXiv:2406.16793), the authors' step for a
                 block that is one partition: m per element, v = EMA of mean(g^2) over the block,
                 p (1 - lr wd) - lr (m / bc1) / (sqrt(v / bc2) + eps).
  shampoo        Gupta, Koren & Singer (2018), "Shampoo" (arXiv:1802.09568), Algorithm 1 for a
                 matrix: L += G G^T, R += G^T G, p - lr L^(-1/4) G R^(-1/4), the roots as
                 distributed Shampoo takes them (Shi et al. 2023, arXiv:2309.06497; the repository
                 facebookresearch/optimizers, matrix_inverse_root by eigendecomposition): eigenvalues
                 shifted by -min(w_min, 0), then eps added (eps 1e-12 here), every step.
  shampoo_ema_every2  distributed Shampoo's EMA factors (beta2 0.99, eps 1e-3) with the roots
                 recomputed at steps 1, 3, 5 and the stale ones used between, on an EMA momentum
                 m = 0.9 m + 0.1 g of the gradient (steep's ema).
  shampoo_one_sided  only the smaller side's factor, exponent -1/2 (L for the wide W1, R for the
                 tall W2), eps 1e-12.
  shampoo_left_half  a user's own variant: L^(-1/2) G, no right factor, eps 1e-3.
  shampoo_unaccumulated  Shampoo with beta2 = 0 and no eps on an EMA momentum M (0.9): p - lr
                 (M M^T)^(+1/4) M (M^T M)^(+1/4), the roots of the pseudo-inverses (eigenvalues at
                 or below n eps max|w| count as 0; W1's R is 10 x 10 of rank 6): M's polar factor.
  shampoo_relative_eps  summed factors of an EMA momentum (0.9), the roots at steps 1, 3, 5,
                 eps 1e-3 relative: times each factor's largest eigenvalue (Anil et al. 2020,
                 arXiv:2002.09018; google-research's scalable_shampoo, ridge_epsilon * max(max_ev,
                 1e-16)). W1's R is rank-deficient: eps makes every null eigenvalue the same, so
                 the null space's basis does not matter.
  shampoo_grafted  grafting as a composition: Shampoo's direction U (EMA factors 0.99, eps 1e-3)
                 rescaled per block to the Frobenius norm of an RMSProp direction
                 A = g / (sqrt(v) + 1e-8), v = 0.99 v + 0.01 g^2 (the layer-wise grafting of
                 distributed Shampoo, Shi et al. 2023, written out: p - lr U ||A|| / ||U||).
  dion           Ahn et al. (2025), "Dion: Distributed Orthonormalized Updates" (arXiv:2504.05295),
                 the authors' single-device update (the repository microsoft/dion, dion_update and
                 power_iteration of its reference Dion, qr_method "qr", one power iteration):
                 M += G; for a wide block B = M^T; P = qr(B Q) (R's diagonal made >= 0, as steep's
                 qr_orthonormal); R = B^T P; M -= (1 - mu) P R^T; Q = R / (||R's columns|| + 1e-8);
                 p (1 - lr wd) - lr sqrt(rows / cols) P Q^T, mu 0.95, full rank r = min(rows, cols).
                 Q_0 is steep's deterministic one (precond/dion.hpp: splitmix64, seed 0), not the
                 authors' torch.randn.
  dion_low_rank  the same with rank_fraction 0.5 (r = 3 for W1 and W2, 2 for W3), weight decay 0.1.
  dion_bf16      dion with M and Q stored as bfloat16 (the authors' DionMixedPrecisionConfig):
                 each step computes in float64 from the stored M and Q and rounds their new values
                 once (float64 -> float32 -> bfloat16, nearest even), steep's convention for every
                 bfloat16 slot; the update uses the step's unrounded P and Q.
  soap           Vyas et al. (2024), "SOAP: Improving and Stabilizing Shampoo using Adam"
                 (arXiv:2409.11321), the authors' SOAP.step (repository nikhilvyas/SOAP) for a 2-D
                 parameter, float64 (the authors' code takes its eigh and QR in float32): step 1
                 only sets the factors L = (1 - sb) G G^T, R = (1 - sb) G^T G up and their
                 eigenbases (eigh of L + 1e-30 I, eigenvalues descending) and leaves p alone; then
                 Adam in the eigenbasis (exp_avg, exp_avg_sq of Q_L^T G Q_R), p - lr sqrt(bc2) / bc1
                 Q_L (exp_avg / (sqrt(exp_avg_sq) + eps)) Q_R^T, then the factors' EMA (torch.lerp)
                 and, every precondition_frequency steps, exp_avg_sq re-sorted by the estimated
                 eigenvalues diag(Q^T L Q) and Q = qr(L Q) (one power iteration); exp_avg is carried
                 into the new basis. On the square S1 (6 x 6) and S2 (5 x 5), the authors' defaults
                 (betas 0.95, shampoo_beta = beta2, eps 1e-8, frequency 10: no refresh in 6 steps).
  soap_every2    the same on S1, S2 with betas (0.9, 0.99), shampoo_beta 0.9, frequency 2: the
                 bases are refreshed by QR at the code's steps 2 and 4 (steep's steps 3 and 5).
  soap_capped    on W1, W2, W3 with max_precond_dim 6 and frequency 2: a side longer than 6 keeps
                 no factor (the code's empty GG entry: no rotation on that side), so each block
                 keeps its smaller side's factor only.
  two_phase_momentum  two matrix phases in one step: p - lr NS(m), m = 0.9 m + 0.1 NS(g), NS torch
                 2.11's Newton-Schulz (quintic, 5 steps, X / max(||X||_F, 1e-7)); lr 0.1. Phase 1
                 orthogonalizes the gradient, phase 2 the momentum of the polar factors.
  two_phase_norm the second phase's operand reads a norm of the first's result: p - lr polar(g -
                 O / ||O||_F), O = NS(g), polar the exact U V^T (SVD); lr 0.1.
  phase_two_only a matrix stage whose operand needs a reduction of depth 1 and no other stage (so
                 phase 1 has none): v = 0.9 v + 0.1 (row sums of g^2), n = ||g / sqrt(v)||_F (v
                 per row), p - lr NS(g + g^2 / n); lr 0.1.
  Rank, for SOAP: a factor with more rows than the gradients it has seen span is rank-deficient,
  and the eigh of step 1 (and a QR of L Q) then returns an arbitrary basis of its null space,
  which the elementwise Adam in that basis does not forgive: the trajectory would depend on the
  eigensolver's roundoff at O(1). The SOAP cases therefore only keep full-rank factors: square
  blocks for both sides, and the cap (max_precond_dim, the code's own setting) on the wide and
  tall blocks. Column signs of the bases do not matter (exp_avg_sq is squared, the rest rotates
  back), so steep's sign-normalized QR and eigh agree with NumPy's to roundoff.
  Rank: one factor of each block is rank-deficient for the first steps (the wide W1's R is 10 x 10
  and sees 6 rows a step, the tall W2's L 12 x 12, 5), and a root between refreshes meets
  gradients outside the range its factor had. There the eigenvalues are roundoff plus eps, and
  with eps 1e-8 or 1e-10 the trajectory depends on that roundoff at 1e-11 relative (the eigenvalue
  power -1/2 or -1/4 of 1e-17 / eps): the cases that meet it keep eps at 1e-3, where it is 1e-14.
"""
import math
import os

import numpy as np

STEPS = 6
SHAPES = {"W1": (6, 10), "W2": (12, 5), "W3": (3, 12)}

QUINTIC = (3.4445, -4.7750, 2.0315)
PE = [
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
]
PE = [(a / 1.01, b / 1.01**3, c / 1.01**5) for (a, b, c) in PE[:-1]] + [PE[-1]]


def newton_schulz(g, coeffs, norm_scale=1.0, eps=1e-7, clamp=False):
    x = g.astype(np.float64)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    # optax / the AdaMuon, NorMuon and Scion code: X / (||X|| + eps); torch 2.11: X / max(||X||, eps)
    x = x / (max(np.linalg.norm(x) * norm_scale, eps) if clamp else np.linalg.norm(x) * norm_scale + eps)
    for a, b, c in coeffs:
        A = x @ x.T
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.T if tall else x


def adamuon(p, grads, lr=0.02, wd=0.01, mu=0.95, b2=0.999, eps=1e-8):
    buf = np.zeros_like(p)
    v = np.zeros_like(p)
    out = []
    r, c = p.shape
    for t, g in enumerate(grads, start=1):
        buf = buf + (1 - mu) * (g - buf)  # buf.lerp_(g, 1 - mu)
        u = g + mu * (buf - g)  # g.lerp_(buf, mu)
        o = newton_schulz(u, [QUINTIC] * 5)
        v = b2 * v + (1 - b2) * o * o
        v_hat = v / (1 - b2**t)
        o = o / (np.sqrt(v_hat) + eps)
        o = o * (min(r, c) ** 0.5 / (np.linalg.norm(o) + eps))
        p = p * (1 - lr * wd)
        p = p - lr * 0.2 * max(r, c) ** 0.5 * o
        out.append(p.copy())
    return out


def muon_polar(p, grads, lr=0.02, wd=0.1, mu=0.95):
    buf = np.zeros_like(p)
    out = []
    r, c = p.shape
    for g in grads:
        buf = buf + (1 - mu) * (g - buf)
        u = g + mu * (buf - g)
        o = newton_schulz(u, PE[:5], norm_scale=1.01)
        p = p * (1 - lr * wd)
        p = p - lr * max(1.0, r / c) ** 0.5 * o
        out.append(p.copy())
    return out


def adam_mini(p, grads, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.1):
    m = np.zeros_like(p)
    v = 0.0
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * np.mean(g * g)
        p = p * (1 - lr * wd)
        p = p - (lr / (1 - b1**t)) * m / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(p.copy())
    return out


def polar_express_maps():
    out = os.path.join("tests", "data", "polar_express")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, shape in (("wide", (6, 10)), ("tall", (12, 5))):
        g = rng.standard_normal(shape)
        np.save(os.path.join(out, f"{name}_input.npy"), g)
        for steps in (5, 10):
            hs = PE[:steps] + [PE[-1]] * max(0, steps - len(PE))
            np.save(os.path.join(out, f"{name}_steps{steps}.npy"),
                    np.ascontiguousarray(newton_schulz(g, hs, norm_scale=1.01)))
    print("wrote", out)


def normuon(p, grads, lr=0.02, wd=0.1, mu=0.95, b2=0.95, eps=1e-10, shape_factor=True):
    buf = np.zeros_like(p)
    v = np.zeros((p.shape[0], 1))
    out = []
    r, c = p.shape
    for g in grads:
        buf = buf + (1 - mu) * (g - buf)
        u = g + mu * (buf - g)
        o = newton_schulz(u, [QUINTIC] * 5)
        vnorm = np.linalg.norm(o)
        v_mean = np.mean(o * o, axis=-1, keepdims=True)
        v = v + (1 - b2) * (v_mean - v)  # lerp_(v_mean, 1 - b2)
        o = o * (1 / (np.sqrt(v) + eps))
        o = o * (vnorm / (np.linalg.norm(o) + eps))
        if shape_factor:
            o = o * max(1.0, r / c) ** 0.5
        p = p * (1 - lr * wd)
        p = p - lr * o
        out.append(p.copy())
    return out


def scion_lmo(kind, b):
    r, c = b.shape
    if kind == "colnorm":
        return b / (np.sqrt(np.sum(b * b, axis=0, keepdims=True)) / np.sqrt(r) + 1e-8)
    if kind == "rownorm":
        return b / (np.sqrt(np.sum(b * b, axis=-1, keepdims=True)) * np.sqrt(c) + 1e-8)
    if kind == "spectral":
        return newton_schulz(b, [QUINTIC] * 5) * (r / c) ** 0.5
    return np.sign(b) / c  # sign


def scion(kind, radius):
    def run(p, grads, lr=2e-3, a=0.1):
        buf = np.zeros_like(p)
        out = []
        for g in grads:
            buf = buf * (1 - a) + a * g
            p = p * (1 - lr)
            p = p - lr * radius * scion_lmo(kind, buf)
            out.append(p.copy())
        return out

    return run


SCION = {"W1": scion("colnorm", 50.0), "W2": scion("spectral", 50.0), "W3": scion("sign", 3000.0)}


def muon_slices(p, grads, slice_rows, slice_cols, lr=0.02, wd=0.1, mu=0.95):
    buf = np.zeros_like(p)
    out = []
    n = slice_rows * slice_cols
    for g in grads:
        buf = buf + (1 - mu) * (g - buf)
        u = (g + mu * (buf - g)).reshape(-1)
        o = np.concatenate([newton_schulz(u[k * n:(k + 1) * n].reshape(slice_rows, slice_cols), [QUINTIC] * 5,
                                          clamp=True).reshape(-1) for k in range(u.size // n)])
        p = p * (1 - lr * wd)
        p = p - lr * max(1.0, slice_rows / slice_cols) ** 0.5 * o.reshape(p.shape)
        out.append(p.copy())
    return out


def normuon_slices(p, grads, slice_rows, slice_cols, lr=0.02, wd=0.1, mu=0.95, b2=0.95):
    buf = np.zeros_like(p)
    n = slice_rows * slice_cols
    k_slices = p.size // n
    v = np.zeros((k_slices, slice_rows, 1))
    out = []
    for g in grads:
        buf = buf + (1 - mu) * (g - buf)
        u = (g + mu * (buf - g)).reshape(k_slices, slice_rows, slice_cols)
        o = np.empty_like(u)
        for k in range(k_slices):
            ok = newton_schulz(u[k], [QUINTIC] * 5)
            vnorm = np.linalg.norm(ok)
            v[k] = v[k] + (1 - b2) * (np.mean(ok * ok, axis=-1, keepdims=True) - v[k])
            ok = ok * (1 / (np.sqrt(v[k]) + 1e-10))
            o[k] = ok * (vnorm / (np.linalg.norm(ok) + 1e-10))
        p = p * (1 - lr * wd)
        p = p - lr * max(1.0, slice_rows / slice_cols) ** 0.5 * o.reshape(p.shape)
        out.append(p.copy())
    return out


def adam_mini_slices(p, grads, slice_rows, slice_cols, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.1):
    n = slice_rows * slice_cols
    m = np.zeros_like(p)
    v = np.zeros((p.size // n, 1))
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * np.mean((g * g).reshape(-1, n), axis=1, keepdims=True)
        vhat = np.repeat(v / (1 - b2**t), n, axis=1).reshape(p.shape)
        p = p * (1 - lr * wd)
        p = p - (lr / (1 - b1**t)) * m / (np.sqrt(vhat) + eps)
        out.append(p.copy())
    return out


def stacked(out):
    rng = np.random.default_rng(13)
    for name, shape, (sr, sc) in (("E", (3, 4, 6), (4, 6)), ("Q", (12, 5), (4, 5))):
        p0 = rng.standard_normal(shape) * 0.5
        grads = rng.standard_normal((STEPS,) + shape)
        np.save(os.path.join(out, f"{name}_p0.npy"), p0)
        np.save(os.path.join(out, f"{name}_grads.npy"), grads)
        for case, fn in (("muon_stacked", muon_slices), ("normuon_stacked", normuon_slices),
                         ("adam_mini_sliced", adam_mini_slices)):
            np.save(os.path.join(out, f"{case}_{name}.npy"), np.stack(fn(p0.copy(), grads, sr, sc)))


def sym_power(a, power, eps, relative=False):
    """(A + eps I)^power for a symmetric PSD A, distributed Shampoo's way (see shampoo above); with
    relative, eps times the largest eigenvalue (after the shift), Anil et al. (2020)'s ridge:
    ridge_epsilon * max(max_ev, 1e-16) in google-research's scalable_shampoo."""
    w, v = np.linalg.eigh(a)
    shifted = w - min(w[0], 0.0)
    lam = shifted + (eps * max(shifted[-1], 1e-16) if relative else eps)
    return (v * lam**power) @ v.T


def shampoo_directions(grads, beta2=1.0, eps=1e-12, left=-0.25, right=-0.25, one_sided=0.0, every=1, mu=None,
                       stats_from_grad=False, relative=False):
    """Shampoo's direction L_root X R_root at each step (X: the gradient, or its EMA momentum; the
    factors from X, or with stats_from_grad from the gradient while X is the momentum)."""
    rows, cols = grads[0].shape
    a = (one_sided if rows <= cols else 0.0) if one_sided else left
    b = (0.0 if rows <= cols else one_sided) if one_sided else right
    fl, fr = np.zeros((rows, rows)), np.zeros((cols, cols))
    root_l = root_r = None
    m = np.zeros_like(grads[0])
    for t, g in enumerate(grads, 1):
        x = g
        if mu is not None:
            m = mu * m + (1 - mu) * g
            x = m
        s = g if stats_from_grad else x
        if a:
            fl = fl + s @ s.T if beta2 == 1 else beta2 * fl + (1 - beta2) * (s @ s.T)
        if b:
            fr = fr + s.T @ s if beta2 == 1 else beta2 * fr + (1 - beta2) * (s.T @ s)
        if (t - 1) % every == 0:
            root_l = sym_power(fl, a, eps, relative) if a else None
            root_r = sym_power(fr, b, eps, relative) if b else None
        u = x
        if a:
            u = root_l @ u
        if b:
            u = u @ root_r
        yield u


def shampoo(lr=0.1, **settings):
    def run(p, grads):
        out = []
        for u in shampoo_directions(grads, **settings):
            p = p - lr * u
            out.append(p.copy())
        return out
    return run


def pinv_root(a, k):
    """(A^+)^(1/k) of a symmetric PSD A: eigenvalues at or below n eps max|w| (NumPy's matrix_rank
    cutoff for a Hermitian matrix) count as 0 (steep's linalg::pinv_root)."""
    w, v = np.linalg.eigh(a)
    cutoff = a.shape[0] * np.finfo(np.float64).eps * np.abs(w).max()
    f = np.where(w > cutoff, np.abs(w) ** (-1.0 / k), 0.0)
    return (v * f) @ v.T


def shampoo_unaccumulated(lr=0.1, mu=0.9):
    """Shampoo with beta2 = 0 and no eps on an EMA momentum M: (M M^T)^(+1/4) M (M^T M)^(+1/4),
    which is M's polar factor U V^T (Bernstein & Newhouse 2024, arXiv:2409.20325)."""
    def run(p, grads):
        m = np.zeros_like(p)
        out = []
        for g in grads:
            m = mu * m + (1 - mu) * g
            p = p - lr * (pinv_root(m @ m.T, 4) @ m @ pinv_root(m.T @ m, 4))
            out.append(p.copy())
        return out
    return run


def shampoo_grafted(lr=0.1, beta2=0.99, eps=1e-3, graft_beta2=0.99, graft_eps=1e-8):
    def run(p, grads):
        v = np.zeros_like(p)
        out = []
        for g, u in zip(grads, shampoo_directions(grads, beta2=beta2, eps=eps)):
            v = graft_beta2 * v + (1 - graft_beta2) * g * g
            a = g / (np.sqrt(v) + graft_eps)
            p = p - lr * u * (np.linalg.norm(a) / np.linalg.norm(u))
            out.append(p.copy())
        return out
    return run


SHAMPOO = (("shampoo", shampoo()), ("shampoo_ema_every2", shampoo(beta2=0.99, eps=1e-3, every=2, mu=0.9)),
           ("shampoo_one_sided", shampoo(one_sided=-0.5)), ("shampoo_left_half", shampoo(left=-0.5, right=0.0, eps=1e-3)),
           ("shampoo_grafted", shampoo_grafted()),
           ("shampoo_stats_from_grad", shampoo(beta2=0.99, eps=1e-3, every=2, mu=0.9, stats_from_grad=True)),
           ("shampoo_unaccumulated", shampoo_unaccumulated()),
           ("shampoo_relative_eps", shampoo(eps=1e-3, relative=True, every=2, mu=0.9)))


def splitmix_q0(n, r, seed=0):
    """Dion's first Q in steep (precond/dion.hpp, q_init hashed): n x r, entry k (row-major) is
    2 u - 1, u = (splitmix64(seed + (k + 1) 0x9E3779B97F4A7C15) >> 11) 2^-53."""
    mask = (1 << 64) - 1
    q = np.empty(n * r)
    for k in range(n * r):
        z = (seed + (k + 1) * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        q[k] = 2.0 * ((z >> 11) * 2.0**-53) - 1.0
    return q.reshape(n, r)


def qr_positive(a):
    """Thin QR with R's diagonal >= 0 (steep's linalg::qr_orthonormal)."""
    q, r = np.linalg.qr(a)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def to_bfloat16(x):
    """x rounded to bfloat16 (via float32, nearest even; steep::bfloat16), as float64."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32).astype(np.float64)


def dion(lr=0.1, mu=0.95, rank_fraction=1.0, wd=0.0, eps=1e-8, bf16=False):
    store = to_bfloat16 if bf16 else (lambda x: x)

    def run(p, grads):
        rows, cols = p.shape
        transpose = rows < cols
        d = min(rows, cols)
        rank = min(math.ceil(rank_fraction * d), d)
        M = np.zeros_like(p)
        Q = splitmix_q0(d, rank)
        out = []
        for g in grads:
            M = M + g
            B = M.T if transpose else M
            P = qr_positive(B @ Q)
            R = B.T @ P
            if (M == 0).all():
                P, R = np.zeros_like(P), Q
            M = M - (1 - mu) * ((R @ P.T) if transpose else (P @ R.T))
            Q = R / (np.linalg.norm(R, axis=0, keepdims=True) + eps)
            p = p * (1 - lr * wd)
            p = p - lr * (rows / cols) ** 0.5 * ((Q @ P.T) if transpose else (P @ Q.T))
            M, Q = store(M), store(Q)
            out.append(p.copy())
        return out
    return run


def soap(lr=0.1, betas=(0.95, 0.95), shampoo_beta=-1.0, eps=1e-8, precondition_frequency=10,
         max_precond_dim=10000):
    """SOAP for one 2-D parameter, transcribed from the authors' SOAP.step (see SOAP above)."""
    b1, b2 = betas
    sb = shampoo_beta if shampoo_beta >= 0 else b2

    def lerp(start, end, weight):  # torch.lerp's two branches
        return start + weight * (end - start) if weight < 0.5 else end - (end - start) * (1 - weight)

    def run(p, grads):
        rows, cols = p.shape
        gg = [np.zeros((rows, rows)) if rows <= max_precond_dim else None,
              np.zeros((cols, cols)) if cols <= max_precond_dim else None]
        q = None
        exp_avg, exp_avg_sq = np.zeros_like(p), np.zeros_like(p)
        step = 0

        def project(x):  # tensordot(x, Q, [[0], [0]]) per dimension: Q_L^T x Q_R
            x = q[0].T @ x if q[0] is not None else x
            return x @ q[1] if q[1] is not None else x

        def project_back(x):  # tensordot(x, Q, [[0], [1]]) per dimension: Q_L x Q_R^T
            x = q[0] @ x if q[0] is not None else x
            return x @ q[1].T if q[1] is not None else x

        def update_preconditioner(g):
            nonlocal q, exp_avg, exp_avg_sq
            if q is not None:
                exp_avg = project_back(exp_avg)
            outer = (g @ g.T, g.T @ g)
            for k in range(2):
                if gg[k] is not None:
                    gg[k] = lerp(gg[k], outer[k], 1 - sb)
            if q is None:  # get_orthogonal_matrix: eigh, eigenvalues descending
                q = [None if m is None else np.flip(np.linalg.eigh(m + 1e-30 * np.eye(m.shape[0]))[1], 1)
                     for m in gg]
            if step > 0 and step % precondition_frequency == 0:  # get_orthogonal_matrix_QR
                final = []
                for k, (m, o) in enumerate(zip(gg, q)):
                    if m is None:
                        final.append(None)
                        continue
                    est_eig = np.diag(o.T @ m @ o)
                    sort_idx = np.argsort(-est_eig, kind="stable")
                    exp_avg_sq = np.take(exp_avg_sq, sort_idx, axis=k)
                    o = o[:, sort_idx]
                    final.append(np.linalg.qr(m @ o)[0])
                q = final
            if step > 0:
                exp_avg = project(exp_avg)

        out = []
        for g in grads:
            if q is None:  # the first step only sets the preconditioner up: no update
                update_preconditioner(g)
                out.append(p.copy())
                continue
            grad_projected = project(g)
            step += 1
            exp_avg = exp_avg * b1 + (1.0 - b1) * grad_projected
            exp_avg_sq = exp_avg_sq * b2 + (1.0 - b2) * grad_projected**2
            denom = np.sqrt(exp_avg_sq) + eps
            step_size = lr * (1.0 - b2**step) ** 0.5 / (1.0 - b1**step)
            norm_grad = project_back(exp_avg / denom)
            p = p + (-step_size) * norm_grad
            update_preconditioner(g)
            out.append(p.copy())
        return out
    return run


DION = (("dion", dion()), ("dion_low_rank", dion(rank_fraction=0.5, wd=0.1)),
        ("dion_bf16", dion(rank_fraction=0.5, wd=0.1, bf16=True)))

# On the wide and tall blocks, capped: each block keeps its smaller side's factor only, full rank.
SOAP = (("soap_capped", soap(precondition_frequency=2, max_precond_dim=6)),)


def soap_square(out):
    """SOAP with both factors, on square blocks (both factors full rank from the first step)."""
    rng = np.random.default_rng(17)
    for name, shape in (("S1", (6, 6)), ("S2", (5, 5))):
        p0 = rng.standard_normal(shape) * 0.5
        grads = rng.standard_normal((STEPS,) + shape)
        np.save(os.path.join(out, f"{name}_p0.npy"), p0)
        np.save(os.path.join(out, f"{name}_grads.npy"), grads)
        for case, fn in (("soap", soap()),
                         ("soap_every2", soap(betas=(0.9, 0.99), shampoo_beta=0.9, precondition_frequency=2))):
            np.save(os.path.join(out, f"{case}_{name}.npy"), np.stack(fn(p0.copy(), grads)))


TORCH_NS = [QUINTIC] * 5


def polar(x):
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    return u @ vt


def two_phase_momentum(p, grads, lr=0.1, beta=0.9):
    m, out = np.zeros_like(p), []
    for g in grads:
        m = beta * m + (1 - beta) * newton_schulz(g, TORCH_NS, clamp=True)
        p = p - lr * newton_schulz(m, TORCH_NS, clamp=True)
        out.append(p.copy())
    return out


def two_phase_norm(p, grads, lr=0.1):
    out = []
    for g in grads:
        o = newton_schulz(g, TORCH_NS, clamp=True)
        p = p - lr * polar(g - o / np.linalg.norm(o))
        out.append(p.copy())
    return out


def phase_two_only(p, grads, lr=0.1, beta=0.9):
    v, out = np.zeros(p.shape[0]), []
    for g in grads:
        v = beta * v + (1 - beta) * np.sum(g * g, axis=1)
        n = np.linalg.norm(g / np.sqrt(v)[:, None])
        p = p - lr * newton_schulz(g + g * g / n, TORCH_NS, clamp=True)
        out.append(p.copy())
    return out


PHASES = (("two_phase_momentum", two_phase_momentum), ("two_phase_norm", two_phase_norm),
          ("phase_two_only", phase_two_only))


def main():
    polar_express_maps()
    out = os.path.join("tests", "data", "variants")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    for name, shape in SHAPES.items():
        p0 = rng.standard_normal(shape) * 0.5
        grads = rng.standard_normal((STEPS,) + shape)
        np.save(os.path.join(out, f"{name}_p0.npy"), p0)
        np.save(os.path.join(out, f"{name}_grads.npy"), grads)
        for case, fn in (("adamuon", adamuon), ("muon_polar", muon_polar), ("adam_mini", adam_mini),
                         ("normuon", normuon), ("scion", SCION[name]), ("scion_rownorm", scion("rownorm", 50.0)),
                         ("normuon_eps8", lambda p, g: normuon(p, g, eps=1e-8, shape_factor=False))) + SHAMPOO + DION + SOAP + PHASES:
            np.save(os.path.join(out, f"{case}_{name}.npy"), np.stack(fn(p0.copy(), grads)))
    stacked(out)
    soap_square(out)
    print("wrote", out)


if __name__ == "__main__":
    main()
