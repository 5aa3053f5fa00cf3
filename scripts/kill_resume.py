"""Fault injection for `netsharp train`: kill a run many times at random moments (SIGKILL, or
SIGINT/SIGTERM), check after every kill that the files left behind load, resume, and check that
the finished run has exactly the weights of a run that was never interrupted.

    python scripts/kill_resume.py --kills 50                 # SIGKILL at random moments
    python scripts/kill_resume.py --kills 20 --signal INT    # Ctrl-C: a mid-epoch checkpoint
    python scripts/kill_resume.py --batch-size 64            # batches split with a lane worker

Exit status 0 when every check held. The tests run a short version of this
(tests/test_train_cli.py); this script is the long one whose figures go in notes.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ["--batch-size", "16", "--seed", "11", "--no-plots"]
EPOCHS = ["--epochs", "150"]  # --epochs below: long enough for the kills asked for


def train(out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "netsharp", "train", str(ROOT / "samples" / "digits.ns"),
               *RECIPE, *EPOCHS, "--output", str(out), *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def weights(path: Path) -> dict:
    import netsharp

    return netsharp.load(path).get_weights()


def check_left_behind(out: Path) -> list[str]:
    """Every model file that exists must load; returns the problems found."""
    problems = []
    for name in ("checkpoint.safetensors", "model.safetensors"):
        if (out / name).exists():
            try:
                weights(out / name)
            except Exception as error:  # any failure to load is what this script looks for
                problems.append(f"{name}: {type(error).__name__}: {error}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--signal", choices=["KILL", "INT", "TERM"], default="KILL")
    parser.add_argument("--max-delay", type=float, default=3.0,
                        help="kill after a random 0.2..this many seconds of a run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=150,
                        help="of the digits sample; each kill cycle trains a few epochs")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="64 and more: each batch is split with a lane worker process")
    args = parser.parse_args()
    EPOCHS[1] = str(args.epochs)
    RECIPE[1] = str(args.batch_size)
    rng = random.Random(args.seed)
    signum = getattr(signal, f"SIG{args.signal}")
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        reference = train(work / "reference")
        if reference.wait() != 0:
            print(reference.stderr.read())
            return 2
        out, kills, resumes, problems = work / "killed", 0, 0, []
        started = time.perf_counter()
        while True:
            resume = (out / "checkpoint.safetensors").exists()
            process = train(out, *(["--resume"] if resume else []))
            resumes += resume
            if kills < args.kills:
                try:
                    process.wait(timeout=rng.uniform(0.2, args.max_delay))
                except subprocess.TimeoutExpired:
                    process.send_signal(signum)
                    process.wait()
                    kills += 1
                    problems += [f"after kill {kills}: {p}" for p in check_left_behind(out)]
                    continue
            else:
                process.wait()
            if process.returncode == 0 and (out / "model.safetensors").exists():
                break
            if process.returncode not in (0, 130):
                problems.append(f"run ended with status {process.returncode}: "
                                f"{process.stderr.read()[-500:]}")
                break
        final, expected = weights(out / "model.safetensors"), weights(work / "reference" /
                                                                          "model.safetensors")
        identical = final.keys() == expected.keys() and all(
            np.array_equal(final[k], expected[k]) for k in final)
        print(f"signal SIG{args.signal}, {args.epochs} epochs: {kills} kills, {resumes} resumes, "
              f"{time.perf_counter() - started:.0f} s; files left after each kill loaded: "
              f"{'all' if not problems else f'{len(problems)} problems'}; final weights "
              f"{'bit-identical to' if identical else 'DIFFERENT from'} the uninterrupted run")
        for problem in problems:
            print("  " + problem)
        return 0 if identical and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
