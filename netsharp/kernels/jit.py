"""The one place numba is configured: every kernel is a plain function wrapped by `jit`."""

from __future__ import annotations

import os

# numba's OpenMP workers spin after each parallel loop by default, taking the second core
# from OpenBLAS's next matrix product (measured: a 16-sample MLP forward 12 ms instead of
# 0.06 ms). Passive waiting must be set before libgomp loads; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402

# Exact IEEE semantics except: fused multiply-add, reassociation (vectorised sums) and
# reciprocal approximations; NaN/inf checks stay (no "nnan"/"ninf").
FASTMATH = {"contract", "reassoc", "arcp"}


def jit(function=None, *, parallel: bool = False):
    """njit with an on-disk cache, so a second process loads instead of compiling."""
    def wrap(fn):
        return numba.njit(cache=True, parallel=parallel, fastmath=FASTMATH, nogil=True)(fn)

    return wrap(function) if function is not None else wrap


prange = numba.prange
