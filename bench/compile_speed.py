"""How fast does netsharp compile? Run from the repository root: `python bench/compile_speed.py`.

Measures, against the source tree:
- in-process `netsharp.compile` of a generated 50-layer program (convolution, pooling and full
  bundles, constants): the first (cold) compile in a fresh interpreter, reported separately, and the
  median of warm compiles after it;
- the wall time of `python -m netsharp compile samples/basic_conv.ns` as a subprocess (median);
- that compiling never imports numba.

Prints a table of the goals and exits with status 1 if one is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "samples/basic_conv.ns"
GOAL_COMPILE_MS = 50.0
GOAL_CLI_S = 0.5


def fifty_layer_program() -> str:
    """Input, 40 convolution/pooling layers in four stages, 8 full layers, output: 50 layers."""
    lines = ["// 50 layers: 1 input, 40 convolution and pooling, 8 full, 1 output",
             "const { Maps = 8; Side = 32; Dense = 64; T = true; F = false; }",
             "input Image [3, Side, Side];"]
    maps, side, previous = 3, 32, "Image"
    for i in range(40):
        name = f"L{i + 1}"
        if i % 10 == 9:                      # halve the picture
            side //= 2
            lines.append(f"hidden {name} [{maps}, Side / {32 // side}, Side / {32 // side}]\n"
                         f"  from {previous} max pool {{ InputShape = [{maps}, {side * 2}, "
                         f"{side * 2}]; KernelShape = [1, 2, 2]; Stride = [1, 2, 2]; }}")
        elif i % 2 == 0:                     # convolution over all maps, same size
            lines.append(f"hidden {name} [Maps, {side}, {side}] rlinear\n"
                         f"  from {previous} convolve {{ InputShape = [{maps}, {side}, {side}]; "
                         f"KernelShape = [{maps}, 3, 3]; Padding = [F, T, T]; "
                         f"MapCount = [Maps, 1, 1]; }}")
            maps = 8
        else:                                # 3x3 pooling, same size
            kind = "mean" if i % 4 == 1 else "max"
            lines.append(f"hidden {name} [{maps} * {side}^2]\n"
                         f"  from {previous} {kind} pool {{ InputShape = [{maps}, {side}, "
                         f"{side}]; KernelShape = [1, 3, 3]; Padding = [F, T, T]; }}")
        previous = name
    for i in range(40, 48):
        name = f"L{i + 1}"
        bundles = f"from {previous} all;"
        if i >= 42:                          # a skip connection as a second bundle
            bundles = f"{{ {bundles} from L{i - 1} all; }}"
        lines.append(f"hidden {name} [Dense - {i - 40}] tanh {bundles}")
        previous = name
    lines.append(f"output Class [10] softmax {{ from {previous} all; from L47 all; }}")
    return "\n".join(lines) + "\n"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                      if env.get("PYTHONPATH") else []))
    return env


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=120)


COLD = """
import time
t0 = time.perf_counter()
import netsharp
t1 = time.perf_counter()
text = open({path!r}, encoding="utf-8").read()
t2 = time.perf_counter()
netsharp.compile(text)
t3 = time.perf_counter()
print(t1 - t0, t3 - t2)
"""


def cold_compile(path: str) -> tuple[float, float]:
    """(import seconds, first compile seconds) in a fresh interpreter."""
    done = _python("-c", COLD.format(path=path))
    if done.returncode:
        raise SystemExit(f"cold compile failed:\n{done.stderr}")
    first, second = done.stdout.split()
    return float(first), float(second)


def warm_compile(text: str, runs: int) -> tuple[float, int, int]:
    """(median seconds, layers, weights) over `runs` compiles after a first one."""
    import netsharp

    network = netsharp.compile(text)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        netsharp.compile(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(network.layers), network.total_weights


def cli_wall(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = _python("-m", "netsharp", "compile", SAMPLE)
        times.append(time.perf_counter() - start)
        if done.returncode:
            raise SystemExit(f"`netsharp compile {SAMPLE}` failed:\n{done.stderr}")
    return statistics.median(times)


def numba_imported() -> bool:
    done = _python("-c", "import netsharp, sys; netsharp.compile_file('samples/basic_conv.ns'); "
                         "print('numba' in sys.modules)")
    if done.returncode:
        raise SystemExit(f"compile_file failed:\n{done.stderr}")
    return done.stdout.strip() == "True"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="warm compiles (median)")
    parser.add_argument("--cli-runs", type=int, default=5, help="CLI runs (median)")
    parser.add_argument("--emit", action="store_true", help="print the 50-layer program and exit")
    args = parser.parse_args(argv)

    text = fifty_layer_program()
    if args.emit:
        print(text, end="")
        return 0
    sys.path.insert(0, str(ROOT))
    with tempfile.NamedTemporaryFile("w", suffix=".ns", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        import_s, cold_s = cold_compile(f.name)
    finally:
        os.unlink(f.name)
    warm_s, layers, weights = warm_compile(text, args.runs)
    cli_s = cli_wall(args.cli_runs)
    numba = numba_imported()
    numba_note = "" if importlib.util.find_spec("numba") else " (numba is not installed)"

    rows = [
        (f"compile, {layers} layers, warm (median of {args.runs})", f"{warm_s * 1e3:.1f} ms",
         f"< {GOAL_COMPILE_MS:.0f} ms", warm_s * 1e3 < GOAL_COMPILE_MS),
        ("compile, same program, first in a fresh process", f"{cold_s * 1e3:.1f} ms", "-", None),
        ("import netsharp, fresh process", f"{import_s * 1e3:.1f} ms", "-", None),
        (f"`python -m netsharp compile {SAMPLE}` (median of {args.cli_runs})", f"{cli_s:.3f} s",
         f"< {GOAL_CLI_S} s", cli_s < GOAL_CLI_S),
        ("compile_file imports numba", f"{numba}{numba_note}", "False", not numba),
    ]
    print(f"netsharp compile speed ({layers}-layer program, {weights:,} weights; "
          f"Python {sys.version.split()[0]})\n")
    widths = [max(len(str(row[k])) for row in rows) for k in range(3)]
    header = ("measure", "value", "goal")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  result")
    print("  ".join("-" * w for w in widths) + "  ------")
    for name, value, goal, ok in rows:
        verdict = "info" if ok is None else "ok" if ok else "MISSED"
        print("  ".join(str(c).ljust(w) for c, w in zip((name, value, goal), widths))
              + f"  {verdict}")
    missed = [row[0] for row in rows if row[3] is False]
    if missed:
        print(f"\n{len(missed)} goal(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
