"""Long fuzz run of the Net# front end: `netsharp.compile` must never let anything but a located
NetsharpError escape, whatever the text.

    python scripts/fuzz.py --count 100000 --seed 0 --seconds 1800 --out fuzz-escapes

Every hypothesis example (tests/netsharp_strategies.py) gives several inputs:

- valid:     a whole valid program; it must compile, to the weight count the generator worked
             out by itself;
- corrupted: a valid program with one to three pieces of damage drawn by hypothesis;
- mutant:    four copies of the valid program with 1-10 pieces of damage drawn with `random`
             (hypothesis's draws cost as much as a compile, so most inputs are made here);
- soup:      a random sequence of Net# words and symbols;
- text:      random printable ASCII or arbitrary Unicode text;
- extreme:   now and then, and a fixed list before the run: deep nesting (up to 100,000
             parentheses), long files (100,000 lines), huge literals (1e400, integers of 1,000
             and more digits, 10 ^ 1000), long names and programs over the size limit.

Damaged inputs are compiled with random features/classes half the time, so `auto` resolves.
The strategies are drawn through hypothesis itself (`@given`, seeded per batch, no database, no
shrinking) because they are composite strategies; the body never fails, it records, so the run
goes on after an escape. Escapes are: any exception other than a NetsharpError, a NetsharpError
whose line/col lies outside the text or whose message cannot be rendered, a valid program
rejected or counted wrongly, and an input that runs past --hang seconds. Each escaping input is
saved to --out with its options and traceback; the exit status is 1 when there was any. Inputs
slower than 1 s are counted and the slowest listed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from hypothesis import HealthCheck, Phase, Verbosity, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from netsharp_strategies import (  # noqa: E402
    INSERTIONS,
    SOUP,
    corrupted_programs,
    damage_with,
    valid_programs,
)

import netsharp  # noqa: E402

SLOW_SECONDS = 1.0
KINDS = ("valid", "corrupted", "mutant", "soup", "text", "extreme")


class StopFuzz(Exception):
    """Raised inside the hypothesis body to end the run (count or time reached)."""


class Hang(Exception):
    """One input ran past --hang seconds (raised from SIGALRM)."""


@dataclass
class Tally:
    tried: Counter = field(default_factory=Counter)
    compiled: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    escapes: list = field(default_factory=list)        # (kind, text, options, problem)
    slow: list = field(default_factory=list)           # (seconds, kind, text)
    error_types: Counter = field(default_factory=Counter)


# ---- extreme inputs ---------------------------------------------------------------------------

TAIL = "\ninput X [2];\noutput Y [1] from X all;\n"


def _nested_parens(rnd: random.Random) -> str:
    n = rnd.choice((100, 1000, 5000, 10_000, 20_000, 100_000))
    close = n if rnd.random() < 0.7 else n - rnd.randint(1, 3)   # sometimes unbalanced
    return f"const A = {'(' * n}1{')' * close};" + TAIL


def _nested_other(rnd: random.Random) -> str:
    n = rnd.choice((1000, 10_000, 50_000))
    return rnd.choice((
        f"const A = {'-' * n}1;" + TAIL,
        f"const A = {'- ' * n}1;" + TAIL,
        f"const A = {'[' * n}1{']' * n};" + TAIL,
        "const A = " + " + ".join(["1"] * n) + ";" + TAIL,
        "const A = " + " ^ ".join(["1"] * n) + ";" + TAIL,
        "const A = " + "max(" * n + "1" + ", 2)" * n + ";" + TAIL,
        "const A = 1" + "[0]" * n + ";" + TAIL,
        "input X [2]; output Y [1] from X where (s, d) => " + "!" * n + "true;",
        "input X [2]; output Y [1] from X where (s, d) => "
        + " && ".join(["s[0] >= 0"] * n) + ";",
        "{" * n + TAIL,
        "const { " * n + TAIL,
    ))


def _long_file(rnd: random.Random) -> str:
    n = rnd.choice((10_000, 100_000))
    variant = rnd.randrange(6)
    if variant == 0:
        return "".join(f"const K{i} = {i};\n" for i in range(n)) + TAIL
    if variant == 1:
        return "// comment\n" * n + TAIL
    if variant == 2:
        return "\n" * n + "input X [2]; output Y [1] from X al;"    # error on the last line
    if variant == 3:
        n = min(n, 20_000)
        lines = ["input X [4];"]
        lines += [f"hidden H{i} [4] from {'X' if i == 0 else f'H{i - 1}'} all;" for i in range(n)]
        return "\n".join(lines + [f"output Y [1] from H{n - 1} all;"])
    if variant == 4:
        return "const A = [" + ",\n".join("1" for _ in range(n)) + "];" + TAIL
    return "".join(f"const K{i} = K{i - 1} + 1;\n" if i else "const K0 = 0;\n"
                   for i in range(n)) + TAIL


def _huge_literal(rnd: random.Random) -> str:
    digits = "9" * rnd.choice((30, 400, 1000, 5000))
    big = rnd.choice(("1e400", "1E-400", "-1e400", digits, f"1{digits}.5", f"0.{digits}e-9999",
                      "10 ^ 1000", "2 ^ 2 ^ 2 ^ 2 ^ 2 ^ 2", "(10 ^ 400) / (10 ^ 399)",
                      f"{digits} % 7", f"-{digits}", "1e308 * 1e308", "0 ^ -1", "1 / 0",
                      "1 % 0", f"{digits} * 0"))
    return rnd.choice((
        f"const A = {big};\ninput X [A];\noutput Y [1] from X all;",
        f"input X [{big}];\noutput Y [1] from X all;",
        f"input X [2];\noutput Y [{big}] from X all;",
        f"input X [2, 2];\noutput Y [1] from X convolve {{ InputShape = [2, 2]; "
        f"KernelShape = [{big}, 1]; }}",
        f"input X [4];\nhidden H [{big}] from X convolve {{ InputShape = [4]; KernelShape = [1]; "
        f"MapCount = {big}; }}\noutput Y [1] from H all;",
        f"input X [4];\noutput Y [1] from X all {{ Weights = [{big}, 1, 1, 1]; }}",
        f"input X [4];\nhidden H [4] from X response norm {{ InputShape = [4]; "
        f"KernelShape = [1]; Alpha = {big}; Beta = {big}; }}\noutput Y [1] from H all;",
        f"input X [2];\noutput Y [1] from X where (s, d) => s[0] < {big};",
        f"input X [2];\noutput Y [1] from X where (s, d) => s[{big}] < 1;",
    ))


def _odd(rnd: random.Random) -> str:
    n = rnd.choice((1000, 100_000, 1_000_000))
    return rnd.choice((
        f"input {'X' * n} [2];\noutput Y [1] from {'X' * n} all;",
        "x" * (netsharp.compiler.MAX_SOURCE_BYTES + 1),
        "/*" + " " * n,
        "//" + "ü" * n,
        "\x00" * n,
        "\r" * n + "@",
        "\t" * n + "input X [2] output",
        "input X [2];\noutput Y [1] from X all;" * (n // 40),
    ))


def fixed_extremes() -> list[str]:
    """The cases the brief names, run once before the random ones."""
    digits = "9" * 1000
    return [
        f"const A = {'(' * 10_000}1{')' * 10_000};" + TAIL,
        f"const A = {'(' * 100_000}1{')' * 100_000};" + TAIL,
        f"const A = {'(' * 10_000}1;" + TAIL,
        "".join(f"const K{i} = {i};\n" for i in range(100_000)) + TAIL,
        "\n" * 100_000 + "input X [2]; output Y [1] from X al;",
        "input X [1e400];\noutput Y [1] from X all;",
        "const A = 1e400;\ninput X [2];\noutput Y [1] from X all { Weights = [A, 1]; }",
        f"input X [{digits}];\noutput Y [1] from X all;",
        f"const A = {'1' + '0' * 1000};\ninput X [A / A];\noutput Y [1] from X all;",
        "const A = 10 ^ 1000;\ninput X [2];\noutput Y [1] from X all;",
        "const A = 10 ^ 1000 / 10 ^ 999;\ninput X [A];\noutput Y [1] from X all;",
        "const A = 2 ^ 2 ^ 2 ^ 2 ^ 2 ^ 2;\ninput X [2];\noutput Y [1] from X all;",
    ]


def extreme(rnd: random.Random) -> str:
    return rnd.choice((_nested_parens, _nested_other, _long_file, _huge_literal, _odd))(rnd)


# ---- running one input ------------------------------------------------------------------------

def _options(rnd: random.Random) -> dict:
    """Half the time features/classes (so `auto` sizes resolve), sometimes a task too."""
    if rnd.random() < 0.5:
        return {}
    options = {"features": rnd.choice((1, 2, 3, 4, 10, 784)),
               "classes": rnd.choice((1, 2, 3, 10))}
    if rnd.random() < 0.2:
        options["task"] = rnd.choice(("regression", "binary", "multiclass"))
    return options


def location_problem(error: netsharp.NetsharpError, text: str) -> str | None:
    """What is wrong with an error's line/col (as tests/test_property.py checks), or None."""
    lines = text.split("\n")
    if not isinstance(error.line, int) or not isinstance(error.col, int):
        return f"error without a location: {error.message!r}"
    if not 1 <= error.line <= len(lines):
        return f"line {error.line} of {len(lines)}: {error.message!r}"
    width = len(lines[error.line - 1])
    if not 1 <= error.col <= width + 1:
        return f"col {error.col} on a line of {width} characters: {error.message!r}"
    str(error)   # rendering must not fail either (an exception here is an escape)
    return None


def _alarm(signum, frame):
    raise Hang()


def run_one(kind: str, text: str, options: dict, expected: int | None, tally: Tally,
            hang: int) -> None:
    """Compile one input and record what happened."""
    tally.tried[kind] += 1
    started = time.perf_counter()
    problem = None
    signal.alarm(hang)
    try:
        try:
            net = netsharp.compile(text, **options)
        except netsharp.NetsharpError as error:
            tally.errors[kind] += 1
            tally.error_types[type(error).__name__] += 1
            problem = location_problem(error, text)
            if problem is None and expected is not None:
                problem = f"valid program rejected: {error}"
        else:
            tally.compiled[kind] += 1
            if expected is not None and net.total_weights != expected:
                problem = f"total_weights {net.total_weights}, expected {expected}"
    except Hang:
        problem = f"still running after {hang} s"
    except BaseException as error:  # noqa: B036 -- everything but a NetsharpError is a finding
        if isinstance(error, KeyboardInterrupt):
            raise
        problem = "".join(traceback.format_exception(error))
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - started
    if seconds > SLOW_SECONDS:
        tally.slow.append((seconds, kind, text))
    if problem is not None:
        tally.escapes.append((kind, text, options, problem))


# ---- plain-random inputs derived from a valid program ----------------------------------------

def damage(rnd: random.Random, text: str) -> str:
    """One piece of damage, as netsharp_strategies._damage does it but drawn with `random`
    (hypothesis's draws cost as much as compiling, so most damage is done here)."""
    return damage_with(text, rnd.randint, rnd.choice, lambda: (
        rnd.choice(INSERTIONS) if rnd.random() < 0.8 else random_text(rnd, rnd.randint(1, 4))))


def mutant(rnd: random.Random, text: str) -> str:
    for _ in range(rnd.choice((1, 1, 1, 2, 3, 5, 10))):
        text = damage(rnd, text)
    return text


def random_text(rnd: random.Random, size: int) -> str:
    """Printable ASCII with line breaks, or any code points (surrogates left out)."""
    if rnd.random() < 0.6:
        return "".join(chr(rnd.randint(9, 126)) for _ in range(size))
    return "".join(chr(rnd.choice((rnd.randint(0, 0xD7FF), rnd.randint(0xE000, 0x10FFFF),
                                   rnd.randint(0, 0x3000)))) for _ in range(size))


def soup(rnd: random.Random) -> str:
    return " ".join(rnd.choices(SOUP, k=rnd.randint(0, 80)))


def derived(rnd: random.Random, text: str) -> list[tuple[str, str]]:
    """(kind, text) inputs made with `random` from one valid program."""
    inputs = [("mutant", mutant(rnd, text)) for _ in range(MUTANTS)]
    inputs.append(("soup", soup(rnd)))
    inputs.append(("text", random_text(rnd, rnd.choice((0, 1, 5, 20, 200)))))
    if rnd.random() < EXTREME_RATE:
        inputs.append(("extreme", extreme(rnd)))
    return inputs


# ---- the run ----------------------------------------------------------------------------------

BATCH = 1000       # examples per hypothesis run: its record of tried inputs grows with each one
MUTANTS = 4        # plain-random mutants of each valid program
EXTREME_RATE = 0.005


def _batch(batch_seed: int, run):
    """One hypothesis run of BATCH examples, each a valid program (compiled and checked), a
    program damaged by hypothesis, and the plain-random inputs derived from the valid one."""

    @hypothesis_seed(batch_seed)
    @settings(max_examples=BATCH, deadline=None, database=None, phases=[Phase.generate],
              verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck))
    @given(valid_programs(), corrupted_programs(), st.integers(0, 2**64 - 1))
    def body(program, corrupted, seed):
        rnd = random.Random(seed)
        run("valid", program.text, {}, program.total_weights)
        run("corrupted", corrupted, _options(rnd), None)
        for kind, text in derived(rnd, program.text):
            run(kind, text, _options(rnd), None)

    return body


def fuzz(count: int, seconds: float, seed: int, hang: int, progress: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + seconds
    report_at = [time.monotonic() + progress]

    def run(kind, text, options, expected):
        done = sum(tally.tried.values())
        if done >= count or time.monotonic() > deadline:
            raise StopFuzz()
        run_one(kind, text, options, expected, tally, hang)
        if time.monotonic() > report_at[0]:
            report_at[0] += progress
            print(f"  {done + 1:,} inputs, {len(tally.escapes)} escapes", flush=True)

    try:
        for text in fixed_extremes():
            run("extreme", text, {}, None)
    except StopFuzz:
        return tally
    batches = random.Random(seed)
    while True:
        try:
            _batch(batches.getrandbits(64), run)()
        except StopFuzz:
            return tally


def save(tally: Tally, out: Path) -> None:
    """Each escaping input as NNNN.ns, its options and traceback as NNNN.txt."""
    out.mkdir(parents=True, exist_ok=True)
    for i, (kind, text, options, problem) in enumerate(tally.escapes):
        (out / f"{i:04d}.ns").write_text(text, encoding="utf-8", errors="surrogatepass")
        (out / f"{i:04d}.txt").write_text(f"kind: {kind}\noptions: {options}\n\n{problem}\n")


def summary(tally: Tally, elapsed: float) -> str:
    tried = sum(tally.tried.values())
    lines = [f"inputs tried: {tried:,} in {elapsed:.0f} s ({tried / max(elapsed, 1e-9):,.0f}/s)",
             f"compiled: {sum(tally.compiled.values()):,}; NetsharpError: "
             f"{sum(tally.errors.values()):,} ({dict(tally.error_types)})",
             f"escapes: {len(tally.escapes)}",
             f"slower than {SLOW_SECONDS:g} s: {len(tally.slow)}"]
    for kind in KINDS:
        lines.append(f"  {kind:9} tried {tally.tried[kind]:>7,}  compiled "
                     f"{tally.compiled[kind]:>7,}  errors {tally.errors[kind]:>7,}")
    for seconds, kind, text in sorted(tally.slow, reverse=True)[:10]:
        lines.append(f"  slow: {seconds:.2f} s {kind} {len(text):,} chars: {text[:70]!r}")
    for kind, text, _, problem in tally.escapes[:10]:
        lines.append(f"  escape ({kind}): {text[:200]!r}\n    {problem.strip()[-400:]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs to try")
    parser.add_argument("--seconds", type=float, default=float("inf"), help="time limit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang", type=int, default=60, help="seconds before an input is a hang")
    parser.add_argument("--out", type=Path, default=Path("fuzz-escapes"),
                        help="directory for escaping inputs")
    parser.add_argument("--progress", type=float, default=60.0, help="seconds between reports")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tally = fuzz(args.count, args.seconds, args.seed, args.hang, args.progress)
    elapsed = time.monotonic() - started
    print(summary(tally, elapsed))
    if tally.escapes:
        save(tally, args.out)
        print(f"escaping inputs saved in {args.out}{os.sep}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
