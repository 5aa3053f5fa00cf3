"""`netsharp train` end to end on the real Fashion-MNIST files (Debian's package in CI)."""

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

import netsharp
from netsharp.cli import main
from netsharp.data.datasets import fashion_mnist

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_train_reaches_real_accuracy_and_saves_a_loadable_model(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(SAMPLES / "mlp.ns"), "--data",
                                       "fashion-mnist", "--epochs", "2", "--limit", "10000",
                                       "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.stdout and "kernels ready" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    # A broken kernel stays near chance (10%); a working 784-100-10 MLP passes 75% here.
    assert metrics["test"]["accuracy"] >= 0.75
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]

    data = fashion_mnist(mirrors=[])
    model = netsharp.load(out / "model.safetensors")
    predicted = model.predict(data.x_test).argmax(axis=1)
    assert np.mean(predicted == data.y_test) == metrics["test"]["accuracy"]
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.safetensors"]


def test_train_reports_user_mistakes_without_a_traceback(tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(main, ["train", str(SAMPLES / "mlp.ns"), "--data", "nonsense",
                                   "--output", str(tmp_path)])
    assert unknown.exit_code == 1 and "unknown data source 'nonsense'" in unknown.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = runner.invoke(main, ["train", str(SAMPLES / "mlp.ns"), "--data", str(empty),
                                   "--output", str(tmp_path)])
    assert missing.exit_code == 1 and "train-images-idx3-ubyte" in missing.stderr
    bad = tmp_path / "bad.ns"
    bad.write_text("input X [784]; output Y [10] from Z all;")
    compile_error = runner.invoke(main, ["train", str(bad), "--data", "fashion-mnist",
                                         "--output", str(tmp_path / "o")])
    assert compile_error.exit_code == 1 and "unknown layer 'Z'" in compile_error.stderr
    for result in (unknown, missing, compile_error):
        assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
