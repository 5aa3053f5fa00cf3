"""Downloads that never leave a file which passes as complete: mirrors, retries, checksums, cache.

A file is written to a temporary name beside its target, flushed to disk, verified, and only then
renamed into place, so an interrupted or corrupted transfer cannot poison the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..files import sync_directory

CACHE_ENV = "NETSHARP_CACHE"
CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """A file and how to know it is the right one: sha256 of its bytes, or md5 of its
    gzip-decompressed content (Fashion-MNIST is published with those)."""

    name: str
    sha256: str | None = None
    size: int | None = None
    content_md5: str | None = None

    def problem(self, path: Path) -> str | None:
        """Why the file at `path` is not this one, or None when it is."""
        if self.size is not None and path.stat().st_size != self.size:
            return f"{path.stat().st_size:,} bytes instead of {self.size:,}"
        if self.sha256 is not None and sha256_of(path) != self.sha256:
            return f"sha256 {sha256_of(path)[:16]}... instead of {self.sha256[:16]}..."
        if self.content_md5 is not None:
            found = content_md5_of(path)
            if found != self.content_md5:
                return f"content md5 {found} instead of {self.content_md5}"
        return None


def cache_dir(override: str | Path | None = None) -> Path:
    """Where downloads are kept: the option, else $NETSHARP_CACHE, else ~/.cache/netsharp."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "netsharp"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_md5_of(path: Path) -> str | None:
    """md5 of the decompressed bytes of a gzip file (None when it is not valid gzip)."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with gzip.open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
    except (OSError, EOFError):
        return None
    return digest.hexdigest()


def fetch(remote: RemoteFile, mirrors: Sequence[str], directory: Path, *, retries: int = 2,
          timeout: float = 30.0, pause: float = 1.0,
          progress: Callable[[int, int], None] | None = None) -> Path:
    """The verified file in `directory`, downloading it from the first mirror that serves it."""
    target = directory / remote.name
    if target.is_file() and remote.problem(target) is None:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        for attempt in range(1, retries + 1):
            try:
                _download(mirror.rstrip("/") + "/" + remote.name, remote, target, timeout,
                          progress)
                return target
            except _TransferError as error:
                failures.append(f"{mirror}: {error}")
                if error.final:
                    break
                if attempt < retries:
                    time.sleep(pause * attempt)
    raise DataError(f"could not download {remote.name}", notes=_tally(failures) + (
        f"without a network, put the verified file at {target}",))


def _tally(failures: list[str]) -> tuple[str, ...]:
    """Each distinct failure once, with how often it happened."""
    counts = {failure: failures.count(failure) for failure in failures}
    return tuple(f"{failure} ({count} attempts)" if count > 1 else failure
                 for failure, count in counts.items())


class _TransferError(Exception):
    def __init__(self, message: str, final: bool = False):
        super().__init__(message)
        self.final = final  # retrying the same mirror cannot help


def _download(url: str, remote: RemoteFile, target: Path, timeout: float, progress) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".partial",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            _copy(url, out, remote, timeout, progress)
            out.flush()
            os.fsync(out.fileno())
        problem = remote.problem(Path(temporary))
        if problem:
            raise _TransferError(f"the download is damaged: {problem}")
        os.replace(temporary, target)
        sync_directory(target.parent)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _copy(url: str, out, remote: RemoteFile, timeout: float, progress) -> None:
    # imported here: urllib's HTTP stack takes 0.1 s to import, which a start with local
    # data (fashion-mnist, a cached download) should not pay
    import http.client
    import urllib.error
    import urllib.request

    received, limit = 0, remote.size or (1 << 31)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                received += len(chunk)
                if received > limit:
                    raise _TransferError(f"more than the expected {limit:,} bytes", final=True)
                out.write(chunk)
                if progress:
                    progress(received, remote.size or 0)
    except urllib.error.HTTPError as error:
        raise _TransferError(f"HTTP {error.code} {error.reason}", final=error.code in (403, 404,
                                                                                       410)) \
            from None
    except http.client.IncompleteRead as error:
        raise _TransferError(f"the transfer stopped after {len(error.partial):,} more bytes") \
            from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise _TransferError(f"{reason}") from None
