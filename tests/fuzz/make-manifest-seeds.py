#!/usr/bin/env python3
"""Writes the manifest fuzzer's seed corpus (tests/fuzz/corpus/manifest/): one compact manifest
per case of the public golden set (tests/data/golden/manifest.json), holding only what the
reader reads (T, params, the case's grads and groups). Plain Python 3, no packages.

    python3 tests/fuzz/make-manifest-seeds.py
"""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parents[2]
manifest = json.loads((root / "tests/data/golden/manifest.json").read_text())
out = root / "tests/fuzz/corpus/manifest"
out.mkdir(parents=True, exist_ok=True)
for name, case in manifest["cases"].items():
    groups = [{"algo": g["algo"], "params": g["params"], "hp": g["hp"]} for g in case["groups"]]
    seed = {"T": manifest["T"], "params": manifest["params"],
            "cases": {name: {"grads": case["grads"], "groups": groups}}}
    (out / f"{name}.json").write_text(json.dumps(seed, separators=(",", ":")))
print(f"wrote {len(manifest['cases'])} seeds to {out}")
