#!/usr/bin/env python3
"""Reads a steep checkpoint by the safetensors format rules alone (8-byte little-endian header
length, a JSON header, raw little-endian data) with NumPy, and checks the sample file that
tests/unit/test_checkpoint.cpp writes: W = 0.25 i (float32, 3 x 4), Adam's exp_avg = 0.1 and
exp_avg_sq = 0.001 after one step with gradient 1, the step count and the data's CRC-32.

    /usr/bin/python3 tests/scripts/checkpoint_reader.py steep-checkpoint-sample.safetensors
"""
import json
import struct
import sys
import zlib

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64}


def main(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__")
    assert meta["format"] == "steep" and meta["step"] == "1", meta
    assert int(meta["crc32"]) == zlib.crc32(data), "CRC-32 mismatch"
    arrays = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arrays[name] = np.frombuffer(data[b:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
    assert np.array_equal(arrays["param/W"], (0.25 * np.arange(12, dtype=np.float32)).reshape(3, 4))
    assert np.allclose(arrays["state/W/exp_avg"], 0.1, rtol=1e-6)
    assert np.allclose(arrays["state/W/exp_avg_sq"], 0.001, rtol=1e-6)
    print("read", len(arrays), "tensors from", path, "by the safetensors rules: ok")


if __name__ == "__main__":
    main(sys.argv[1])
