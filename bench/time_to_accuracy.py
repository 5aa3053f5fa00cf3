"""Wall time to a Fashion-MNIST test accuracy: netsharp against PyTorch CPU, same recipe.

    python bench/time_to_accuracy.py                    # both networks, about 15 minutes
    python bench/time_to_accuracy.py --networks lenet --max-epochs 15

The recipe (issue 5): Adam, learning rate 0.001, batch 64, the 60,000 training images scaled
to [0, 1] and shuffled every epoch, the full 10,000-image test set evaluated after every
epoch; each framework's own default initialisation; 2 threads, float32. A run stops at the
first epoch whose test accuracy reaches the target (cntk103d_pool 89%, lenet 90%) or after
--max-epochs. The clock starts after the data is in memory and counts everything after it:
building the model (netsharp compiles its kernels, cached on disk after the first run),
training and the evaluations. Each framework runs in its own process (their thread pools
spin against each other in one), one after the other; --order picks who goes first.
PyTorch is imported lazily: `pip install torch` to run this.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import netsharp  # noqa: E402  (before numpy, as in the CLI)
import numpy as np  # noqa: E402
from throughput import refuse_unfair_torch, torch_network, use_threads  # noqa: E402

TARGETS = {"cntk103d_pool": 0.89, "lenet": 0.90}
BATCH, LR = 64, 1e-3


def fashion() -> tuple:
    from netsharp.data.datasets import fashion_mnist

    data = fashion_mnist()  # x scaled to [0, 1], float32
    return (np.ascontiguousarray(data.x_train, np.float32), data.y_train,
            np.ascontiguousarray(data.x_test, np.float32), data.y_test)


def run_netsharp(name: str, target: float, max_epochs: int, seed: int, report) -> None:
    from netsharp.model import Model

    x, y, x_test, y_test = fashion()
    start = time.perf_counter()
    model = Model(netsharp.compile_file(ROOT / "samples" / f"{name}.ns"), seed=seed)

    def on_epoch(record: dict):
        accuracy = model.evaluate(x_test, y_test)["accuracy"]
        report(record["epoch"], accuracy, time.perf_counter() - start)
        return accuracy < target

    model.fit(x, y, epochs=max_epochs, batch_size=BATCH, optimizer="adam", lr=LR,
              on_epoch=on_epoch)


def run_torch(name: str, target: float, max_epochs: int, seed: int, report) -> None:
    import torch

    x, y, x_test, y_test = fashion()
    images, labels = torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(y)
    test_images, test_labels = torch.from_numpy(x_test.reshape(-1, 1, 28, 28)), \
        torch.from_numpy(y_test)
    start = time.perf_counter()
    torch.manual_seed(seed)
    net = torch_network(name)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(1, max_epochs + 1):
        net.train()
        for rows in torch.randperm(len(images)).split(BATCH):
            optimizer.zero_grad()
            loss_fn(net(images[rows]), labels[rows]).backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            correct = sum(int((net(test_images[i:i + 256]).argmax(1) ==
                               test_labels[i:i + 256]).sum())
                          for i in range(0, len(test_images), 256))
        accuracy = correct / len(test_images)
        report(epoch, accuracy, time.perf_counter() - start)
        if accuracy >= target:
            return


def worker(args) -> None:
    if args.worker == "torch":
        refuse_unfair_torch()
    use_threads(args.worker, args.threads)

    def report(epoch: int, accuracy: float, seconds: float) -> None:
        print(json.dumps({"epoch": epoch, "accuracy": accuracy, "seconds": seconds}), flush=True)

    run = run_netsharp if args.worker == "netsharp" else run_torch
    run(args.network, TARGETS[args.network], args.max_epochs, args.seed, report)


def measure(framework: str, name: str, args) -> list[dict]:
    command = [sys.executable, __file__, "--worker", framework, "--network", name,
               "--max-epochs", str(args.max_epochs), "--seed", str(args.seed),
               "--threads", str(args.threads)]
    epochs = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            epochs.append(json.loads(line))
            e = epochs[-1]
            print(f"  {framework:8s} {name:14s} epoch {e['epoch']:2d}  "
                  f"{100 * e['accuracy']:.2f}%  {e['seconds']:7.1f} s", flush=True)
    if process.returncode:
        raise SystemExit(f"the {framework} worker failed")
    return epochs


def summary(name: str, framework: str, epochs: list[dict]) -> str:
    target = TARGETS[name]
    reached = next((e for e in epochs if e["accuracy"] >= target), None)
    best = max(e["accuracy"] for e in epochs)
    if reached is None:
        return (f"{name:14s} {framework:8s} not reached in {len(epochs)} epochs "
                f"(best {100 * best:.2f}%, {epochs[-1]['seconds']:.1f} s)")
    return (f"{name:14s} {framework:8s} {100 * target:.0f}% at epoch {reached['epoch']:2d}: "
            f"{reached['seconds']:7.1f} s  ({100 * reached['accuracy']:.2f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--order", choices=("netsharp", "torch"), default="netsharp",
                        help="which framework trains first on each network")
    parser.add_argument("--worker", choices=("netsharp", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--network", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    order = ["netsharp", "torch"] if args.order == "netsharp" else ["torch", "netsharp"]
    results = {(name, f): measure(f, name, args) for name in args.networks for f in order}
    print(f"\nwall time to the target test accuracy (Adam {LR}, batch {BATCH}, "
          f"{args.threads} threads, seed {args.seed}):")
    for (name, framework), epochs in results.items():
        print("  " + summary(name, framework, epochs))


if __name__ == "__main__":
    main()
