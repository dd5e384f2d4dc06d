#!/usr/bin/env python3
"""Renders a benchmark run (scripts/bench.sh) as Markdown and merges its records into one JSON.

    python3 bench/report.py DIR        # reads DIR/{steep,ns,train,torch-optim,torch-train}.json if present

Writes DIR/all.json (every record, torch's included with impl torch_*, plus the machine) and
DIR/report.md, and prints the report. Ratios against hand-written loops are the in-process medians
of per-round ratios that steep-bench computed; steep/torch ratios divide medians measured back to
back in separate processes, so they carry the machine's drift (README, "Benchmarks").
"""
import json
import os
import sys


def load(d, name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else None


def table(head, rows):
    """Markdown lines of a table: head is the list of column titles, rows lists of cells."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(str(c) for c in r) + " |" for r in rows] + [""]


def fmt_t(s):
    return f"{s * 1e6:.1f} us" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def main():
    d = sys.argv[1]
    steep, ns, train = load(d, "steep.json"), load(d, "ns.json"), load(d, "train.json")
    torch_optim, torch_train = load(d, "torch-optim.json"), load(d, "torch-train.json")
    out = ["# steep benchmark run", ""]
    machine = (steep or train or ns or {}).get("machine", {})
    if machine:
        out += [f"Machine: {machine.get('cpu')}, {machine.get('hardware_concurrency')} threads, "
                f"SIMD {machine.get('simd_arch')}, compiler {machine.get('compiler')}.", ""]
    records = []
    if steep:
        records += steep["records"]
        out += ["## Elementwise rules (steep-bench, float32)", ""]
        out += table(["rule", "impl", "params", "tensors", "threads", "median", "GB/s"],
                     [[r["name"], r["impl"], r["params"], r["tensors"], r["threads"], fmt_t(r["median_s"]),
                       f"{r['gb_per_s']:.1f}"] for r in steep["records"]])
        out += table(["params", "tensors", "threads", "steep Adam / hand-written (time)", "roofline / steep Adam"],
                     [[q["params"], q["tensors"], q["threads"], f"{q['steep_adam_over_handwritten_time']:.3f}",
                       f"{q['roofline_over_steep_adam_time']:.3f}"]
                      for q in steep.get("ratios", []) if q.get("kind") == "per_group"])
    if torch_optim:
        records += torch_optim["records"]
        if steep:
            rows = []
            for s in steep["records"]:
                if s["name"] != "adam" or s["impl"] != "steep":
                    continue
                peers = [t for t in torch_optim["records"]
                         if (t["params"], t["tensors"], t["threads"]) == (s["params"], s["tensors"], s["threads"])]
                if peers:
                    best = min(peers, key=lambda t: t["median_s"])
                    rows.append([s["params"], s["tensors"], s["threads"], fmt_t(s["median_s"]),
                                 fmt_t(best["median_s"]), best["impl"], f"{best['median_s'] / s['median_s']:.2f}x"])
            out += [f"## Adam step: steep vs torch {torch_optim['torch']} (float32)", ""]
            out += table(["params", "tensors", "threads", "steep", "best torch", "torch impl", "torch / steep time"],
                         rows)
    if ns:
        records += ns["records"]
        out += ["## Newton-Schulz x5 (steep-bench-ns, float32)", ""]
        out += table(["variant", "shape", "threads", "GFLOP/s"],
                     [[f"{r['name']} ({r['impl']})", r.get("shape", ""), r["threads"], f"{r.get('gflop_per_s', 0):.1f}"]
                      for r in ns["records"]])
    if train:
        records += train["records"]
        rows = [[f"{r['name']} ({r['impl']})", r["threads"], fmt_t(r["median_s"]), f"{r['fraction_of_dgemm']:.3f}"]
                for r in train["records"]]
        if torch_train:
            records += torch_train["records"]
            rows += [[f"train_step_adam ({r['impl']})", r["threads"], fmt_t(r["median_s"]), ""]
                     for r in torch_train["records"]]
        out += ["## Training step of the main job (steep-bench-train, float64)", ""]
        out += table(["variant", "threads", "median", "fraction of DGEMM"], rows)
    json.dump({"machine": machine, "records": records}, open(os.path.join(d, "all.json"), "w"), indent=2)
    text = "\n".join(out)
    open(os.path.join(d, "report.md"), "w").write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
