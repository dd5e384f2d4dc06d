"""Shared timing loop of steep's PyTorch peer scripts (bench/torch_*.py).

interleaved(variants, rounds, steps): each variant is a zero-argument callable; in round r they run
starting at index r (rotation, as bench/harness.hpp does for steep), `steps` timed calls each.
Returns {name: [seconds per call, ...]}. The machines are noisy: compare medians of one run.

set_threads(torch, n): torch.set_num_threads(n), and the same for the OpenBLAS that torch calls for its
matrix products. Debian's torch 1.13 leaves that OpenBLAS at every core whatever torch.set_num_threads
says: on the project's 2-core machine its "1 thread" 1024 x 4096 SGEMM ran at 185 GFLOP/s, on both cores
(99 with OPENBLAS_NUM_THREADS=1). Returns whether an OpenBLAS was found and pinned (the records keep it).

block_shape("8x256x256") -> (8, 256, 256, "8x256x256"); "256x1024" -> (1, 256, 1024, "1x256x1024"): B same-shape
matrices of R x C, spelled as the C++ benchmarks' block_shape labels (bench/harness.hpp).
"""
import ctypes
import os
import time


def set_threads(torch, n):
    torch.set_num_threads(n)
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if os.path.basename(line.split()[-1]).startswith("libopenblas")}
    pinned = False
    for path in sorted(libs):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_set_num_threads(n)
            pinned = True
    return pinned


def block_shape(label):
    dims = [int(x) for x in label.split("x")]
    blocks, rows, cols = dims if len(dims) == 3 else [1] + dims
    return blocks, rows, cols, f"{blocks}x{rows}x{cols}"


def interleaved(variants, rounds, steps, warmup=3):
    for step in variants.values():
        for _ in range(warmup):
            step()
    names = list(variants)
    samples = {name: [] for name in names}
    for r in range(rounds):
        for j in range(len(names)):
            name = names[(j + r) % len(names)]
            step = variants[name]
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                samples[name].append(time.perf_counter() - t0)
    return samples
