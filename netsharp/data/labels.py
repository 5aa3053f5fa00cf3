"""Labels as the trainer needs them: class indices with the class names, or regression targets.

Rules (one place, so CSV and NPZ files behave alike):
- text labels ("cat", "dog") are classes, numbered in sorted order; class_names are the texts;
- integer labels that are exactly 0..K-1 are used as the class indices; other integers (1..3,
  -1/1, 0/2/7) are numbered in sorted order like texts, class_names keeping the original values;
- numbers with a fractional part make the task regression (float32 targets);
- `task` overrides the guess ("regression" for integer targets, "multiclass" or "binary").
Labels are encoded over the whole file before it is split, so both splits use the same classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

TASKS = ("multiclass", "binary", "regression")
TASK_NOTE = "for numeric targets, choose the regression task (CLI: --task regression)"


@dataclass(frozen=True)
class Labels:
    y: np.ndarray = field(repr=False)    # int64 class indices, or float32 targets
    class_names: tuple[str, ...]
    task: str


def check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task '{task}'", notes=(f"use one of {', '.join(TASKS)}",))


def encode(values: np.ndarray, what: str, row_name: Callable[[int], str],
           task: str | None = None) -> Labels:
    """Labels from a 1-D array of numbers or texts; `what` names them in messages ("data.csv:
    column 'species'") and `row_name(i)` names row i ("data.csv:17")."""
    check_task(task)
    numbers = _as_numbers(values)
    if numbers is None:
        return _text_classes(values, what, row_name, task)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        raise DataError(f"{row_name(int(bad[0]))}: the label is {values[bad[0]]!s}",
                        notes=("every row needs a label",))
    if task == "regression":
        return Labels(numbers.astype(np.float32), (), "regression")
    fractional = np.flatnonzero(numbers != np.round(numbers))
    if fractional.size and task is None:
        return Labels(numbers.astype(np.float32), (), "regression")
    if fractional.size:
        raise DataError(f"{row_name(int(fractional[0]))}: label {numbers[fractional[0]]} is "
                        f"not a class (not a whole number), but the task is {task}")
    return _integer_classes(numbers.astype(np.int64), what, task)


def _as_numbers(values: np.ndarray) -> np.ndarray | None:
    """float64 values, or None when they are texts that are not all numbers."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    if values.dtype.kind not in "US":
        raise DataError(f"labels of type {values.dtype} are neither numbers nor texts")
    try:
        return np.char.strip(values.astype(str)).astype(np.float64)
    except ValueError:
        return None


def _text_classes(values: np.ndarray, what: str, row_name, task: str | None) -> Labels:
    texts = np.char.strip(values.astype(str))
    empty = np.flatnonzero(texts == "")
    if empty.size:
        raise DataError(f"{row_name(int(empty[0]))}: the label is empty",
                        notes=("every row needs a label",))
    if task == "regression":
        bad = next(i for i, t in enumerate(texts) if not _is_number(t))
        raise DataError(f"{row_name(bad)}: label '{texts[bad]}' is not a number, but the task "
                        "is regression")
    names, y = np.unique(texts, return_inverse=True)
    return _classes(y.astype(np.int64), tuple(str(n) for n in names), what, task)


def _integer_classes(labels: np.ndarray, what: str, task: str | None) -> Labels:
    values, y = np.unique(labels, return_inverse=True)
    if values[0] == 0 and values[-1] == len(values) - 1:
        y = labels            # already 0..K-1: keep the file's numbering
    return _classes(y.astype(np.int64), tuple(str(v) for v in values), what, task)


def _classes(y: np.ndarray, names: tuple[str, ...], what: str, task: str | None) -> Labels:
    if task == "binary" and len(names) != 2:
        raise DataError(f"{what}: {len(names)} classes, but the task is binary")
    if task is None and len(y) >= 20 and len(names) > len(y) // 2:
        raise DataError(f"{what}: {len(names):,} different labels in {len(y):,} rows; "
                        "that is not a column of class labels",
                        notes=("choose the label column (CLI: --label NAME)", TASK_NOTE))
    return Labels(y, names, task or "multiclass")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
