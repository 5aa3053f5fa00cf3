"""The built wheel works outside the source tree: `netsharp` command, grammar inside the package,
the embedded digits data set with its licence."""

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = """// a 4-3-2 network
input X [4];
hidden H [3] from X all;
output Y [2] softmax from H all;
"""


def _run(*args, cwd):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_installed_wheel_compiles_a_program_from_outside_the_source_tree(tmp_path):
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "-w", dist, ROOT, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("netsharp-*.whl"))
    packed = zipfile.ZipFile(wheel).namelist()
    assert {"netsharp/data/digits.csv.gz", "netsharp/data/DIGITS-LICENSE.txt"} <= set(packed)

    # The fresh environment borrows lark/numpy/click from this one but gets netsharp from the wheel.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    installed = _run(bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-index",
                     wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    program = tmp_path / "net.ns"
    program.write_text(SAMPLE)
    where = _run(bin_dir / "python", "-c",
                 "import netsharp, netsharp.parse as p; print(netsharp.__file__); "
                 "print(p.grammar_path())", cwd=tmp_path)
    module_file, grammar_file = where.stdout.split()
    assert Path(module_file).is_relative_to(env_dir)
    assert Path(grammar_file).is_relative_to(Path(module_file).parent)

    digits = _run(bin_dir / "python", "-c",
                  "from netsharp.data import datasets; d = datasets.digits(); "
                  "print(datasets.DIGITS_FILE, len(d.x_train) + len(d.x_test))", cwd=tmp_path)
    data_file, rows = digits.stdout.split()
    assert Path(data_file).is_relative_to(env_dir) and rows == "1797", digits.stderr

    for command in ([bin_dir / "netsharp"], [bin_dir / "python", "-m", "netsharp"]):
        result = _run(*command, "compile", program, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        # 4*3 + 3 + 3*2 + 2 weights, worked out by hand
        assert f"{4 * 3 + 3 + 3 * 2 + 2} weights" in result.stdout
