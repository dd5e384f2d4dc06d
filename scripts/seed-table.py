#!/usr/bin/env python3
"""Combines main-job records (implicit_bias --json, one seed each) into the seeds table.

    scripts/seed-table.py docs/results/paper-seed1.json docs/results/paper-seed2.json ...

For runs of one setting that were made one seed per process (the paper preset's seeds each take
about 25 minutes on one thread, so they run side by side), this prints what `--seeds N` prints
for runs made in one process: per optimizer and norm the margin's mean and sample standard
deviation over the records, each column's winner per record, and how many records agree (every
column won by the optimizer whose norm it is, the record's own "agree"). Markdown, to stdout.
Reads the records' "optimizers" (margins by norm), "winners" and "agree"; it refuses records whose
settings differ in anything but the seed.
"""
import json
import statistics
import sys

NORMS = ("l2", "linf", "spectral", "hybrid")


def main(paths):
    if not paths:
        sys.exit(__doc__)
    records = [json.load(open(p)) for p in paths]
    base = {k: v for k, v in records[0]["settings"].items() if k not in ("seed", "threads")}
    for p, r in zip(paths, records):
        s = {k: v for k, v in r["settings"].items() if k not in ("seed", "threads")}
        # Settings a later schema added (init_scale, betas, ...) are compared where both have them.
        common = set(s) & set(base)
        diff = sorted(k for k in common if s[k] != base[k])
        if diff:
            sys.exit(f"seed-table: {p} differs from {paths[0]} in {', '.join(diff)}")
    names = list(records[0]["optimizers"])
    seeds = [r["settings"]["seed"] for r in records]
    print(f"Seeds {', '.join(map(str, seeds))} ({len(records)} records): margin mean ± sd over the seeds; "
          "bold: the column's winner in every seed.\n")
    print("| optimizer | " + " | ".join(NORMS) + " |")
    print("|---|" + "---|" * len(NORMS))
    always = {n: {r["winners"][n] for r in records} for n in NORMS}
    for name in names:
        cells = []
        for n in NORMS:
            v = [r["optimizers"][name][n] for r in records]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            text = f"{statistics.mean(v):.4g} ± {sd:.2g}"
            cells.append(f"**{text}**" if always[n] == {name} else text)
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for n in NORMS:
        counts = {}
        for r in records:
            counts[r["winners"][n]] = counts.get(r["winners"][n], 0) + 1
        won = ", ".join(f"{k} {c}/{len(records)}" for k, c in sorted(counts.items(), key=lambda x: -x[1]))
        print(f"- {n}: won by {won}")
    agree = sum(1 for r in records if r["agree"] in (True, "agrees"))
    print(f"- records that agree (every column won by its own norm's optimizer): {agree} of {len(records)}")


if __name__ == "__main__":
    main(sys.argv[1:])
