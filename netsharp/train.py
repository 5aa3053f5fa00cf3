"""The training workflow behind `netsharp train`: data, model, epochs, evaluation, files.

Files are written atomically (temporary file, fsync, rename), so an interrupted run never
leaves a half-written model where a good one stood.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

DATA_NAMES = ("mnist", "fashion-mnist")


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    seed: int = 0
    validation_split: float = 0.0
    limit: int | None = None          # train on the first N images only (quick runs, tests)
    output: Path = Path("netsharp-run")
    cache: Path | None = None


def load_data(spec: str, cache: Path | None = None):
    """A named data set or a directory of MNIST-style IDX files."""
    from .data import datasets

    if spec == "mnist":
        return datasets.mnist(cache)
    if spec == "fashion-mnist":
        return datasets.fashion_mnist(cache)
    if Path(spec).is_dir():
        return datasets.idx_directory(spec)
    raise DataError(f"unknown data source '{spec}'",
                    notes=(f"use {' or '.join(DATA_NAMES)}, or a directory of IDX files",))


def train(source_path: Path, data_spec: str, options: TrainOptions,
          say: Callable[[str], None] = print) -> dict:
    """Compile, train, evaluate and save; returns the metrics written to metrics.json."""
    from .compiler import compile_file

    data = load_data(data_spec, options.cache)
    network = compile_file(source_path, features=data.features, classes=data.classes)
    from .model import Model

    model = Model(network, seed=options.seed)
    say(f"{network.source.path}: {network.total_weights:,} weights; {data.name}: "
        f"{len(data.x_train):,} training and {len(data.x_test):,} test images")
    x_train, y_train, validation = _split(data.x_train, data.y_train, options)
    say("compiling kernels ...")
    started = time.perf_counter()
    _warm_up(model, x_train[: options.batch_size])
    say(f"kernels ready in {time.perf_counter() - started:.1f} s")
    model.fit(x_train, y_train, epochs=options.epochs, batch_size=options.batch_size,
              optimizer=options.optimizer, lr=options.lr, momentum=options.momentum,
              weight_decay=options.weight_decay, validation_data=validation,
              on_epoch=lambda record: say(_epoch_line(record, options, len(y_train))))
    test = model.evaluate(data.x_test, data.y_test)
    say(f"test: loss {test['loss']:.4f}" + (f", accuracy {test['accuracy']:.2%}"
                                            if "accuracy" in test else ""))
    return _write_outputs(model, test, options)


def _warm_up(model, x) -> None:
    """Run forward and backward once with zero gradients, so that kernel compilation is shown
    as such and kept out of the first epoch's time; the weights are not touched."""
    from .model import split_inputs

    inputs = split_inputs(model.network, x, model.dtype)
    state = model.executor.forward(model.params, inputs)
    z, _ = state[model.network.output.name]
    model.executor.backward(model.params, state, np.zeros_like(z))


def _split(x, y, options: TrainOptions):
    if options.limit is not None:
        x, y = x[: options.limit], y[: options.limit]
    if not options.validation_split:
        return x, y, None
    held = max(1, int(len(y) * options.validation_split))
    order = np.random.default_rng(options.seed).permutation(len(y))
    keep, hold = order[held:], order[:held]
    return x[keep], y[keep], (x[hold], y[hold])


def _epoch_line(record: dict, options: TrainOptions, samples: int) -> str:
    parts = [f"epoch {record['epoch']}/{options.epochs}", f"loss {record['loss']:.4f}"]
    if "accuracy" in record:
        parts.append(f"accuracy {record['accuracy']:.2%}")
    if "val_accuracy" in record:
        parts.append(f"validation {record['val_accuracy']:.2%}")
    parts.append(f"{record['seconds']:.1f} s ({samples / record['seconds']:,.0f} samples/s)")
    return "  ".join(parts)


def _write_outputs(model, test: dict, options: TrainOptions) -> dict:
    options.output.mkdir(parents=True, exist_ok=True)
    metrics = {"epochs": model.history, "test": test}
    atomic_write(options.output / "model.safetensors", model.save)
    atomic_write(options.output / "metrics.json",
                 lambda path: Path(path).write_text(json.dumps(metrics, indent=2)))
    return metrics


def atomic_write(target: Path, write: Callable[[str], None]) -> None:
    """`write(path)` into a temporary file beside `target`, then fsync and rename over it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide the model from others
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
