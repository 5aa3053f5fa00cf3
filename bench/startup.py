"""Start-up of `netsharp train`: seconds from starting the process to the end of the first
optimizer step, with numba's kernel cache empty (first run) and filled (every later run).

    python bench/startup.py                                  # the four DESIGN.md networks
    python bench/startup.py --networks lenet --data digits --runs 5

Goals (issue 5): a cached start within 2 s, a first start within 15 s. The time includes
Python's start, imports, loading and checking the data, compiling the Net# program, loading or
compiling the kernels, and one forward/backward/update. netsharp's modules are byte-compiled
first, as `pip install` does (an editable install under PYTHONDONTWRITEBYTECODE=1 would
otherwise compile them from source at every start: 0.15 s here).
"""

from __future__ import annotations

import argparse
import compileall
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ("basic_conv", "cntk103d_pool", "lenet", "mlp")

# The child runs the real CLI and reports the moment its first train_step returns.
CHILD = """
import os, sys
import netsharp.model as model
step = model.Model.train_step
def first_step(self, *args, **kwargs):
    result = step(self, *args, **kwargs)
    print("FIRST_STEP", flush=True)
    os._exit(0)
model.Model.train_step = first_step
from netsharp.cli import main
main(sys.argv[1:])
"""


def time_to_first_step(network: str, data: str, cache: str, output: str) -> float:
    environment = dict(os.environ, NUMBA_CACHE_DIR=cache)
    command = [sys.executable, "-c", CHILD, "train", str(ROOT / "samples" / f"{network}.ns"),
               "--data", data, "--epochs", "1", "--output", output, "--overwrite",
               "--no-plots"]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=environment, cwd=ROOT, start_new_session=True)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line)
            if line.startswith("FIRST_STEP"):
                return time.perf_counter() - started
    finally:
        # The run's lane worker, started by the first step, would otherwise go on loading
        # its kernels for a second after the child's exit, on the core the next run needs.
        _kill_group(child)
    raise SystemExit(f"{network}: no training step\n{''.join(lines)}")


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--runs", type=int, default=3, help="cached starts to time (median)")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "netsharp", quiet=1)
    print(f"{'network':<14} {'first (empty cache)':>20} {'cached (median)':>16}")
    for network in args.networks:
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
            first = time_to_first_step(network, args.data, cache, out)
            cached = [time_to_first_step(network, args.data, cache, out)
                      for _ in range(args.runs)]
        print(f"{network:<14} {first:>18.2f} s {statistics.median(cached):>14.2f} s")


if __name__ == "__main__":
    main()
