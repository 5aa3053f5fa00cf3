"""Training reports: a confusion matrix, a metrics CSV, and PNG plots of a training run.

(netsharp/report.py is the *compile* report; this module reports on training.)

    history = model.fit(...)                     # one dict per epoch
    write_metrics_csv("metrics.csv", history, model.evaluate(x_test, y_test))
    plot_learning_curve("curve.png", history)
    matrix = confusion_matrix(y_test, model.predict_classes(x_test), classes=10)
    plot_confusion_matrix("confusion.png", matrix, class_names)

The writers take any path (the caller may hand them a temporary file without a `.png` suffix,
so the format is always given explicitly). matplotlib is imported inside the plotting functions,
and only its object-oriented API (Figure + FigureCanvasAgg) is used: no pyplot global state, no
display needed, and importing this module costs nothing when no plot is drawn.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence

import numpy as np

# Columns in this order, each only when some record has it; keys not listed here follow in the
# order they first appear, so a new metric shows up without a change here.
COLUMNS = ("epoch", "lr", "loss", "accuracy", "mse", "val_loss", "val_accuracy", "val_mse",
           "seconds", "samples_per_s")
TEST_EPOCH = "test"


# ---- numbers ---------------------------------------------------------------------------------

def confusion_matrix(y_true, y_pred, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts: row = true class, column = predicted class."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} true labels but {y_pred.size} predictions")
    for name, labels in (("true", y_true), ("predicted", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ValueError(f"{name} labels must lie in 0..{classes - 1}")
    flat = y_true.astype(np.int64) * classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class (diagonal / row total); NaN for a class with no samples."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


# ---- CSV -------------------------------------------------------------------------------------

def metric_columns(records: Sequence[dict]) -> list[str]:
    """The union of the records' keys: COLUMNS order first, then the rest as first seen."""
    present = {key for record in records for key in record}
    columns = [name for name in COLUMNS if name in present]
    for record in records:
        columns += [key for key in record if key not in columns]
    return columns


def write_metrics_csv(path, history: list[dict], test: dict | None = None) -> None:
    """One row per epoch record, blanks where a record lacks a column; then a row with epoch
    "test" holding the test figures (under the same names: loss, accuracy, mse)."""
    rows = [dict(record) for record in history]
    if test is not None:
        rows.append({"epoch": TEST_EPOCH, **test})
    columns = metric_columns(rows) or ["epoch"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(value) for key, value in row.items()})


def _cell(value):
    """Floats at full precision (repr round-trips); NaN and infinities as Python spells them."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return value


# ---- plots -----------------------------------------------------------------------------------

def _figure(width: float, height: float):
    """A figure bound to an Agg canvas; never registered with pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _series(history: list[dict], key: str) -> tuple[list, list]:
    points = [(record.get("epoch", i + 1), record[key]) for i, record in enumerate(history)
              if _finite(record.get(key))]
    return [p[0] for p in points], [p[1] for p in points]


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.number)) and math.isfinite(float(value))


def plot_learning_curve(path, history: list[dict]) -> None:
    """Two panels against epoch: loss (training and validation), and accuracy (or MSE for a
    regression run) for training and validation."""
    figure = _figure(10, 4)
    loss_axes, score_axes = figure.subplots(1, 2)
    score = "accuracy" if any("accuracy" in r or "val_accuracy" in r for r in history) else "mse"
    _panel(loss_axes, history, "loss", "loss")
    _panel(score_axes, history, score, score if score == "mse" else "accuracy")
    figure.suptitle(f"Learning curve ({len(history)} epoch{'s' if len(history) != 1 else ''})")
    figure.savefig(path, format="png")


def _panel(axes, history: list[dict], key: str, label: str) -> None:
    for name, style, color, label_text in ((key, "o-", "C0", "training"),
                                           (f"val_{key}", "s--", "C1", "validation")):
        epochs, values = _series(history, name)
        if values:     # fixed colours: validation looks the same with or without training
            axes.plot(epochs, values, style, color=color, label=label_text, markersize=4)
    axes.set_title(label.capitalize() if label != "mse" else "Mean squared error")
    axes.set_xlabel("epoch")
    axes.set_ylabel(label)
    axes.grid(True, alpha=0.3)
    if axes.lines:
        axes.legend()
    else:
        axes.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center",
                  transform=axes.transAxes)
    axes.xaxis.get_major_locator().set_params(integer=True)


def plot_confusion_matrix(path, matrix, class_names: Sequence[str] | None = None) -> None:
    """A heat map of counts, rows = true class; per-class accuracy in the row labels and the
    overall accuracy in the title."""
    matrix = np.asarray(matrix)
    classes = matrix.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else \
        [str(i) for i in range(classes)]
    if matrix.shape != (classes, classes) or len(names) != classes:
        raise ValueError(f"a {matrix.shape} matrix needs a square shape and {classes} names")
    size = max(4.0, 1.0 + 0.55 * classes)
    figure = _figure(size + 1.5, size)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=axes, label="samples")
    _write_counts(axes, matrix)
    recall = per_class_accuracy(matrix)
    rotate = max((len(n) for n in names), default=0) > 3
    axes.set_xticks(range(classes), names, rotation=45 if rotate else 0,
                    ha="right" if rotate else "center")
    axes.set_yticks(range(classes), [f"{n} ({_percent(r)})" for n, r in zip(names, recall)])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true (per-class accuracy)")
    total = matrix.sum()
    overall = np.trace(matrix) / total if total else float("nan")
    axes.set_title(f"Confusion matrix: {total:,} samples, accuracy {_percent(overall)}")
    figure.savefig(path, format="png")


def _write_counts(axes, matrix: np.ndarray) -> None:
    """Each cell's count, white on dark cells; small fonts for many classes."""
    high = matrix.max() if matrix.size else 0
    fontsize = 9 if len(matrix) <= 12 else 6
    for (row, column), count in np.ndenumerate(matrix):
        dark = high > 0 and count > high / 2
        axes.text(column, row, f"{count}", ha="center", va="center", fontsize=fontsize,
                  color="white" if dark else "black")


def _percent(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.1%}"


__all__ = ["confusion_matrix", "per_class_accuracy", "metric_columns", "write_metrics_csv",
           "plot_learning_curve", "plot_confusion_matrix", "COLUMNS"]
