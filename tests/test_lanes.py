"""kernels.lanes: a batch split in two halves, the second computed by a worker process.

The promises: the split step computes what the one-pass step computes (float32 tolerance);
its bits do not depend on whether the worker ran the second half or this process did (so
training is reproducible and resumes exactly, whenever the worker comes up); a dead worker
costs speed, never a result; nothing is left in /dev/shm.
"""

from __future__ import annotations

import os
import time

import numba
import numpy as np
import pytest

from netsharp import compile_file
from netsharp.kernels import lanes
from netsharp.model import Model, split_inputs, targets

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
READY_TIMEOUT = 120  # seconds for a worker to start (imports, kernels from the cache)


@pytest.fixture(scope="module")
def lenet():
    return compile_file(SAMPLES / "lenet.ns")


def batch(network, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784), dtype=np.float32)
    return split_inputs(network, x), targets(network, rng.integers(0, 10, n)), x


def ready_lanes(model: Model, rows: int) -> lanes.Lanes:
    runner = model._lanes_for(2 * rows)
    assert runner is not None, "the split was not chosen"
    runner._worker(rows)
    deadline = time.monotonic() + READY_TIMEOUT
    while not runner.worker.usable():
        assert not runner.worker.failed, "the worker failed to start"
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)
    return runner


def one_pass(model: Model, inputs: dict, target: np.ndarray):
    """The unsplit step, straight through the executor."""
    from netsharp.kernels.losses import loss_and_grad, loss_kind

    output = model.network.output
    state = model.executor.forward(model.params, inputs)
    z, out = state[output.name]
    loss, dz = loss_and_grad(loss_kind(model.network.task, output.nodes), output.activation,
                             z, out, target)
    grads = model.executor.backward(model.params, state, dz.astype(np.float32))
    return loss, out.copy(), {k: v.copy() for k, v in grads.items()}


def copied(result):
    loss, out, grads = result
    return loss, out.copy(), {k: v.copy() for k, v in grads.items()}


def test_split_step_matches_the_one_pass_step(lenet):
    model = Model(lenet, seed=1)
    inputs, target, _ = batch(lenet, 33)   # odd: halves of 17 and 16
    ready_lanes(model, 17)
    loss, out, grads = copied(model.gradients(inputs, target))
    ref_loss, ref_out, ref_grads = one_pass(model, inputs, target)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
    for name, grad in ref_grads.items():
        np.testing.assert_allclose(grads[name], grad, rtol=2e-3, atol=2e-6, err_msg=name)


def test_worker_and_local_halves_give_the_same_bits(lenet):
    inputs, target, _ = batch(lenet, 64, seed=2)
    with_worker = Model(lenet, seed=3)
    ready_lanes(with_worker, 32)
    here = Model(lenet, seed=3)
    a = copied(with_worker.gradients(inputs, target))
    b = copied(here.gradients(inputs, target, worker=False))
    assert here._lanes.worker is None  # really computed here
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    for name in a[2]:
        np.testing.assert_array_equal(a[2][name], b[2][name], err_msg=name)


def test_training_is_identical_with_and_without_the_worker(lenet):
    _, _, x = batch(lenet, 96, seed=4)
    y = np.random.default_rng(4).integers(0, 10, 96)
    fast = Model(lenet, seed=5)
    ready_lanes(fast, 16)
    slow = Model(lenet, seed=5)
    slow._lanes_for(32)._worker = lambda rows: None   # never a worker: both halves here
    for model in (fast, slow):
        model.fit(x, y, epochs=2, batch_size=32, optimizer="adam", lr=1e-3)
    for name, value in fast.params.items():
        np.testing.assert_array_equal(value, slow.params[name], err_msg=name)


def test_inference_split_matches(lenet):
    model = Model(lenet, seed=6)
    inputs, _, x = batch(lenet, 40, seed=6)
    ready_lanes(model, 20)
    z, y = model._lanes.infer(model.params, inputs)
    state = model.executor.forward(model.params, inputs, training=False)
    ref_z, ref_y = state[lenet.output.name]
    np.testing.assert_allclose(z, ref_z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=40), ref_y, rtol=1e-5, atol=1e-6)


def test_a_dead_worker_costs_speed_not_results(lenet):
    model = Model(lenet, seed=7)
    inputs, target, _ = batch(lenet, 32, seed=7)
    runner = ready_lanes(model, 16)
    expected = copied(model.gradients(inputs, target))
    runner.worker.process.kill()
    runner.worker.process.wait()
    got = copied(model.gradients(inputs, target))
    assert runner.worker.failed
    assert got[0] == expected[0]
    for name in expected[2]:
        np.testing.assert_array_equal(got[2][name], expected[2][name], err_msg=name)
    assert runner._worker(16) is None   # not restarted: this process goes on alone


def test_an_interrupted_call_does_not_leave_a_stale_reply(lenet):
    """A call stopped (Ctrl-C) after sending its half leaves the worker's reply unread; the
    next call must take that reply first, not as its own."""
    model = Model(lenet, seed=8)
    first, first_target, _ = batch(lenet, 32, seed=8)
    second, second_target, _ = batch(lenet, 32, seed=9)
    runner = ready_lanes(model, 16)
    expected = copied(model.gradients(second, second_target))
    runner._send(runner.worker, model.params, first, slice(16, 32), first_target)
    got = copied(model.gradients(second, second_target))
    assert got[0] == expected[0]
    for name in expected[2]:
        np.testing.assert_array_equal(got[2][name], expected[2][name], err_msg=name)


def test_the_worker_grows_for_a_larger_batch_and_leaves_no_files(lenet):
    model = Model(lenet, seed=10)
    runner = ready_lanes(model, 16)
    old = runner.worker
    assert not os.path.exists(old.path)   # the name is removed once both have it mapped
    inputs, target, _ = batch(lenet, 2 * (old.capacity + 1), seed=10)
    model.gradients(inputs, target)
    assert runner.worker is not old and runner.worker.capacity > old.capacity
    assert old.process.wait(timeout=10) is not None   # the small one was closed
    runner.close()
    assert runner.worker.process.wait(timeout=10) is not None


def split(plan, batch: int, training: bool = True) -> bool:
    return lanes.mode(plan, batch, training) == lanes.SPLIT


def test_when_the_batch_is_split():
    mlp = compile_file(SAMPLES / "mlp.ns")
    conv = compile_file(SAMPLES / "cntk103d_pool.ns")
    from netsharp.lower import lower

    assert not split(lower(mlp), 256)      # full bundles only: BLAS threads itself
    assert lanes.mode(lower(mlp), 1) == lanes.THREADS
    half = -(-lanes.MIN_HALF_MACS // conv.total_macs)  # rows of a half that are enough
    assert not split(lower(conv), 2 * half - 2, training=False)
    # too small to split: one core, not threads woken for each kernel
    assert lanes.mode(lower(conv), 2 * half - 2, training=False) == lanes.ONE_CORE
    assert lanes.mode(lower(conv), 1) == lanes.ONE_CORE
    assert split(lower(conv), 2 * half, training=False) == (
        numba.get_num_threads() >= 2)
    assert not split(lower(conv), 2 * (-(-half // 3)) - 2)  # training: 3x the work
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert not split(lower(conv), 256)  # one thread asked for: one process
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        assert split(lower(conv), 256) == (numba.get_num_threads() >= 2)
    finally:
        numba.set_num_threads(previous)
    assert lanes.halves(7) == (slice(0, 4), slice(4, 7))


SPLIT_STEP = """
import json, sys
import numpy as np
from numba.core import event
import netsharp
from netsharp.model import split_inputs, targets

parallel = []
class Listener(event.Listener):
    def on_start(self, ev):
        dispatcher = ev.data["dispatcher"]
        if dispatcher.targetoptions.get("parallel"):
            parallel.append(dispatcher.py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
model = netsharp.Model(netsharp.compile_file(sys.argv[1]), seed=0)
rng = np.random.default_rng(0)
x = rng.random((64, 784), dtype=np.float32)
assert model._lanes_for(64) is not None
model.gradients(split_inputs(model.network, x), targets(model.network, rng.integers(0, 10, 64)),
                worker=False)
model.predict(x, batch_size=64)
# a batch too small to split runs on one core: no parallel kernel either
assert model._lanes_for(2) is None
model.gradients(split_inputs(model.network, x[:2]), targets(model.network, [1, 2]))
model.predict(x[:3], batch_size=1)
print(json.dumps(sorted(set(parallel))))
"""


def test_split_and_small_batches_compile_no_parallel_kernel(tmp_path):
    """Each lane runs on one core with serial kernels, and so does a batch too small to split:
    a first run (empty cache) compiles none of the parallel twins, which cost numba 1-3 s
    each."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", SPLIT_STEP, str(SAMPLES / "lenet.ns")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_a_forked_copy_of_the_model_does_not_use_the_parents_worker(lenet, tmp_path):
    """After os.fork() the child's model must not talk to the parent's worker (their replies
    would cross); it starts its own, or computes both halves, with the same results."""
    model = Model(lenet, seed=11)
    inputs, target, _ = batch(lenet, 32, seed=11)
    runner = ready_lanes(model, 16)
    expected = copied(model.gradients(inputs, target))[2]
    pid = os.fork()
    if pid == 0:   # the child: its answer goes to a file, then it leaves at once
        code = 1
        try:
            grads = model.gradients(inputs, target, worker=True)[2]
            same = all(np.array_equal(grads[k], expected[k]) for k in expected)
            code = 0 if same and runner.worker is not None and \
                runner.worker.owner == os.getpid() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    again = copied(model.gradients(inputs, target))[2]   # the parent's worker still answers
    assert runner.worker.usable()
    for name in expected:
        np.testing.assert_array_equal(again[name], expected[name], err_msg=name)


def test_spin_until_sees_the_count_or_gives_up():
    counters = np.zeros(2, np.int64)
    counters[lanes.REPLIES] = 3
    assert lanes.spin_until(counters, lanes.REPLIES, 3, 0.0)
    started = time.perf_counter()
    assert not lanes.spin_until(counters, lanes.REQUESTS, 1, 0.01)
    assert time.perf_counter() - started >= 0.01


def test_requests_are_answered_whether_the_worker_spins_or_sleeps(lenet):
    """Back to back, the worker is still spinning on the shared counter when the next request
    comes; after a pause it sleeps in its read of the pipe. Both give the same bits, and the
    counters follow the requests."""
    model = Model(lenet, seed=10)
    inputs, target, _ = batch(lenet, 32, seed=10)
    runner = ready_lanes(model, 16)
    expected = copied(model.gradients(inputs, target))
    for pause in (0.0, 0.0, 5 * lanes.WORKER_SPIN_S, 0.0, 5 * lanes.WORKER_SPIN_S):
        time.sleep(pause)
        got = copied(model.gradients(inputs, target))
        assert got[0] == expected[0]
        for name in expected[2]:
            np.testing.assert_array_equal(got[2][name], expected[2][name], err_msg=name)
    sync = runner.worker.shared["sync"]
    assert sync[lanes.REQUESTS] == sync[lanes.REPLIES] == runner.worker.requests >= 6


def test_an_exchange_interrupted_part_way_replaces_the_worker(lenet, monkeypatch):
    """Ctrl-C while waiting for the worker's reply: whether the reply was read is unknown, so
    the worker is stopped and the next call starts another; the figures stay the same."""
    model = Model(lenet, seed=11)
    inputs, target, _ = batch(lenet, 32, seed=11)
    runner = ready_lanes(model, 16)
    expected = copied(model.gradients(inputs, target))
    first = runner.worker

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(lanes, "spin_until", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.gradients(inputs, target)
    monkeypatch.undo()
    assert first.abandoned and first.process.poll() is not None
    got = copied(model.gradients(inputs, target))   # computed here while another starts
    assert runner.worker is not first
    ready_lanes(model, 16)
    again = copied(model.gradients(inputs, target))
    for result in (got, again):
        assert result[0] == expected[0]
        for name in expected[2]:
            np.testing.assert_array_equal(result[2][name], expected[2][name], err_msg=name)
