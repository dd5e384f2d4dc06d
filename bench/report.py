#!/usr/bin/env python3
"""Renders a benchmark run (scripts/bench.sh) as Markdown and merges its records into one JSON.

    python3 bench/report.py DIR        # reads DIR/steep*.json, {ns,train,dispatch,torch-optim,torch-train,torch-inproc,torch-muon,precond,torch-precond}.json if present

Writes DIR/all.json (every record, torch's included with impl torch_*, plus the machine),
DIR/report.md and, where gnuplot is installed, DIR/throughput-<dtype>.{png,svg}, and prints the report. Ratios against hand-written loops are the in-process medians
of per-round ratios that steep-bench computed; steep/torch ratios divide medians measured back to
back in separate processes, so they carry the machine's drift (docs/benchmarks.md).
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


# steep-bench's rule_table order; a run of an older steep-bench has a subset.
RULES = ["sgd", "momentum", "nesterov", "adam", "adamw", "adam_eps0", "amsgrad", "adagrad", "rmsprop", "lion",
         "signum", "adam_optax", "nadamw_optax"]


def ratio_rows(steep, kind):
    return [q for q in steep.get("ratios", []) if q.get("kind") == kind]


def elementwise_section(steep):
    """The steep-bench tables: steep vs hand-written per rule with the noise floor, the guard's cost,
    the many-tensor penalty, the absolute step time at small sizes and the two-thread speed-up."""
    out = []
    recs = steep["records"]
    dtype = steep.get("settings", {}).get("dtype", "float32")
    med = {(r["name"], r["impl"], r["params"], r["tensors"], r["threads"]): r["median_s"] for r in recs}
    out += [f"## Elementwise rules: steep vs hand-written ({dtype})", "",
            "Time of steep's loop (guard off) over a hand-written fused xsimd + TBB loop, median of per-round "
            "ratios; the noise floor is a second identical copy of the hand-written loop over the first. "
            "Roof: the rule's stream-mix roofline over steep.", ""]
    import statistics
    def summary_row(label, qs):
        r = [q["ratio"] for q in qs]
        f = [abs(q["noise_floor"] - 1) for q in qs]
        small = [q["ratio"] for q in qs if q["params"] <= 1 << 16]
        # Above 1.02 by more than the cell's own noise floor: what the run can tell from noise.
        beyond = sum(q["ratio"] > 1.02 and q["ratio"] - 1 > abs(q["noise_floor"] - 1) for q in qs)
        return [label, len(qs), f"{statistics.median(r):.3f}", f"{min(r):.3f} - {max(r):.3f}",
                f"{max(small):.3f}" if small else "", f"{sum(x > 1.02 for x in r)} ({beyond})",
                f"{sum(x > 1.05 for x in r)} / {sum(x < 0.95 for x in r)}", f"{statistics.median(f):.3f} / {max(f):.3f}"]

    every = ratio_rows(steep, "steep_over_handwritten")
    by_rule = [(rule, [q for q in every if q["name"] == rule]) for rule in RULES]
    summary = [summary_row(rule, qs) for rule, qs in by_rule if qs]
    if every:
        summary.append(summary_row("**all**", every))
    out += table(["rule", "cells", "median steep / hw", "range", "worst at <= 64K",
                  "cells > 1.02 (beyond their noise floor)", "cells > 1.05 / < 0.95",
                  "noise floor: abs(copy / hw - 1), median / max"], summary)
    rows = []
    for q in sorted(ratio_rows(steep, "steep_over_handwritten"),
                    key=lambda q: (RULES.index(q["name"]), q["params"], q["tensors"], q["threads"])):
        k = (q["name"], "steep_noguard", q["params"], q["tensors"], q["threads"])
        h = (q["name"], "handwritten", q["params"], q["tensors"], q["threads"])
        rows.append([q["name"], q["params"], q["tensors"], q["threads"], fmt_t(med[k]), fmt_t(med[h]),
                     f"{q['ratio']:.3f}", f"{q['noise_floor']:.3f}", f"{q['roofline_over_steep']:.2f}"])
    out += table(["rule", "params", "tensors", "threads", "steep", "hand-written", "steep / hw", "noise floor",
                  "roof"], rows)
    guard = ratio_rows(steep, "guard_cost")
    if guard:
        out += ["### The non-finite guard's cost (Adam time over Adam with the guard off)", ""]
        out += ["`read floor`: 1 + the time of the refusing guard's read of the gradient alone over Adam with the "
                "guard off; an all-or-nothing check must read all of g before the step writes, so `refuse` "
                "cannot go below it.", ""]
        out += table(["params", "tensors", "threads", "refuse (default)", "read floor", "mask", "adam_bf16 / adam"],
                     [[q["params"], q["tensors"], q["threads"], f"{q['refuse']:.3f}",
                       f"{q['read_floor']:.3f}" if "read_floor" in q else "", f"{q['mask']:.3f}",
                       f"{q['adam_bf16_over_adam']:.3f}" if "adam_bf16_over_adam" in q else ""]
                      for q in sorted(guard, key=lambda q: (q["params"], q["tensors"], q["threads"]))])
    many = [q for q in ratio_rows(steep, "many_over_one_tensor_throughput")
            if q["impl"] in ("steep_noguard", "handwritten")]
    if many:
        out += ["### Many tensors: throughput of 200 tensors over one tensor, same parameter count", ""]
        cells = {}
        for q in many:
            cells.setdefault((q["params"], q["threads"]), {})[(q["name"], q["impl"])] = (q["ratio"], q["interleaved"])
        present = [r for r in RULES if any((r, "steep_noguard") in c for c in cells.values())]
        head = ["params", "threads"] + [f"{r} steep / hw" for r in present]
        rows = []
        for (n, t), c in sorted(cells.items()):
            def cell(r):
                if (r, "steep_noguard") not in c:
                    return ""
                s, inter = c[(r, "steep_noguard")]
                h = c.get((r, "handwritten"), (float("nan"), True))[0]
                return f"{s:.2f} / {h:.2f}" + ("" if inter else " *")
            rows.append([n, t] + [cell(r) for r in present])
        out += table(head, rows) + ["(* the two layouts did not fit in memory together: timed one after the "
                                    "other, a ratio of medians)", ""]
    threads = sorted({r["threads"] for r in recs})
    if len(threads) > 1:
        lo, hi = threads[0], threads[-1]
        rows = []
        for n in sorted({r["params"] for r in recs if r["params"] <= 1 << 20}):
            for r in RULES:
                k1, k2 = (r, "steep_noguard", n, 1, lo), (r, "steep_noguard", n, 1, hi)
                h1, h2 = (r, "handwritten", n, 1, lo), (r, "handwritten", n, 1, hi)
                if k1 in med and k2 in med:
                    rows.append([r, n, fmt_t(med[k1]), fmt_t(med[h1]), f"{med[k1] / med[k2]:.2f}",
                                 f"{med[h1] / med[h2]:.2f}"])
        out += [f"### Small models: one step, and the speed-up from {lo} to {hi} threads (one tensor)", ""]
        out += table(["rule", "params", f"steep, {lo} thr", f"hand-written, {lo} thr", "steep speed-up",
                      "hand-written speed-up"], rows)
    return out


def plots(d, steeps):
    """Throughput (parameters updated per second) against parameter count: one panel per rule, lines
    for steep and the hand-written loop at each thread count and layout. PNG and SVG via gnuplot."""
    import shutil
    import subprocess
    if not shutil.which("gnuplot"):
        print("report.py: gnuplot is not installed; no plots", file=sys.stderr)
        return []
    made = []
    for steep in steeps:
        dtype = steep.get("settings", {}).get("dtype", "float32")
        recs = steep["records"]
        series = {}
        for r in recs:
            if r["name"] in RULES and r["impl"] in ("steep_noguard", "handwritten"):
                series.setdefault((r["name"], r["impl"], r["tensors"], r["threads"]), []).append(
                    (r["params"], r["params"] / r["median_s"] / 1e9))
        if not series:
            continue
        data = os.path.join(d, f"throughput-{dtype}.dat")
        blocks = []
        with open(data, "w") as f:
            for k, pts in sorted(series.items()):
                f.write(f"# {k}\n" + "".join(f"{n} {v}\n" for n, v in sorted(pts)) + "\n\n")
                blocks.append(k)
        panels = len({k[0] for k in blocks})
        cols = 3 if panels <= 6 else 5
        rows = (panels + cols - 1) // cols
        size = f"{560 * cols},{450 * rows}"
        for term, ext in ((f"pngcairo size {size}", "png"), (f"svg size {size}", "svg")):
            out = os.path.join(d, f"throughput-{dtype}.{ext}")
            g = [f"set terminal {term}", f"set output '{out}'", "set logscale x", "set key top right font ',8'",
                 "set grid", f"set multiplot layout {rows},{cols} title 'steep-bench " + dtype + ": parameters updated per "
                 "second (G/s), steep (guard off) vs hand-written'"]
            for rule in RULES:
                idx = [(i, k) for i, k in enumerate(blocks) if k[0] == rule]
                if not idx:
                    continue
                g += [f"set title '{rule}' noenhanced", "set xlabel 'parameters'", "set ylabel 'G params/s'"]
                parts = []
                for i, k in idx:
                    dash = "1" if k[2] == 1 else "2"
                    colour = {("steep_noguard", 1): "#1f77b4", ("handwritten", 1): "#ff7f0e"}.get(
                        (k[1], k[3]), "#2ca02c" if k[1] == "steep_noguard" else "#d62728")
                    label = f"{'steep' if k[1] == 'steep_noguard' else 'hand-written'}, {k[3]} thr, {k[2]} tensor(s)"
                    parts.append(f"'{data}' index {i} using 1:2 with linespoints dt {dash} lc rgb '{colour}' "
                                 f"title '{label}'")
                g.append("plot " + ", ".join(parts))
            g.append("unset multiplot")
            subprocess.run(["gnuplot"], input="\n".join(g) + "\n", text=True, check=True)
            made.append(out)
    return made


PRECOND_STEPS = ["shampoo_every1", "shampoo_every10", "shampoo_every100", "soap_every1", "soap_every10",
                 "soap_every100", "dion_step", "muon_step"]


def precond_section(precond, torch_precond, records):
    """steep-bench-precond's steps, eigh rate and state, and torch_precond_step.py's peers: the
    steep.torch rows timed in the same process (per-round ratios), Dion's against steep-bench-precond's."""
    out = []
    steep_med = {}
    if precond:
        records += precond["records"]
        steep_med = {(r["name"], r["shape"], r["threads"]): r["median_s"] for r in precond["records"]}
        rows = [[q["shape"], q["threads"]] + [fmt_t(steep_med[(n, q["shape"], q["threads"])]) for n in PRECOND_STEPS] +
                [f"{q['eigh_steep_over_lapack_rate']:.3f}"] for q in precond["ratios"]]
        out += ["## Shampoo, SOAP and Dion (steep-bench-precond, float32)", "",
                "Per step, amortized over each sample's steps (every K: the refresh every K steps); the eigh rate is "
                "LAPACK ssyevd's time over the refresh's sym_eigh on the same factor (goal >= 0.9).", ""]
        out += table(["shape", "threads"] + PRECOND_STEPS + ["eigh rate"], rows)
        out += table(["rule", "shape", "describe() bytes", "= slots = formula", "bytes / param", "heap / describe()"],
                     [[b["rule"], b["shape"], b["describe_bytes"],
                       "yes" if b["describe_bytes"] == b["slot_bytes"] == b["formula_bytes"] else "NO",
                       f"{b['describe_bytes_per_param']:.2f}", f"{b['heap_over_describe']:.2f}"]
                      for b in precond.get("state", [])])
    if torch_precond:
        records += torch_precond["records"]
        med = {(r["name"], r["impl"], r["shape"], r["threads"]): r["median_s"] for r in torch_precond["records"]}
        rows = [[q["name"], q["shape"], q["threads"], fmt_t(med[(q["name"], "steep", q["shape"], q["threads"])]),
                 q["torch"], fmt_t(med[(q["name"], q["torch"], q["shape"], q["threads"])]),
                 f"{q['torch_over_steep_time']:.2f}x (one process)"] for q in torch_precond["ratios"]]
        for r in torch_precond["records"]:
            s = steep_med.get((r["name"], r["shape"], r["threads"]))
            if r["name"] == "dion_step" and s:
                rows.append([r["name"], r["shape"], r["threads"], fmt_t(s) + " (steep-bench-precond)", r["impl"],
                             fmt_t(r["median_s"]), f"{r['median_s'] / s:.2f}x (two processes)"])
        checks = "; ".join(f"{c['what']} {c['max_rel']:.1e}" for c in torch_precond.get("checks", []))
        out += [f"## Shampoo, SOAP and Dion: steep vs the authors' torch code (torch {torch_precond['torch']}, "
                "float32)", "",
                "`torch_precond_step.py`: `torch_authors` is the authors' SOAP (bench/third_party/soap), "
                "`torch_transcribed` distributed Shampoo's and microsoft/dion's updates in torch 1.13 ops (their "
                "packages need a newer torch); steep is steep.torch, interleaved in the same process. Checked in "
                f"float64 first (max relative error): {checks}.", ""]
        out += table(["step", "shape", "threads", "steep", "torch impl", "torch", "torch / steep time"], rows)
    return out


def main():
    d = sys.argv[1]
    steeps = [load(d, n) for n in sorted(os.listdir(d)) if n.startswith("steep") and n.endswith(".json")]
    by_dtype = {}
    for x in steeps:  # one table and one plot per dtype, however many runs wrote it
        if x:
            m = by_dtype.setdefault(x.get("settings", {}).get("dtype", "float32"),
                                    {"records": [], "ratios": [], "settings": x.get("settings", {}),
                                     "machine": x.get("machine", {})})
            m["records"] += x["records"]
            m["ratios"] += x.get("ratios", [])
    steeps = [by_dtype[k] for k in sorted(by_dtype)]
    steep = None
    ns, train = load(d, "ns.json"), load(d, "train.json")
    torch_optim, torch_train = load(d, "torch-optim.json"), load(d, "torch-train.json")
    inproc = load(d, "torch-inproc.json")
    dispatch = load(d, "dispatch.json")
    out = ["# steep benchmark run", ""]
    machine = ((steeps[0] if steeps else None) or train or ns or {}).get("machine", {})
    if machine:
        out += [f"Machine: {machine.get('cpu')}, {machine.get('hardware_concurrency')} threads, "
                f"SIMD {machine.get('simd_arch')}, compiler {machine.get('compiler')}.", ""]
    records = []
    for one in steeps:
        records += one["records"]
        out += elementwise_section(one)
    if steeps:
        steep = {"records": [r for one in steeps for r in one["records"]], "machine": steeps[0].get("machine")}
        for png in plots(d, steeps):
            if png.endswith(".png"):
                out += [f"![throughput]({os.path.basename(png)})", ""]
    if torch_optim:
        records += torch_optim["records"]
        if steep:
            rows = []
            key = lambda r: (r["params"], r["tensors"], r["threads"], r.get("dtype", "float32"))
            steep_adam = {key(r): r for r in steep["records"] if r["name"] == "adam" and r["impl"] == "steep_noguard"}
            steep_adam.update({key(r): r for r in steep["records"] if r["name"] == "adam" and r["impl"] == "steep"})
            for k, s in sorted(steep_adam.items(), key=lambda kv: (kv[0][3], kv[0][0], kv[0][1], kv[0][2])):
                peers = [t for t in torch_optim["records"] if key(t) == k]
                if peers:
                    best = min(peers, key=lambda t: t["median_s"])
                    rows.append([k[3], s["params"], s["tensors"], s["threads"], f"{fmt_t(s['median_s'])} ({s['impl']})",
                                 fmt_t(best["median_s"]), best["impl"], f"{best['median_s'] / s['median_s']:.2f}x"])
            out += [f"## Adam step: steep vs torch {torch_optim['torch']}", "",
                    "steep is the default optimizer (guard on, `steep`) where that was timed, else `steep_noguard`. "
                    "torch runs in its own process after steep's, so these are ratios of medians, not interleaved.", ""]
            out += table(["dtype", "params", "tensors", "threads", "steep", "best torch", "torch impl",
                          "torch / steep time"], rows)
    if inproc:
        records += inproc["records"]
        by = {}
        for r in inproc["records"]:
            by.setdefault((r["params"], r["tensors"], r["threads"]), {})[r["impl"]] = r["median_s"]
        # Runs before steep_noguard was timed have no guard-off columns.
        noguard = all("torch_forloop_over_steep_noguard" in x for x in inproc["ratios"])
        rows = []
        for x in inproc["ratios"]:
            t = by[(x["params"], x["tensors"], x["threads"])]
            row = [x["params"], x["tensors"], x["threads"], fmt_t(t["steep"])]
            row += [fmt_t(t["steep_noguard"])] if noguard else []
            row += [fmt_t(t["torch_forloop"]), fmt_t(t["torch_foreach"]), f"{x['torch_forloop_over_steep']:.2f}x",
                    f"{x['torch_foreach_over_steep']:.2f}x"]
            row += [f"{x['torch_forloop_over_steep_noguard']:.2f}x"] if noguard else []
            rows.append(row)
        out += [f"## Adam step: steep vs libtorch {inproc['torch_version']} in one process (float32)", "",
                "steep-bench-torch: steep's default Adam (guard on) and libtorch's, on the same memory, "
                "interleaved; ratios are medians of per-round time ratios. `steep_noguard` is steep with the "
                "non-finite guard off, the same work as torch's (which checks nothing).", ""]
        out += table(["params", "tensors", "threads", "steep"] + (["steep_noguard"] if noguard else []) +
                     ["torch_forloop", "torch_foreach", "forloop / steep", "foreach / steep"] +
                     (["forloop / steep_noguard"] if noguard else []), rows)
    if dispatch:
        records += dispatch["records"]
        out += ["## Small steps on several threads: TBB vs a spinning pool (steep-bench-dispatch, float32 Adam)", "",
                "gap: busy microseconds on the calling thread before each timed step (0: back to back; "
                "a training loop's forward and backward pass sit there, and the pools' workers fall asleep).", ""]
        out += table(["dispatch", "params", "gap", "threads", "median", "speed-up over serial"],
                     [[r["impl"], r["params"], f"{r.get('gap_us', 0):.0f} us", r["threads"], fmt_t(r["median_s"]),
                       f"{r['speedup_over_serial']:.2f}x"]
                      for r in dispatch["records"]])
    if ns:
        records += ns["records"]
        out += ["## Newton-Schulz x5 (steep-bench-ns, float32)", ""]
        out += table(["variant", "shape", "threads", "GFLOP/s"],
                     [[f"{r['name']} ({r['impl']})", r.get("shape", ""), r["threads"], f"{r.get('gflop_per_s', 0):.1f}"]
                      for r in ns["records"]])
    torch_muon = load(d, "torch-muon.json")
    if torch_muon:
        records += torch_muon["records"]
        steep_muon = {(r["shape"], r["threads"]): r for r in (ns or {}).get("records", [])
                      if r["name"] == "muon_step" and r["impl"] == "steep"}
        rows = []
        for t in torch_muon["records"]:
            s = steep_muon.get((t["shape"], t["threads"]))
            rows.append([t["shape"], t["threads"], fmt_t(s["median_s"]) if s else "", t["impl"], fmt_t(t["median_s"]),
                         f"{t['median_s'] / s['median_s']:.2f}x" if s else ""])
        out += [f"## Muon step: steep vs torch {torch_muon['torch']} (float32)", "",
                "steep-bench-ns's `muon_step` (steep) against `torch_muon_step.py`: `torch_muon_mirror` is "
                "torch.optim.Muon's update in the same torch ops without its bfloat16 cast (checked against the "
                f"golden trajectory first: {torch_muon.get('mirror_vs_golden_max_rel', float('nan')):.1e} relative), "
                "`torch_muon` torch.optim.Muon itself where the installed torch has it. torch's OpenBLAS is held to "
                "the same thread count. Separate processes: ratios of medians.", ""]
        out += table(["shape", "threads", "steep", "torch impl", "torch", "torch / steep time"], rows)
    out += precond_section(load(d, "precond.json"), load(d, "torch-precond.json"), records)
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
