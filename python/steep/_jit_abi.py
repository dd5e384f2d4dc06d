"""ctypes over a compiled rule's C ABI (python/jit/steep_jit.hpp): one Session per optimizer.

    lib = load(path)                                        # once per .so (dlopen)
    s = Session(lib, names, shapes, param_ptrs, grad_ptrs, [1e-3], threads=1)
    s.step(param_ptrs, grad_ptrs)                           # 'applied' | 'held_back' | 'refused'
    for block, slot, ptr, shape in s.slots(): ...           # steep's state memory
"""
import ctypes as C

from steep._C import NonFiniteError

_c = C.c_size_t
_p = C.c_void_p
_SIGS = {
    "steep_jit_abi": (C.c_int, []),
    "steep_jit_error": (C.c_char_p, []),
    "steep_jit_norm_name": (C.c_char_p, []),
    "steep_jit_norm_known": (C.c_int, []),
    "steep_jit_norm_reason": (C.c_char_p, []),
    "steep_jit_dtype_size": (C.c_int, []),
    "steep_jit_create": (_p, [_c, C.POINTER(C.c_char_p), C.POINTER(_c), C.POINTER(_c), C.POINTER(C.c_int),
                              C.POINTER(_p), C.POINTER(_p), C.POINTER(C.c_double), C.c_int, C.c_int]),
    "steep_jit_destroy": (None, [_p]),
    "steep_jit_step": (C.c_int, [_p, C.POINTER(_p), C.POINTER(_p)]),
    "steep_jit_check": (C.c_int, [_p, C.c_char_p, C.c_double]),
    "steep_jit_set": (C.c_int, [_p, C.c_char_p, C.c_double]),
    "steep_jit_get": (C.c_int, [_p, C.c_char_p, C.POINTER(C.c_double)]),
    "steep_jit_hyperparameters": (C.c_char_p, [_p]),
    "steep_jit_describe": (C.c_char_p, [_p]),
    "steep_jit_steps": (C.c_int64, [_p]),
    "steep_jit_restore_steps": (C.c_int, [_p, C.c_int64]),
    "steep_jit_slot_count": (_c, [_p]),
    "steep_jit_slot": (None, [_p, _c, C.POINTER(_c), C.POINTER(C.c_char_p), C.POINTER(_p), C.POINTER(_c),
                              C.POINTER(C.POINTER(_c))]),
}
ABI = 2
SIZES = {"float32": 4, "float64": 8}
POLICIES = {"refuse": 0, "skip": 1, "mask": 2, "off": 3}
OUTCOMES = ("applied", "held_back", "refused")
# steep::block_role's values (include/steep/core/shape.hpp), for a route by role (on<head>, ...).
ROLES = ("hidden_matrix", "embedding", "head", "vector", "scalar")


def load(path):
    lib = C.CDLL(path, mode=C.RTLD_LOCAL)
    for name, (res, args) in _SIGS.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    if lib.steep_jit_abi() != ABI:
        raise RuntimeError(f"{path}: C ABI {lib.steep_jit_abi()}, this steep reads {ABI}; remove it from the cache")
    return lib


def _check(lib, rc):
    if rc == -2:
        raise NonFiniteError(lib.steep_jit_error().decode())
    if rc < 0:
        raise ValueError(lib.steep_jit_error().decode())
    return rc


def _ptrs(ptrs):
    return (_p * len(ptrs))(*ptrs)


class Session:
    """One optimizer of the compiled rule over caller-owned memory (addresses as ints)."""

    def __init__(self, lib, names, shapes, params, grads, hypers, threads=0, nonfinite="refuse", roles=None):
        """roles: per block a name of ROLES, or None for the role of its shape (2-d: hidden_matrix)."""
        for r in roles or ():
            if r not in ROLES:
                raise ValueError(f"role {r!r}: expected one of {ROLES}")
        if nonfinite not in POLICIES:
            raise ValueError(f"nonfinite={nonfinite!r}: expected one of {tuple(POLICIES)}")
        self.lib = lib
        n = len(names)
        dims = [d for s in shapes for d in s]
        h = lib.steep_jit_create(n, (C.c_char_p * n)(*[x.encode() for x in names]),
                                 (_c * n)(*[len(s) for s in shapes]), (_c * max(1, len(dims)))(*dims),
                                 None if roles is None else (C.c_int * n)(*[ROLES.index(r) for r in roles]),
                                 _ptrs(params), _ptrs(grads), (C.c_double * max(1, len(hypers)))(*hypers),
                                 threads, POLICIES[nonfinite])
        if not h:
            raise ValueError(lib.steep_jit_error().decode())
        self.handle = h

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.steep_jit_destroy(self.handle)
            self.handle = None

    def step(self, params, grads):
        return OUTCOMES[_check(self.lib, self.lib.steep_jit_step(self.handle, _ptrs(params), _ptrs(grads)))]

    def set_hypers(self, values):
        """Checks every value before setting any, so a refused value changes nothing."""
        for name, v in values.items():
            _check(self.lib, self.lib.steep_jit_check(self.handle, name.encode(), float(v)))
        for name, v in values.items():
            _check(self.lib, self.lib.steep_jit_set(self.handle, name.encode(), float(v)))

    def get(self, name):
        out = C.c_double()
        _check(self.lib, self.lib.steep_jit_get(self.handle, name.encode(), C.byref(out)))
        return out.value

    def hyperparameters(self):
        text = self.lib.steep_jit_hyperparameters(self.handle).decode()
        return [ln.split("=")[0] for ln in text.splitlines()]

    def describe(self):
        return self.lib.steep_jit_describe(self.handle).decode()

    @property
    def steps(self):
        return self.lib.steep_jit_steps(self.handle)

    def restore_steps(self, t):
        _check(self.lib, self.lib.steep_jit_restore_steps(self.handle, t))

    def slots(self):
        """[(block index, slot name, address, shape)] of steep's state memory."""
        out = []
        for i in range(self.lib.steep_jit_slot_count(self.handle)):
            block, name, data, ndim, dims = _c(), C.c_char_p(), _p(), _c(), C.POINTER(_c)()
            self.lib.steep_jit_slot(self.handle, i, C.byref(block), C.byref(name), C.byref(data), C.byref(ndim),
                                    C.byref(dims))
            out.append((block.value, name.value.decode(), data.value, tuple(dims[k] for k in range(ndim.value))))
        return out
