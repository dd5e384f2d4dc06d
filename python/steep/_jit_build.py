"""Compiling a rule written in steep's C++ DSL into a shared object, once per content.

    path, seconds = build(source)          # the .so in the cache; seconds == 0.0 on a hit

The cache key is sha256 of the generated source, steep's version, the contents of every steep
header (include/, dsl/ and steep_jit.hpp: a changed steep invalidates), the compiler's version
and the flags. The cache directory is STEEP_CACHE_DIR or ~/.cache/steep. A file lock per key
keeps concurrent processes from compiling the same rule twice; the finished .so is renamed into
place, so a reader never sees a partial one. The precompiled header (steep_jit.hpp: the engine,
the catalogue, implied_norm) is built once per (headers, compiler, flags) into the cache too.

A compile error raises RuleError with the user's expression line and the compiler's first
error and static_assert messages, not the whole template backtrace.
"""
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time

from steep import _build_config as cfg

RULE_FILE = "rule"  # the #line file name the user's expression is compiled under


class RuleError(ValueError):
    """A rule that does not compile; str() is the rule's line and the compiler's first error."""


def cache_dir():
    d = os.environ.get("STEEP_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "steep")
    os.makedirs(d, exist_ok=True)
    return d


_memo = {}


def _once(key, f):
    if key not in _memo:
        _memo[key] = f()
    return _memo[key]


def headers_digest():
    """sha256 over every steep header's path and contents (computed once per process)."""
    def digest():
        h = hashlib.sha256()
        for root in cfg.HEADER_ROOTS:
            for d, dirs, files in os.walk(root):
                dirs.sort()
                for f in sorted(files):
                    if f.endswith((".hpp", ".h")):
                        p = os.path.join(d, f)
                        h.update(os.path.relpath(p, root).encode() + b"\0")
                        with open(p, "rb") as fh:
                            h.update(fh.read())
        with open(cfg.JIT_HEADER, "rb") as fh:
            h.update(fh.read())
        return h.hexdigest()
    return _once("headers", digest)


def compiler_version():
    return _once("compiler", lambda: subprocess.run([cfg.CXX, "--version"], capture_output=True, text=True,
                                                    check=True).stdout.splitlines()[0])


def _key(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() + b"\0")
    return h.hexdigest()


class _locked:
    """An exclusive flock on path (blocks until the holder is done)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _compile(args, cwd):
    r = subprocess.run([cfg.CXX, *args], capture_output=True, text=True, cwd=cwd)
    return r.returncode, r.stderr


def precompiled_header():
    """The directory holding steep_jit.hpp and its .gch, built on first use."""
    def build_pch():
        base = _key("pch", cfg.VERSION, headers_digest(), compiler_version(), " ".join(cfg.FLAGS))
        d = os.path.join(cache_dir(), "pch-" + base[:32])
        gch = os.path.join(d, "steep_jit.hpp.gch")
        if os.path.exists(gch):
            return d
        os.makedirs(d, exist_ok=True)
        with _locked(os.path.join(d, "lock")):
            if os.path.exists(gch):
                return d
            shutil.copyfile(cfg.JIT_HEADER, os.path.join(d, "steep_jit.hpp"))
            tmp = f"{gch}.{os.getpid()}.tmp"
            rc, err = _compile([*cfg.FLAGS, *[f"-I{i}" for i in cfg.INCLUDE_DIRS], "-x", "c++-header",
                                "steep_jit.hpp", "-o", tmp], d)
            if rc != 0:
                raise RuntimeError(f"building steep's precompiled header in {d} failed:\n{err}")
            os.replace(tmp, gch)
        return d
    return _once("pch", build_pch)


def _short(line):
    """A compiler line without its location and the spelled-out types of its `{aka ...}`."""
    line = re.sub(r"^.*?error:", "error:", line).strip()
    return re.sub(r" \{aka .*$", "", line)


def first_errors(stderr, expression):
    """The user's rule line that the first error names (else its first line), the compiler's
    first `error:` line and its first static_assert message."""
    lines = stderr.splitlines()
    first = next((ln for ln in lines if "error:" in ln), None)
    at = next((int(m.group(1)) for ln in lines if (m := re.match(rf"{RULE_FILE}:(\d+):", ln))), 1)
    rule_lines = expression.splitlines() or [""]
    out = [f"{RULE_FILE}:{at}: {rule_lines[min(at, len(rule_lines)) - 1].strip()}"]
    if first is None:
        out.append("the compiler failed with no error line; its output:\n" + stderr[-4000:])
        return "\n".join(out)
    out.append(_short(first))
    for a in lines:
        if "static assertion failed" in a or "static_assert" in a:
            a = _short(a)
            if a not in out:
                out.append(a)
            break
    return "\n".join(out)


def _flags():
    return [*cfg.FLAGS, "-Winvalid-pch", "-shared", *[f"-I{i}" for i in cfg.INCLUDE_DIRS]]


def cached_path(source):
    """Where the cache keeps the object of `source` (whether or not it is there)."""
    key = _key(source, cfg.VERSION, headers_digest(), compiler_version(), " ".join(_flags()), " ".join(cfg.LIBS))
    return os.path.join(cache_dir(), f"rule-{key[:40]}.so")


def build(source, expression):
    """Compiles `source` (a generated unit) unless cached; returns (path of the .so, seconds spent)."""
    so = cached_path(source)
    if os.path.exists(so):
        return so, 0.0
    flags = [f"-I{precompiled_header()}", *_flags()]  # the header's directory first: its .gch is found
    d = cache_dir()
    t0 = time.perf_counter()
    with _locked(so + ".lock"):
        if os.path.exists(so):  # another process compiled it while this one waited
            return so, 0.0
        with tempfile.TemporaryDirectory(dir=d, prefix="build-") as work:
            with open(os.path.join(work, "rule.cpp"), "w") as f:
                f.write(source)
            tmp = os.path.join(work, "rule.so")
            rc, err = _compile([*flags, "rule.cpp", "-o", tmp, *cfg.LIBS], work)
            if rc != 0:
                raise RuleError(first_errors(err, expression))
            os.replace(tmp, so)
    return so, time.perf_counter() - t0
