"""The one place numba is configured: every kernel is a plain function wrapped by `jit`."""

from __future__ import annotations

import os
import threading
import types
from contextlib import contextmanager

# numba's OpenMP workers spin after each parallel loop by default, taking the second core
# from OpenBLAS's next matrix product (measured: a 16-sample MLP forward 12 ms instead of
# 0.06 ms). Passive waiting must be set before libgomp loads; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402

# Exact IEEE semantics except: fused multiply-add, reassociation (vectorised sums) and
# reciprocal approximations; NaN/inf checks stay (no "nnan"/"ninf"), and so do signed zeros
# (no "nsz"), which activations.exp_row's rounding by adding and subtracting 1.5 * 2^23 needs.
FASTMATH = {"contract", "reassoc", "arcp"}
# Division without numba's zero test per division (which keeps a division loop scalar).
ERROR_MODEL = "numpy"
# numba's cache finds a kernel by its name, signature and source file, not by the flags it was
# compiled with: kernels are cached under names carrying these flags, so that changing them
# compiles afresh instead of loading code compiled with the old ones.
FLAGS_TAG = "_" + "".join(sorted(f[0] for f in FASTMATH)) + ERROR_MODEL[0]

# Below this many elements of work a parallel loop runs serially: waking the sleeping
# (passive) workers costs tens of microseconds a call, more than a one-core pass over 64K
# floats, and at batch 1 every kernel is that small.
SERIAL_BELOW = 1 << 16


def _njit(fn, parallel: bool):
    return numba.njit(cache=True, parallel=parallel, fastmath=FASTMATH, nogil=True,
                      error_model=ERROR_MODEL)(renamed(fn, FLAGS_TAG))


def renamed(fn, suffix: str):
    """A copy of fn under its name + suffix: numba's on-disk cache is keyed by the function's
    qualified name and signature, not by its flags, so the serial twin needs its own name
    (and so does each kernel a factory makes, activations' for instance)."""
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix,
                              fn.__defaults__, fn.__closure__)
    copy.__qualname__, copy.__doc__ = fn.__qualname__ + suffix, fn.__doc__
    copy.__module__ = fn.__module__
    return copy


_thread = threading.local()


@contextmanager
def serial_kernels():
    """Every Twin called on this thread inside the block runs its serial kernel (kernels.lanes:
    one core per lane; the parallel kernels, 1-3 s each for numba to compile, are then never
    compiled for training)."""
    before = getattr(_thread, "serial", False)
    _thread.serial = True
    try:
        yield
    finally:
        _thread.serial = before


class Twin:
    """A parallel kernel and its serial twin; a call runs the serial one when the array
    args[work] (the kernel's largest, or the one its loop runs over) has fewer than
    `scale` * SERIAL_BELOW elements, or inside serial_kernels()."""

    def __init__(self, fn, work: int, scale: int):
        self.parallel, self.serial = _njit(fn, True), _njit(renamed(fn, "_serial"), False)
        self.work, self.scale, self.__doc__ = work, scale, fn.__doc__

    def __call__(self, *args):
        small = args[self.work].size < self.scale * SERIAL_BELOW or \
            getattr(_thread, "serial", False)
        return (self.serial if small else self.parallel)(*args)


def jit(function=None, *, parallel: bool = False, work: int = 0, scale: int = 1):
    """njit with an on-disk cache, so a second process loads instead of compiling.
    parallel=True gives a Twin whose size test reads positional argument `work`."""
    def wrap(fn):
        return Twin(fn, work, scale) if parallel else _njit(fn, False)

    return wrap(function) if function is not None else wrap


prange = numba.prange


@jit
def _first(x):
    return x[0]


def prepare() -> None:
    """Load one small kernel from the cache (or compile it): numba sets up its code generator
    on the first kernel a process loads, 0.8 s that kernels.executor's importer can spend
    while the data is read instead of on the first training step."""
    import numpy as np

    with _no_scipy_blas_probe():
        _first(np.zeros(1, np.float32))


# numba's arraymath, imported with the first kernel, imports scipy.linalg (0.5-0.9 s, most of
# a cached start's budget) only to decide whether its own np.correlate/np.convolve may call
# BLAS; no netsharp kernel uses either. np.dot in jitted code checks for scipy again when it
# is compiled, so it keeps BLAS once the probe is over.
BLAS_PROBE = "scipy.linalg.cython_blas"


@contextmanager
def _no_scipy_blas_probe():
    """While numba's arraymath is first imported, importing scipy's BLAS fails fast (a None
    entry in sys.modules); nothing changes if scipy's BLAS or arraymath is already loaded."""
    import sys

    if BLAS_PROBE in sys.modules or "numba.np.arraymath" in sys.modules:
        yield
        return
    sys.modules[BLAS_PROBE] = None
    try:
        yield
    finally:
        if sys.modules.get(BLAS_PROBE, 0) is None:
            del sys.modules[BLAS_PROBE]
