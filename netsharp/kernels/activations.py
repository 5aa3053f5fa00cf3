"""Layer bias and output function, fused: y = f(z + bias); and dL/dz from dL/dy.

The function is chosen by an integer code (lower.ACTIVATION_CODES) once per row, outside the
inner loop, so each inner loop stays a simple vectorisable pass.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit, prange

LINEAR, SIGMOID, SOFTMAX, RLINEAR, SQUARE, SQRT, SRLINEAR, ABS, TANH, BRLINEAR = range(10)


@jit
def _softmax_row(z, y):
    top = z.max()
    total = 0.0
    for j in range(z.size):
        y[j] = math.exp(z[j] - top)
        total += y[j]
    scale = 1.0 / total
    for j in range(z.size):
        y[j] *= scale


@jit(parallel=True)
def forward(z, bias, code, y):
    """z += bias (when bias.size), then y = f(z); y may be z itself."""
    n = z.shape[1]
    for b in prange(z.shape[0]):
        zb, yb = z[b], y[b]
        if bias.size:
            for j in range(n):
                zb[j] += bias[j]
        if code == SOFTMAX:
            _softmax_row(zb, yb)
            continue
        for j in range(n):
            v = zb[j]
            if code == SIGMOID:
                yb[j] = 1.0 / (1.0 + np.exp(-v))
            elif code == RLINEAR:
                yb[j] = max(v, 0.0)
            elif code == SQUARE:
                yb[j] = v * v
            elif code == SQRT:
                yb[j] = math.sqrt(max(v, 0.0))
            elif code == SRLINEAR:
                yb[j] = max(v, 0.0) + math.log1p(math.exp(-abs(v)))
            elif code == ABS:
                yb[j] = abs(v)
            elif code == TANH:
                yb[j] = math.tanh(v)
            elif code == BRLINEAR:
                yb[j] = min(max(v, 0.0), 1.0)
            else:
                yb[j] = v


@jit(parallel=True)
def backward(z, y, dy, code, dz):
    """dz = dy * f'(z) (softmax: its Jacobian); dz may be dy itself. Kinks have slope 0."""
    n = z.shape[1]
    for b in prange(z.shape[0]):
        zb, yb, dyb, dzb = z[b], y[b], dy[b], dz[b]
        if code == SOFTMAX:
            dot = 0.0
            for j in range(n):
                dot += dyb[j] * yb[j]
            for j in range(n):
                dzb[j] = yb[j] * (dyb[j] - dot)
            continue
        for j in range(n):
            v, out, g = zb[j], yb[j], dyb[j]
            if code == SIGMOID:
                dzb[j] = g * out * (1.0 - out)
            elif code == RLINEAR:
                dzb[j] = g if v > 0 else 0.0
            elif code == SQUARE:
                dzb[j] = 2.0 * g * v
            elif code == SQRT:
                dzb[j] = g / (2.0 * out) if v > 0 and out > 0 else 0.0
            elif code == SRLINEAR:
                dzb[j] = g / (1.0 + math.exp(-v))
            elif code == ABS:
                dzb[j] = g if v > 0 else (-g if v < 0 else 0.0)
            elif code == TANH:
                dzb[j] = g * (1.0 - out * out)
            elif code == BRLINEAR:
                dzb[j] = g if 0 < v < 1 else 0.0
            else:
                dzb[j] = g
