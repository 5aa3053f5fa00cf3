"""Training and inference throughput of netsharp vs PyTorch CPU on DESIGN.md section 4's networks.

    python bench/throughput.py [--batches 1 16 64 256] [--seconds 0.4] [--networks mlp lenet]

Each framework runs in its own child process, taking turns (see Worker); float32,
2 threads (torch.set_num_threads(2); numba and OpenBLAS use the machine's 2 cores); the same
batch of random 28x28 inputs, softmax cross-entropy and SGD with momentum. A training step is
forward + loss + backward + update on one fixed batch; inference is a forward pass over one
batch. Each figure is the median of --rounds timed runs of about --seconds. The first line
gives the CPU and numpy's 2048 x 2048 product rate on the same threads; the last, how many
figures meet issue 5's goals.
PyTorch is imported lazily: `pip install torch` to run this.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# netsharp before numpy, as in the CLI: it sets OpenBLAS's idle-spin timeout before numpy
# loads OpenBLAS (see netsharp/__init__.py).
import netsharp  # noqa: E402
import numpy as np  # noqa: E402
from netsharp.model import Model, split_inputs, targets  # noqa: E402

NETWORKS = ("basic_conv", "cntk103d_pool", "lenet", "mlp")
# Issue 5's goals, netsharp / PyTorch images/s: batch -> (training, inference)
GOALS = {1: (2.0, 1.5), 16: (2.0, 1.5), 64: (1.5, 1.5), 256: (1.0, 1.0)}
SGEMM_SIZE = 2048   # the machine's attainable rate: a large square product in numpy's BLAS
IDLE = 0.25        # seconds between steps of different kinds, and between the frameworks


def torch_network(name: str):
    """The same layers in PyTorch (Net#'s basic_conv C2 is a grouped convolution: 10 kernels
    for each of the 5 input maps)."""
    from torch import nn

    if name == "basic_conv":
        return nn.Sequential(nn.Conv2d(1, 5, 5, stride=2), nn.Sigmoid(),
                             nn.Conv2d(5, 50, 5, stride=2, groups=5), nn.Sigmoid(),
                             nn.Flatten(), nn.Linear(800, 100), nn.Sigmoid(), nn.Linear(100, 10))
    if name == "cntk103d_pool":
        return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3),
                             nn.Flatten(), nn.Linear(256, 10))
    if name == "lenet":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
                             nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(), nn.Linear(120, 10))
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 10))


def repeats_for(step, seconds: float) -> int:
    """How many calls of `step` (after a warm-up call) take about `seconds`."""
    step()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds / 4 or calls < 2:
        step()
        calls += 1
    return max(2, int(seconds / ((time.perf_counter() - start) / calls)))


def timed_rate(step, batch: int, repeats: int) -> float:
    """Images per second over `repeats` calls."""
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return batch * repeats / (time.perf_counter() - start)


def netsharp_steps(name: str, X: np.ndarray, labels: np.ndarray):
    model = Model(netsharp.compile_file(ROOT / "samples" / f"{name}.ns"), seed=0)
    model.fit(X[:2], labels[:2], epochs=1, batch_size=2, optimizer="sgd", lr=0.01, momentum=0.9)
    inputs, target = split_inputs(model.network, X), targets(model.network, labels)

    def train():
        model.train_step(inputs, target, 0.01)

    def infer():
        model.predict(X, batch_size=len(X))

    wait_for_lanes(model, train, infer)
    return train, infer


def wait_for_lanes(model, *steps, timeout: float = 60) -> None:
    """Steady state: a split batch's worker process (kernels.lanes) takes a second or two to
    start, during which this process computes both halves; time the steps once it runs."""
    deadline = time.monotonic() + timeout
    for step in steps:
        step()
    while time.monotonic() < deadline:
        worker = model._lanes.worker if model._lanes is not None else None
        if worker is None or worker.ready or worker.failed:
            return
        time.sleep(0.05)


def torch_steps(name: str, X: np.ndarray, labels: np.ndarray):
    import torch

    torch.manual_seed(0)
    net = torch_network(name)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    images = torch.from_numpy(X.reshape(-1, 1, 28, 28))
    target = torch.from_numpy(labels)

    def train():
        optimizer.zero_grad()
        loss_fn(net(images), target).backward()
        optimizer.step()

    def infer():
        with torch.no_grad():
            torch.softmax(net(images), dim=1)

    return train, infer


class Worker:
    """One framework in its own process, measuring one configuration per request: PyTorch's
    and numba's thread pools in one process spin against each other on 2 cores."""

    def __init__(self, framework: str, threads: int):
        self.process = subprocess.Popen([sys.executable, __file__, "--worker", framework,
                                         "--threads", str(threads)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)

    def rates(self, name: str, batch: int, seconds: float) -> list[float]:
        self.process.stdin.write(json.dumps([name, batch, seconds]) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            raise SystemExit("a benchmark worker died")
        return json.loads(reply)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def refuse_unfair_torch() -> None:
    """netsharp's kernels set OMP_WAIT_POLICY=PASSIVE for numba's workers when they load; in a
    PyTorch worker its OpenMP threads would then sleep between operators (2-4x slower here)."""
    if "numba" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        raise SystemExit("the PyTorch worker must not load numba nor run with OMP_WAIT_POLICY "
                         "set: the comparison would be unfair")


def use_threads(framework: str, threads: int) -> None:
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        return
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(threads)
    threadpool_limits(threads)  # BLAS too, for the rest of the process


def serve(framework: str, threads: int) -> None:
    """Worker loop: for each request [network, batch, seconds] print [train, infer] images/s.
    Models and step counts are kept, so later rounds time the same steps again."""
    if framework == "torch":
        refuse_unfair_torch()
    use_threads(framework, threads)
    make = torch_steps if framework == "torch" else netsharp_steps
    prepared = {}
    for line in sys.stdin:
        name, batch, seconds = json.loads(line)
        if name == "sgemm":
            print(json.dumps(sgemm_rate(batch, seconds)), flush=True)
            continue
        if (name, batch) not in prepared:
            rng = np.random.default_rng(batch)
            X = rng.random((batch, 784), dtype=np.float32)
            steps = make(name, X, rng.integers(0, 10, batch))
            prepared[name, batch] = [(step, after_idle(repeats_for, step, seconds))
                                     for step in steps]
        print(json.dumps([after_idle(timed_rate, step, batch, repeats)
                          for step, repeats in prepared[name, batch]]), flush=True)


def after_idle(measure, *args):
    """measure(*args) once the threads of the steps before it have gone idle: inference is
    timed as in a process that predicts, not in the 0.1-0.2 s after training steps during
    which OpenBLAS's threads spin (netsharp runs a chain of full layers on BLAS then, and on
    its own kernel once they sleep: kernels.chain)."""
    time.sleep(IDLE)
    return measure(*args)


def sgemm_rate(n: int, seconds: float) -> float:
    """GFLOP/s of numpy's float32 n x n product on this worker's threads: what the machine
    attains on the most favourable work (its nominal peak depends on a clock a guest cannot
    read; DESIGN.md's 208 GF/s is that of a 2.8 GHz AVX-512 Xeon's two cores)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    product = np.empty_like(a)
    step = lambda: np.matmul(a, a, out=product)  # noqa: E731
    repeats = repeats_for(step, seconds)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def measure_interleaved(args) -> dict:
    """{(network, batch): (netsharp [train, infer] medians, torch medians)}: the frameworks
    take turns on each configuration, `rounds` times, so that a burst of load from other
    machines' work on the shared host falls on both rather than on one."""
    workers = {name: Worker(name, args.threads) for name in ("netsharp", "torch")}
    results = {}
    try:
        results["sgemm"] = workers["netsharp"].rates("sgemm", SGEMM_SIZE, 2.0)
        for name in args.networks:
            for batch in args.batches:
                samples = {"netsharp": [], "torch": []}
                for round_ in range(args.rounds):
                    order = ("netsharp", "torch") if round_ % 2 == 0 else ("torch", "netsharp")
                    for framework in order:
                        time.sleep(IDLE)  # let the other side's threads stop spinning
                        samples[framework].append(
                            workers[framework].rates(name, batch, args.seconds))
                results[name, batch] = tuple(
                    [statistics.median(r[i] for r in samples[f]) for i in (0, 1)]
                    for f in ("netsharp", "torch"))
    finally:
        for worker in workers.values():
            worker.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--seconds", type=float, default=0.4)
    parser.add_argument("--rounds", type=int, default=5,
                        help="turns each framework takes per configuration (median)")
    parser.add_argument("--threads", type=int, default=2, help="for both frameworks")
    parser.add_argument("--worker", choices=["netsharp", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve(args.worker, args.threads)
        return
    results = measure_interleaved(args)
    print_table(results, args.threads)


def gflops(name: str) -> tuple[float, float]:
    """GFLOP per image for a training step and for inference: 2 flops a multiply-add (the
    compiler's count: real cells of convolutions, full and filtered edges; pooling and
    activations not counted); training does the forward, the input gradient and the weight
    gradient, three times inference's products."""
    macs = netsharp.compile_file(ROOT / "samples" / f"{name}.ns").total_macs
    return 6 * macs / 1e9, 2 * macs / 1e9


def print_table(results: dict, threads: int) -> None:
    sgemm = results.pop("sgemm")
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; numpy's {SGEMM_SIZE}x{SGEMM_SIZE} float32 "
          f"product on {threads} thread(s): {sgemm:.1f} GFLOP/s")
    print(f"images/s, float32, {threads} thread(s); ratio = netsharp / torch; GFLOP/s of "
          f"netsharp\n")
    header = f"{'network':<14} {'batch':>5} | {'train ns':>9} {'torch':>9} {'ratio':>6} " \
             f"{'GF/s':>5} | {'infer ns':>10} {'torch':>10} {'ratio':>6} {'GF/s':>5}"
    print(header + "\n" + "-" * len(header))
    worst, met, goals = float("inf"), 0, 0
    for (name, batch), ((train, infer), (torch_train, torch_infer)) in results.items():
        train_flops, infer_flops = gflops(name)
        worst = min(worst, train / torch_train, infer / torch_infer)
        if batch in GOALS:
            goals += 2
            met += sum(ratio >= goal for ratio, goal in
                       zip((train / torch_train, infer / torch_infer), GOALS[batch]))
        print(f"{name:<14} {batch:>5} | {train:>9,.0f} {torch_train:>9,.0f} "
              f"{train / torch_train:>6.2f} {train * train_flops:>5.1f} | {infer:>10,.0f} "
              f"{torch_infer:>10,.0f} {infer / torch_infer:>6.2f} {infer * infer_flops:>5.1f}")
    print(f"\nworst ratio: {worst:.2f}; issue 5's goals met: {met} of {goals}")


if __name__ == "__main__":
    main()
