"""Compiling a rule written in steep's C++ DSL into a shared object, once per content.

    path, seconds = build(source, expression)   # the .so in the cache; seconds == 0.0 on a hit

The cache key is sha256 of the generated source, steep's version, the contents of every steep
header (include/, dsl/ and steep_jit.hpp: a changed steep invalidates), the compiler's version
and the flags. The cache directory is STEEP_CACHE_DIR or ~/.cache/steep. A file lock per key
keeps concurrent processes from compiling the same rule twice; the finished .so is renamed into
place, so a reader never sees a partial one. The precompiled header (steep_jit.hpp: the engine,
the catalogue, implied_norm) is built once per (headers, compiler, flags) into the cache too; the
three used last are kept (a changed steep makes a new one, of about 230 MB).

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
    """An flock on path: exclusive, or shared; blocking, or not (then `held` says whether it was had)."""

    def __init__(self, path, shared=False, wait=True):
        self.path, self.mode = path, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)

    def __enter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, self.mode)
            self.held = True
        except BlockingIOError:
            self.held = False
        return self

    def __exit__(self, *exc):
        if self.held:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


KEEP_HEADERS = 3  # precompiled headers kept in a cache (about 230 MB each with g++ 12)


def _evict_headers(keep):
    """Removes all but the KEEP_HEADERS most recently used precompiled headers (`keep` among them): a
    changed steep makes a new one, and the old ones are large. One in use (a compile holds its lock
    shared) is left."""
    root = cache_dir()
    dirs = [os.path.join(root, n) for n in os.listdir(root) if n.startswith("pch-")]
    dirs = [d for d in dirs if d != keep]
    dirs.sort(key=lambda d: os.stat(os.path.join(d, "lock")).st_mtime if os.path.exists(os.path.join(d, "lock"))
              else 0, reverse=True)
    for d in dirs[KEEP_HEADERS - 1:]:
        with _locked(os.path.join(d, "lock"), wait=False) as lock:
            if lock.held:
                shutil.rmtree(d, ignore_errors=True)


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
        _evict_headers(d)
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
    pch = precompiled_header()
    flags = [f"-I{pch}", *_flags()]  # the header's directory first: its .gch is found
    d = cache_dir()
    t0 = time.perf_counter()
    with _locked(so + ".lock"), _locked(os.path.join(pch, "lock"), shared=True):
        if os.path.exists(so):  # another process compiled it while this one waited
            return so, 0.0
        os.utime(os.path.join(pch, "lock"))  # its last use, for _evict_headers
        with tempfile.TemporaryDirectory(dir=d, prefix="build-") as work:
            with open(os.path.join(work, "rule.cpp"), "w") as f:
                f.write(source)
            tmp = os.path.join(work, "rule.so")
            rc, err = _compile([*flags, "rule.cpp", "-o", tmp, *cfg.LIBS], work)
            if rc != 0:
                raise RuleError(first_errors(err, expression))
            os.replace(tmp, so)
    return so, time.perf_counter() - t0
