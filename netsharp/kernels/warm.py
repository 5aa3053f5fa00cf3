"""A second process that compiles a network's kernels into numba's disk cache in the reverse
of the order in which a training step needs them, while the first process compiles in order.

On an empty cache a network's first training step waits 5-15 s for numba, which compiles on
one core. `CompileHelper` starts this module's `main` in another process when the first
step's compilation is still running after `DELAY` s (so a cached start, 0.05 s, never pays
for it): numba looks in its disk cache before compiling each kernel, so the two processes
meet in the middle and each kernel is compiled about once, on both cores. The helper's
output is discarded and any failure of it only costs the time it would have saved.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from contextlib import nullcontext

from . import child_command

DELAY = 0.5  # seconds of compiling before the helper is worth its own start-up (~1 s)


class CompileHelper:
    """with CompileHelper(source, options, batch, threads, mode): compile in the block; the
    helper process, if one was started, is stopped when the block ends. mode: how the batch
    runs, kernels.lanes.mode (split in two halves, on one core, or on every thread)."""

    def __init__(self, source: str, compile_options: dict, batch: int, threads: int,
                 mode: str = "threads", optimizer: str = "sgd"):
        self.request = json.dumps({"source": source, "options": compile_options,
                                   "batch": batch, "threads": threads, "mode": mode,
                                   "optimizer": optimizer})
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.timer = threading.Timer(DELAY, self._start)
        self.timer.daemon = True

    def __enter__(self) -> CompileHelper:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        with self.lock:
            self.timer = None  # a timer already firing starts nothing now
            if self.process is not None:
                self.process.kill()
                self.process.wait()

    def _start(self) -> None:
        with self.lock:
            if self.timer is None:
                return
            try:
                command, environment = child_command("netsharp.kernels.warm")
                self.process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, text=True, env=environment)
                self.process.stdin.write(self.request)
                self.process.stdin.close()
            except OSError:
                self.process = None


def main() -> None:
    request = json.loads(sys.stdin.read())
    import numba
    import numpy as np

    from ..compiler import compile as compile_text
    from ..lower import lower
    from ..model import initial_parameters
    from .executor import FastExecutor

    numba.set_num_threads(max(1, min(request["threads"], numba.config.NUMBA_NUM_THREADS)))
    network = compile_text(request["source"], **request["options"])
    params = {k: v.astype(np.float32) for k, v in
              initial_parameters(network, np.random.default_rng(0)).items()}
    executor = FastExecutor(lower(network))
    from .lanes import ONE_CORE, SPLIT, halves, one_thread
    from .losses import loss_and_grad, loss_kind

    batch, mode = request["batch"], request.get("mode")
    rows = halves(batch)[0].stop if mode == SPLIT else batch  # a split batch's first half
    output = network.output
    kind = loss_kind(network.task, output.nodes)

    def loss(z, y):
        loss_and_grad(kind, output.activation, z, y, np.zeros_like(z), batch, fused=True)

    # The reverse of a step's order: the update (its last kernel), backward, loss, forward.
    compile_update(request.get("optimizer", "sgd"), params)
    with one_thread() if mode in (SPLIT, ONE_CORE) else nullcontext():
        executor.compile_backward_first(params, rows, loss)


def compile_update(optimizer: str, params: dict) -> None:
    """One update of copies of the weights by zero gradients: the optimizer's kernel is
    compiled (or loaded) and neither the weights nor any optimizer state change."""
    import numpy as np

    from ..optim import OptimizerState, make_optimizer

    config = make_optimizer(optimizer)
    scratch = {name: value.copy() for name, value in params.items()}
    zeros = {name: np.zeros_like(value) for name, value in params.items()}
    config.step(scratch, zeros, OptimizerState(config, scratch), config.lr)


if __name__ == "__main__":
    main()
