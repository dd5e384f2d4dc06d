#!/usr/bin/env python3
"""Float64 reference for steep::norms::polar_express (tests/data/polar_express/).

Algorithm 1 of Amsel, Persson, Musco, Gower (2025), "The Polar Express", in NumPy and float64
(the published code casts to bfloat16 for speed; the reference must not). For two shapes (wide and
tall) and 5 and 10 steps it writes the input G and the output. Run from the repository root:

    /usr/bin/python3 scripts/reference-polar-express.py
"""
import os

import numpy as np

COEFFS = [
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
]
COEFFS = [(a / 1.01, b / 1.01**3, c / 1.01**5) for (a, b, c) in COEFFS[:-1]] + [COEFFS[-1]]


def polar_express(g, steps):
    x = g.astype(np.float64)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (np.linalg.norm(x) * 1.01 + 1e-7)
    hs = COEFFS[:steps] + [COEFFS[-1]] * max(0, steps - len(COEFFS))
    for a, b, c in hs:
        A = x @ x.T
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.T if tall else x


def main():
    out = os.path.join("tests", "data", "polar_express")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, shape in (("wide", (6, 10)), ("tall", (12, 5))):
        g = rng.standard_normal(shape)
        np.save(os.path.join(out, f"{name}_input.npy"), g)
        for steps in (5, 10):
            np.save(os.path.join(out, f"{name}_steps{steps}.npy"), np.ascontiguousarray(polar_express(g, steps)))
    print("wrote", out)


if __name__ == "__main__":
    main()
