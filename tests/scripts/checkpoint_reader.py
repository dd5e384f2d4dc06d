#!/usr/bin/env python3
"""Reads a steep checkpoint by the safetensors format rules alone (8-byte little-endian header
length, a JSON header, raw little-endian data) and checks the sample file that
tests/unit/test_checkpoint.cpp writes: W = 0.25 i (float32, 3 x 4), Adam's exp_avg = 0.1 and
exp_avg_sq = 0.001 after one step with gradient 1, the step count, and steep's checksum over the
whole file (include/steep/io/safetensors.hpp: the header starts with
{"__metadata__":{"checksum":"crc32:XXXXXXXX", the CRC-32 of the file with those 8 digits read
as "00000000").

The format's rules and the checksum are checked with Python alone; the values need NumPy
(Debian's python3-numpy). Without it the script exits 77, which CTest reports as skipped
(tests/CMakeLists.txt); a file that breaks the rules still fails (exit 1). Where the
`safetensors` package is installed, its reader must read the file too.

    /usr/bin/python3 tests/scripts/checkpoint_reader.py steep-checkpoint-sample.safetensors
"""
import json
import struct
import sys
import zlib

SKIP = 77
SIZES = {"F64": 8, "F32": 4, "BF16": 2}
PREFIX = b'{"__metadata__":{"checksum":"crc32:'


def check_format(raw):
    """The safetensors rules, as the reference reader applies them; returns (header, data)."""
    assert len(raw) >= 8, "shorter than the header length"
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), "the header runs past the end"
    text = raw[8:8 + n].decode("utf-8")  # the header is UTF-8 JSON
    assert text.startswith("{"), "the header is not a JSON object"
    header = json.loads(text)
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), meta
    spans = []
    for name, e in header.items():
        b, end = e["data_offsets"]
        count = 1
        for d in e["shape"]:
            count *= d
        assert end - b == count * SIZES[e["dtype"]], name
        spans.append((b, end))
    at = 0
    for b, end in sorted(spans):  # the data section is covered exactly, without gaps
        assert b == at, "a gap or an overlap in the data"
        at = end
    assert at == len(data), "bytes past the last tensor"
    return header, data, meta


def check_checksum(raw, meta):
    at = 8 + len(PREFIX)
    assert raw[8:at] == PREFIX, "the header does not start with steep's checksum"
    digits = raw[at:at + 8].decode("ascii")
    assert meta["checksum"] == "crc32:" + digits
    crc = zlib.crc32(raw[at + 8:], zlib.crc32(b"00000000", zlib.crc32(raw[:at])))
    assert "%08x" % crc == digits, "checksum mismatch: %08x, the header says %s" % (crc, digits)


def main(path):
    raw = open(path, "rb").read()
    header, data, meta = check_format(raw)
    check_checksum(raw, meta)
    assert meta["format"] == "steep" and meta["format_version"] == "2" and meta["step"] == "1", meta
    print("format and checksum of", path, "by the safetensors rules: ok")
    try:
        import numpy as np
    except ImportError:
        print("values not checked: /usr/bin/python3 has no numpy (python3-numpy); skipped")
        return SKIP
    dtypes = {"F32": np.float32, "F64": np.float64}
    arrays = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arrays[name] = np.frombuffer(data[b:end], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
    assert np.array_equal(arrays["param/W"], (0.25 * np.arange(12, dtype=np.float32)).reshape(3, 4))
    assert np.allclose(arrays["state/W/exp_avg"], 0.1, rtol=1e-6)
    assert np.allclose(arrays["state/W/exp_avg_sq"], 0.001, rtol=1e-6)
    try:
        from safetensors.numpy import load_file
    except ImportError:
        load_file = None
    if load_file:  # the reference reader, where installed
        loaded = load_file(path)
        assert sorted(loaded) == sorted(arrays)
        assert all(np.array_equal(loaded[k], arrays[k]) for k in arrays)
    print("read", len(arrays), "tensors from", path, "by the safetensors rules: ok",
          "(and by the safetensors package)" if load_file else "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
