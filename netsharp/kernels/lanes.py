"""Two lanes: a batch cut in halves, the second half computed by a worker process.

Why a process and not threads: on these 2-vCPU machines waking a sleeping thread costs 50-100
us, and two Python threads running a network's layers hand the interpreter lock back and forth
at every kernel. netsharp's threaded kernels gained nothing over one thread (bench/README.md),
while two processes, each running a batch on one core, each ran as fast as one alone
(cntk103d_pool at batch 128: 5,180 training images/s alone; 4,567 and 5,616 side by side). A
step here costs one round trip on a pipe and copies of the weights and of the half batch into
memory both processes map. The pipe carries every request and reply; a counter of each in the
shared memory lets the waiting side spin for a moment instead of sleeping in a read (two
wake-ups a step, 0.2-0.25 ms a round trip measured), as OpenMP's threads do between regions.

Exactness: each half is computed by the same kernels in either process (one thread, one
convolution worker, one-threaded BLAS) and the halves' gradients are added in the same order,
so a step's result does not depend on whether the worker is running: until it has started,
or if it fails, this process computes the second half itself.
"""

from __future__ import annotations

import json
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager

import numba
import numpy as np

from ..lower import Plan
from . import blas, child_command
from .executor import FastExecutor
from .jit import serial_kernels
from .losses import loss_and_grad, loss_kind

# A half batch must hold this many multiply-adds (3 per forward one in training) for the
# split to pay for its round trip and copies: measured, basic_conv's inference at batch 16
# (1M a half) lost a third with the split, lenet's (3.2M) gained half.
MIN_HALF_MACS = 3_000_000
MIN_CAPACITY = 128   # rows of a half batch the shared memory holds at first (evaluate: 256)
# How long each side spins on the shared counters before it sleeps in a read of the pipe: the
# worker between requests (an epoch's steps follow each other within a millisecond or two),
# this process for the worker's reply after computing its own half.
WORKER_SPIN_S = 0.003
REPLY_SPIN_S = 0.02
REQUESTS, REPLIES = 0, 1   # the counters' places in the shared "sync" array


SPLIT, ONE_CORE, THREADS = "split", "one core", "threads"


def mode(plan: Plan, batch: int, training: bool = True) -> str:
    """How a batch of this size runs. SPLIT: in two lanes. ONE_CORE: in this process on one
    thread (one_thread), a batch too small to split: waking the other core's sleeping threads
    for each kernel costs more than they save (measured with `bench/throughput.py --threads
    1`: one thread 1.1-1.6x faster for the convolution networks at batch 1 and 16). THREADS:
    every thread, for a network of full bundles only (BLAS, which threads well by itself) or
    where one thread is all there is."""
    if plan.full_only:
        return THREADS
    if plan.network.total_macs * (3 if training else 1) * (batch // 2) < MIN_HALF_MACS:
        return ONE_CORE
    return SPLIT if blas.available and numba.get_num_threads() >= 2 else THREADS


def halves(n: int) -> tuple[slice, slice]:
    middle = (n + 1) // 2
    return slice(0, middle), slice(middle, n)


@contextmanager
def one_thread():
    """Serial kernels, one convolution worker and one-threaded BLAS (the other core runs the
    other lane)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(1)   # read by ConvOp.buffers: one worker
    try:
        with blas.single_threaded(), serial_kernels():
            yield
    finally:
        numba.set_num_threads(previous)


class Lane:
    """A half batch's forward, loss and backward, on an executor of its own."""

    def __init__(self, plan: Plan):
        self.executor = FastExecutor(plan)
        output = plan.network.output
        self.output, self.activation = output.name, output.activation
        self.kind = loss_kind(plan.network.task, output.nodes)

    def train(self, params: dict, inputs: dict, target: np.ndarray, denominator: int):
        """(loss share, outputs, gradients): the loss and gradients are this half's part of
        the whole batch's mean (divided by `denominator`, the whole batch's size)."""
        with one_thread():
            state = self.executor.forward(params, inputs)
            z, out = state[self.output]
            loss, dz = loss_and_grad(self.kind, self.activation, z, out, target, denominator,
                                     fused=True)
            grads = self.executor.backward(params, state, np.ascontiguousarray(dz, np.float32))
        return loss, out, grads

    def infer(self, params: dict, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
        with one_thread():
            return self.executor.outputs(params, inputs)


def layout(plan: Plan, capacity: int) -> list[tuple[str, tuple, str]]:
    """The arrays both processes map: weights in, gradients and outputs out, a half batch."""
    network, outputs = plan.network, plan.network.output.nodes
    entries = [("sync", (2,), "int64"), ("loss", (1,), "float64")]
    for p in network.parameters:
        entries += [(f"p:{p.name}", p.shape, "float32"), (f"g:{p.name}", p.shape, "float32")]
    entries += [(f"x:{layer.name}", (capacity, layer.nodes), "float32")
                for layer in network.inputs]
    entries += [(name, (capacity, outputs), "float32") for name in ("t", "z", "y")]
    return entries


class Shared:
    """Arrays laid out in one memory-mapped file, at the same offsets in both processes."""

    def __init__(self, path: str, entries: list, create: bool):
        offsets, size = [], 0
        for _, shape, dtype in entries:
            offsets.append(size)
            size += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 64) * 64
        if create:  # zeros: the counters start at 0
            with open(path, "wb") as f:
                f.truncate(size)
        with open(path, "r+b") as f:
            self.map = mmap.mmap(f.fileno(), size)
        self.arrays = {name: np.ndarray(shape, dtype, buffer=self.map, offset=offset)
                       for (name, shape, dtype), offset in zip(entries, offsets)}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def spin_until(counters: np.ndarray, index: int, count: int, seconds: float) -> bool:
    """True once counters[index] reaches `count`, False after `seconds` of spinning (the
    caller then sleeps in a read of the pipe). Yields the core at each turn to any other
    runnable thread."""
    deadline = time.perf_counter() + seconds
    while counters[index] < count:
        if time.perf_counter() > deadline:
            return False
        os.sched_yield()
    return True


class Worker:
    """The worker process and the memory it shares with this one. `ready` turns True once it
    has compiled (or loaded) its kernels; until then the caller computes both halves."""

    def __init__(self, plan: Plan, source: str, options: dict, capacity: int, rows: int):
        self.capacity, self.ready, self.failed, self.pending = capacity, False, False, False
        self.owner, self.requests, self.abandoned = os.getpid(), 0, False
        entries = layout(plan, capacity)
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        handle, self.path = tempfile.mkstemp(prefix="netsharp-lane-", dir=folder)
        os.close(handle)
        try:
            self.shared = Shared(self.path, entries, create=True)
            command, environment = child_command("netsharp.kernels.lanes")
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                            env=environment)
            config = {"source": source, "options": options, "path": self.path,
                      "capacity": capacity, "rows": rows}
            self.process.stdin.write(json.dumps(config).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            self.failed = True
            self._unlink()
            return
        threading.Thread(target=self._await_ready, daemon=True).start()
        self._closer = weakref.finalize(self, _close, self.process)

    def _await_ready(self) -> None:
        line = self.process.stdout.readline()
        if line == b"ready\n":   # the worker has mapped the file and removed its name
            self.ready = True
        else:
            self.failed = True
            self._unlink()

    def _unlink(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def usable(self) -> bool:
        return self.ready and not self.failed

    def send(self, command: str) -> bool:
        try:
            self.process.stdin.write(command.encode() + b"\n")
            self.process.stdin.flush()
            self.pending, self.requests = True, self.requests + 1
        except OSError:
            self.failed = True
            return False
        except BaseException:
            self.abandon()
            raise
        # after the write: a worker that sees the count finds the line in the pipe
        self.shared["sync"][REQUESTS] = self.requests
        return True

    def receive(self) -> bool:
        try:
            spin_until(self.shared["sync"], REPLIES, self.requests, REPLY_SPIN_S)
            line = self.process.stdout.readline()
            self.pending = False
        except BaseException:
            self.abandon()
            raise
        if line == b"ok\n":
            return True
        self.failed = True
        return False

    def abandon(self) -> None:
        """Stop the worker after an exchange was interrupted (Ctrl-C) part way: whether the
        line went out or the reply was read is unknown, and a reply taken for another
        request's would be wrong figures. Lanes starts another worker on the next call."""
        self.failed = self.abandoned = True
        self.process.kill()
        self.process.wait()
        self.close()

    def close(self) -> None:
        if hasattr(self, "_closer"):
            self._closer()


def _close(process: subprocess.Popen) -> None:
    try:
        process.stdin.close()   # the worker's end of input: it exits
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()


class Lanes:
    """A model's two lanes: train() and infer() take a whole batch."""

    def __init__(self, plan: Plan, source: str, options: dict):
        self.plan, self.source, self.options = plan, source, options
        self.params = [p.name for p in plan.network.parameters]
        self.inputs = [layer.name for layer in plan.network.inputs]
        self.local, self.spare = Lane(plan), None
        self.worker: Worker | None = None

    def _worker(self, rows: int) -> Worker | None:
        """The worker, when it can take a half of `rows` rows now. A failed worker is not
        replaced (this process computes both halves from then on); one too small, or one
        abandoned after an interrupted exchange, is."""
        worker = self.worker
        if worker is not None and (worker.owner != os.getpid() or worker.abandoned):
            # abandoned, or a forked copy of the model's (the worker and pipes are the parent's)
            self.worker = worker = None
        if worker is not None and worker.failed:
            return None
        if worker is None or rows > worker.capacity:
            capacity = max(rows, MIN_CAPACITY)  # rows > the old capacity, if any
            if worker is not None:
                worker.close()
            self.worker = worker = Worker(self.plan, self.source, self.options, capacity, rows)
        if worker.pending:  # an earlier call was interrupted after sending: take its reply
            worker.receive()
        return worker if worker.usable() else None

    def _spare(self) -> Lane:
        if self.spare is None:
            self.spare = Lane(self.plan)
        return self.spare

    def _send(self, worker: Worker, params: dict, inputs: dict, rows: slice,
              target: np.ndarray | None) -> bool:
        shared, n = worker.shared, rows.stop - rows.start
        for name in self.params:
            np.copyto(shared[f"p:{name}"], params[name])
        for name in self.inputs:
            np.copyto(shared[f"x:{name}"][:n], inputs[name][rows])
        if target is None:
            return worker.send(f"infer {n}")
        np.copyto(shared["t"][:n], target[rows])
        return worker.send(f"train {n} {rows.stop}")

    def train(self, params: dict, inputs: dict, target: np.ndarray, use_worker: bool = True):
        """(mean loss, outputs, gradients) of the whole batch."""
        n = len(target)
        first, second = halves(n)
        worker = self._worker(second.stop - second.start) if use_worker else None
        sent = worker is not None and self._send(worker, params, inputs, second, target)
        loss, out_first, grads = self.local.train(
            params, {k: v[first] for k, v in inputs.items()}, target[first], n)
        outputs = np.empty((n, out_first.shape[1]), np.float32)
        outputs[first] = out_first
        if sent and worker.receive():
            shared = worker.shared
            loss += float(shared["loss"][0])
            outputs[second] = shared["y"][:second.stop - second.start]
            for name in self.params:
                grads[name] += shared[f"g:{name}"]
        else:
            more, out_second, grads_second = self._spare().train(
                params, {k: v[second] for k, v in inputs.items()}, target[second], n)
            loss += more
            outputs[second] = out_second
            for name in self.params:
                grads[name] += grads_second[name]
        return loss, outputs, grads

    def infer(self, params: dict, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """(z, y) of the output layer for the whole batch (new arrays)."""
        n = len(next(iter(inputs.values())))
        first, second = halves(n)
        worker = self._worker(second.stop - second.start)
        sent = worker is not None and self._send(worker, params, inputs, second, None)
        z_first, y_first = self.local.infer(params, {k: v[first] for k, v in inputs.items()})
        z = np.empty((n, z_first.shape[1]), np.float32)
        y = np.empty_like(z)
        z[first], y[first] = z_first, y_first
        if sent and worker.receive():
            m = second.stop - second.start
            z[second], y[second] = worker.shared["z"][:m], worker.shared["y"][:m]
        else:
            z[second], y[second] = self._spare().infer(
                params, {k: v[second] for k, v in inputs.items()})
        return z, y

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


# ---- the worker process ------------------------------------------------------------------------


def serve() -> None:
    """Read the set-up line, map the shared arrays, load the kernels, say "ready", then
    answer "train n denominator" and "infer n" with "ok" until the input ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the first process's to handle
    blas.set_threads(1)
    from ..compiler import compile as compile_text
    from ..lower import lower

    config = json.loads(sys.stdin.buffer.readline())
    plan = lower(compile_text(config["source"], **config["options"]))
    shared = Shared(config["path"], layout(plan, config["capacity"]), create=False)
    os.unlink(config["path"])  # both processes have it mapped: nothing is left behind
    lane = Lane(plan)
    params = {p.name: shared[f"p:{p.name}"] for p in plan.network.parameters}
    inputs = {layer.name: shared[f"x:{layer.name}"] for layer in plan.network.inputs}
    rows = config["rows"]  # load (or compile) the kernels of the first request's size
    lane.train(params, {k: v[:rows] for k, v in inputs.items()}, shared["t"][:rows], rows)
    lane.infer(params, {k: v[:rows] for k, v in inputs.items()})
    out, sync, handled = sys.stdout.buffer, shared["sync"], 0
    out.write(b"ready\n")
    out.flush()
    while True:
        spin_until(sync, REQUESTS, handled + 1, WORKER_SPIN_S)
        line = sys.stdin.buffer.readline()
        if not line:
            return
        handled += 1
        words = line.split()
        n = int(words[1])
        rows = {k: v[:n] for k, v in inputs.items()}
        if words[0] == b"train":
            loss, y, grads = lane.train(params, rows, shared["t"][:n], int(words[2]))
            shared["loss"][0] = loss
            shared["y"][:n] = y
            for name, grad in grads.items():
                np.copyto(shared[f"g:{name}"], grad)
        else:
            z, y = lane.infer(params, rows)
            shared["z"][:n], shared["y"][:n] = z, y
        out.write(b"ok\n")
        out.flush()
        sync[REPLIES] = handled   # after the write: the line is in the pipe when seen


if __name__ == "__main__":
    serve()
