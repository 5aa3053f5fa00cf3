"""numpy's OpenBLAS thread count, set around code that runs its own threads (kernels.conv).

Found through ctypes in the OpenBLAS library bundled with numpy's wheels; where there is none
(another BLAS, or another build) `available` is False and callers keep to one thread of their
own.
"""

from __future__ import annotations

import ctypes
import glob
import os
from contextlib import contextmanager

import numpy as np

_NAMES = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
          ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
          ("openblas_set_num_threads", "openblas_get_num_threads"))


def _find():
    folder = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(folder, "numpy.libs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _NAMES:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                return setter, getter
    return None, None


_set, _get = _find()
available = _set is not None


@contextmanager
def single_threaded():
    """OpenBLAS on one thread inside the block (each caller thread runs its own products)."""
    before = _get() if available else 1
    if before == 1:
        yield
        return
    _set(1)
    try:
        yield
    finally:
        _set(before)


def set_threads(count: int) -> None:
    """OpenBLAS's thread count from now on (where it is found)."""
    if available:
        _set(count)
