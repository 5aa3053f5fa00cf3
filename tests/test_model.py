"""The Model API: data handling, weights, save/load, determinism, memory guard, optimizers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import netsharp
from netsharp.errors import DataError, ResourceError
from netsharp.model import Model, load
from netsharp.optim import SGD, Adam, make_optimizer

TWO_INPUTS = ("input { A [3]; B [2]; } hidden H [4] tanh { from A all; from B all; } "
              "output Y [3] softmax from H all;")


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.array([[2, 0, 0, 1, 0], [0, 2, 0, 0, 1], [0, 0, 2, 1, 1]], float)
    return (centres[labels] + rng.normal(0, 0.3, (n, 5))).astype(np.float32), labels


def test_weights_have_ir_shapes_and_round_trip():
    net = netsharp.compile_file("samples/basic_conv.ns")
    model = Model(net)
    weights = model.get_weights()
    assert {k: v.shape for k, v in weights.items()} == {p.name: p.shape for p in net.parameters}
    assert all(v.dtype == np.float32 for v in weights.values())
    weights["C1.Picture"][:] = 0.5
    model.set_weights(weights)
    assert (model.get_weights()["C1.Picture"] == 0.5).all()
    with pytest.raises(DataError, match="shape"):
        model.set_weights({"C1.Picture": np.zeros(3)})
    with pytest.raises(DataError, match="unknown"):
        model.set_weights({"nope": np.zeros(3)})


def test_initial_weights_follow_net_sharp_order_and_diameter():
    net = netsharp.compile("input X [2]; output Y [2] softmax from X all "
                           "{ Weights = [1, 2, 3, 4]; }")
    model = Model(net, init_diameter=0.2)
    np.testing.assert_array_equal(model.get_weights()["Y.X"], [[1, 2], [3, 4]])
    assert np.abs(model.get_weights()["Y.bias"]).max() <= 0.1
    fan_in = Model(netsharp.compile_file("samples/mlp.ns")).get_weights()
    assert np.abs(fan_in["H1.Picture"]).max() <= np.sqrt(3 / 784)
    assert (fan_in["H1.bias"] == 0).all()


def test_inputs_split_in_declaration_order_or_by_name():
    model = Model(netsharp.compile(TWO_INPUTS))
    X = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    by_name = {"A": X[:, :3], "B": X[:, 3:]}
    np.testing.assert_array_equal(model.predict(X), model.predict(by_name))
    assert model.predict(X).shape == (4, 3)
    np.testing.assert_allclose(model.predict(X).sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(DataError, match=r"\(n, 5\)"):
        model.predict(np.zeros((4, 6)))
    with pytest.raises(DataError, match="B"):
        model.predict({"A": X[:, :3]})
    with pytest.raises(DataError, match="labels"):
        model.evaluate(X, [0, 1, 2, 3])


def test_reference_and_numba_backends_agree():
    net = netsharp.compile_file("samples/lenet.ns")
    X = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    fast, slow = Model(net, seed=4), Model(net, seed=4, backend="reference")
    np.testing.assert_allclose(fast.predict(X), slow.predict(X), rtol=1e-4, atol=1e-6)


def test_same_seed_same_bits_and_different_seed_differs():
    X, y = blobs()
    net = netsharp.compile("input X [5]; hidden H [8] tanh from X all; "
                           "output Y [3] softmax from H all;")
    runs = []
    for seed in (7, 7, 8):
        model = Model(net, seed=seed)
        model.fit(X, y, epochs=3, batch_size=8, optimizer="sgd", lr=0.1, momentum=0.9)
        runs.append(model.get_weights())
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(np.array_equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_save_and_load(tmp_path):
    X, y = blobs()
    net = netsharp.compile("input X [5]; hidden H auto rlinear from X all; "
                           "output Y auto from H all;", classes=3, hidden_size=7)
    model = Model(net, seed=2)
    model.fit(X, y, epochs=2, batch_size=16, optimizer="adam", lr=0.01)
    path = tmp_path / "m.safetensors"
    model.save(path)
    again = load(path)
    assert again.network.layer("H").nodes == 7
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert again.history == model.history and again.epochs_trained == 2
    assert again.optimizer == model.optimizer
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = json.loads(f.metadata()["netsharp"])
    assert meta["source"] == net.source.text and meta["compile"]["classes"] == 3
    (tmp_path / "bad").write_bytes(b"not a model")
    with pytest.raises(DataError):
        load(tmp_path / "bad")


def test_memory_guard_names_the_largest_layer():
    model = Model(netsharp.compile_file("samples/cntk103d_pool.ns"), memory_limit=50 << 20)
    with pytest.raises(ResourceError, match="largest layer is 'C1'"):
        model.fit(np.zeros((512, 784), np.float32), np.zeros(512, int), batch_size=512)
    model.check_memory(8, training=True, optimizer_slots=2)


def test_evaluate_and_repr():
    X, y = blobs()
    model = Model(netsharp.compile(TWO_INPUTS))
    scores = model.evaluate(X, y)
    assert set(scores) == {"loss", "accuracy"} and scores["loss"] > 0
    assert "A[3]+B[2]" in repr(model) and "untrained" in repr(model)
    regression = Model(netsharp.compile("input X [5]; output Y [2] from X all;",
                                        task="regression"))
    assert set(regression.evaluate(X, np.zeros((60, 2)))) == {"loss", "mse"}


def test_optimizer_configs_and_schedule():
    assert make_optimizer("sgd", lr=0.1, nesterov=True) == SGD(lr=0.1, nesterov=True)
    assert make_optimizer("Adam") == Adam()
    schedule = SGD(lr=1.0, lr_decay=0.5, lr_decay_every=2)
    assert [schedule.learning_rate(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError):
        make_optimizer("rmsprop")
    with pytest.raises(TypeError):
        make_optimizer("adam", momentum=0.9)


def test_fit_records_epochs_validation_and_stops_on_request():
    X, y = blobs()
    model = Model(netsharp.compile(TWO_INPUTS))
    seen = []
    records = model.fit(X, y, epochs=5, batch_size=10, lr=0.1, lr_decay=0.5, lr_decay_every=1,
                        validation_data=(X, y), on_epoch=lambda r: seen.append(r) or len(seen) < 2)
    assert len(records) == 2 == len(seen) and records[1]["lr"] == 0.05
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(records[0])


def _stop_after(batches: int):
    """should_stop that answers True once `batches` steps have run."""
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= batches
    return should_stop


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_checkpoint_mid_epoch_resumes_bit_identically(tmp_path, optimizer):
    x, y = blobs(90)
    kwargs = dict(batch_size=8, optimizer=optimizer, lr=0.05, momentum=None)
    if optimizer == "sgd":
        kwargs["momentum"] = 0.9
    net = netsharp.compile(TWO_INPUTS)
    straight = Model(net, seed=3)
    straight.fit(x, y, epochs=3, **kwargs)

    interrupted = Model(net, seed=3)
    # 12 batches per epoch; should_stop is asked after each batch and after each epoch, so
    # the 17th question comes after batch 4 of epoch 2: save there, reload, finish.
    interrupted.fit(x, y, epochs=3, should_stop=_stop_after(17), **kwargs)
    assert interrupted.epochs_trained == 1 and interrupted.epoch_progress.batches_done == 4
    interrupted.save(tmp_path / "ckpt.safetensors", training_state=True)
    resumed = load(tmp_path / "ckpt.safetensors")
    assert resumed.epoch_progress.batches_done == 4
    resumed.fit(x, y, epochs=3 - resumed.epochs_trained, **kwargs)

    assert resumed.epochs_trained == 3 and resumed.epoch_progress is None
    for name, value in straight.get_weights().items():
        assert np.array_equal(value, resumed.get_weights()[name]), name
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]


def test_non_finite_loss_stops_before_the_update():
    x, y = blobs(40)
    model = Model(netsharp.compile(TWO_INPUTS), seed=0)
    x_bad = x.copy()
    x_bad[20:] = np.inf          # batch 3 of 5 (batch size 8) sees infinite inputs
    before = None

    def remember(progress, n):
        nonlocal before
        before = model.get_weights()
    with pytest.raises(netsharp.NumericalError, match=r"epoch 1, batch 3"):
        model.fit(x_bad, y, epochs=1, batch_size=8, shuffle=False, on_batch=remember)
    after = model.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(np.isfinite(v).all() for v in after.values())


def test_plain_model_file_has_no_training_state(tmp_path):
    x, y = blobs()
    model = Model(netsharp.compile(TWO_INPUTS), seed=0)
    model.fit(x, y, epochs=1, optimizer="adam")
    model.preprocessing = {"kind": "scale", "offset": 0.0, "scale": 255.0}
    model.class_names = ("a", "b", "c")
    model.save(tmp_path / "m.safetensors")
    again = load(tmp_path / "m.safetensors")
    assert again.epoch_progress is None and again._optimizer_state is None
    assert again.preprocessing == model.preprocessing and again.class_names == ("a", "b", "c")


def test_the_model_module_and_the_reference_backend_load_no_numba():
    """numba (and the OMP_WAIT_POLICY its kernels' module sets for OpenMP) loads with the
    first fast kernel, not with `netsharp.model`, nor for the reference backend's evaluation
    (float32 too, whose loss stays in numpy): programs that embed the API next to another
    OpenMP user (bench/throughput.py's PyTorch worker) keep their own settings."""
    import subprocess

    from netsharp.kernels import child_command

    command, environment = child_command("netsharp")
    environment.pop("OMP_WAIT_POLICY", None)
    script = ("import os, sys, numpy as np, netsharp\n"
              "model = netsharp.Model(netsharp.compile_file(sys.argv[1]), backend='reference',"
              " dtype=np.float32)\n"
              "x, y = np.zeros((4, 784), np.float32), np.arange(4)\n"
              "model.evaluate(x, y)\n"
              "print('numba' in sys.modules, 'OMP_WAIT_POLICY' in os.environ)")
    result = subprocess.run([command[0], "-c", script, "samples/mlp.ns"], env=environment,
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("sample", ["mlp", "lenet"])
def test_predict_returns_arrays_the_next_call_does_not_overwrite(sample):
    """One batch or several, on the executor's reused buffers (the MLP) or the lanes' (lenet):
    each call's result is its own array, equal to predicting the rows one batch at a time."""
    model = Model(netsharp.compile_file(f"samples/{sample}.ns"), seed=0)
    rng = np.random.default_rng(0)
    first, second = rng.random((16, 784), dtype=np.float32), rng.random((16, 784),
                                                                        dtype=np.float32)
    one = model.predict(first)
    kept = one.copy()
    model.predict(second)
    np.testing.assert_array_equal(one, kept)
    several = model.predict(np.concatenate([first, second]), batch_size=16)
    np.testing.assert_array_equal(several[:16], kept)
