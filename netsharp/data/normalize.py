"""Input normalization fitted on the training data and applied identically ever after.

A model learns on normalized inputs, so predicting with it needs the very same transformation:
the trainer fits a Normalizer on the training rows, applies it to training and test data, and
stores `to_dict()` with the model; `predict` rebuilds it with `from_dict` and applies it to the
raw inputs. Every kind is `(x - offset) * scale`, computed in float32:

- "scale" (the default): divide by the data's full-scale value, the pixel maximum the source
  knows (255 for 8-bit images, 16 for the digits). When the source does not know it (CSV, NPZ),
  values that are all whole numbers in 0..255 (and not just 0/1) are taken to be 8-bit pixels
  and divided by 255; anything else is left as it is, and `describe()` says so.
- "minmax": per feature, the training set's minimum maps to 0 and its maximum to 1; a feature
  that is constant in the training set maps to 0 everywhere. Test or predict data may fall
  outside [0, 1]: the statistics are the training set's, never refitted.
- "none": the raw values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

KINDS = ("scale", "minmax", "none")


@dataclass(frozen=True)
class Normalizer:
    """`(x - offset) * scale`; offset and scale are floats, or one float per feature (minmax)."""

    kind: str
    offset: float | tuple[float, ...] = 0.0
    scale: float | tuple[float, ...] = 1.0

    @property
    def features(self) -> int | None:
        """The number of features it was fitted on; None when it applies to any number."""
        return len(self.offset) if isinstance(self.offset, tuple) else None

    def apply(self, x) -> np.ndarray:
        """float32 (n, features) rows; a DataError when the feature count differs."""
        rows = np.asarray(x)
        if rows.ndim != 2:
            raise DataError(f"expected rows of shape (n, features), got {rows.shape}")
        if self.features is not None and rows.shape[1] != self.features:
            raise DataError(f"the data has {rows.shape[1]} features, but the normalizer was "
                            f"fitted on {self.features}")
        if self.kind == "none":
            return np.array(rows, dtype=np.float32)
        if self.offset == 0.0:  # one pass: 60,000 MNIST images convert and scale in ~50 ms
            return np.multiply(rows, np.float32(self.scale), dtype=np.float32)
        out = rows.astype(np.float32)
        out -= np.asarray(self.offset, dtype=np.float32)
        out *= np.asarray(self.scale, dtype=np.float32)
        return out

    def describe(self) -> str:
        """One line for a user: what is done to their values."""
        if self.kind == "minmax":
            return f"minmax: each of {self.features} features mapped from its training range " \
                   "to [0, 1]"
        if self.kind == "scale" and self.scale != 1.0:
            return f"scale: values divided by {1 / self.scale:g}"
        return f"{self.kind}: values used as they are"

    def to_dict(self) -> dict:
        """JSON-serializable; `from_dict` rebuilds the same Normalizer."""
        def plain(v):
            return list(v) if isinstance(v, tuple) else v
        return {"kind": self.kind, "offset": plain(self.offset), "scale": plain(self.scale)}

    @classmethod
    def from_dict(cls, document) -> Normalizer:
        """The Normalizer a `to_dict()` document describes; a DataError when it is malformed."""
        if not isinstance(document, dict) or document.get("kind") not in KINDS:
            raise _unknown(document.get("kind") if isinstance(document, dict) else document)
        kind = document["kind"]
        offset = _numbers(document.get("offset", 0.0), "offset")
        scale = _numbers(document.get("scale", 1.0), "scale")
        _check_shapes(kind, offset, scale)
        return cls(kind, offset, scale)


def fit_normalizer(kind: str, x_train, pixel_max: float | None = None) -> Normalizer:
    """The Normalizer of `kind` for these training rows (raw values, (n, features))."""
    if kind not in KINDS:
        raise _unknown(kind)
    if kind == "none":
        return Normalizer("none")
    rows = np.asarray(x_train)
    if rows.ndim != 2 or len(rows) == 0:
        raise DataError("no training rows to fit the normalization on")
    if kind == "scale":
        full = pixel_max if pixel_max is not None else _guess_pixel_max(x_train)
        if not (full > 0 and math.isfinite(full)):
            raise DataError(f"the pixel maximum must be a positive number, not {full}")
        return Normalizer("scale", 0.0, 1.0 / float(full))
    return _minmax(_rows(rows))


def _unknown(kind) -> DataError:
    return DataError(f"unknown normalization {kind!r}", notes=(f"use one of {', '.join(KINDS)}",))


def _guess_pixel_max(x) -> float:
    """255 when the values look like 8-bit pixels, else 1 (values left as they are). Decided by
    the values, not the dtype: a CSV of 0/1 flags may be held as uint8 but is not pixels."""
    x = np.asarray(x)
    if x.size == 0 or x.dtype.kind not in "iuf":
        return 1.0
    low, high = float(x.min()), float(x.max())
    eight_bit = low >= 0 and 1 < high <= 255 and bool(np.all(x == np.round(x)))
    return 255.0 if eight_bit else 1.0


def _minmax(rows: np.ndarray) -> Normalizer:
    low = rows.min(axis=0).astype(np.float64)
    span = rows.max(axis=0).astype(np.float64) - low
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
    return Normalizer("minmax", tuple(low.tolist()), tuple(scale.tolist()))


def _rows(x) -> np.ndarray:
    rows = np.asarray(x)
    if rows.ndim != 2:
        raise DataError(f"expected rows of shape (n, features), got {rows.shape}")
    return rows.astype(np.float32, copy=False)


def _numbers(value, name: str) -> float | tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        numbers = (float(value),)
    elif isinstance(value, list) and value and \
            all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        numbers = tuple(float(v) for v in value)
    else:
        raise DataError(f"normalization {name} must be a number or a list of numbers")
    if not all(math.isfinite(v) for v in numbers):
        raise DataError(f"normalization {name} holds a value that is not finite")
    return numbers if isinstance(value, list) else numbers[0]


def _check_shapes(kind: str, offset, scale) -> None:
    per_feature = isinstance(offset, tuple), isinstance(scale, tuple)
    if kind == "minmax" and (per_feature != (True, True) or len(offset) != len(scale)):
        raise DataError("minmax normalization needs one offset and one scale per feature "
                        "(two lists of the same length)")
    if kind != "minmax" and any(per_feature):
        raise DataError(f"{kind} normalization has one offset and one scale, not lists")
    if kind == "none" and (offset, scale) != (0.0, 1.0):
        raise DataError("normalization 'none' has offset 0 and scale 1")
    if kind == "scale" and scale <= 0:
        raise DataError("normalization scale must be positive")
