"""kernels.warm: the helper process that compiles a network's kernels on a second core.

The helper must compile every kernel a training step needs (else the first process still
compiles some itself), must write them where the first process finds them, and must never be
started for a fast (cached) warm-up or outlive the warm-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from netsharp import compile_file
from netsharp.compiler import read_source
from netsharp.kernels import warm
from netsharp.kernels.executor import FastExecutor
from netsharp.lower import lower
from netsharp.model import Model, split_inputs

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "lenet.ns"  # convolution, pooling, dense: every kernel kind
TIMEOUT = 300

# A training step's forward, loss, backward and Adam update at batch 16, counting the kernels
# numba had to compile rather than load from its disk cache.
STEP = """
import json, sys
import numpy as np
from numba.core import event
import netsharp
from netsharp.kernels.losses import loss_and_grad
from netsharp.model import split_inputs
from netsharp.optim import OptimizerState, make_optimizer

compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__module__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
model = netsharp.Model(netsharp.compile_file(sys.argv[1]), seed=0)
x = np.random.default_rng(0).random((16, 784), dtype=np.float32)
state = model.executor.forward(model.params, split_inputs(model.network, x))
z, y = state[model.network.output.name]
target = np.eye(10, dtype=np.float32)[np.arange(16) % 10]
loss, dz = loss_and_grad("cross_entropy", "softmax", z, y, target, 16, fused=True)
grads = model.executor.backward(model.params, state, dz)
adam = make_optimizer("adam")
adam.step(model.params, grads, OptimizerState(adam, model.params), 0.001)
print(json.dumps(sorted(set(m for m in compiled if m.startswith("netsharp")))))
"""


def environment(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run(command: list[str], cache: Path, stdin: str = "") -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=ROOT,
                          env=environment(cache), timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_helper_compiles_every_kernel_of_a_training_step(tmp_path):
    request = json.dumps({"source": read_source(SAMPLE),
                          "options": {"features": 784, "classes": 10}, "batch": 16,
                          "threads": 2, "optimizer": "adam"})
    run([sys.executable, "-m", "netsharp.kernels.warm"], tmp_path, request)
    assert list(tmp_path.rglob("*.nbi")), "the helper wrote no cache index"
    # a training step in a new process on that cache compiles none of netsharp's kernels
    assert json.loads(run([sys.executable, "-c", STEP, str(SAMPLE)], tmp_path)) == []


def test_a_fresh_cache_step_does_compile(tmp_path):
    """The check above can fail: without the helper the same step compiles kernels."""
    compiled = json.loads(run([sys.executable, "-c", STEP, str(SAMPLE)], tmp_path))
    assert {"netsharp.kernels.conv", "netsharp.kernels.pool", "netsharp.kernels.activations",
            "netsharp.kernels.update"} <= set(compiled)


def test_compile_update_changes_no_weight():
    model = Model(compile_file(SAMPLE), seed=0)
    before = model.get_weights()
    for optimizer in ("sgd", "adam"):
        warm.compile_update(optimizer, model.params)
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, before[name])


def test_backward_first_runs_the_loss_between_backward_and_forward():
    network = compile_file(SAMPLE)
    executor = FastExecutor(lower(network))
    calls = []
    executor.compile_backward_first(Model(network, seed=0).params, 4,
                                    loss=lambda z, y: calls.append((z.shape, y.shape)))
    assert calls == [((4, 10), (4, 10))]


def test_backward_first_order_matches_a_normal_step():
    """The helper's order (backward with no forward before it) runs and leaves a normal step
    exact: its buffers are the executor's own, so the next step must overwrite them all."""
    network = compile_file(SAMPLE)
    model = Model(network, seed=3)
    x = np.random.default_rng(1).random((8, 784), dtype=np.float32)
    inputs = split_inputs(network, x)
    plain = FastExecutor(lower(network))
    warmed = FastExecutor(lower(network))
    warmed.compile_backward_first(model.params, 8)
    for executor in (plain, warmed):
        state = executor.forward(model.params, inputs)
        z, _ = state[network.output.name]
        executor.backward(model.params, state, np.ones_like(z))
    for name, grad in plain.grads.items():
        np.testing.assert_array_equal(warmed.grads[name], grad)
    np.testing.assert_array_equal(warmed.workspace(8, True).y[network.output.name],
                                  plain.workspace(8, True).y[network.output.name])


def test_no_helper_for_a_fast_warm_up(monkeypatch):
    monkeypatch.setattr(warm, "DELAY", 0.3)
    with warm.CompileHelper("input X [1]; output Y [1] from X all;", {}, 1, 1) as helper:
        pass
    time.sleep(0.5)
    assert helper.process is None


def test_helper_started_for_a_slow_warm_up_and_stopped_after(monkeypatch):
    monkeypatch.setattr(warm, "DELAY", 0.1)
    with warm.CompileHelper("input X [1]; output Y [1] from X all;", {}, 1, 1) as helper:
        deadline = time.monotonic() + 10
        while helper.process is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert helper.process is not None
    assert helper.process.poll() is not None  # killed and reaped when the block ended
