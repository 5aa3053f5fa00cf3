"""Fast forward and backward kernels, one file per bundle kind, forward and backward side by side.

Every kernel is a plain Python function wrapped once by `jit` (numba's njit with an on-disk
cache), so `NUMBA_DISABLE_JIT=1` runs the same code as Python. Importing this package does not
import numba; importing one of its kernel modules does.
"""

import os
import sys
from pathlib import Path


def child_command(module: str) -> tuple[list[str], dict]:
    """The command and environment that run `python -m module` in a child process which
    imports this very netsharp (also from a source checkout that is not installed)."""
    root = str(Path(__file__).resolve().parents[2])
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [sys.executable, "-m", module], dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
