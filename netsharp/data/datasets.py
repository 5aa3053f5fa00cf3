"""Named data sets: MNIST (downloaded and verified), Fashion-MNIST (Debian's package or download),
and directories of IDX files. Images come out as float32 rows scaled to [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .download import RemoteFile, cache_dir, fetch
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
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    class_names: tuple[str, ...] = ()

    @property
    def features(self) -> int:
        return self.x_train.shape[1]

    @property
    def classes(self) -> int:
        return len(self.class_names) or int(max(self.y_train.max(), self.y_test.max())) + 1


def mnist(cache: str | Path | None = None, mirrors: Sequence[str] = MNIST_MIRRORS,
          **fetch_options) -> Dataset:
    directory = cache_dir(cache) / "mnist"
    paths = [fetch(f, mirrors, directory, **fetch_options) for f in MNIST_FILES]
    return _from_idx("mnist", paths, tuple(str(d) for d in range(10)))


def fashion_mnist(cache: str | Path | None = None, mirrors: Sequence[str] = FASHION_MIRRORS,
                  system_dir: Path = FASHION_DEBIAN_DIR, **fetch_options) -> Dataset:
    """Debian's `dataset-fashion-mnist` files when installed and intact, else a download."""
    local = [system_dir / f.name for f in FASHION_FILES]
    if all(p.is_file() and f.problem(p) is None for p, f in zip(local, FASHION_FILES)):
        return _from_idx("fashion-mnist", local, FASHION_CLASSES)
    directory = cache_dir(cache) / "fashion-mnist"
    try:
        paths = [fetch(f, mirrors, directory, **fetch_options) for f in FASHION_FILES]
    except DataError as error:
        raise DataError(error.message, notes=error.notes + (
            f"offline, install Debian's dataset-fashion-mnist package (files in {system_dir})",
        )) from None
    return _from_idx("fashion-mnist", paths, FASHION_CLASSES)


def idx_directory(directory: str | Path) -> Dataset:
    """A directory holding the four MNIST-style files (names as MNIST's, .gz optional)."""
    directory = Path(directory)
    paths = [_find_idx(directory, f.name) for f in MNIST_FILES]
    return _from_idx(directory.name, paths, ())


def _find_idx(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory}: no {name} (or {name.removesuffix('.gz')})",
                    notes=("an IDX directory holds train-images-idx3-ubyte, "
                           "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                           "t10k-labels-idx1-ubyte, optionally gzipped",))


def _from_idx(name: str, paths: Sequence[Path], class_names: tuple[str, ...]) -> Dataset:
    train_x, train_y, test_x, test_y = (read_idx(p) for p in paths)
    for images, labels, image_path in ((train_x, train_y, paths[0]), (test_x, test_y, paths[2])):
        if len(images) != len(labels):
            raise DataError(f"{image_path}: {len(images):,} images but {len(labels):,} labels")
    return Dataset(name, _pixels(train_x), _labels(train_y, paths[1], class_names),
                   _pixels(test_x), _labels(test_y, paths[3], class_names), class_names)


def _pixels(images: np.ndarray) -> np.ndarray:
    rows = images.reshape(len(images), -1).astype(np.float32)
    return rows / 255.0 if images.dtype == np.uint8 else rows


def _labels(labels: np.ndarray, path: Path, class_names: tuple[str, ...]) -> np.ndarray:
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be a rank-1 IDX file, this has rank {labels.ndim}")
    if class_names and labels.size and labels.max() >= len(class_names):
        raise DataError(f"{path}: label {int(labels.max())} is out of range for "
                        f"{len(class_names)} classes")
    return labels.astype(np.int64)
