"""The inputs of `netsharp predict`: raw feature rows from files of several kinds, each row named.

The rows keep the files' values; the model's stored Normalizer scales them exactly as it scaled
the training data. Nothing is resized or reshaped to fit a network: the caller compares the
feature count with the network's input and reports a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .csvfile import csv_features, read_table
from .idx import looks_like_idx, read_idx
from .images import image_files, is_image, read_images
from .npzfile import check_finite, feature_rows, find, read_arrays

FORMATS_NOTE = ("inputs are PNG/JPEG images or a directory of them, IDX image files (MNIST's "
                "format, .gz optional), CSV files (.csv, .csv.gz) or NPZ archives (.npz)")


@dataclass(frozen=True)
class Inputs:
    """x: raw (n, features) uint8 or float32 rows. names: one per row ("a.png", "data.csv:7",
    "t10k-images-idx3-ubyte[12]"). pixel_max: full scale when known (255 for decoded images and
    uint8 IDX files), else None: CSV and NPZ values are taken to be in the training data's
    units. sample_shape: one sample's shape before flattening ((28, 28)), None for tabular rows
    or when the files disagree."""

    x: np.ndarray = field(repr=False)
    names: tuple[str, ...]
    pixel_max: float | None
    sample_shape: tuple[int, ...] | None

    @property
    def features(self) -> int:
        return self.x.shape[1]


def read_inputs(paths: Sequence[str | Path], *, label: str | int | None = None) -> Inputs:
    """The rows of every file in `paths`, in order.

    CSV: every column is a feature, except a column named label, class, target or y (as in
    training files), or the column `label` names (0-based index or header name), which is
    dropped. NPZ: the array x, else x_test, else the archive's only array. A directory: its
    image files, sorted by name. All files must give the same number of features.
    """
    if not paths:
        raise DataError("no input files given", notes=(FORMATS_NOTE,))
    parts = [_read_one(Path(p).expanduser(), label) for p in paths]
    for path, part in zip(paths, parts):
        if part.features != parts[0].features:
            raise DataError(f"{path}: {part.features} features per row, but {paths[0]} has "
                            f"{parts[0].features}")
    return _join(parts)


def _read_one(path: Path, label) -> Inputs:
    if path.is_dir():
        return _images(image_files(path))
    if is_image(path):
        return _images([path])
    if path.name.lower().endswith((".csv", ".csv.gz")):
        return _csv(path, label)
    if path.suffix.lower() == ".npz":
        return _npz(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if looks_like_idx(path):
        return _idx(path)
    raise DataError(f"{path}: not an input format netsharp reads", notes=(FORMATS_NOTE,))


def _images(paths: list[Path]) -> Inputs:
    x, shape = read_images(paths)
    return Inputs(x, tuple(str(p) for p in paths), 255.0, shape)


def _csv(path: Path, label) -> Inputs:
    table = read_table(path)
    dropped = table.find_column(label, default=None)
    columns = [c for c in range(len(table.columns)) if c != dropped]
    if not columns:
        raise DataError(f"{path}: no feature columns")
    rows = csv_features(table, columns)
    return Inputs(rows, tuple(table.row_name(i) for i in range(len(rows))), None, None)


def _npz(path: Path) -> Inputs:
    def choose(names: list[str]) -> list[str]:
        name = find(names, "x") or find(names, "x_test") or (names[0] if len(names) == 1
                                                               else None)
        if name is None:
            raise DataError(f"{path}: no array named x or x_test",
                            notes=(f"the archive holds: {', '.join(names) or 'no arrays'}",))
        return [name]

    (name, values), = read_arrays(path, choose).items()
    rows, shape = feature_rows(values, f"{path}: array '{name}'")
    return Inputs(rows, tuple(f"{path}[{i}]" for i in range(len(rows))), None,
                  shape if len(shape) > 1 else None)


def _idx(path: Path) -> Inputs:
    values = read_idx(path)
    if values.ndim < 2:
        raise DataError(f"{path}: an IDX file of rank 1 (labels?), not input rows",
                        notes=("give the images file, e.g. t10k-images-idx3-ubyte",))
    if len(values) == 0:
        raise DataError(f"{path}: the file holds no samples")
    rows = values.reshape(len(values), -1)
    if rows.dtype != np.uint8:
        rows = rows.astype(np.float32)
        check_finite(rows, str(path))
    shape = tuple(values.shape[1:]) if values.ndim > 2 else None
    return Inputs(rows, tuple(f"{path}[{i}]" for i in range(len(rows))),
                  255.0 if rows.dtype == np.uint8 else None, shape)


def _join(parts: list[Inputs]) -> Inputs:
    if len(parts) == 1:
        return parts[0]
    dtypes = {p.x.dtype for p in parts}
    x = np.concatenate([p.x if len(dtypes) == 1 else p.x.astype(np.float32) for p in parts])
    names = tuple(n for p in parts for n in p.names)
    pixel_max = {p.pixel_max for p in parts}
    shapes = {p.sample_shape for p in parts}
    return Inputs(x, names, pixel_max.pop() if len(pixel_max) == 1 else None,
                  shapes.pop() if len(shapes) == 1 else None)
