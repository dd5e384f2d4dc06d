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
        out += ["## Elementwise rules (steep-bench, float32)", "",
                "| rule | impl | params | tensors | threads | median | GB/s |", "|---|---|---|---|---|---|---|"]
        for r in steep["records"]:
            out.append(f"| {r['name']} | {r['impl']} | {r['params']} | {r['tensors']} | {r['threads']} | "
                       f"{fmt_t(r['median_s'])} | {r['gb_per_s']:.1f} |")
        out += ["", "| params | tensors | threads | steep Adam / hand-written (time) | roofline / steep Adam |",
                "|---|---|---|---|---|"]
        for q in steep.get("ratios", []):
            if q.get("kind") == "per_group":
                out.append(f"| {q['params']} | {q['tensors']} | {q['threads']} | "
                           f"{q['steep_adam_over_handwritten_time']:.3f} | {q['roofline_over_steep_adam_time']:.3f} |")
        out.append("")
    if torch_optim:
        records += torch_optim["records"]
        if steep:
            out += [f"## Adam step: steep vs torch {torch_optim['torch']} (float32)", "",
                    "| params | tensors | threads | steep | best torch | torch impl | torch / steep time |",
                    "|---|---|---|---|---|---|---|"]
            for s in steep["records"]:
                if s["name"] != "adam" or s["impl"] != "steep":
                    continue
                peers = [t for t in torch_optim["records"]
                         if (t["params"], t["tensors"], t["threads"]) == (s["params"], s["tensors"], s["threads"])]
                if peers:
                    best = min(peers, key=lambda t: t["median_s"])
                    out.append(f"| {s['params']} | {s['tensors']} | {s['threads']} | {fmt_t(s['median_s'])} | "
                               f"{fmt_t(best['median_s'])} | {best['impl']} | {best['median_s'] / s['median_s']:.2f}x |")
            out.append("")
    if ns:
        records += ns["records"]
        out += ["## Newton-Schulz x5 (steep-bench-ns, float32)", "", "| variant | shape | threads | GFLOP/s |",
                "|---|---|---|---|"]
        for r in ns["records"]:
            out.append(f"| {r['name']} ({r['impl']}) | {r.get('shape', '')} | {r['threads']} | "
                       f"{r.get('gflop_per_s', 0):.1f} |")
        out.append("")
    if train:
        records += train["records"]
        out += ["## Training step of the main job (steep-bench-train, float64)", "",
                "| variant | threads | median | fraction of DGEMM |", "|---|---|---|---|"]
        for r in train["records"]:
            out.append(f"| {r['name']} ({r['impl']}) | {r['threads']} | {fmt_t(r['median_s'])} | "
                       f"{r['fraction_of_dgemm']:.3f} |")
        if torch_train:
            records += torch_train["records"]
            for r in torch_train["records"]:
                out.append(f"| train_step_adam ({r['impl']}) | {r['threads']} | {fmt_t(r['median_s'])} | |")
        out.append("")
    json.dump({"machine": machine, "records": records}, open(os.path.join(d, "all.json"), "w"), indent=2)
    text = "\n".join(out)
    open(os.path.join(d, "report.md"), "w").write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
