"""Training reports (netsharp/training_report.py): confusion matrix, metrics CSV, PNG plots.

The plots are checked as files a user would open: a PNG signature, a decodable image of the
size the figure asks for, and not blank. matplotlib is part of the `train` extra, so a missing
matplotlib fails here rather than skipping.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from netsharp.training_report import (
    confusion_matrix,
    per_class_accuracy,
    plot_confusion_matrix,
    plot_learning_curve,
    write_metrics_csv,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CLASSIFICATION = [
    {"epoch": 1, "lr": 0.001, "loss": 0.9, "seconds": 2.5, "accuracy": 0.61,
     "val_loss": 0.8, "val_accuracy": 0.66, "samples_per_s": 24000.0},
    {"epoch": 2, "lr": 0.001, "loss": 0.5, "seconds": 2.25, "accuracy": 0.81,
     "val_loss": 0.55, "val_accuracy": 0.8, "samples_per_s": 26666.5},
    {"epoch": 3, "lr": 0.0005, "loss": 0.35, "seconds": 2.0, "accuracy": 0.875,
     "val_loss": 0.45, "val_accuracy": 0.84, "samples_per_s": 30000.0},
]
REGRESSION = [
    {"epoch": 1, "lr": 0.01, "loss": 2.0, "seconds": 0.5, "val_loss": 2.5, "val_mse": 5.0},
    {"epoch": 2, "lr": 0.01, "loss": 1.0, "seconds": 0.5, "val_loss": 1.5, "val_mse": 3.0},
]


# ---- confusion matrix --------------------------------------------------------------------------

def test_confusion_matrix_counts_by_hand():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]
    y_pred = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1]
    # true 0: predicted 0 twice, 1 once; true 1: 1 twice, 2 once; true 2: 0 once, 2 three times
    expected = np.array([[2, 1, 0],
                         [0, 2, 1],
                         [1, 0, 3]])
    matrix = confusion_matrix(y_true, y_pred, classes=3)
    assert matrix.dtype == np.int64 and matrix.shape == (3, 3)
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_allclose(per_class_accuracy(matrix), [2 / 3, 2 / 3, 3 / 4])


def test_confusion_matrix_keeps_unseen_classes_and_rejects_bad_labels():
    matrix = confusion_matrix(np.array([1, 1]), np.array([1, 3]), classes=4)
    assert matrix.shape == (4, 4) and matrix.sum() == 2 and matrix[1, 3] == 1
    assert np.isnan(per_class_accuracy(matrix)[0])
    with pytest.raises(ValueError):
        confusion_matrix([0, 4], [0, 1], classes=4)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], classes=2)


# ---- CSV ---------------------------------------------------------------------------------------

def read_csv(path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def assert_row_matches(row: dict, record: dict) -> None:
    for key, value in record.items():
        if isinstance(value, float):
            assert float(row[key]) == value, key      # full precision survives the round trip
        else:
            assert row[key] == str(value), key


def test_metrics_csv_classification(tmp_path):
    path = tmp_path / "metrics-without-suffix"
    test = {"loss": 0.42, "accuracy": 0.8525}
    write_metrics_csv(path, CLASSIFICATION, test)
    columns, rows = read_csv(path)
    assert columns == ["epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds",
                       "samples_per_s"]
    assert len(rows) == len(CLASSIFICATION) + 1
    for row, record in zip(rows, CLASSIFICATION):
        assert_row_matches(row, record)
    assert rows[-1]["epoch"] == "test"
    assert_row_matches(rows[-1], test)
    assert rows[-1]["val_loss"] == rows[-1]["seconds"] == ""


def test_metrics_csv_regression_and_missing_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    history = [dict(REGRESSION[0], mse=4.0), REGRESSION[1]]      # mse only in the first record
    write_metrics_csv(path, history, {"loss": 1.25, "mse": 2.5})
    columns, rows = read_csv(path)
    assert columns == ["epoch", "lr", "loss", "mse", "val_loss", "val_mse", "seconds"]
    assert_row_matches(rows[0], history[0])
    assert_row_matches(rows[1], history[1])
    assert rows[1]["mse"] == ""
    assert rows[2]["epoch"] == "test" and float(rows[2]["mse"]) == 2.5


def test_metrics_csv_one_epoch_no_test_and_unknown_keys(tmp_path):
    path = tmp_path / "metrics.csv"
    record = {"epoch": 1, "loss": float("nan"), "grad_norm": 3.5, "lr": 0.1}
    write_metrics_csv(path, [record], None)
    columns, rows = read_csv(path)
    assert columns == ["epoch", "lr", "loss", "grad_norm"]    # unknown keys follow the known
    assert len(rows) == 1 and math.isnan(float(rows[0]["loss"]))
    assert float(rows[0]["grad_norm"]) == 3.5


# ---- PNGs --------------------------------------------------------------------------------------

def read_png(path) -> np.ndarray:
    from matplotlib import image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with open(path, "rb") as handle:
        return image.imread(handle, format="png")


def assert_drawn(pixels: np.ndarray, width: int, height: int) -> None:
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].var() > 0, "blank image"
    # more than a frame: a good share of pixels differ from the background
    background = pixels[0, 0, :3]
    assert (np.abs(pixels[..., :3] - background).sum(axis=-1) > 0.1).mean() > 0.01


@pytest.mark.parametrize("history", [CLASSIFICATION, REGRESSION, CLASSIFICATION[:1]],
                         ids=["classification", "regression", "one-epoch"])
def test_learning_curve_png(tmp_path, history):
    path = tmp_path / "curve.tmp"        # no .png suffix: the format must not be guessed
    plot_learning_curve(path, history)
    assert_drawn(read_png(path), 1000, 400)


def test_learning_curve_differs_with_data(tmp_path):
    """The curves are drawn from the records, not a fixed picture."""
    plot_learning_curve(tmp_path / "a", CLASSIFICATION)
    flipped = [dict(r, loss=1 - r["loss"]) for r in CLASSIFICATION]
    plot_learning_curve(tmp_path / "b", flipped)
    assert not np.array_equal(read_png(tmp_path / "a"), read_png(tmp_path / "b"))


@pytest.mark.parametrize("names", [[str(i) for i in range(10)],
                                   ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]],
                         ids=["digits", "long-names"])
def test_confusion_matrix_png(tmp_path, names):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 10, 500))
    matrix = confusion_matrix(y_true, y_pred, 10)
    path = tmp_path / "confusion"
    plot_confusion_matrix(path, matrix, names)
    size = max(4.0, 1.0 + 0.55 * 10)
    assert_drawn(read_png(path), round((size + 1.5) * 100), round(size * 100))


def test_confusion_matrix_png_empty_and_two_classes(tmp_path):
    plot_confusion_matrix(tmp_path / "empty", np.zeros((2, 2), dtype=np.int64), ["no", "yes"])
    assert_drawn(read_png(tmp_path / "empty"), 550, 400)
    with pytest.raises(ValueError):
        plot_confusion_matrix(tmp_path / "bad", np.zeros((2, 2)), ["a", "b", "c"])
