"""Fast forward and backward kernels, one file per bundle kind, forward and backward side by side.

Every kernel is a plain Python function wrapped once by `jit` (numba's njit with an on-disk
cache), so `NUMBA_DISABLE_JIT=1` runs the same code as Python. Importing this package does not
import numba; importing one of its kernel modules does.
"""
