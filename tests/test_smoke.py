"""The public API end to end, in well under a second."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netsharp

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """// a small convolutional network
const { Maps = 4; }
input Picture [8, 8];
hidden Conv [Maps, 6, 6] rlinear from Picture convolve {
  InputShape = [8, 8]; KernelShape = [3, 3]; MapCount = Maps;
}
hidden Pooled [Maps, 3, 3] from Conv max pool {
  InputShape = [Maps, 6, 6]; KernelShape = [1, 2, 2]; Stride = [1, 2, 2];
}
output Digit [10] from Pooled all;
"""
WEIGHTS = 4 * (3 * 3 + 1) + 4 * 3 * 3 * 10 + 10


def test_public_api_end_to_end():
    start = time.perf_counter()
    net = netsharp.compile(PROGRAM, path="smoke.ns")
    assert isinstance(net, netsharp.Network)
    assert net.layer_names == ("Picture", "Conv", "Pooled", "Digit")
    assert net.total_weights == WEIGHTS
    assert net.task == "multiclass" and net.output.activation == "softmax"
    assert [p.size for p in net.parameters] == [4 * (3 * 3 + 1), 4 * 3 * 3 * 10, 10]
    assert all(isinstance(p, netsharp.Parameter) for p in net.parameters)
    assert isinstance(net.layer("Conv"), netsharp.Layer)

    summary = net.summary()
    for name in net.layer_names:
        assert name in summary
    assert f"{WEIGHTS:,} weights" in summary

    document = net.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["total_weights"] == WEIGHTS

    with pytest.raises(netsharp.SemanticError):
        netsharp.compile(PROGRAM.replace("from Pooled all", "from Poold all"))
    assert time.perf_counter() - start < 1.0


def test_compile_file(tmp_path):
    path = tmp_path / "net.ns"
    path.write_text(PROGRAM, encoding="utf-8")
    net = netsharp.compile_file(path)
    assert net.source.path == str(path)
    assert net.total_weights == WEIGHTS
    assert netsharp.compile_file(str(path), hidden_size=3).total_weights == WEIGHTS
    with pytest.raises(netsharp.NetsharpError, match="no such file"):
        netsharp.compile_file(tmp_path / "missing.ns")


def test_network_is_immutable():
    net = netsharp.compile(PROGRAM)
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.task = "regression"
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.layers[0].name = "Other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.layer("Conv").bundles[0].weights = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.parameters[0].shape = (1,)
    assert isinstance(net.layers, tuple) and isinstance(net.layer("Conv").shape, tuple)


def test_repr_is_useful():
    text = repr(netsharp.compile(PROGRAM, path="smoke.ns"))
    assert "smoke.ns" in text
    for name in ("Picture", "Conv", "Pooled", "Digit"):
        assert name in text
    assert str(WEIGHTS) in text
    assert len(text) < 300


def test_unknown_layer_lookup_names_the_layers():
    net = netsharp.compile(PROGRAM)
    with pytest.raises(KeyError, match="Picture"):
        net.layer("Nope")


def test_errors_are_exported_and_raised_not_printed(capsys):
    with pytest.raises(netsharp.NetsharpError) as info:
        netsharp.compile("input A [3];\noutput O [1] from B all;", path="e.ns")
    assert str(info.value).startswith("e.ns:2:19: error: unknown layer 'B'")
    assert capsys.readouterr() == ("", "")
    for name in ("compile", "compile_file", "Network", "Layer", "Parameter", "NetsharpError",
                 "ParseError", "SemanticError", "ResourceError", "DataError", "__version__"):
        assert name in netsharp.__all__ and hasattr(netsharp, name)


def test_compiling_does_not_import_numba():
    code = ("import sys, netsharp\n"
            "netsharp.compile('input A [3];\\noutput O [2] from A all;')\n"
            "print('numba' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
