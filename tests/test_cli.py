"""The `netsharp` command through click's CliRunner, plus one real subprocess run.

Exit status: 0 success, 1 an error in the user's program or file, 2 a usage error. Program errors
go to stderr as `file:line:col: error: ...` with the source line; never a Python traceback.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import netsharp
from netsharp.cli import main

ROOT = Path(__file__).resolve().parent.parent

MLP = """// a 4-3-2 network
input X [4];
hidden H [3] from X all;
output Y [2] softmax from H all;
"""
MLP_WEIGHTS = 4 * 3 + 3 + 3 * 2 + 2

CONV = """const { T = true; F = false; }
input Picture [28, 28];
hidden C1 [5, 12, 12] from Picture convolve {
  InputShape = [28, 28]; KernelShape = [5, 5]; Stride = [2, 2]; MapCount = 5;
}
hidden P1 [5, 6, 6] from C1 max pool {
  InputShape = [5, 12, 12]; KernelShape = [1, 2, 2]; Stride = [1, 2, 2];
}
output Digit [10] from P1 all;
"""
CONV_WEIGHTS = 5 * (5 * 5 + 1) + 5 * 6 * 6 * 10 + 10

BAD = """input X [4];
hidden Layer1 [3] from X all;
output Y [2] from Layr1 all;
"""

AUTO = """input F auto;
hidden H auto from F all;
output O auto from H all;
"""


@pytest.fixture
def files(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# ---- the table --------------------------------------------------------------------------------

def test_compile_prints_every_layer_and_the_totals(files):
    path = files("conv.ns", CONV)
    result = run("compile", path)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    table = result.stdout
    for name in ("Picture", "C1", "P1", "Digit"):
        assert any(line.startswith(name + " ") for line in table.splitlines()), name
    for word in ("convolve from Picture", "max pool from C1", "all from P1", "softmax", "linear"):
        assert word in table
    totals = table.strip().splitlines()[-1]
    assert totals.startswith(f"{path}: {CONV_WEIGHTS:,} weights")
    assert "multiply-adds" in totals
    assert "130" in table                      # C1's weights


def test_table_columns(files):
    result = run("compile", files("mlp.ns", MLP))
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["layer", "kind", "shape", "nodes", "function", "bundles",
                              "weights", "mult-adds"]
    assert set(rule.replace(" ", "")) == {"-"}
    h = next(row for row in rows if row.startswith("H "))
    assert h.split()[:5] == ["H", "hidden", "[3]", "3", "sigmoid"]
    assert f"{4 * 3 + 3}" in h.split()


def test_several_files_are_all_reported(files):
    first, second = files("a.ns", MLP), files("b.ns", CONV)
    result = run("compile", first, second)
    assert result.exit_code == 0
    assert f"{first}: {MLP_WEIGHTS:,} weights" in result.stdout
    assert f"{second}: {CONV_WEIGHTS:,} weights" in result.stdout
    assert result.stdout.index(first + ":") < result.stdout.index(second + ":")


# ---- JSON -------------------------------------------------------------------------------------

def test_json_is_one_document_per_file_per_line(files):
    first, second = files("a.ns", MLP), files("b.ns", CONV)
    result = run("compile", "--json", first, second)
    assert result.exit_code == 0, result.output
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["source"] for d in documents] == [first, second]
    assert [d["total_weights"] for d in documents] == [MLP_WEIGHTS, CONV_WEIGHTS]


def test_json_has_the_required_keys(files):
    result = run("compile", "--json", files("conv.ns", CONV))
    (line,) = result.stdout.splitlines()
    document = json.loads(line)
    assert {"source", "layers", "total_weights", "total_macs"} <= set(document)
    assert document["total_macs"] == 5 * 12 * 12 * 5 * 5 + 5 * 6 * 6 * 10
    layers = {layer["name"]: layer for layer in document["layers"]}
    assert list(layers) == ["Picture", "C1", "P1", "Digit"]
    for layer in document["layers"]:
        assert {"name", "kind", "shape", "nodes", "activation", "weights", "bundles"} <= set(layer)
        for bundle in layer["bundles"]:
            assert {"kind", "source", "output_shape", "connections", "weights"} <= set(bundle)
    c1 = layers["C1"]
    assert (c1["kind"], c1["shape"], c1["nodes"], c1["activation"], c1["weights"]) == (
        "hidden", [5, 12, 12], 5 * 12 * 12, "sigmoid", 5 * (5 * 5 + 1))
    (conv,) = c1["bundles"]
    assert (conv["kind"], conv["source"], conv["output_shape"], conv["weights"]) == (
        "convolve", "Picture", [5 * 12, 12], 5 * (5 * 5 + 1))
    assert conv["connections"] == 5 * 12 * 12 * 5 * 5
    (pool,) = layers["P1"]["bundles"]
    assert (pool["kind"], pool["output_shape"], pool["weights"]) == ("max_pool", [5, 6, 6], 0)
    digit = layers["Digit"]
    assert digit["weights"] == 5 * 6 * 6 * 10 + 10
    assert layers["Picture"]["bundles"] == [] and layers["Picture"]["activation"] is None


def test_json_total_counts_shared_parameters_once(files):
    text = ("input {A [37]; B [37];}\nhidden { H1 [50] from A all; H2 [50] from B all; }\n"
            "output R [2] { from H1 all; from H2 all; }\nshare { H1, H2 }\n")
    document = json.loads(run("compile", "--json", files("s.ns", text)).stdout)
    assert document["total_weights"] == (37 * 50 + 50) + (50 * 2 * 2 + 2)
    assert sum(layer["weights"] for layer in document["layers"]) == 2 * (37 * 50 + 50) + 202


# ---- errors -----------------------------------------------------------------------------------

def test_a_program_error_exits_1_with_the_message_on_stderr(files):
    path = files("bad.ns", BAD)
    result = run("compile", path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"{path}:3:19: error: unknown layer 'Layr1'")
    assert "3 | output Y [2] from Layr1 all;" in result.stderr
    assert "did you mean 'Layer1'?" in result.stderr
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_a_syntax_error_exits_1(files):
    path = files("syntax.ns", "input X [4]\noutput Y [2] from X all;\n")
    result = run("compile", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:2:1: error: ")
    assert "Traceback" not in result.output


def test_one_bad_file_among_good_ones(files):
    good, bad, other = files("good.ns", MLP), files("bad.ns", BAD), files("other.ns", CONV)
    result = run("compile", "--json", good, bad, other)
    assert result.exit_code == 1
    sources = [json.loads(line)["source"] for line in result.stdout.splitlines()]
    assert sources == [good, other]
    assert result.stderr.startswith(f"{bad}:3:19: error:")


def test_a_missing_file_is_a_clear_error_without_traceback(tmp_path):
    missing = str(tmp_path / "nowhere.ns")
    result = run("compile", missing)
    assert result.exit_code != 0
    assert missing in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_directory_is_refused(tmp_path):
    result = run("compile", str(tmp_path))
    assert result.exit_code != 0
    assert "directory" in result.stderr
    assert "Traceback" not in result.output


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "binary.ns"
    path.write_bytes(b"input A [3];\n\xff\xfe\x00")
    result = run("compile", str(path))
    assert result.exit_code == 1
    assert "UTF-8" in result.stderr
    assert "Traceback" not in result.output


def test_a_file_with_a_byte_order_mark_compiles(tmp_path):
    path = tmp_path / "bom.ns"
    path.write_bytes(b"\xef\xbb\xbf" + MLP.encode())
    result = run("compile", str(path))
    assert result.exit_code == 0, result.stderr


def test_unknown_option_is_a_usage_error(files):
    result = run("compile", "--bogus", files("mlp.ns", MLP))
    assert result.exit_code == 2
    assert "--bogus" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ["compile"],                              # no file
    ["compile", "--task", "ranking", "x.ns"],
    ["compile", "--features", "0", "x.ns"],
    ["compile", "--classes", "many", "x.ns"],
    ["no-such-command"],
])
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


def test_help():
    result = run("compile", "--help")
    assert result.exit_code == 0
    for option in ("--json", "--features", "--classes", "--task", "--hidden-size"):
        assert option in result.stdout


def _installed() -> bool:
    try:
        importlib.metadata.version("netsharp")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert netsharp.__version__ in result.stdout


def test_a_deeply_nested_program_gives_no_traceback(files):
    # 1^1^...^1 is 1: a long chain compiles; a far deeper one is refused with a located error
    path = files("deep.ns", "const X = " + "^".join(["1"] * 5000) + ";\ninput A [3];\n"
                 "output O [2] from A all;\n")
    result = run("compile", path)
    assert result.exit_code == 0, result.stderr
    deeper = files("deeper.ns", "const X = " + "(" * 100_000 + "1" + ")" * 100_000 + ";\n")
    result = run("compile", deeper)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{deeper}:")
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ---- auto options -----------------------------------------------------------------------------

def test_features_and_classes_resolve_auto(files):
    path = files("auto.ns", AUTO)
    document = json.loads(run("compile", "--json", "--features", "4", "--classes", "3",
                              path).stdout)
    shapes = [layer["shape"] for layer in document["layers"]]
    assert shapes == [[4], [100], [3]]
    assert document["total_weights"] == 4 * 100 + 100 + 100 * 3 + 3 == 803
    assert document["layers"][2]["activation"] == "softmax"


def test_hidden_size_and_task_resolve_auto(files):
    path = files("auto.ns", AUTO)
    result = run("compile", "--json", "--features", "5", "--task", "regression",
                 "--hidden-size", "7", path)
    document = json.loads(result.stdout)
    assert [layer["shape"] for layer in document["layers"]] == [[5], [7], [1]]
    assert document["layers"][2]["activation"] == "linear"
    assert document["total_weights"] == 5 * 7 + 7 + 7 * 1 + 1


def test_binary_task_gives_one_sigmoid_output(files):
    result = run("compile", "--json", "--features", "6", "--classes", "2",
                 files("auto.ns", AUTO))
    output = json.loads(result.stdout)["layers"][2]
    assert (output["shape"], output["activation"]) == ([1], "sigmoid")


def test_auto_without_features_is_a_program_error(files):
    path = files("auto.ns", AUTO)
    result = run("compile", "--classes", "3", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{path}:1:9: error: input layer 'F' is auto")
    assert "--features" in result.stderr


def test_table_names_the_task(files):
    result = run("compile", "--features", "4", "--classes", "3", files("auto.ns", AUTO))
    assert result.stdout.strip().splitlines()[-1].endswith("task multiclass")


# ---- a real process ---------------------------------------------------------------------------

def _python_m_netsharp(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "netsharp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_python_m_netsharp_end_to_end(tmp_path):
    (tmp_path / "good.ns").write_text(MLP, encoding="utf-8")
    (tmp_path / "bad.ns").write_text(BAD, encoding="utf-8")

    ok = _python_m_netsharp("compile", "good.ns", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert f"good.ns: {MLP_WEIGHTS} weights" in ok.stdout
    assert ok.stderr == ""

    as_json = _python_m_netsharp("compile", "--json", "good.ns", cwd=tmp_path)
    assert json.loads(as_json.stdout)["total_weights"] == MLP_WEIGHTS

    bad = _python_m_netsharp("compile", "bad.ns", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("bad.ns:3:19: error: unknown layer 'Layr1'")
    assert "Traceback" not in bad.stderr

    missing = _python_m_netsharp("compile", "missing.ns", cwd=tmp_path)
    assert missing.returncode == 1
    assert "missing.ns" in missing.stderr and "Traceback" not in missing.stderr

    usage = _python_m_netsharp("compile", "--nope", "good.ns", cwd=tmp_path)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr
