"""IDX reading: real Fashion-MNIST files and damaged ones, each with a clear error."""

import gzip

import numpy as np
import pytest

from netsharp.data.datasets import FASHION_DEBIAN_DIR, fashion_mnist, idx_directory
from netsharp.data.idx import read_idx
from netsharp.errors import DataError


def _header(type_code, shape):
    return bytes([0, 0, type_code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def test_reads_plain_and_gzipped_files(tmp_path):
    values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_header(0x08, values.shape) + values.tobytes())
    (tmp_path / "b.gz").write_bytes(gzip.compress(_header(0x08, values.shape) + values.tobytes()))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), values)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), values)


def test_big_endian_int32_values(tmp_path):
    (tmp_path / "a").write_bytes(_header(0x0C, (2,)) + (258).to_bytes(4, "big")
                                 + (-1).to_bytes(4, "big", signed=True))
    assert read_idx(tmp_path / "a").tolist() == [258, -1]


@pytest.mark.parametrize("content, message", [
    (b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc", "wrong magic"),
    (_header(0x08, (10,)) + b"abc", "truncated or corrupt"),
    (_header(0x08, (2, 2))[:7], "truncated IDX header"),
    (bytes([0, 0, 0x42, 1]) + (1).to_bytes(4, "big") + b"a", "unknown type"),
    (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
])
def test_damaged_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_idx(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nothing")


def test_idx_directory_reports_the_missing_file(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        idx_directory(tmp_path)


def test_debian_fashion_mnist_is_the_real_data_set():
    assert FASHION_DEBIAN_DIR.is_dir(), "CI installs Debian's dataset-fashion-mnist package"
    data = fashion_mnist(mirrors=[])
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.classes == 10
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
    assert np.bincount(data.y_test).tolist() == [1000] * 10


def _gzipped_idx(path, values):
    path.write_bytes(gzip.compress(_header(0x08, values.shape) + values.tobytes()))
    return path


def test_gzipped_arrays_are_kept_unpacked_and_found_again(tmp_path, monkeypatch):
    from netsharp.data import idx

    values = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    source = _gzipped_idx(tmp_path / "images.gz", values)
    kept = tmp_path / "unpacked"
    first = read_idx(source, unpacked=kept)
    assert len(list(kept.glob("*.npy"))) == 1
    monkeypatch.setattr(idx, "_gunzip", lambda *a: pytest.fail("decompressed again"))
    second = read_idx(source, unpacked=kept)
    np.testing.assert_array_equal(second, values)
    assert second.dtype == first.dtype == np.uint8


def test_a_changed_file_or_damaged_copy_is_read_again(tmp_path):
    import hashlib
    import os

    kept = tmp_path / "unpacked"
    source = _gzipped_idx(tmp_path / "images.gz", np.zeros((2, 3), np.uint8))
    read_idx(source, unpacked=kept)
    changed = np.full((2, 3), 7, np.uint8)
    _gzipped_idx(source, changed)
    os.utime(source, ns=(1, 1))  # a new time: another key
    np.testing.assert_array_equal(read_idx(source, unpacked=kept), changed)
    for copy in kept.glob("*.npy"):
        copy.write_bytes(b"not an npy file")
    np.testing.assert_array_equal(read_idx(source, unpacked=kept), changed)
    # an expected md5 is part of the key: a kept array never skips a check it did not pass
    with pytest.raises(DataError, match="content md5"):
        read_idx(source, "0" * 32, unpacked=kept)
    good = hashlib.md5(gzip.decompress(source.read_bytes())).hexdigest()
    np.testing.assert_array_equal(read_idx(source, good, unpacked=kept), changed)


def test_plain_files_and_unwritable_folders_are_read_as_before(tmp_path):
    values = np.arange(6, dtype=np.uint8).reshape(2, 3)
    plain = tmp_path / "plain"
    plain.write_bytes(_header(0x08, values.shape) + values.tobytes())
    kept = tmp_path / "unpacked"
    np.testing.assert_array_equal(read_idx(plain, unpacked=kept), values)
    assert not kept.exists()   # nothing to gain for an uncompressed file
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder would go")
    source = _gzipped_idx(tmp_path / "images.gz", values)
    np.testing.assert_array_equal(read_idx(source, unpacked=blocker / "unpacked"), values)
