#!/usr/bin/env python3
"""Float64 references for steep's matrix functions (include/steep/linalg/; tests/data/matrix_functions/).

Read by tests/unit/test_matrix_functions.cpp, which runs steep's float64 functions on the same
inputs and compares. Run from the repository root with Debian's NumPy:

    /usr/bin/python3 scripts/reference-matrix-functions.py

Inputs
  spd_<n>_a       symmetric positive definite n x n, n = 1, 2, 7, 64: Q diag(lambda) Q^T with Q
                  a random orthogonal matrix and lambda evenly spaced in [0.5, 10] (n = 1: 2.5), so
                  eigenvalues are 0.15 or more apart and the eigenvectors are well determined;
                  symmetrized (A + A^T) / 2, so A is exactly symmetric.
  indef_5_a       symmetric 5 x 5 with eigenvalues -0.3, 0.2, 1, 2, 5: Shampoo's shift at work.
  qr_<m>x<n>_a    standard normal m x n, (m, n) = (1, 1), (7, 3), (64, 16), (64, 64).
  psd_7r3_a       symmetric positive semidefinite 7 x 7 of rank 3: B B^T for a standard normal
                  7 x 3 B (a Gram matrix, as Shampoo's factor of one gradient); from its own
                  generator (seed 2027), so the files above do not change.

Outputs, each of NumPy (numpy.linalg, float64)
  spd_<n>_w, spd_<n>_v   eigh: eigenvalues ascending; eigenvectors as columns (either sign).
  spd_<n>_chol           cholesky: L, A = L L^T.
  spd_<n>_inv_root_p2    inverse_root(A, 2, 1e-3) = (A + 1e-3 I)^(-1/2)
  spd_<n>_inv_root_p4    inverse_root(A, 4, 1e-3) = (A + 1e-3 I)^(-1/4)
  spd_<n>_pow_half       matrix_power_sym(A, 0.5, 0) = A^(1/2)
  spd_<n>_pow_m1p3       matrix_power_sym(A, -1.3, 1e-3) = (A + 1e-3 I)^(-1.3)
  indef_5_inv_root_p2    inverse_root(B, 2, 1e-2): distributed Shampoo's convention (Shi et al.
                         2023, arXiv:2309.06497; facebookresearch/optimizers, matrix_inverse_root
                         with the eigendecomposition method): every eigenvalue shifted by
                         -min(lambda_min, 0), then eps added. Clamping each eigenvalue at 0 instead
                         would give another matrix here.
  psd_7r3_pinv_root_p<k>  pinv_root(A, k) = (A^+)^(1/k), k = 1, 2, 4: eigh, eigenvalues at or
                         below n eps max|w| (NumPy's matrix_rank cutoff) set to 0, the others to
                         w^(-1/k). (k = 1 is numpy.linalg.pinv(A, hermitian=True) up to its cutoff.)
  qr_<m>x<n>_q, _r       thin QR with R's diagonal made nonnegative (column j of Q and row j of R
                         negated where R_jj < 0): unique for a full-rank A.
"""
import os

import numpy as np

OUT = os.path.join("tests", "data", "matrix_functions")
SIZES = (1, 2, 7, 64)
QR_SHAPES = ((1, 1), (7, 3), (64, 16), (64, 64))
EPS = 1e-3


def random_orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def symmetric(q, lam):
    a = (q * lam) @ q.T
    return (a + a.T) / 2


def matrix_power_sym(a, power, eps):
    """Distributed Shampoo's eigendecomposition method: shift, then eps, then the power."""
    w, v = np.linalg.eigh(a)
    lam = (w + -min(w.min(), 0.0)) + eps
    return (v * lam**power) @ v.T


def pinv_root(a, k):
    """(A^+)^(1/k): the k-th root of the pseudo-inverse of a symmetric PSD A."""
    w, v = np.linalg.eigh(a)
    cutoff = a.shape[0] * np.finfo(np.float64).eps * np.abs(w).max()
    f = np.where(w > cutoff, np.abs(w) ** (-1.0 / k), 0.0)
    return (v * f) @ v.T


def qr_nonnegative(a):
    q, r = np.linalg.qr(a, mode="reduced")
    s = np.where(np.diag(r) < 0, -1.0, 1.0)
    return q * s, r * s[:, None]


def save(name, x):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(x, dtype=np.float64))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2026)
    for n in SIZES:
        lam = np.array([2.5]) if n == 1 else np.linspace(0.5, 10.0, n)
        a = symmetric(random_orthogonal(rng, n), lam)
        w, v = np.linalg.eigh(a)
        save(f"spd_{n}_a", a)
        save(f"spd_{n}_w", w)
        save(f"spd_{n}_v", v)
        save(f"spd_{n}_chol", np.linalg.cholesky(a))
        save(f"spd_{n}_inv_root_p2", matrix_power_sym(a, -1 / 2, EPS))
        save(f"spd_{n}_inv_root_p4", matrix_power_sym(a, -1 / 4, EPS))
        save(f"spd_{n}_pow_half", matrix_power_sym(a, 0.5, 0.0))
        save(f"spd_{n}_pow_m1p3", matrix_power_sym(a, -1.3, EPS))
    b = symmetric(random_orthogonal(rng, 5), np.array([-0.3, 0.2, 1.0, 2.0, 5.0]))
    save("indef_5_a", b)
    save("indef_5_inv_root_p2", matrix_power_sym(b, -1 / 2, 1e-2))
    for m, n in QR_SHAPES:
        a = rng.standard_normal((m, n))
        q, r = qr_nonnegative(a)
        save(f"qr_{m}x{n}_a", a)
        save(f"qr_{m}x{n}_q", q)
        save(f"qr_{m}x{n}_r", r)
    b = np.random.default_rng(2027).standard_normal((7, 3))
    g = b @ b.T
    g = (g + g.T) / 2
    save("psd_7r3_a", g)
    for k in (1, 2, 4):
        save(f"psd_7r3_pinv_root_p{k}", pinv_root(g, k))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
