"""IDX files (MNIST's format), plain or gzip-compressed, read without trusting their headers."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

# IDX type codes -> numpy big-endian dtypes
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 4 << 30


def read_idx(path: str | Path, content_md5: str | None = None,
             unpacked: Path | None = None) -> np.ndarray:
    """The array stored in an IDX file; a DataError names the file and what is wrong with it.

    content_md5: the md5 the (decompressed) bytes must have; checked on the bytes read, so a
    verified read decompresses once. unpacked: a folder where a gzipped file's array is kept
    as .npy after a good read, found again by the file's path, size, time and content_md5
    (Fashion-MNIST's 60,000 images: 0.64 s to decompress, 0.03 s to load)."""
    path = Path(path)
    kept = _unpacked_path(path, content_md5, unpacked) if unpacked is not None else None
    if kept is not None:
        values = _load_unpacked(kept)
        if values is not None:
            return values
    values = _parse(path, content_md5)
    if kept is not None:
        _keep_unpacked(values, kept)
    return values


def _unpacked_path(path: Path, content_md5: str | None, folder: Path) -> Path | None:
    """Where a gzipped file's array is kept (None for a plain file: nothing to save)."""
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return None
        stat = path.stat()
    except OSError:
        return None
    key = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{content_md5}"
    return folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npy")


def _load_unpacked(kept: Path) -> np.ndarray | None:
    try:
        values = np.load(kept, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None   # absent or damaged: read the IDX file again
    native = {np.dtype(t).newbyteorder("=") for t in _TYPES.values()}
    return values if values.dtype in native and values.ndim >= 1 else None


def _keep_unpacked(values: np.ndarray, kept: Path) -> None:
    """Saved through a temporary file and a rename; a folder that cannot be written to is
    only a missed saving."""
    temporary = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            np.save(handle, values, allow_pickle=False)
        os.replace(temporary, kept)
    except OSError:
        try:
            temporary.unlink()
        except OSError:
            pass


def _parse(path: Path, content_md5: str | None) -> np.ndarray:
    data = _read_bytes(path)
    if content_md5 is not None:
        found = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if found != content_md5:
            raise DataError(f"{path}: content md5 {found} instead of {content_md5}")
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (wrong magic number)")
    type_code, rank = data[2], data[3]
    if type_code not in _TYPES or rank == 0:
        raise DataError(f"{path}: not an IDX file (unknown type 0x{type_code:02x} or rank {rank})")
    header = 4 + 4 * rank
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    dtype = np.dtype(_TYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path}: the header promises {expected:,} bytes of {list(shape)} data but "
                        f"the file holds {len(data) - header:,} (truncated or corrupt)")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def looks_like_idx(path: Path) -> bool:
    """Whether the file starts with IDX's magic number (0, 0, type, rank), gzipped or not."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            if head[:2] == b"\x1f\x8b":
                handle.seek(0)
                with gzip.GzipFile(fileobj=handle) as unzipped:
                    head = unzipped.read(4)
    except (OSError, EOFError):
        return False
    return len(head) == 4 and head[:2] == b"\0\0" and head[2] in _TYPES and head[3] > 0


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
            handle.seek(0)
            if head == b"\x1f\x8b":
                return _gunzip(handle, path)
            return handle.read(MAX_IDX_BYTES + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as error:
        raise DataError(f"{path}: {error.strerror or error}") from None


def _gunzip(handle, path: Path) -> bytes:
    try:
        with gzip.GzipFile(fileobj=handle) as unzipped:
            data = unzipped.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: damaged gzip data ({error})") from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{path}: larger than {MAX_IDX_BYTES:,} bytes uncompressed")
    return data
