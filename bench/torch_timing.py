"""Shared timing loop of steep's PyTorch peer scripts (bench/torch_*.py).

interleaved(variants, rounds, steps): each variant is a zero-argument callable; in round r they run
starting at index r (rotation, as bench/harness.hpp does for steep), `steps` timed calls each.
Returns {name: [seconds per call, ...]}. The machines are noisy: compare medians of one run.
"""
import time


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
