"""numba's on-disk kernel cache shared by processes that start together.

netsharp compiles its kernels with cache=True, so two `netsharp train` runs started at once (a
grid search, two terminals) both find an empty cache, compile, and write the same index and
object files at the same moment. Both must still train, and a third process must then load
from that cache and train too. A convolutional network is used so that the convolution, pooling
and dense kernels all go through the cache.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "lenet.ns"
TIMEOUT = 300  # seconds per process; the test takes well under this (see the docstring)

CHILD = """
import json, sys, time
import numpy as np
import netsharp

started = time.perf_counter()
model = netsharp.Model(netsharp.compile_file(sys.argv[1]), seed=0)
rng = np.random.default_rng(int(sys.argv[2]))
x = rng.random((16, 784), dtype=np.float32)
y = rng.integers(0, 10, 16)
records = model.fit(x, y, epochs=1, batch_size=8)
print(json.dumps({"loss": records[-1]["loss"], "seconds": time.perf_counter() - started}))
"""


def start(cache: Path, seed: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(SAMPLE), str(seed)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> dict:
    """The child's JSON line; its stderr when it failed."""
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"timed out after {TIMEOUT} s:\n{err[-3000:]}") from None
    assert process.returncode == 0, f"exit {process.returncode}:\n{err[-3000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    assert math.isfinite(result["loss"]), result
    return result


def cache_files(cache: Path) -> set[Path]:
    return {p.relative_to(cache) for p in cache.rglob("*") if p.is_file()}


def test_two_processes_fill_one_empty_cache_then_a_third_uses_it(tmp_path):
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    started = time.perf_counter()
    first, second = start(cache, 1), start(cache, 2)
    results = [finish(first), finish(second)]
    cold = time.perf_counter() - started
    written = cache_files(cache)
    assert any(p.suffix == ".nbi" for p in written) and any(p.suffix == ".nbc" for p in written)

    third = finish(start(cache, 3))
    # the third process compiled nothing new: the files the first two wrote are complete
    assert cache_files(cache) == written
    print(f"two cold processes {cold:.1f} s ({[round(r['seconds'], 1) for r in results]} s "
          f"inside); third, from the cache: {third['seconds']:.1f} s")


PROBE = """
import json, sys
import numba
import numpy as np
from netsharp.kernels import jit

jit.prepare()
after_prepare = {"scipy_linalg": "scipy.linalg" in sys.modules,
                 "probe_entry": jit.BLAS_PROBE in sys.modules}

@numba.njit
def product(a, b):
    return np.dot(a, b)

print(json.dumps(dict(after_prepare, dot=float(product(np.ones((3, 3)), np.ones((3, 3)))[0, 0]))))
"""


def test_loading_kernels_skips_numbas_scipy_probe_and_leaves_blas_usable(tmp_path):
    """numba's arraymath imports scipy.linalg (0.5-0.9 s of a cached start) unless jit.prepare
    keeps it out; the guard must not be left in sys.modules, and np.dot in jitted code must
    still work in that process."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"scipy_linalg": False, "probe_entry": False, "dot": 3.0}
