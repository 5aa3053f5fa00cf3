"""The training workflow behind `netsharp train`: data, model, epochs, checkpoints, reports.

Every file is written atomically (temporary file, fsync, rename), so a run killed at any moment
leaves the previous version of each file intact. The checkpoint is rewritten after every epoch
and when training is interrupted (Ctrl-C, SIGTERM) between two steps; `--resume` continues from
it and ends with the same weights, bit for bit, as a run that was never interrupted.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import DataError, NumericalError
from .files import atomic_write

CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"
BEST = "best.safetensors"
# Options that define a run: a resumed run must use the checkpoint's values.
RECIPE = ("data", "label", "normalize", "limit", "validation_split", "seed", "batch_size",
          "optimizer", "lr", "momentum", "weight_decay", "lr_decay", "lr_decay_every")
# Options a resumed run takes from the checkpoint unless they are given again.
ADJUSTABLE = ("epochs", "patience")


@dataclass(frozen=True)
class TrainOptions:
    data: str = "digits"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    lr_decay: float | None = None
    lr_decay_every: int | None = None
    seed: int = 0
    validation_split: float = 0.0
    patience: int | None = None       # early stopping: epochs without improvement allowed
    limit: int | None = None          # train on the first N images only (quick runs, tests)
    normalize: str = "scale"
    label: str | None = None          # CSV label column (name or 0-based index)
    threads: int | None = None
    output: Path = Path("netsharp-run")
    cache: Path | None = None
    resume: bool = False
    overwrite: bool = False
    plots: bool = True

    def recipe(self) -> dict:
        return {name: getattr(self, name) for name in RECIPE + ADJUSTABLE}


@dataclass
class EarlyStopping:
    """Watches validation loss (training loss without a validation set) for `patience` epochs."""

    patience: int | None
    monitor: str
    best_value: float = math.inf
    best_epoch: int = 0
    wait: int = 0

    def update(self, record: dict) -> bool:
        """True when this epoch is the best so far."""
        value = record[self.monitor]
        if value < self.best_value:
            self.best_value, self.best_epoch, self.wait = value, record["epoch"], 0
            return True
        self.wait += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.wait >= self.patience

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Run:
    """What one training run holds between epochs."""

    options: TrainOptions
    model: object
    data: object
    normalizer: object
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    validation: tuple | None = field(repr=False)
    stopping: EarlyStopping
    say: Callable[[str], None]
    started: float = field(default_factory=time.perf_counter)
    stopped: str = "completed"


# ---- entry point -------------------------------------------------------------------------------


def train(source_path: Path, options: TrainOptions, say: Callable[[str], None] = print,
          explicit: frozenset[str] = frozenset()) -> dict:
    """Compile, train, evaluate and save; returns the metrics written to metrics.json.

    `explicit` names the options the user gave; on --resume those must agree with the
    checkpoint's recipe, the others are taken from it."""
    from .compiler import compile as compile_text
    from .compiler import read_source, syntax_check

    _import_kernels_in_background()
    source_path = Path(source_path)
    text = read_source(source_path)
    syntax_check(text, str(source_path))  # a typo is reported before the data is loaded
    checkpoint = _prepare_output(options)
    if checkpoint is not None:
        options = _resumed_options(options, checkpoint, explicit)
        _same_program(checkpoint, text, source_path)
    # Overflow shows up as a NaN loss, which training reports itself: no numpy warnings.
    with _thread_limit(options.threads), np.errstate(over="ignore", invalid="ignore"):
        data = _load_data(options)
        compile_options = data.compile_options()
        network = compile_text(text, path=str(source_path), **compile_options)
        _check_fit(network, data, source_path)
        run = _start(options, network, data, checkpoint, say)
        _warm_up(run, text, compile_options)
        _train_epochs(run)
        return _finish(run)


# ---- setting up --------------------------------------------------------------------------------


def _prepare_output(options: TrainOptions):
    """The checkpoint to resume, if asked; refuses to overwrite an earlier run's files."""
    out = options.output
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    checkpoint = out / CHECKPOINT
    if options.resume:
        if not checkpoint.is_file():
            raise DataError(f"{checkpoint}: no checkpoint to resume from",
                            notes=("train without --resume to start a new run",))
        from .model import load

        return load(checkpoint)
    earlier = [name for name in (CHECKPOINT, MODEL) if (out / name).exists()]
    if earlier and not options.overwrite:
        raise DataError(f"{out} already holds a training run ({', '.join(earlier)})",
                        notes=("use --resume to continue it, --overwrite to replace it, or "
                               "another --output directory",))
    return None


def _resumed_options(options: TrainOptions, checkpoint, explicit: frozenset[str]):
    saved = (checkpoint.extra or {}).get("recipe")
    if not isinstance(saved, dict):
        raise DataError(f"{options.output / CHECKPOINT}: not a checkpoint of `netsharp train`")
    changed = [f"--{name.replace('_', '-')} {getattr(options, name)} (the run used "
               f"{saved.get(name)})" for name in RECIPE
               if name in explicit and getattr(options, name) != saved.get(name)]
    if changed:
        raise DataError("--resume continues a run with its own settings, but these differ: "
                        + "; ".join(changed),
                        notes=("drop them, or start a new run in another --output directory",))
    kept = RECIPE + tuple(name for name in ADJUSTABLE if name not in explicit)
    return replace(options, **{name: saved[name] for name in kept if name in saved})


def _same_program(checkpoint, text: str, path: Path) -> None:
    if checkpoint.network.source.text != text:
        raise DataError(f"{path} has changed since the checkpoint was written",
                        notes=("resume with the program the run started with, or start a new "
                               "run in another --output directory",))


@contextmanager
def _thread_limit(threads: int | None):
    """Numba's and BLAS's thread counts for this run (both default to every core)."""
    if threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        raise DataError(f"--threads {threads}: this machine runs at most {available} threads",
                        notes=("NUMBA_NUM_THREADS sets the maximum",))
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        numba.set_num_threads(previous)


def _import_kernels_in_background() -> None:
    """Import numba and the kernel modules and set up numba's code generator (about 1.2 s)
    while the data is read and decompressed, which releases the interpreter lock; a later
    import waits for this one."""
    import threading

    def prepare():
        from .kernels import executor, jit  # noqa: F401

        jit.prepare()

    threading.Thread(target=prepare, daemon=True).start()


def _load_data(options: TrainOptions):
    from .data.sources import load_source

    return load_source(options.data, cache=options.cache, label=options.label,
                       seed=options.seed)


def _check_fit(network, data, source_path: Path) -> None:
    """The data's feature and class counts against the network's input and output layers."""
    features = sum(layer.nodes for layer in network.inputs)
    if features != data.features:
        inputs = ", ".join(f"'{layer.name}' [{layer.nodes}]" for layer in network.inputs)
        raise DataError(f"{source_path}: the input layer(s) {inputs} take {features:,} "
                        f"features, but each {data.name} sample has {data.features:,}",
                        notes=("declare the input layer with the data's shape, or `auto`",))
    output = network.output
    if network.task == "multiclass" and data.classes and data.classes > output.nodes:
        raise DataError(f"{source_path}: the output layer '{output.name}' has {output.nodes} "
                        f"nodes, but {data.name} has {data.classes} classes")


def _start(options: TrainOptions, network, data, checkpoint, say) -> Run:
    from .data.normalize import Normalizer, fit_normalizer
    from .model import Model

    x_raw, y = data.x_train, data.y_train
    if options.limit is not None:
        x_raw, y = x_raw[: options.limit], y[: options.limit]
    if checkpoint is not None:
        model = checkpoint
        normalizer = Normalizer.from_dict(model.preprocessing["normalize"])
    else:
        model = Model(network, seed=options.seed)
        normalizer = fit_normalizer(options.normalize, x_raw, data.pixel_max)
        # pixel_max lets predict bring 8-bit images to the training data's units first.
        model.preprocessing = {"normalize": normalizer.to_dict(), "pixel_max": data.pixel_max}
        model.class_names = tuple(data.class_names)
    x_train, y_train, validation = _split(normalizer.apply(x_raw), y, options)
    monitor = "val_loss" if validation is not None else "loss"
    stopping = EarlyStopping(options.patience, monitor)
    saved = (model.extra or {}).get("early_stopping")
    if saved:
        stopping = EarlyStopping(options.patience, **{k: v for k, v in saved.items()
                                                       if k != "patience"})
    run = Run(options, model, data, normalizer, x_train, y_train, validation, stopping, say)
    _introduce(run, checkpoint is not None)
    return run


def _split(x, y, options: TrainOptions):
    if not options.validation_split:
        return x, y, None
    held = max(1, int(len(y) * options.validation_split))
    order = np.random.default_rng(options.seed).permutation(len(y))
    keep, hold = order[held:], order[:held]
    return x[keep], y[keep], (x[hold], y[hold])


def _introduce(run: Run, resumed: bool) -> None:
    network, data, options = run.model.network, run.data, run.options
    held = f", {len(run.validation[1]):,} held out for validation" if run.validation else ""
    run.say(f"{network.source.path}: {network.total_weights:,} weights; {data.name}: "
            f"{len(run.y_train):,} training samples{held}, {len(data.y_test):,} test samples")
    if resumed:
        progress = run.model.epoch_progress
        where = (f"epoch {progress.epoch}, batch {progress.batches_done}" if progress
                 else f"the end of epoch {run.model.epochs_trained}")
        run.say(f"resuming from {options.output / CHECKPOINT} at {where}")


def _warm_up(run: Run, source: str, compile_options: dict) -> None:
    """Compile the kernels by computing one batch's gradients and updating copies of the
    weights, so that compilation is shown as such and kept out of the epochs' times and ETAs.
    On an empty cache a helper process compiles in the reverse order meanwhile."""
    import numba

    from .kernels import lanes
    from .kernels.warm import CompileHelper, compile_update
    from .model import split_inputs, targets

    model = run.model
    run.say("compiling kernels ...")
    started = time.perf_counter()
    batch = min(run.options.batch_size, len(run.x_train))
    inputs = split_inputs(model.network, run.x_train[:batch], model.dtype)
    target = targets(model.network, run.y_train[:batch], model.dtype)
    with CompileHelper(source, compile_options, batch, numba.get_num_threads(),
                       lanes.mode(model.plan, batch), run.options.optimizer):
        try:
            model.gradients(inputs, target, worker=False)
        except NumericalError:
            pass  # the first step says so, with its epoch and batch
        compile_update(run.options.optimizer, model.params)
    run.say(f"kernels ready in {time.perf_counter() - started:.1f} s")


# ---- the epochs --------------------------------------------------------------------------------


def _train_epochs(run: Run) -> None:
    model, options = run.model, run.options
    remaining = options.epochs - model.epochs_trained
    if run.stopping.exhausted and model.epoch_progress is None:
        run.stopped = "early-stopping"
        run.say(f"early stopping ended this run after epoch {model.epochs_trained}; nothing "
                "left to train")
        return
    if remaining <= 0:
        run.say(f"the checkpoint already holds {model.epochs_trained} epochs; "
                "nothing left to train (raise --epochs to train more)")
        return
    bar = _BarKeeper(options.epochs)
    with _stop_on_signals() as stop_requested:
        try:
            model.fit(run.x_train, run.y_train, epochs=remaining,
                      batch_size=options.batch_size, optimizer=options.optimizer,
                      lr=options.lr, momentum=options.momentum,
                      weight_decay=options.weight_decay, lr_decay=options.lr_decay,
                      lr_decay_every=options.lr_decay_every, validation_data=run.validation,
                      on_batch=bar.update,
                      on_epoch=lambda record: _end_of_epoch(run, bar, record),
                      should_stop=stop_requested)
        except NumericalError as error:
            run.stopped = "diverged"
            _write_metrics(run, None)
            raise NumericalError(error.message, notes=error.notes + _kept(run)) from None
        finally:
            bar.close()
        if stop_requested() and model.epochs_trained < options.epochs:
            run.stopped = "interrupted"
            progress = model.epoch_progress
            if progress is not None:
                _save_checkpoint(run)
                where = f"in epoch {progress.epoch} after batch {progress.batches_done}"
            else:  # between two epochs: the last epoch's checkpoint is already written
                where = f"after epoch {model.epochs_trained}"
            run.say(f"interrupted {where}; checkpoint saved in {options.output / CHECKPOINT}; "
                    "continue with --resume")


def _kept(run: Run) -> tuple[str, ...]:
    path = run.options.output / CHECKPOINT
    if not path.exists():
        return ("no epoch had finished, so there is no checkpoint",)
    return (f"the last good checkpoint is kept in {path}",)


class _BarKeeper:
    """One progress bar per epoch, created when the epoch's first batch reports."""

    def __init__(self, epochs: int):
        from .progress import EpochBar

        self.make, self.epochs = EpochBar, epochs
        self.bar, self.epoch = None, None

    def update(self, progress, total: int) -> None:
        if self.epoch != progress.epoch:
            self.close()
            self.bar, self.epoch = self.make(progress.epoch, self.epochs, total), progress.epoch
        self.bar.update(progress.samples, progress.loss_sum, progress.correct, progress.seconds)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _end_of_epoch(run: Run, bar: _BarKeeper, record: dict) -> bool:
    """Report the epoch, check its numbers, keep the best weights, write the checkpoint and
    metrics; False stops training (early stopping)."""
    bar.close()
    for key in ("val_loss", "loss"):
        if key in record and not math.isfinite(record[key]):
            raise NumericalError(f"the {key.replace('_', 'idation ')} became {record[key]} in "
                                 f"epoch {record['epoch']}; training stopped",
                                 notes=_divergence_advice())
    improved = run.stopping.update(record)
    if improved and run.options.patience is not None:
        atomic_write(run.options.output / BEST, run.model.save)
    _save_checkpoint(run)
    _write_metrics(run, None)
    run.say(_epoch_line(record, run, improved))  # after the checkpoint: the epoch is safe
    if run.stopping.exhausted:
        run.stopped = "early-stopping"
        run.say(f"early stopping: no better {run.stopping.monitor.replace('_', ' ')} for "
                f"{run.stopping.patience} epochs (best: epoch {run.stopping.best_epoch})")
        return False
    return True


def _divergence_advice() -> tuple[str, ...]:
    from .model import DIVERGENCE_ADVICE

    return DIVERGENCE_ADVICE


def _epoch_line(record: dict, run: Run, improved: bool) -> str:
    parts = [f"epoch {record['epoch']}/{run.options.epochs}", f"loss {record['loss']:.4f}"]
    if "accuracy" in record:
        parts.append(f"accuracy {record['accuracy']:.2%}")
    if "val_loss" in record:
        parts.append(f"validation loss {record['val_loss']:.4f}")
    if "val_accuracy" in record:
        parts.append(f"validation accuracy {record['val_accuracy']:.2%}")
    parts.append(f"{record['seconds']:.1f} s ({record['samples_per_s']:,.0f} samples/s)")
    if improved and run.options.patience is not None:
        parts.append("*best")
    return "  ".join(parts)


@contextmanager
def _stop_on_signals():
    """Ctrl-C or SIGTERM asks training to stop after the current step (a second Ctrl-C stops
    at once). Yields the question `should_stop`."""
    requested = []

    def handle(signum, frame):
        if requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested.append(signum)

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
    except ValueError:  # not the main thread: signals stay as they are
        pass
    try:
        yield lambda: bool(requested)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ---- files -------------------------------------------------------------------------------------


def _save_checkpoint(run: Run) -> None:
    extra = {"recipe": run.options.recipe(), "early_stopping": run.stopping.to_dict()}
    atomic_write(run.options.output / CHECKPOINT,
                 lambda path: run.model.save(path, training_state=True, extra=extra))


def _finish(run: Run) -> dict:
    """Restore the best weights when early stopping watched them, evaluate, write outputs."""
    model, options, data = run.model, run.options, run.data
    if run.stopped == "interrupted":
        return _write_metrics(run, None)
    if options.patience is not None and (options.output / BEST).is_file() and \
            run.stopping.best_epoch != model.epochs_trained:
        from .model import load

        model.set_weights(load(options.output / BEST).get_weights())
        run.say(f"restored the weights of epoch {run.stopping.best_epoch} (best "
                f"{run.stopping.monitor.replace('_', ' ')})")
    test, outputs = model.evaluate_with_outputs(run.normalizer.apply(data.x_test), data.y_test)
    run.say("test: " + ", ".join(_figure(k, v) for k, v in test.items()))
    atomic_write(options.output / MODEL, model.save)
    metrics = _write_metrics(run, test)
    if options.plots:
        _write_plots(run, outputs)
    run.say(f"saved {options.output / MODEL}, metrics and plots in {options.output}")
    return metrics


def _figure(name: str, value: float) -> str:
    return f"{name} {value:.2%}" if name == "accuracy" else f"{name} {value:.4f}"


def _write_metrics(run: Run, test: dict | None) -> dict:
    from .training_report import write_metrics_csv

    model, options = run.model, run.options
    metrics = {"network": model.network.source.path, "data": run.data.name,
               "options": {k: str(v) if isinstance(v, Path) else v
                           for k, v in asdict(options).items()},
               "stopped": run.stopped, "best_epoch": run.stopping.best_epoch or None,
               "epochs": model.history, "test": test,
               "seconds": time.perf_counter() - run.started}
    atomic_write(options.output / "metrics.json",
                 lambda path: Path(path).write_text(json.dumps(metrics, indent=2)))
    atomic_write(options.output / "metrics.csv",
                 lambda path: write_metrics_csv(path, model.history, test))
    return metrics


def _write_plots(run: Run, test_outputs: np.ndarray) -> None:
    from .inference import confusion
    from .training_report import plot_confusion_matrix, plot_learning_curve

    model, out = run.model, run.options.output
    atomic_write(out / "learning_curve.png", lambda p: plot_learning_curve(p, model.history))
    if model.network.task == "regression":
        return
    matrix, names = confusion(model, test_outputs, run.data.y_test)
    atomic_write(out / "confusion_matrix.png",
                 lambda p: plot_confusion_matrix(p, matrix, names))


__all__ = ["TrainOptions", "train"]
