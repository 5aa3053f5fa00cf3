"""NPZ archives (numpy.savez): arrays by name, never unpickled.

Loading uses allow_pickle=False because unpickling an archive runs whatever code it names; an
archive holding Python objects gets a DataError saying so instead.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError

SAVE_NOTE = "save numeric arrays, e.g. np.savez(path, x=x.astype(np.float32), y=y)"


def read_arrays(path: str | Path, choose: Callable[[list[str]], list[str]]) -> dict:
    """The arrays that `choose(names in the archive)` picks, loaded, by name."""
    path = Path(path)
    archive = _open(path)
    with archive:
        return {name: _array(archive, name, path) for name in choose(list(archive.files))}


def _open(path: Path) -> np.lib.npyio.NpzFile:
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except ValueError:
        raise DataError(f"{path}: a pickle, not an NPZ archive of arrays",
                        notes=(SAVE_NOTE,)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not an NPZ archive ({error})", notes=(SAVE_NOTE,)) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not an NPZ archive", notes=(SAVE_NOTE,))
    return archive


def _array(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    try:
        return archive[name]
    except ValueError as error:
        if "Object arrays" in str(error):
            raise DataError(f"{path}: array '{name}' holds Python objects (dtype object), which "
                            "netsharp does not load: unpickling can run code",
                            notes=(SAVE_NOTE,)) from None
        raise DataError(f"{path}: array '{name}' is damaged ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: array '{name}' is damaged ({error})") from None


def find(names: list[str], wanted: str) -> str | None:
    """The archive's name for `wanted`, matched without regard to case (X or x)."""
    return next((n for n in names if n == wanted), None) or \
        next((n for n in names if n.lower() == wanted), None)


def feature_rows(values: np.ndarray, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """(n, features) uint8 or float32 rows and one sample's shape; images (n, h, w[, c]) are
    flattened. `what` names the array in messages ("data.npz: array 'x'")."""
    if values.dtype.kind not in "biuf":
        raise DataError(f"{what} has dtype {values.dtype}; features must be numbers",
                        notes=(SAVE_NOTE,))
    if values.ndim < 2:
        raise DataError(f"{what} has shape {values.shape}; expected (samples, features) or "
                        "images (samples, height, width[, channels])",
                        notes=("one feature per sample: x.reshape(-1, 1)",))
    if len(values) == 0:
        raise DataError(f"{what} holds no samples")
    rows = values.reshape(len(values), -1)
    rows = rows.astype(np.uint8) if values.dtype.kind == "b" else rows
    if rows.dtype != np.uint8:
        with np.errstate(over="ignore"):
            rows = rows.astype(np.float32)
        check_finite(rows, what)
    return rows, tuple(values.shape[1:])


def check_finite(rows: np.ndarray, what: str) -> None:
    bad = np.argwhere(~np.isfinite(rows))
    if bad.size:
        row, column = (int(v) for v in bad[0])
        raise DataError(f"{what}: sample {row}, feature {column} is {rows[row, column]}",
                        notes=("features must be finite float32 numbers (|x| < 3.4e38)",))
