"""Named data sets: the embedded UCI digits, MNIST (downloaded and verified), Fashion-MNIST
(Debian's package or download), and directories of IDX files.

Each loader returns images as float32 rows scaled to [0, 1] (pixel_max 1.0), as netsharp always
did; with `raw=True` it returns the file's own values instead (uint8, pixel_max 255 or 16), which
is what `sources.load_source` asks for so that a fitted `Normalizer` can be stored with a model and
applied again, identically, at predict time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .download import RemoteFile, cache_dir, fetch, sha256_of
from .idx import read_idx

PARTS = ("train_images", "train_labels", "test_images", "test_labels")

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz",
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    RemoteFile("train-labels-idx1-ubyte.gz",
               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    RemoteFile("t10k-images-idx3-ubyte.gz",
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    RemoteFile("t10k-labels-idx1-ubyte.gz",
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
)

FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
# Debian recompressed the files, so they are recognised by their decompressed content.
FASHION_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", content_md5="f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    RemoteFile("train-labels-idx1-ubyte.gz", content_md5="9018921c3c673c538a1fc5bad174d6f9"),
    RemoteFile("t10k-images-idx3-ubyte.gz", content_md5="8181f5470baa50b63fa0f6fddb340f0a"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", content_md5="15d484375f8d13e6eb1aabb0c3f46965"),
)
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
OFFLINE_NOTE = ("offline, these work: --data digits (built in), --data fashion-mnist with "
                "Debian's dataset-fashion-mnist package, a directory of IDX files, a CSV or NPZ "
                "file",)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


# The UCI "Optical Recognition of Handwritten Digits" test set (E. Alpaydin and C. Kaynak, 1998;
# CC BY 4.0) as scikit-learn distributes it (sklearn/datasets/data/digits.csv.gz, BSD-3-Clause):
# 1,797 rows of 64 pixel counts 0..16 (8x8 blocks of a 32x32 bitmap) followed by the digit.
# Attribution: netsharp/data/DIGITS-LICENSE.txt.
DIGITS_FILE = Path(__file__).with_name("digits.csv.gz")
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
DIGITS_TEST = 360          # the last 360 rows (20%), 33-37 of each digit


@dataclass(frozen=True)
class Dataset:
    """Training and test data, x as (n, features) rows, y as labels.

    x: uint8 or float32. Loaders called with `raw=True` (and `load_source`) keep the file's
       values and say in `pixel_max` what full scale is (255 for 8-bit images, 16 for digits,
       None when unknown, e.g. a CSV of measurements); the default loaders return x already
       divided by that maximum, with pixel_max 1.0.
    y: int64 class indices 0..classes-1 (task "multiclass" or "binary"), or float32 targets
       (task "regression"; (n,) or (n, outputs)).
    class_names: the text of each class index ("0".."9", "T-shirt/top", a CSV's string labels);
       empty when unknown. sample_shape: one sample's shape before flattening ((28, 28) for
       MNIST), None for tabular data.
    """

    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    class_names: tuple[str, ...] = ()
    pixel_max: float | None = None
    task: str = "multiclass"
    sample_shape: tuple[int, ...] | None = None

    @property
    def features(self) -> int:
        return self.x_train.shape[1]

    @property
    def classes(self) -> int:
        """The number of classes; 0 for regression."""
        if self.task == "regression":
            return 0
        return len(self.class_names) or int(max(self.y_train.max(), self.y_test.max())) + 1

    def compile_options(self) -> dict:
        """What `netsharp.compile_file` needs to resolve `auto` sizes for this data."""
        if self.task == "regression":
            return {"features": self.features, "task": "regression"}
        options = {"features": self.features, "classes": self.classes}
        return options | ({"task": "binary"} if self.task == "binary" else {})


def digits(raw: bool = False) -> Dataset:
    """The 8x8 UCI digits shipped inside netsharp (no network needed): 1,437 training and 360
    test images. The split is fixed: the test set is the LAST 360 rows of the file, the same
    every time, and harder than a shuffled 20% (samples/digits.ns: 92.5% here, 97-98% on a
    random split). Pixels are counts 0..16 (pixel_max 16); scaled to [0, 1] unless `raw`."""
    if not DIGITS_FILE.is_file() or sha256_of(DIGITS_FILE) != DIGITS_SHA256:
        raise DataError(f"{DIGITS_FILE}: the embedded digits data is missing or damaged",
                        notes=("reinstall netsharp",))
    table = np.loadtxt(DIGITS_FILE, delimiter=",", dtype=np.uint8, ndmin=2)
    x, y = table[:, :64], table[:, 64].astype(np.int64)
    if not raw:
        x = x.astype(np.float32) / 16.0
    cut = len(x) - DIGITS_TEST
    return Dataset("digits", x[:cut], y[:cut], x[cut:], y[cut:],
                   tuple(str(d) for d in range(10)), 16.0 if raw else 1.0,
                   sample_shape=(8, 8))


def mnist(cache: str | Path | None = None, mirrors: Sequence[str] = MNIST_MIRRORS,
          raw: bool = False, **fetch_options) -> Dataset:
    directory = cache_dir(cache) / "mnist"
    try:
        paths = [fetch(f, mirrors, directory, **fetch_options) for f in MNIST_FILES]
    except DataError as error:
        raise DataError(error.message, notes=error.notes + OFFLINE_NOTE) from None
    return _from_idx("mnist", paths, tuple(str(d) for d in range(10)), raw,
                     unpacked=cache_dir(cache) / "unpacked")


def fashion_mnist(cache: str | Path | None = None, mirrors: Sequence[str] = FASHION_MIRRORS,
                  system_dir: Path = FASHION_DEBIAN_DIR, raw: bool = False,
                  **fetch_options) -> Dataset:
    """Debian's `dataset-fashion-mnist` files when installed and intact, else a download."""
    local = [system_dir / f.name for f in FASHION_FILES]
    unpacked = cache_dir(cache) / "unpacked"
    if all(p.is_file() for p in local):
        try:
            return _from_idx("fashion-mnist", local, FASHION_CLASSES, raw, FASHION_FILES,
                             unpacked)
        except DataError:
            pass  # damaged or different files: the download below replaces them
    directory = cache_dir(cache) / "fashion-mnist"
    try:
        paths = [fetch(f, mirrors, directory, **fetch_options) for f in FASHION_FILES]
    except DataError as error:
        raise DataError(error.message, notes=error.notes + (
            f"offline, install Debian's dataset-fashion-mnist package (files in {system_dir})",
        )) from None
    return _from_idx("fashion-mnist", paths, FASHION_CLASSES, raw, unpacked=unpacked)


def idx_directory(directory: str | Path, raw: bool = False) -> Dataset:
    """A directory holding the four MNIST-style files (names as MNIST's, .gz optional)."""
    directory = Path(directory)
    paths = [_find_idx(directory, f.name) for f in MNIST_FILES]
    return _from_idx(directory.name, paths, (), raw)


def _find_idx(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory}: no {name} (or {name.removesuffix('.gz')})",
                    notes=("an IDX directory holds train-images-idx3-ubyte, "
                           "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                           "t10k-labels-idx1-ubyte, optionally gzipped",))


def _from_idx(name: str, paths: Sequence[Path], class_names: tuple[str, ...],
              raw: bool = False, verify: Sequence[RemoteFile] | None = None,
              unpacked: Path | None = None) -> Dataset:
    """The four files as a Dataset; `verify`: the files' expected contents, checked as read;
    `unpacked`: where read_idx keeps decompressed arrays."""
    md5s = [f.content_md5 for f in verify] if verify else [None] * len(paths)
    train_x, train_y, test_x, test_y = (read_idx(p, m, unpacked) for p, m in zip(paths, md5s))
    for images, labels, image_path in ((train_x, train_y, paths[0]), (test_x, test_y, paths[2])):
        if len(images) != len(labels):
            raise DataError(f"{image_path}: {len(images):,} images but {len(labels):,} labels")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{paths[2]}: test images are {list(test_x.shape[1:])}, training "
                        f"images {list(train_x.shape[1:])}")
    eight_bit = train_x.dtype == np.uint8 and test_x.dtype == np.uint8
    pixel_max = (255.0 if raw else 1.0) if eight_bit else None
    return Dataset(name, _pixels(train_x, raw), _labels(train_y, paths[1], class_names),
                   _pixels(test_x, raw), _labels(test_y, paths[3], class_names), class_names,
                   pixel_max, sample_shape=tuple(train_x.shape[1:]))


def _pixels(images: np.ndarray, raw: bool = False) -> np.ndarray:
    """(n, features) rows: uint8 kept as they are when `raw`, else float32 scaled to [0, 1]."""
    rows = images.reshape(len(images), -1)
    if raw and rows.dtype == np.uint8:
        return rows
    rows = rows.astype(np.float32)
    return rows / 255.0 if images.dtype == np.uint8 and not raw else rows


def _labels(labels: np.ndarray, path: Path, class_names: tuple[str, ...]) -> np.ndarray:
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be a rank-1 IDX file, this has rank {labels.ndim}")
    if class_names and labels.size and labels.max() >= len(class_names):
        raise DataError(f"{path}: label {int(labels.max())} is out of range for "
                        f"{len(class_names)} classes")
    return labels.astype(np.int64)
