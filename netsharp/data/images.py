"""Image files (PNG, JPEG, ...) as rows of 8-bit grayscale pixels.

Decoding is Pillow's: PNG alone means zlib streams, five row filters, interlacing, palettes and
16-bit samples, and JPEG a whole DCT codec, so neither is a few lines to write here. Pillow is
imported only when an image is read (it comes with `pip install netsharp[train]`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
RESIZE_NOTE = "resize the images to the network's input size first; netsharp never resizes"


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def image_files(directory: Path) -> list[Path]:
    """The directory's image files, sorted by name."""
    found = sorted(p for p in directory.iterdir() if p.is_file() and is_image(p))
    if not found:
        raise DataError(f"{directory}: no image files in this directory",
                        notes=(f"images end in {', '.join(IMAGE_SUFFIXES)}",))
    return found


def read_images(paths: list[Path]) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 rows (n, height * width) and the (height, width) they share. Each image is converted
    to Pillow's 8-bit grayscale ("L": 0.299 R + 0.587 G + 0.114 B; alpha ignored) after turning it
    upright by its EXIF orientation. Images of different sizes are an error, never resized."""
    pictures = [_grayscale(path) for path in paths]
    for path, picture in zip(paths, pictures):
        if picture.shape != pictures[0].shape:
            raise DataError(f"{path}: {_size(picture)} pixels, but {paths[0]} has "
                            f"{_size(pictures[0])}", notes=(RESIZE_NOTE,))
    return np.stack(pictures).reshape(len(pictures), -1), pictures[0].shape


def _grayscale(path: Path) -> np.ndarray:
    image_module, image_ops = _pillow()
    try:
        with image_module.open(path) as image:
            return np.asarray(image_ops.exif_transpose(image).convert("L"), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, image_module.DecompressionBombError) as error:
        raise DataError(f"{path}: not an image Pillow can read ({error})") from None


def _pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise DataError("reading PNG or JPEG images needs Pillow",
                        notes=("pip install 'netsharp[train]' (or pip install Pillow)",)) from None
    return Image, ImageOps


def _size(picture: np.ndarray) -> str:
    height, width = picture.shape
    return f"{width}x{height}"
