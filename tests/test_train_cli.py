"""`netsharp train`, `evaluate` and `predict` end to end: real data (the built-in digits and
Debian's Fashion-MNIST files), checkpoints and resume, early stopping, every user mistake."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netsharp
from netsharp.cli import main
from netsharp.data.datasets import fashion_mnist
from netsharp.progress import EpochBar

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
DIGITS = str(SAMPLES / "digits.ns")
RUN_FILES = ["checkpoint.safetensors", "confusion_matrix.png", "learning_curve.png",
             "metrics.csv", "metrics.json", "model.safetensors"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def weights(path):
    return netsharp.load(path).get_weights()


def same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One trained digits model shared by the evaluate and predict tests."""
    out = tmp_path_factory.mktemp("digits") / "run"
    result = invoke("train", DIGITS, "--epochs", 8, "--batch-size", 32, "--output", out)
    assert result.exit_code == 0, result.output
    return out, result


def test_train_on_built_in_digits_writes_every_output(digits_run):
    out, result = digits_run
    assert "kernels ready" in result.stdout and "epoch 8/8" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    # Chance is 10%; a small working network gets well above 90% on the 8x8 digits.
    assert metrics["test"]["accuracy"] >= 0.9
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 9))
    assert metrics["stopped"] == "completed"
    csv_rows = (out / "metrics.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 8 + 1  # header, epochs, test
    for png in ("learning_curve.png", "confusion_matrix.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = netsharp.load(out / "model.safetensors")
    assert model.class_names == tuple(str(d) for d in range(10))
    assert model.preprocessing is not None


def test_train_reaches_real_accuracy_on_fashion_mnist(tmp_path):
    out = tmp_path / "run"
    result = invoke("train", SAMPLES / "mlp.ns", "--data", "fashion-mnist", "--epochs", 2,
                    "--limit", 10000, "--output", out, "--no-plots")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    # A broken kernel stays near chance (10%); a working 784-100-10 MLP passes 75% here.
    assert metrics["test"]["accuracy"] >= 0.75

    from netsharp.inference import prepare

    data = fashion_mnist(mirrors=[])
    model = netsharp.load(out / "model.safetensors")
    x_test = prepare(model, data.x_test, "test", pixel_max=data.pixel_max)
    predicted = model.predict(x_test).argmax(axis=1)
    assert np.mean(predicted == data.y_test) == metrics["test"]["accuracy"]


def test_resume_after_the_last_epoch_matches_an_uninterrupted_run(tmp_path):
    common = ("--epochs", 3, "--batch-size", 50, "--no-plots", "--seed", 7)
    straight = invoke("train", DIGITS, *common, "--output", tmp_path / "a")
    assert straight.exit_code == 0, straight.output
    first = invoke("train", DIGITS, "--epochs", 1, "--batch-size", 50, "--no-plots",
                   "--seed", 7, "--output", tmp_path / "b")
    assert first.exit_code == 0, first.output
    resumed = invoke("train", DIGITS, "--epochs", 3, "--resume", "--output", tmp_path / "b")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from" in resumed.stdout and "epoch 3/3" in resumed.stdout
    assert same_weights(weights(tmp_path / "a" / "model.safetensors"),
                        weights(tmp_path / "b" / "model.safetensors"))
    again = invoke("train", DIGITS, "--epochs", 3, "--resume", "--output", tmp_path / "b")
    assert again.exit_code == 0 and "nothing left to train" in again.stdout


def _spawn(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "netsharp", "train", *map(str, args)],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(process, text, timeout=120):
    """Read the child's output until `text` appears; returns what was read."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen)}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.parametrize("batch", [16, 64])   # 64: batches split with a lane worker process
def test_killed_or_interrupted_runs_resume_to_the_same_weights(tmp_path, signum, batch):
    """Stop a run at different moments (Ctrl-C saves a mid-epoch checkpoint; SIGKILL leaves
    the last epoch's), resume each time, and end with the uninterrupted run's weights."""
    recipe = ["--epochs", 4, "--batch-size", batch, "--no-plots", "--seed", 3]
    reference = invoke("train", DIGITS, *recipe, "--output", tmp_path / "straight")
    assert reference.exit_code == 0, reference.output
    out = tmp_path / "stopped"
    process = _spawn([DIGITS, *recipe, "--output", out], ROOT)
    _wait_for(process, "epoch 1/4  loss")
    time.sleep(0.05)
    process.send_signal(signum)
    output = process.communicate(timeout=120)[0]
    if signum == signal.SIGINT and process.returncode == 130:
        assert "checkpoint saved" in output
    assert (out / "checkpoint.safetensors").is_file()
    netsharp.load(out / "checkpoint.safetensors")  # loadable whatever the moment
    resumed = invoke("train", DIGITS, "--resume", "--output", out)
    assert resumed.exit_code == 0, resumed.output
    assert same_weights(weights(tmp_path / "straight" / "model.safetensors"),
                        weights(out / "model.safetensors"))


def test_early_stopping_keeps_the_best_weights(tmp_path):
    out = tmp_path / "run"
    result = invoke("train", DIGITS, "--epochs", 60, "--validation-split", 0.2, "--patience",
                    1, "--lr", 0.05, "--no-plots", "--output", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped"] == "early-stopping" and len(metrics["epochs"]) < 60
    losses = [e["val_loss"] for e in metrics["epochs"]]
    best = int(np.argmin(losses)) + 1
    assert metrics["best_epoch"] == best and len(losses) == best + 1
    assert same_weights(weights(out / "best.safetensors"), weights(out / "model.safetensors"))


def test_non_finite_training_loss_stops_with_advice(tmp_path):
    x = np.random.default_rng(0).normal(size=(120, 64)).astype(np.float32)
    x[37] = 3e38  # finite, but the first layer overflows on it
    y = np.arange(120) % 10
    data = tmp_path / "bad.npz"
    np.savez(data, x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    result = invoke("train", DIGITS, "--data", data, "--normalize", "none", "--output",
                    tmp_path / "run")
    assert result.exit_code == 1
    assert "became nan in epoch 1" in result.stderr and "learning rate" in result.stderr
    assert "no epoch had finished" in result.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert "Traceback" not in result.output


def test_evaluate_text_and_json(digits_run):
    out, _ = digits_run
    metrics = json.loads((out / "metrics.json").read_text())
    text = invoke("evaluate", out / "model.safetensors")
    assert text.exit_code == 0, text.output
    assert "confusion matrix" in text.stdout and "accuracy" in text.stdout
    as_json = invoke("evaluate", out / "model.safetensors", "--json")
    result = json.loads(as_json.stdout)
    assert result["accuracy"] == metrics["test"]["accuracy"]
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == result["samples"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(result["accuracy"])
    train = json.loads(invoke("evaluate", out / "model.safetensors", "--split", "train",
                              "--json").stdout)
    assert train["samples"] > result["samples"]


def test_predict_images_npz_and_csv(digits_run, tmp_path):
    from PIL import Image

    from netsharp.data.datasets import digits

    out, _ = digits_run
    data = digits(raw=True)  # counts 0..16
    model = out / "model.safetensors"
    images = []
    for i in range(5):
        pixels = np.round(np.asarray(data.x_test[i], float).reshape(8, 8) * 255 / 16)
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(pixels.astype(np.uint8), mode="L").save(path)
        images.append(path)
    np.savez(tmp_path / "some.npz", x=np.asarray(data.x_test[:5]))
    from_images = json.loads(invoke("predict", model, *images, "--json", "--top", 3).stdout)
    from_npz = json.loads(invoke("predict", model, tmp_path / "some.npz", "--json").stdout)
    assert [r["input"] for r in from_images] == [str(p) for p in images] or \
        len(from_images) == 5
    assert all(len(r["top"]) == 3 and r["top"][0]["probability"] >= r["top"][1]["probability"]
               for r in from_images)
    # The PNG round trip (0..16 -> 0..255 -> 0..16) must not change a single answer.
    assert [r["label"] for r in from_images] == [r["label"] for r in from_npz]
    right = sum(r["class"] == int(label) for r, label in zip(from_npz, data.y_test[:5]))
    assert right >= 4
    text = invoke("predict", model, *images)
    assert text.exit_code == 0 and len(text.stdout.splitlines()) == 5


@pytest.mark.parametrize("args, message", [
    (["train", DIGITS, "--data", "nonsense"], "unknown data source 'nonsense'"),
    (["train", str(SAMPLES / "mlp.ns")], "take 784 features, but the data has 64"),
    (["train", "no/such.ns"], "no such file"),
    (["train", DIGITS, "--threads", "999"], "--threads 999"),
    (["evaluate", "no/such.safetensors"], "no such model file"),
    (["predict", str(SAMPLES / "mlp.ns"), str(SAMPLES / "mlp.ns")], "cannot read a netsharp"),
])
def test_user_mistakes_exit_1_without_a_traceback(tmp_path, args, message):
    result = invoke(*args, *(["--output", tmp_path / "o"] if args[0] == "train" else []))
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.parametrize("args", [
    ["train", DIGITS, "--epochs", "0"],
    ["train", DIGITS, "--validation-split", "0.9"],
    ["train", DIGITS, "--optimizer", "rmsprop"],
    ["train", DIGITS, "--normalize", "zscore"],
    ["train", DIGITS, "--resume", "--overwrite"],
    ["train"],
    ["evaluate", "m.safetensors", "--split", "valid"],
    ["predict", "m.safetensors"],
    ["predict", "m.safetensors", "x.png", "--top", "0"],
])
def test_usage_errors_exit_2(args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_train_protects_an_earlier_run_and_checks_resume_settings(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", DIGITS, "--epochs", 1, "--no-plots", "--output", out).exit_code == 0
    before = (out / "model.safetensors").read_bytes()
    again = invoke("train", DIGITS, "--epochs", 1, "--output", out)
    assert again.exit_code == 1 and "already holds a training run" in again.stderr
    assert (out / "model.safetensors").read_bytes() == before
    changed = invoke("train", DIGITS, "--resume", "--lr", "0.5", "--epochs", 2, "--output", out)
    assert changed.exit_code == 1 and "--lr 0.5" in changed.stderr
    missing = invoke("train", DIGITS, "--resume", "--output", tmp_path / "fresh")
    assert missing.exit_code == 1 and "no checkpoint" in missing.stderr
    edited = tmp_path / "edited.ns"
    edited.write_text((SAMPLES / "digits.ns").read_text() + "\n// edited\n")
    other = invoke("train", edited, "--resume", "--epochs", 2, "--output", out)
    assert other.exit_code == 1 and "has changed since the checkpoint" in other.stderr
    replaced = invoke("train", DIGITS, "--epochs", 1, "--seed", 5, "--no-plots", "--overwrite",
                      "--output", out)
    assert replaced.exit_code == 0 and (out / "model.safetensors").read_bytes() != before


def test_a_syntax_error_is_reported_before_the_data_is_loaded(tmp_path):
    bad = tmp_path / "bad.ns"
    bad.write_text("input X [784]; output Y [10] form X all;")
    result = invoke("train", bad, "--data", "no-such-data", "--output", tmp_path / "o")
    assert result.exit_code == 1 and "bad.ns:1:" in result.stderr
    assert "no-such-data" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_progress_bar_on_a_terminal_and_in_a_log(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    terminal = io.StringIO()
    bar = EpochBar(2, 5, 1000, stream=terminal, interactive=True)
    bar.every = 0
    bar.update(250, 250 * 0.5, 200, 0.5)
    bar.close()
    drawn = terminal.getvalue()
    assert drawn.startswith("\repoch 2/5  [#####.....") and "250/1,000" in drawn
    assert "500 samples/s" in drawn and "loss 0.5000" in drawn and "accuracy 80.0%" in drawn
    assert "ETA 2 s" in drawn and drawn.endswith("\r")

    log = io.StringIO()
    plain = EpochBar(1, 1, 1000, stream=log, interactive=False, plain_every=0)
    plain.update(500, 100.0, None, 2.0)
    plain.update(1000, 200.0, None, 4.0)  # the epoch's own summary line reports the end
    assert log.getvalue() == "epoch 1/1  500/1,000  250 samples/s  loss 0.2000  ETA 2 s\n"


def test_threads_option_runs(tmp_path):
    result = invoke("train", DIGITS, "--epochs", 1, "--threads", 1, "--no-plots", "--output",
                    tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert os.path.exists(tmp_path / "o" / "model.safetensors")


def test_networks_and_labels_that_do_not_fit_are_refused_before_training(tmp_path):
    huge = tmp_path / "huge.ns"
    huge.write_text("input Picture [8, 8];\nhidden H [100000, 100000] from Picture all;\n"
                    "output Digit [10] softmax from H all;\n")
    result = invoke("train", huge, "--output", tmp_path / "o")
    assert result.exit_code == 1 and "the weights alone need" in result.stderr
    assert "'H.Picture'" in result.stderr and "Traceback" not in result.output

    rows = np.random.default_rng(1).integers(0, 17, (60, 64))
    labels = np.arange(60) % 12          # 12 classes for a 10-way output layer
    table = np.column_stack([labels, rows])
    csv = tmp_path / "twelve.csv"
    np.savetxt(csv, table, fmt="%d", delimiter=",")
    result = invoke("train", DIGITS, "--data", csv, "--output", tmp_path / "p")
    assert result.exit_code == 1, result.output
    assert "the output layer has 10 nodes, but there are 12 classes" in result.stderr


def test_regression_from_a_csv_file_trains_evaluates_and_predicts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    csv = tmp_path / "linear.csv"
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="a,b,c,d,e,target",
               comments="", fmt="%.6f")
    out = tmp_path / "run"
    result = invoke("train", SAMPLES / "regression_auto.ns", "--data", csv, "--epochs", 40,
                    "--batch-size", 16, "--lr", 0.01, "--output", out)
    assert result.exit_code == 0, result.output
    assert "learning_curve.png" in {p.name for p in out.iterdir()}
    scores = json.loads(invoke("evaluate", out / "model.safetensors", "--data", csv,
                               "--json").stdout)
    # The targets' variance is 1 + 4 + 0.25 + 9 = 14.25; a working fit explains nearly all.
    assert scores["mse"] < 0.5 and scores["samples"] == 80
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, x[:3], delimiter=",", fmt="%.6f")
    predicted = json.loads(invoke("predict", out / "model.safetensors", rows, "--json").stdout)
    values = np.array([r["values"][0] for r in predicted])
    assert np.abs(values - y[:3]).max() < 1.5


def test_resuming_a_run_that_stopped_early_trains_no_further(tmp_path):
    out = tmp_path / "run"
    first = invoke("train", DIGITS, "--epochs", 60, "--validation-split", 0.2, "--patience", 1,
                   "--lr", 0.05, "--no-plots", "--output", out)
    assert first.exit_code == 0, first.output
    before = weights(out / "model.safetensors")
    again = invoke("train", DIGITS, "--resume", "--output", out)
    assert again.exit_code == 0 and "early stopping ended this run" in again.stdout
    assert same_weights(before, weights(out / "model.safetensors"))
