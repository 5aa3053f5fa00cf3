"""Downloads against a local HTTP server: good files, bad checksums, truncation, dead mirrors."""

import gzip
import hashlib
import http.server
import socket
import threading

import numpy as np
import pytest

from netsharp.data import datasets
from netsharp.data.download import RemoteFile, fetch
from netsharp.errors import DataError

PAYLOAD = bytes(range(256)) * 40


class _Server:
    """Serves `files` by name; `truncate` sends half a file under a full Content-Length."""

    def __init__(self, files, truncate=False):
        self.files, self.truncate, self.hits = files, truncate, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                body = outer.files.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if outer.truncate else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/data/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(files, truncate=False):
        servers.append(_Server(files, truncate))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _dead_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more


def _remote(name="blob.gz", payload=PAYLOAD):
    return RemoteFile(name, hashlib.sha256(payload).hexdigest(), len(payload))


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_good_file_is_downloaded_verified_and_then_served_from_the_cache(serve, tmp_path):
    server = serve({"blob.gz": PAYLOAD})
    path = fetch(_remote(), [server.url], tmp_path, pause=0)
    assert path.read_bytes() == PAYLOAD
    assert fetch(_remote(), [server.url], tmp_path, pause=0) == path
    assert server.hits == 1
    assert _leftovers(tmp_path) == ["blob.gz"]


def test_checksum_mismatch_is_refused_and_leaves_nothing_behind(serve, tmp_path):
    server = serve({"blob.gz": PAYLOAD[:-1] + b"X"})
    with pytest.raises(DataError) as error:
        fetch(_remote(), [server.url], tmp_path, retries=2, pause=0)
    assert "sha256" in str(error.value)
    assert _leftovers(tmp_path) == []


def test_truncated_transfer_falls_back_to_the_next_mirror(serve, tmp_path):
    broken = serve({"blob.gz": PAYLOAD}, truncate=True)
    good = serve({"blob.gz": PAYLOAD})
    path = fetch(_remote(), [broken.url, good.url], tmp_path, retries=2, pause=0)
    assert path.read_bytes() == PAYLOAD
    assert broken.hits == 2 and good.hits == 1
    assert _leftovers(tmp_path) == ["blob.gz"]


def test_unreachable_mirror_falls_back_to_the_next(serve, tmp_path):
    good = serve({"blob.gz": PAYLOAD})
    path = fetch(_remote(), [_dead_url(), good.url], tmp_path, retries=1, pause=0, timeout=5)
    assert path.read_bytes() == PAYLOAD


def test_missing_file_on_a_mirror_is_not_retried(serve, tmp_path):
    empty = serve({})
    good = serve({"blob.gz": PAYLOAD})
    fetch(_remote(), [empty.url, good.url], tmp_path, retries=3, pause=0)
    assert empty.hits == 1


def test_no_network_at_all_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DataError) as error:
        fetch(_remote(), [_dead_url(), _dead_url()], tmp_path / "cache", retries=1, pause=0,
              timeout=5)
    message = str(error.value)
    assert "could not download blob.gz" in message
    assert str(tmp_path / "cache" / "blob.gz") in message
    assert _leftovers(tmp_path / "cache") == []


def test_a_corrupt_cached_file_is_replaced(serve, tmp_path):
    (tmp_path / "blob.gz").write_bytes(b"half a file")
    server = serve({"blob.gz": PAYLOAD})
    assert fetch(_remote(), [server.url], tmp_path, pause=0).read_bytes() == PAYLOAD


def _idx(array):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.tobytes())


def test_mnist_downloads_all_four_files_and_scales_pixels(serve, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
              np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8),
              rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
              np.array([7, 8], dtype=np.uint8)]
    names = [f.name for f in datasets.MNIST_FILES]
    blobs = {name: _idx(a) for name, a in zip(names, arrays)}
    monkeypatch.setattr(datasets, "MNIST_FILES", tuple(_remote(n, blobs[n]) for n in names))
    server = serve(blobs)
    data = datasets.mnist(cache=tmp_path, mirrors=[_dead_url(), server.url], retries=1,
                          pause=0, timeout=5)
    assert data.x_train.shape == (6, 784) and data.x_train.dtype == np.float32
    np.testing.assert_allclose(data.x_train[0], arrays[0][0].reshape(-1) / 255.0, rtol=1e-6)
    assert data.y_test.tolist() == [7, 8]
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(names)
