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
