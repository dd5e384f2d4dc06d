#!/usr/bin/env python3
"""Compares steep-bench runs of two builds (a refactor's before and after), cell by cell.

    bench/compare.py --before b1.json b2.json --after a1.json a2.json [--md out.md]

Each run's cell (rule, parameters, tensors, threads) has steep_noguard's time over the
hand-written loop's, measured interleaved in one process (steep-bench). The hand-written loop
is the same code in both builds, so after / before of that ratio is steep's change, free of the
machine's drift between the runs. Runs of one build are combined by their median; a cell's noise
is the larger |1 - copy / handwritten| (steep-bench's noise floor) of the runs. Prints, per rule,
the median change and the cells whose change exceeds their noise, and exits 0 (a report, not a test).
"""
import argparse
import json
import statistics
import sys


def cells(paths):
    out = {}
    for p in paths:
        with open(p) as f:
            for r in json.load(f)["ratios"]:
                if r.get("kind") != "steep_over_handwritten":
                    continue
                key = (r["name"], r["params"], r["tensors"], r["threads"], r["dtype"])
                out.setdefault(key, []).append((r["ratio"], abs(1 - r["noise_floor"])))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", nargs="+", required=True)
    ap.add_argument("--after", nargs="+", required=True)
    ap.add_argument("--md", help="also write the table as Markdown here")
    a = ap.parse_args()
    before, after = cells(a.before), cells(a.after)
    rows, per_rule = [], {}
    for key in sorted(set(before) & set(after)):
        b = statistics.median(r for r, _ in before[key])
        n = statistics.median(r for r, _ in after[key])
        noise = max(x for _, x in before[key] + after[key])
        change = n / b
        rows.append((key, b, n, change, noise))
        per_rule.setdefault(key[0], []).append(change)
    lines = ["| rule | cells | median after/before | min | max | cells beyond their noise |", "|---|---:|---:|---:|---:|---|"]
    for rule, ch in per_rule.items():
        beyond = [f"{k[1]}x{k[2]}: {c:.3f} (noise {z:.3f})" for k, _, _, c, z in rows
                  if k[0] == rule and abs(c - 1) > z]
        lines.append(f"| {rule} | {len(ch)} | {statistics.median(ch):.3f} | {min(ch):.3f} | {max(ch):.3f} | "
                     f"{'; '.join(beyond) or '-'} |")
    allc = [c for _, _, _, c, _ in rows]
    beyond_all = sum(1 for _, _, _, c, z in rows if abs(c - 1) > z)
    lines.append(f"| all | {len(allc)} | {statistics.median(allc):.3f} | {min(allc):.3f} | {max(allc):.3f} | "
                 f"{beyond_all} of {len(allc)} |")
    text = "\n".join(lines)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
