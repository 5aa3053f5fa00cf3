"""Losses, chosen from the task and the output layer; each returns (mean loss, dL/dz_output).

Plain numpy, which serves both executors; with fused=True (the numba backend) softmax
cross-entropy on float32 is one numba pass instead (activations.softmax_cross_entropy, imported
when first used: this module loads no numba, so neither does the model module), 3-16 us where
numpy's dozen calls took 25-75.
- multiclass (or a multi-node two-class output): softmax cross-entropy; a softmax layer's
  outputs are its probabilities, any other output function's outputs are taken as logits.
- binary with one output node: log loss; a sigmoid node's output is its probability, any
  other output is taken as a logit.
- regression: squared error, 1/2 sum over output nodes, averaged over samples.
"""

from __future__ import annotations

import numpy as np

from ..reference import activate_backward


def loss_kind(task: str, nodes: int) -> str:
    if task == "regression":
        return "squared"
    return "log" if nodes == 1 else "cross_entropy"


def loss_and_grad(kind: str, activation: str, z, y, target,
                  denominator: int | None = None, fused: bool = False) -> tuple[float, np.ndarray]:
    """`target` is (batch, nodes): one-hot rows, probabilities, 0/1 or real values. The loss
    and gradient are sums over the rows divided by `denominator` (default: the row count; a
    part of a batch passes the whole batch's size). fused: the numba kernel where there is
    one (the reference backend keeps to numpy)."""
    batch = denominator or z.shape[0]
    if kind == "squared":
        diff = y - target
        return 0.5 * float((diff.astype(np.float64) ** 2).sum()) / batch, \
            activate_backward(activation, z, y, diff / batch)
    direct = activation == ("sigmoid" if kind == "log" else "softmax")
    if fused and direct and kind == "cross_entropy" and z.dtype == np.float32:
        from .activations import softmax_cross_entropy

        z, dz = np.ascontiguousarray(z), np.empty(z.shape, np.float32)
        target = np.ascontiguousarray(target, np.float32)
        loss = softmax_cross_entropy(z.reshape(-1), target.reshape(-1), z.shape[1], batch,
                                     dz.reshape(-1))
        return loss, dz
    logits = z if direct else y
    if kind == "log":
        loss = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
        grad = (1 / (1 + np.exp(-logits)) - target) / batch
    else:
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -(target * log_p)
        grad = (np.exp(log_p) - target) / batch
    total = float(loss.astype(np.float64).sum()) / batch
    if direct:
        return total, grad.astype(z.dtype)
    return total, activate_backward(activation, z, y, grad.astype(z.dtype))
