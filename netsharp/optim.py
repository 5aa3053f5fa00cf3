"""Optimizers: mini-batch SGD (momentum, Nesterov, weight decay) and Adam, with a step schedule.

A config is a frozen dataclass; its mutable state (velocities, moments, step count) lives in an
`OptimizerState` that the model owns, so a config can be reused and saved as plain JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class _Schedule:
    lr: float
    weight_decay: float = 0.0
    lr_decay: float = 1.0        # ratio: the rate is multiplied by it ...
    lr_decay_every: int = 0      # ... every this many epochs (0: never)

    def learning_rate(self, epoch: int) -> float:
        """The rate for a 0-based epoch."""
        if self.lr_decay_every <= 0:
            return self.lr
        return self.lr * self.lr_decay ** (epoch // self.lr_decay_every)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SGD(_Schedule):
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    name: str = field(default="sgd", init=False)
    slots = 1

    def step(self, params: dict, grads: dict, state: OptimizerState, lr: float) -> None:
        from .kernels.update import sgd_update

        for name, p in params.items():
            sgd_update(p.reshape(-1), grads[name].reshape(-1), state.slots[name][0].reshape(-1),
                       lr, self.momentum, self.weight_decay, self.nesterov)


@dataclass(frozen=True)
class Adam(_Schedule):
    lr: float = 0.001
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name: str = field(default="adam", init=False)
    slots = 2

    def __post_init__(self):
        # the update divides by 1 - beta^t and by sqrt(v) + eps: out of range, the weights
        # would turn inf or NaN without a word
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's beta1 and beta2 must be in [0, 1), not {self.beta1} "
                             f"and {self.beta2}")
        if not self.eps > 0:
            raise ValueError(f"Adam's eps must be above 0, not {self.eps}")

    def step(self, params: dict, grads: dict, state: OptimizerState, lr: float) -> None:
        from .kernels.update import adam_update

        state.t += 1
        for name, p in params.items():
            m, v = state.slots[name]
            adam_update(p.reshape(-1), grads[name].reshape(-1), m.reshape(-1), v.reshape(-1),
                        lr, self.beta1, self.beta2, self.eps, self.weight_decay, state.t)


Optimizer = SGD | Adam
OPTIMIZERS = {"sgd": SGD, "adam": Adam}


class OptimizerState:
    """Per-parameter slots (velocity; or first and second moments) and the step count."""

    def __init__(self, optimizer: Optimizer, params: dict):
        self.t = 0
        self.slots = {name: tuple(np.zeros_like(p) for _ in range(optimizer.slots))
                      for name, p in params.items()}


def make_optimizer(optimizer: str | Optimizer = "sgd", **options) -> Optimizer:
    """A config from a name and keyword options (None values mean: the default)."""
    options = {k: v for k, v in options.items() if v is not None}
    if not isinstance(optimizer, str):
        return optimizer
    try:
        kind = OPTIMIZERS[optimizer.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of "
                         f"{', '.join(OPTIMIZERS)}") from None
    known = set(kind.__dataclass_fields__) - {"name"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"{optimizer} takes no option(s) {', '.join(sorted(unknown))}; "
                        f"it takes {', '.join(sorted(known))}")
    return kind(**options)
