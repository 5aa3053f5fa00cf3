"""Model: a compiled network with weights; predict, fit, evaluate, save and load.

    net = netsharp.compile_file("samples/mlp.ns")
    model = Model(net, seed=0)
    model.fit(X, y, epochs=5, batch_size=64, optimizer="adam", lr=1e-3)
    model.evaluate(X_test, y_test)      # {'loss': ..., 'accuracy': ...}
    model.save("mlp.safetensors"); load("mlp.safetensors")

Weights are float32 numpy arrays keyed by Parameter.name with the IR's shapes. Two executors
run the same plan: "numba" (fast, float32) and "reference" (plain numpy, any dtype).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .errors import DataError, NetsharpError, NumericalError, ResourceError
from .ir import Network
from .kernels.losses import loss_and_grad, loss_kind
from .lower import lower, memory_estimate
from .optim import Optimizer, OptimizerState, make_optimizer

FORMAT = "netsharp-model"
FORMAT_VERSION = 1
DIVERGENCE_ADVICE = (
    "try a smaller learning rate, or inputs scaled to a small range (netsharp train "
    "--normalize minmax)",)
SLOT_PREFIX = "__optimizer__/"   # checkpoint tensors holding optimizer slots: prefix name/index


# ---- initial weights ---------------------------------------------------------------------------


def _fan_in(network: Network, name: str, shape: tuple[int, ...]) -> np.ndarray | float:
    """Inputs feeding one weight's destination: the first bundle that uses the parameter."""
    for layer in network.layers:
        for b in layer.bundles:
            if b.param != name:
                continue
            if b.kind == "full":
                return float(shape[1])
            if b.kind == "convolve":
                return float(b.geometry.kernel_size)
            counts = np.bincount(np.asarray(b.edge_dest), minlength=layer.nodes)
            return counts[np.asarray(b.edge_dest)].astype(np.float64)
    raise KeyError(name)


def initial_parameters(network: Network, rng: np.random.Generator,
                       diameter: float | None = None) -> dict[str, np.ndarray]:
    """`Weights = ...` values where given; else uniform in [-d/2, d/2] with a diameter d;
    else weights uniform in +-sqrt(3 / fan-in) (variance 1/fan-in) and biases 0.
    Parameters are drawn in Network.parameters order from one generator."""
    biases = {layer.bias for layer in network.layers if layer.bias}
    params = {}
    for p in network.parameters:
        if p.initial is not None:
            value = np.asarray(p.initial, dtype=np.float64).reshape(p.shape)
        elif diameter is not None:
            value = rng.uniform(-diameter / 2, diameter / 2, p.shape)
        elif p.name in biases:
            value = np.zeros(p.shape)
        else:
            value = _fan_in_uniform(network, p, rng)
        params[p.name] = np.ascontiguousarray(value, dtype=np.float32)
    return params


def _fan_in_uniform(network: Network, p, rng: np.random.Generator) -> np.ndarray:
    bound = np.sqrt(3.0 / _fan_in(network, p.name, p.shape))
    if len(p.shape) == 2 and network_is_conv(network, p.name):
        value = np.zeros(p.shape)
        value[:, :-1] = rng.uniform(-1, 1, (p.shape[0], p.shape[1] - 1)) * bound
        return value  # kernel biases (the last column) start at 0
    return rng.uniform(-1, 1, p.shape) * bound


def network_is_conv(network: Network, name: str) -> bool:
    return any(b.param == name and b.kind == "convolve"
               for layer in network.layers for b in layer.bundles)


# ---- data --------------------------------------------------------------------------------------


def split_inputs(network: Network, X, dtype=np.float32) -> dict[str, np.ndarray]:
    """(n, features) split across the input layers in declaration order, or a dict by name."""
    layers = network.inputs
    if (len(layers) == 1 and isinstance(X, np.ndarray) and X.dtype == dtype and X.ndim == 2
            and X.shape[1] == layers[0].nodes and X.flags.c_contiguous):
        return {layers[0].name: X}  # the common case, at no cost per call (small batches)
    if isinstance(X, dict):
        missing = [layer.name for layer in layers if layer.name not in X]
        if missing:
            raise DataError(f"no data for input layer(s) {', '.join(missing)}")
        parts = {layer.name: np.asarray(X[layer.name]).reshape(len(X[layer.name]), -1)
                 for layer in layers}
    else:
        X = np.asarray(X)
        if X.ndim == 1 and len(layers) == 1 and layers[0].nodes == X.size:
            X = X[None, :]
        X = X.reshape(len(X), -1) if X.ndim > 2 else X
        features = sum(layer.nodes for layer in layers)
        if X.ndim != 2 or X.shape[1] != features:
            raise DataError(f"expected data of shape (n, {features}) for input layers "
                            f"{_describe_inputs(network)}, got {X.shape}")
        offsets = np.cumsum([0] + [layer.nodes for layer in layers])
        parts = {layer.name: X[:, a:b] for layer, a, b in zip(layers, offsets, offsets[1:])}
    for layer in layers:
        if parts[layer.name].shape[1] != layer.nodes:
            raise DataError(f"input layer '{layer.name}' has {layer.nodes} nodes, but its data "
                            f"has {parts[layer.name].shape[1]} columns")
    if len({len(v) for v in parts.values()}) > 1:
        raise DataError("the input layers' data have different numbers of rows")
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in parts.items()}


def _describe_inputs(network: Network) -> str:
    return ", ".join(f"{layer.name}[{layer.nodes}]" for layer in network.inputs)


def targets(network: Network, y, dtype=np.float32) -> np.ndarray:
    """(n, output nodes): class labels become one-hot rows; 0/1 or values stay as they are."""
    nodes, task = network.output.nodes, network.task
    y = np.asarray(y)
    if task != "regression" and nodes > 1 and y.ndim == 1:
        labels = y.astype(np.int64)
        if not np.array_equal(labels, y) or labels.min(initial=0) < 0 or \
                labels.max(initial=0) >= nodes:
            raise DataError(f"class labels must be integers in 0..{nodes - 1}")
        return np.eye(nodes, dtype=dtype)[labels]
    y = y.reshape(len(y), -1)
    if y.shape[1] != nodes:
        raise DataError(f"the output layer has {nodes} nodes, but the targets have "
                        f"{y.shape[1]} columns")
    return np.ascontiguousarray(y, dtype=dtype)


def _batches(n: int, batch_size: int, order: np.ndarray | None = None):
    for start in range(0, n, batch_size):
        rows = slice(start, start + batch_size)
        yield rows if order is None else order[rows]


@dataclass
class EpochProgress:
    """Where an unfinished epoch stands: enough to resume it bit-identically mid-way.

    The generator's state is the one before the epoch's shuffle, so a resumed epoch replays the
    same order and skips the batches already done."""

    epoch: int                 # 1-based number of the epoch being run
    rng_state: dict
    batches_done: int = 0
    samples: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# ---- the model ---------------------------------------------------------------------------------


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class Model:
    """A network and its weights. backend: "numba" (float32) or "reference" (numpy, `dtype`).

    memory_limit: bytes that parameters, gradients, optimizer state and activations may take
    (default half of physical memory); a larger batch raises ResourceError before allocating.
    """

    def __init__(self, network: Network, seed: int = 0, *, backend: str = "numba",
                 init_diameter: float | None = None, memory_limit: int | None = None,
                 dtype=np.float32, compile_options: dict | None = None):
        if backend not in ("numba", "reference"):
            raise ValueError(f"backend must be 'numba' or 'reference', not {backend!r}")
        self.network, self.seed, self.backend = network, seed, backend
        self.dtype = np.dtype(np.float32 if backend == "numba" else dtype)
        self.memory_limit = memory_limit or physical_memory() // 2
        self._check_parameter_memory()
        self.plan = lower(network)
        self.rng = np.random.default_rng(seed)
        self.params = {k: v.astype(self.dtype) for k, v in
                       initial_parameters(network, self.rng, init_diameter).items()}
        self.history: list[dict] = []
        self.epochs_trained = 0
        self.epoch_progress: EpochProgress | None = None
        # Saved with the model so that predict/evaluate prepare raw data as training did.
        self.preprocessing: dict | None = None
        self.class_names: tuple[str, ...] = ()
        self.extra: dict | None = None   # the JSON given to save(extra=...), as loaded
        self._memory_checked: dict[tuple, int] = {}
        self.optimizer: Optimizer | None = None
        self._optimizer_state: OptimizerState | None = None
        self._executor = None
        self._lanes = None
        self.compile_options = compile_options or {}

    # -- executors --

    @property
    def executor(self):
        if self._executor is None:
            if self.backend == "numba":
                from .kernels.executor import FastExecutor

                self._executor = FastExecutor(self.plan)
            else:
                from .reference import ReferenceExecutor

                self._executor = ReferenceExecutor(self.network, self.dtype)
        return self._executor

    def _lanes_module(self):
        """kernels.lanes where a batch's mode matters: the numba backend, with numba kernels
        (a network of full bundles only is BLAS, which threads by itself); else None, and
        nothing imported."""
        if self.backend != "numba" or self.plan.full_only:
            return None
        from .kernels import lanes

        return lanes

    def _lanes_for(self, batch: int, training: bool = True):
        """kernels.lanes' two-process runner when a batch of this size is split, else None."""
        lanes = self._lanes_module()
        if lanes is None or lanes.mode(self.plan, batch, training) != lanes.SPLIT:
            return None
        if self._lanes is None:
            self._lanes = lanes.Lanes(self.plan, self.network.source.text,
                                      self._compile_options())
        return self._lanes

    def _threads_for(self, batch: int, training: bool = True):
        """The context this process runs an unsplit batch in: kernels.lanes' one_thread() for
        a batch too small to split (lanes.mode), else every thread."""
        lanes = self._lanes_module()
        if lanes is not None and lanes.mode(self.plan, batch, training) == lanes.ONE_CORE:
            return lanes.one_thread()
        return contextlib.nullcontext()

    def _outputs(self, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """The output layer's (z, y) for one batch, inference only."""
        batch = len(next(iter(inputs.values())))
        lanes = self._lanes_for(batch, training=False)
        if lanes is not None:
            return lanes.infer(self.params, inputs)
        with self._threads_for(batch, training=False):
            return self.executor.outputs(self.params, inputs)

    def _check_parameter_memory(self) -> None:
        """Refuse, before allocating anything, weights that alone exceed the memory limit."""
        sizes = {p.name: math.prod(p.shape) * self.dtype.itemsize
                 for p in self.network.parameters}
        total = sum(sizes.values())
        if total > self.memory_limit:
            name = max(sizes, key=sizes.get)
            raise ResourceError(
                f"the weights alone need {_gib(total)} (limit {_gib(self.memory_limit)}); the "
                f"largest is '{name}' with {_gib(sizes[name])}",
                notes=("make the network smaller, or raise Model(memory_limit=...)",))

    def check_memory(self, batch: int, training: bool, optimizer_slots: int = 0) -> int:
        """Raise ResourceError when this batch would need more than the memory limit."""
        key = (batch, training, optimizer_slots, self.memory_limit)
        if key in self._memory_checked:
            return self._memory_checked[key]
        total, per_layer = memory_estimate(self.plan, batch, training, optimizer_slots)
        if total > self.memory_limit:
            name = max(per_layer, key=per_layer.get)
            what = "training" if training else "inference"
            raise ResourceError(
                f"{what} with batch size {batch} needs about {_gib(total)} (limit "
                f"{_gib(self.memory_limit)}); the largest layer is '{name}' with "
                f"{_gib(per_layer[name])}",
                notes=("use a smaller batch size, or raise Model(memory_limit=...)",))
        self._memory_checked[key] = total
        return total

    # -- inference --

    def predict(self, X, batch_size: int = 256) -> np.ndarray:
        """The output layer's values, (n, output nodes): probabilities for softmax/sigmoid."""
        inputs = split_inputs(self.network, X, self.dtype)
        n = len(next(iter(inputs.values())))
        batch_size = max(1, min(batch_size, n))
        self.check_memory(batch_size, training=False)
        if n <= batch_size:  # one batch (a copy: the outputs are buffers the next call reuses)
            return np.array(self._outputs(inputs)[1], dtype=self.dtype)
        out = np.empty((n, self.network.output.nodes), dtype=self.dtype)
        for rows in _batches(n, batch_size):
            out[rows] = self._outputs({k: v[rows] for k, v in inputs.items()})[1]
        return out

    def predict_classes(self, X, batch_size: int = 256) -> np.ndarray:
        return class_indices(self.predict(X, batch_size))

    def evaluate(self, X, y, batch_size: int = 256) -> dict:
        """{'loss', 'accuracy'} for classification; {'loss', 'mse'} for regression."""
        return self.evaluate_with_outputs(X, y, batch_size)[0]

    def evaluate_with_outputs(self, X, y, batch_size: int = 256) -> tuple[dict, np.ndarray]:
        """evaluate's figures and the output layer's values, from one pass over the data
        (a confusion matrix needs both)."""
        inputs = split_inputs(self.network, X, self.dtype)
        target = targets(self.network, y, self.dtype)
        n = len(target)
        batch_size = max(1, min(batch_size, n))
        self.check_memory(batch_size, training=False)
        kind, output = loss_kind(self.network.task, self.network.output.nodes), \
            self.network.output
        fused = self.backend == "numba"
        loss, outputs = 0.0, []
        for rows in _batches(n, batch_size):
            z, out = self._outputs({k: v[rows] for k, v in inputs.items()})
            loss += loss_and_grad(kind, output.activation, z, out, target[rows],
                                  fused=fused)[0] * len(out)
            outputs.append(out.copy())
        outputs = np.concatenate(outputs)
        return _metrics(self.network.task, loss / n, outputs, target), outputs

    # -- training --

    def fit(self, X, y, *, epochs: int = 1, batch_size: int = 32,
            optimizer: str | Optimizer = "sgd", lr: float | None = None,
            momentum: float | None = None, nesterov: bool | None = None,
            weight_decay: float | None = None, lr_decay: float | None = None,
            lr_decay_every: int | None = None, shuffle: bool = True,
            validation_data: tuple | None = None,
            on_epoch: Callable[[dict], object] | None = None,
            on_batch: Callable[[EpochProgress, int], object] | None = None,
            should_stop: Callable[[], bool] | None = None, **options) -> list[dict]:
        """Mini-batch training; returns this call's epoch records (also in self.history).

        on_epoch(record) runs after every epoch; returning False stops training.
        on_batch(progress, samples_in_epoch) runs after every batch. should_stop() is asked
        after every batch: when it says True, training stops between two steps and
        `epoch_progress` holds what a checkpoint needs to resume the epoch exactly.
        A loss that is NaN or infinite raises NumericalError before the update that would
        spread it, leaving the weights of the last good step.
        """
        config = make_optimizer(optimizer, lr=lr, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay, lr_decay=lr_decay,
                                lr_decay_every=lr_decay_every, **options)
        if config != self.optimizer or self._optimizer_state is None:
            self.optimizer, self._optimizer_state = config, OptimizerState(config, self.params)
        inputs = split_inputs(self.network, X, self.dtype)
        target = targets(self.network, y, self.dtype)
        n = len(target)
        batch_size = max(1, min(batch_size, n))
        self.check_memory(batch_size, training=True, optimizer_slots=config.slots)
        records = []
        for _ in range(epochs):
            record = self._epoch(inputs, target, batch_size, shuffle, on_batch, should_stop)
            if record is None:
                break
            if validation_data is not None:
                scores = self.evaluate(*validation_data, batch_size=max(batch_size, 256))
                record.update({f"val_{k}": v for k, v in scores.items()})
            records.append(record)
            self.history.append(record)
            if on_epoch is not None and on_epoch(record) is False:
                break
            if should_stop is not None and should_stop():
                break
        return records

    def _epoch(self, inputs: dict, target: np.ndarray, batch_size: int, shuffle: bool,
               on_batch=None, should_stop=None) -> dict | None:
        """One epoch, or the rest of an interrupted one; None when should_stop() ended it."""
        n = len(target)
        progress = self._epoch_start()
        order = self.rng.permutation(n) if shuffle else None
        lr = self.optimizer.learning_rate(self.epochs_trained)
        started = time.perf_counter() - progress.seconds
        for index, rows in enumerate(_batches(n, batch_size, order)):
            if index < progress.batches_done:
                continue
            batch = {k: v[rows] for k, v in inputs.items()}
            try:
                loss, out = self.train_step(batch, target[rows], lr)
            except NumericalError as error:
                raise NumericalError(f"{error.message} in epoch {progress.epoch}, batch "
                                     f"{index + 1}; training stopped", notes=error.notes) from None
            progress.batches_done, progress.samples = index + 1, progress.samples + len(out)
            progress.loss_sum += loss * len(out)
            if self.network.task != "regression":
                progress.correct += int((class_indices(out) == class_indices(target[rows])).sum())
            progress.seconds = time.perf_counter() - started
            if on_batch is not None:
                on_batch(progress, n)
            if should_stop is not None and should_stop() and progress.samples < n:
                return None
        return self._epoch_record(progress, lr)

    def _epoch_start(self) -> EpochProgress:
        """A fresh epoch's progress, or the interrupted one's with the generator rewound."""
        progress = self.epoch_progress
        if progress is not None and progress.epoch == self.epochs_trained + 1:
            self.rng.bit_generator.state = progress.rng_state
        else:
            progress = EpochProgress(self.epochs_trained + 1, self.rng.bit_generator.state)
        self.epoch_progress = progress
        return progress

    def _epoch_record(self, progress: EpochProgress, lr: float) -> dict:
        self.epochs_trained, self.epoch_progress = progress.epoch, None
        seconds = max(progress.seconds, 1e-9)
        record = {"epoch": progress.epoch, "lr": lr, "loss": progress.loss_sum / progress.samples,
                  "seconds": seconds, "samples_per_s": progress.samples / seconds}
        if self.network.task != "regression":
            record["accuracy"] = progress.correct / progress.samples
        return record

    def gradients(self, inputs: dict, target: np.ndarray, *, worker: bool = True):
        """(mean loss, outputs, gradients) of one batch, weights untouched; NumericalError
        when the loss is not finite. The gradients are the executor's buffers: read them
        before the next call. worker=False: a split batch's second half is computed here
        too, without starting kernels.lanes' worker (the same figures)."""
        lanes = self._lanes_for(len(target))
        if lanes is not None:
            loss, out, grads = lanes.train(self.params, inputs, target, worker)
            _check_finite(loss)
            return loss, out, grads
        output = self.network.output
        with self._threads_for(len(target)):
            state = self.executor.forward(self.params, inputs)
            z, out = state[output.name]
            loss, dz = loss_and_grad(loss_kind(self.network.task, output.nodes),
                                     output.activation, z, out, target,
                                     fused=self.backend == "numba")
            _check_finite(loss)
            grads = self.executor.backward(self.params, state,
                                           np.ascontiguousarray(dz, self.dtype))
        return loss, out, grads

    def train_step(self, inputs: dict, target: np.ndarray, lr: float):
        """One forward, backward and update on one batch; returns (loss, outputs).

        A non-finite loss raises NumericalError before the weights are touched."""
        loss, out, grads = self.gradients(inputs, target)
        self.optimizer.step(self.params, grads, self._optimizer_state, lr)
        return loss, out

    # -- weights and files --

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        unknown = set(weights) - set(self.params)
        if unknown:
            raise DataError(f"unknown parameter(s) {', '.join(sorted(unknown))}; this network "
                            f"has {', '.join(self.params)}")
        for name, value in weights.items():
            value = np.asarray(value)
            if value.shape != self.params[name].shape:
                raise DataError(f"parameter '{name}' has shape {self.params[name].shape}, "
                                f"not {value.shape}")
            self.params[name][...] = value

    def save(self, path, *, training_state: bool = False, extra: dict | None = None) -> None:
        """safetensors: the weights, plus the Net# text and training record as JSON metadata.

        training_state=True also stores the optimizer's slots, the shuffling generator and an
        unfinished epoch's progress, so that `load` resumes training exactly (a checkpoint).
        `extra` is JSON kept under the metadata's "extra" key (the CLI keeps its options there).
        """
        from safetensors.numpy import save_file

        meta = {"format": FORMAT, "version": FORMAT_VERSION,
                "source": self.network.source.text, "path": self.network.source.path,
                "compile": self._compile_options(), "seed": self.seed,
                "epochs_trained": self.epochs_trained, "history": self.history,
                "optimizer": self.optimizer.to_dict() if self.optimizer else None,
                "preprocessing": self.preprocessing, "class_names": list(self.class_names),
                "extra": extra}
        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.params.items()}
        if training_state:
            meta["training_state"] = self._training_state(tensors)
        save_file(tensors, str(path), metadata={"netsharp": json.dumps(meta)})

    def _training_state(self, tensors: dict) -> dict:
        """Adds the optimizer's slots to `tensors`; returns the JSON part of the state."""
        state = self._optimizer_state
        if state is not None:
            for name, slots in state.slots.items():
                for index, slot in enumerate(slots):
                    tensors[f"{SLOT_PREFIX}{name}/{index}"] = np.ascontiguousarray(slot)
        progress = self.epoch_progress
        return {"rng": self.rng.bit_generator.state,
                "optimizer_steps": state.t if state is not None else None,
                "epoch_progress": progress.to_dict() if progress else None}

    def _compile_options(self) -> dict:
        network = self.network
        options = {"features": sum(layer.nodes for layer in network.inputs),
                   "task": network.task, **self.compile_options}
        if network.task == "multiclass":
            options["classes"] = network.output.nodes
        if network.task == "binary":
            options["binary_outputs"] = network.output.nodes
        hidden = _auto_hidden_size(network)
        if hidden is not None:
            options["hidden_size"] = hidden
        return options

    def __repr__(self) -> str:
        layers = " -> ".join(f"{s.name}[{s.layer.nodes}]" for s in self.plan.layers)
        inputs = "+".join(f"{layer.name}[{layer.nodes}]" for layer in self.network.inputs)
        trained = f"{self.epochs_trained} epochs" if self.epochs_trained else "untrained"
        return (f"<Model {self.network.source.path}: {inputs} -> {layers}; "
                f"{self.network.total_weights:,} weights; {self.network.task}; {trained}; "
                f"{self.backend}>")


def load(path, *, backend: str = "numba", memory_limit: int | None = None) -> Model:
    """A model saved by Model.save: recompiles its Net# text and restores the weights."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            meta = json.loads((f.metadata() or {}).get("netsharp", "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError, TypeError, SafetensorError) as error:
        raise DataError(f"{path}: cannot read a netsharp model ({error})") from None
    except RecursionError:
        raise DataError(f"{path}: cannot read a netsharp model (its metadata is nested too "
                        "deeply)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path}: not a netsharp model file (no netsharp metadata)")
    version = meta.get("version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise DataError(f"{path}: model format version {version!r} is not one this netsharp "
                        f"reads (1 to {FORMAT_VERSION})",
                        notes=("a newer netsharp may have written it",))
    unreal = sorted(k for k, v in tensors.items() if v.dtype.kind not in "fiub")
    if unreal:
        raise DataError(f"{path}: tensor(s) {', '.join(unreal)} hold no real numbers")
    try:
        return _restore(meta, tensors, backend, memory_limit)
    except NetsharpError as error:
        raise DataError(f"{path}: the model file is damaged or not netsharp's: {error.message}",
                        notes=error.notes) from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DataError(f"{path}: the model file is damaged or not netsharp's "
                        f"({type(error).__name__}: {error})") from None


def _restore(meta: dict, tensors: dict, backend: str, memory_limit: int | None) -> Model:
    from .compiler import compile as compile_text

    network = compile_text(meta["source"], path=meta["path"], **meta["compile"])
    model = Model(network, meta["seed"], backend=backend, memory_limit=memory_limit,
                  compile_options=_extra_options(meta["compile"]))
    slots = {k: tensors.pop(k) for k in list(tensors) if k.startswith(SLOT_PREFIX)}
    missing = set(model.params) - set(tensors)
    if missing:
        raise DataError(f"no weights for parameter(s) {', '.join(sorted(missing))}")
    model.set_weights(tensors)
    model.history, model.epochs_trained = list(meta["history"]), int(meta["epochs_trained"])
    model.preprocessing = meta.get("preprocessing")
    model.class_names = tuple(meta.get("class_names") or ())
    model.extra = meta.get("extra")
    if meta.get("optimizer"):
        model.optimizer = make_optimizer(meta["optimizer"]["name"], **{
            k: v for k, v in meta["optimizer"].items() if k != "name"})
    if meta.get("training_state"):
        _restore_training_state(model, meta["training_state"], slots)
    return model


def _restore_training_state(model: Model, state: dict, slots: dict) -> None:
    model.rng.bit_generator.state = state["rng"]
    if model.optimizer is not None and state.get("optimizer_steps") is not None:
        restored = OptimizerState(model.optimizer, model.params)
        restored.t = int(state["optimizer_steps"])
        for name, values in restored.slots.items():
            for index, slot in enumerate(values):
                saved = slots[f"{SLOT_PREFIX}{name}/{index}"]
                if saved.shape != slot.shape:
                    raise DataError(f"optimizer slot {index} of '{name}' has shape "
                                    f"{saved.shape}, not {slot.shape}")
                slot[...] = saved
        model._optimizer_state = restored
    if state.get("epoch_progress"):
        model.epoch_progress = EpochProgress(**state["epoch_progress"])


def _auto_hidden_size(network: Network) -> int | None:
    """The size every `hidden ... auto` layer got, so that a reload reproduces the shapes."""
    from .ast import LayerDecl
    from .parse import parse

    for statement in parse(network.source).statements:
        if isinstance(statement, LayerDecl) and statement.kind == "hidden" \
                and statement.shape is None:
            return network.layer(statement.name).nodes
    return None


def _extra_options(options: dict) -> dict:
    return {k: v for k, v in options.items()
            if k not in ("features", "task", "classes", "binary_outputs")}


def class_indices(values: np.ndarray) -> np.ndarray:
    """Each row's class: argmax, or value > 0.5 for a single sigmoid node."""
    return (values[:, 0] > 0.5).astype(np.int64) if values.shape[1] == 1 else values.argmax(1)


def _metrics(task: str, loss: float, outputs: np.ndarray, target: np.ndarray) -> dict:
    if task == "regression":
        return {"loss": loss, "mse": float(((outputs - target) ** 2).mean())}
    right = class_indices(outputs) == class_indices(target)
    return {"loss": loss, "accuracy": float(right.mean())}


def _check_finite(loss: float) -> None:
    if not math.isfinite(loss):
        raise NumericalError(f"the training loss became {loss}", notes=DIVERGENCE_ADVICE)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


__all__ = ["Model", "load", "initial_parameters", "split_inputs", "targets",
           "class_indices"]
