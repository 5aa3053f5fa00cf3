"""Optimizer updates on flat float32 views: one fused pass over each parameter."""

from __future__ import annotations

import math

from .jit import jit


@jit
def sgd_update(p, g, velocity, lr, momentum, decay, nesterov):
    """v = mu v - lr (g + wd p); p += v, or with Nesterov p += mu v - lr (g + wd p)."""
    for i in range(p.size):
        step = g[i] + decay * p[i]
        v = momentum * velocity[i] - lr * step
        velocity[i] = v
        p[i] += momentum * v - lr * step if nesterov else v


@jit
def adam_update(p, g, m, v, lr, beta1, beta2, eps, decay, t):
    """Adam (Kingma & Ba) with L2 weight decay folded into the gradient; t counts from 1."""
    scale = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    for i in range(p.size):
        step = g[i] + decay * p[i]
        m[i] = beta1 * m[i] + (1 - beta1) * step
        v[i] = beta2 * v[i] + (1 - beta2) * step * step
        p[i] -= scale * m[i] / (math.sqrt(v[i]) + eps)
