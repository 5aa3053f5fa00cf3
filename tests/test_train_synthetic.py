"""Training from a fixed seed reaches near-perfect scores on small synthetic problems, with
both executors and every optimizer."""

from __future__ import annotations

import numpy as np
import pytest

import netsharp
from netsharp.model import Model

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([0, 1, 1, 0])


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_xor_multiclass(backend):
    net = netsharp.compile("input X [2]; hidden H [8] tanh from X all; "
                           "output Y [2] softmax from H all;")
    model = Model(net, seed=0, backend=backend)
    model.fit(np.tile(XOR_X, (8, 1)), np.tile(XOR_Y, 8), epochs=150, batch_size=4,
              optimizer="sgd", lr=0.1, momentum=0.9)
    assert model.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0
    assert model.evaluate(XOR_X, XOR_Y)["loss"] < 0.05


@pytest.mark.parametrize("options", [dict(optimizer="adam", lr=0.05),
                                     dict(optimizer="sgd", lr=0.5, momentum=0.9, nesterov=True)])
def test_xor_binary_log_loss(options):
    net = netsharp.compile("input X [2]; hidden H [8] tanh from X all; output Y auto from H all;",
                           classes=2)
    assert net.output.nodes == 1 and net.output.activation == "sigmoid"
    model = Model(net, seed=1)
    model.fit(np.tile(XOR_X, (8, 1)), np.tile(XOR_Y, 8), epochs=150, batch_size=8, **options)
    assert model.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0


def test_blobs_multiclass_with_weight_decay_and_schedule():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (4, 6))
    labels = rng.integers(0, 4, 400)
    X = (centres[labels] + rng.normal(0, 0.5, (400, 6))).astype(np.float32)
    net = netsharp.compile("input X [6]; hidden H [16] rlinear from X all; "
                           "output Y [4] softmax from H all;")
    model = Model(net, seed=0)
    model.fit(X[:300], labels[:300], epochs=20, batch_size=16, lr=0.05, momentum=0.9,
              weight_decay=1e-4, lr_decay=0.7, lr_decay_every=5)
    assert model.evaluate(X[300:], labels[300:])["accuracy"] >= 0.98


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_linear_regression(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3)).astype(np.float32)
    truth = np.array([[1.5, -2.0], [0.5, 1.0], [-1.0, 0.25]])
    y = X @ truth + [0.3, -0.7]
    net = netsharp.compile("input X [3]; output Y [2] from X all;", task="regression")
    model = Model(net, seed=0, backend=backend)
    model.fit(X, y, epochs=60, batch_size=16, optimizer="adam", lr=0.05)
    assert model.evaluate(X, y)["mse"] < 1e-4
    np.testing.assert_allclose(model.get_weights()["Y.X"], truth.T, atol=0.02)


def test_convolution_learns_bar_orientation():
    """8x8 images with one horizontal or vertical bar: conv + max pool + softmax."""
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 2, n)
    images = rng.normal(0, 0.1, (n, 8, 8))
    where = rng.integers(0, 8, n)
    images[labels == 0, where[labels == 0], :] += 1
    images[labels == 1, :, where[labels == 1]] += 1
    text = """
        input Image [8, 8];
        hidden C [4, 8, 8] rlinear from Image convolve {
            InputShape = [8, 8]; KernelShape = [3, 3]; Padding = true; MapCount = 4; }
        hidden P [4, 4, 4] from C max pool {
            InputShape = [4, 8, 8]; KernelShape = [1, 2, 2]; Stride = [1, 2, 2]; }
        output Y [2] softmax from P all;
    """
    model = Model(netsharp.compile(text), seed=0)
    X = images.reshape(n, 64).astype(np.float32)
    model.fit(X[:300], labels[:300], epochs=10, batch_size=16, optimizer="adam", lr=0.01)
    assert model.evaluate(X[300:], labels[300:])["accuracy"] >= 0.97
