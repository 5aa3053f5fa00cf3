"""One entry point for training data, `load_source(spec)`, returning RAW values.

x keeps the file's values (uint8 or float32, (n, features)); the Dataset's `pixel_max` says what
full scale is when the source knows it: the named sets and IDX images do; a CSV or NPZ file does
not (a uint8 array may hold the digits' counts 0..16), so theirs is None and the "scale"
Normalizer decides from the training values. Scaling is the Normalizer's job (normalize.py), so
that the transformation fitted on the training rows can be stored with the model and reapplied to
the raw inputs of `netsharp predict`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import DataError, did_you_mean
from . import datasets
from .csvfile import csv_features, read_table
from .datasets import Dataset
from .labels import Labels, check_task, encode
from .npzfile import SAVE_NOTE, check_finite, feature_rows, find, read_arrays

NAMED = ("digits", "mnist", "fashion-mnist")
KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
SOURCES_NOTE = ("use digits (built in, no download), mnist, fashion-mnist, a directory of IDX "
                "files, a .csv or .csv.gz file, or a .npz file")


def load_source(spec: str, *, cache: str | Path | None = None, label: str | int | None = None,
                test_fraction: float = 0.2, seed: int = 0, task: str | None = None) -> Dataset:
    """The data set `spec` names, with raw x.

    spec: "digits", "mnist", "fashion-mnist", a directory of MNIST-style IDX files, a CSV file
    (.csv, .csv.gz) or an NPZ archive (.npz). A single file (CSV, or NPZ with arrays x and y) is
    split: its rows are shuffled with np.random.default_rng(seed) and round(test_fraction * n) of
    them become the test set (both parts keep the file's order). An NPZ with x_train, y_train,
    x_test, y_test (Keras's mnist.npz) and the named sets come with their own test sets.
    label: the CSV label column, by name or 0-based index (default: a column named label, class,
    target or y, else the first). task: "multiclass", "binary" or "regression" instead of the
    guess from the labels (see labels.py).
    """
    check_task(task)
    path = Path(spec).expanduser()
    if spec in NAMED or path.is_dir():
        _no_label_option(spec, label)
        return _with_task(_named(spec, path, cache), task)
    if _is_csv(path):
        return csv_dataset(path, label, task, test_fraction, seed)
    if path.suffix.lower() == ".npz":
        _no_label_option(spec, label)
        return npz_dataset(path, task, test_fraction, seed)
    problem = "no such file or directory" if not path.exists() else "not a format netsharp reads"
    raise DataError(f"unknown data source '{spec}' ({problem})",
                    notes=did_you_mean(spec, NAMED) + (SOURCES_NOTE,))


def _named(spec: str, path: Path, cache) -> Dataset:
    if spec == "digits":
        return datasets.digits(raw=True)
    if spec == "mnist":
        return datasets.mnist(cache, raw=True)
    if spec == "fashion-mnist":
        return datasets.fashion_mnist(cache, raw=True)
    return datasets.idx_directory(path, raw=True)


def _no_label_option(spec: str, label) -> None:
    if label is not None:
        raise DataError(f"{spec}: choosing a label column applies to CSV files only")


def _with_task(data: Dataset, task: str | None) -> Dataset:
    if task is None or task == data.task:
        return data
    if task == "binary" and data.classes == 2:
        return replace(data, task="binary")
    raise DataError(f"{data.name}: a {data.task} data set with {data.classes} classes cannot be "
                    f"trained as {task}")


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".csv.gz"))


# ---- CSV ---------------------------------------------------------------------------------------

def csv_dataset(path: Path, label: str | int | None = None, task: str | None = None,
                test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A CSV file's rows: one label column (see load_source), every other column a feature."""
    table = read_table(path)
    target = table.find_column(label)
    columns = [c for c in range(len(table.columns)) if c != target]
    if not columns:
        raise DataError(f"{path}: no feature columns besides the label, "
                        f"{table.column_name(target)}",
                        notes=("fields are separated by commas",))
    try:
        x = csv_features(table, columns)
    except DataError as error:
        raise DataError(error.message, notes=error.notes + _label_note(table, target, label)) \
            from None
    labels = encode(table.strings(target), f"{path}: {table.column_name(target)}",
                    table.row_name, task)
    return _split(_stem(path), x, labels, test_fraction, seed, pixel_max=None)


def _label_note(table, target: int, label) -> tuple[str, ...]:
    """When the label column was taken by default to be the first, say so: a text column
    elsewhere is then most likely the real label."""
    if label is not None or table.find_column(None, default=None) is not None:
        return ()
    return (f"the labels are taken from the first column ({table.column_name(target)}) by "
            "default; choose the label column with label=NAME or INDEX (CLI: --label)",)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".npz"):
        name = name.removesuffix(suffix) if name.lower().endswith(suffix) else name
    return name


# ---- NPZ ---------------------------------------------------------------------------------------

def npz_dataset(path: Path, task: str | None = None, test_fraction: float = 0.2,
                seed: int = 0) -> Dataset:
    """Arrays x and y (split like a CSV file), or x_train, y_train, x_test, y_test."""
    arrays = read_arrays(path, lambda names: _npz_keys(path, names))
    if len(arrays) == 2:
        x_name, y_name = arrays
        x, shape = feature_rows(arrays[x_name], f"{path}: array '{x_name}'")
        _same_length(path, x, arrays[y_name], x_name, y_name)
        labels = _npz_labels(arrays[y_name], path, [y_name], [len(x)], task)
        return _split(_stem(path), x, labels, test_fraction, seed, None, _image_shape(shape))
    names = list(arrays)
    x_train, shape = feature_rows(arrays[names[0]], f"{path}: array '{names[0]}'")
    x_test, test_shape = feature_rows(arrays[names[2]], f"{path}: array '{names[2]}'")
    if shape != test_shape:
        raise DataError(f"{path}: '{names[2]}' samples have shape {list(test_shape)}, "
                        f"'{names[0]}' samples {list(shape)}")
    for x, y_name, x_name in ((x_train, names[1], names[0]), (x_test, names[3], names[2])):
        _same_length(path, x, arrays[y_name], x_name, y_name)
    y = _joined_labels(path, _column(arrays[names[1]]), _column(arrays[names[3]]))
    labels = _npz_labels(y, path, [names[1], names[3]], [len(x_train), len(x_test)], task)
    if x_train.dtype != x_test.dtype:
        x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
    cut = len(x_train)
    return Dataset(_stem(path), x_train, labels.y[:cut], x_test, labels.y[cut:],
                   labels.class_names, None, labels.task, _image_shape(shape))


def _column(y: np.ndarray) -> np.ndarray:
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def _joined_labels(path: Path, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Training and test labels in one array, so that both are encoded alike."""
    try:
        texts = {y.dtype.kind in "US" for y in (train, test)}
        if train.shape[1:] != test.shape[1:] or len(texts) > 1:
            raise ValueError
        return np.concatenate([train, test])
    except (ValueError, TypeError):
        raise DataError(f"{path}: training labels are {train.dtype} {list(train.shape)}, test "
                        f"labels {test.dtype} {list(test.shape)}; they must be alike") from None


def _npz_keys(path: Path, names: list[str]) -> list[str]:
    keras = [find(names, k) for k in KERAS_KEYS]
    if all(keras):
        return keras
    pair = [find(names, "x"), find(names, "y")]
    if all(pair):
        return pair
    raise DataError(f"{path}: no arrays named x and y, nor x_train, y_train, x_test, y_test",
                    notes=(f"the archive holds: {', '.join(names) or 'no arrays'}", SAVE_NOTE))


def _same_length(path: Path, x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    if y.ndim == 0 or len(y) != len(x):
        raise DataError(f"{path}: '{x_name}' has {len(x):,} samples but '{y_name}' has "
                        f"{len(y) if y.ndim else 0:,} labels")


def _npz_labels(y: np.ndarray, path: Path, names: list[str], lengths: list[int],
                task: str | None) -> Labels:
    """Labels from 1-D y, (n, 1) y, one-hot rows, or (n, k) regression targets."""
    def row_name(i: int) -> str:
        part = 0 if len(lengths) == 1 or i < lengths[0] else 1
        return f"{path}: {names[part]}[{i - part * lengths[0]}]"

    what = f"{path}: '{names[0]}'"
    y = _column(y)
    if y.ndim == 1:
        return encode(y, what, row_name, task)
    if y.ndim == 2 and y.dtype.kind in "biuf":
        return _one_hot(y, task) or _targets(y, what, task)
    raise DataError(f"{what}: labels of shape {y.shape} and dtype {y.dtype}",
                    notes=("labels are (samples,) class labels or targets, one-hot rows "
                           "(samples, classes), or regression targets (samples, outputs)",))


def _one_hot(y: np.ndarray, task: str | None) -> Labels | None:
    if task == "regression" or not np.all((y == 0) | (y == 1)) or not np.all(y.sum(1) == 1):
        return None
    names = tuple(str(c) for c in range(y.shape[1]))
    return Labels(y.argmax(axis=1).astype(np.int64), names, task or "multiclass")


def _targets(y: np.ndarray, what: str, task: str | None) -> Labels:
    if task not in (None, "regression"):
        raise DataError(f"{what}: {y.shape[1]} values per sample are not class labels",
                        notes=("give class labels (samples,) or one-hot rows",))
    targets = y.astype(np.float32)
    check_finite(targets, what)
    return Labels(targets, (), "regression")


def _image_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    return shape if len(shape) > 1 else None


# ---- single file -> training and test sets ------------------------------------------------------

def split_rows(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and test row indices: a seeded shuffle, round(test_fraction * n) held out."""
    if not 0 < test_fraction < 1:
        raise DataError(f"the test fraction must be between 0 and 1, not {test_fraction}")
    held_out = round(n * test_fraction)
    if held_out < 1 or held_out >= n:
        raise DataError(f"{n} rows are too few to hold out {test_fraction:.0%} for testing")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[held_out:]), np.sort(order[:held_out])


def _split(name: str, x: np.ndarray, labels: Labels, test_fraction: float, seed: int,
           pixel_max: float | None, sample_shape: tuple[int, ...] | None = None) -> Dataset:
    train, test = split_rows(len(x), test_fraction, seed)
    return Dataset(name, x[train], labels.y[train], x[test], labels.y[test],
                   labels.class_names, pixel_max, labels.task, sample_shape)
