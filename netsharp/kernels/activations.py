"""Layer bias and output function, fused: y = f(z + bias); and dL/dz from dL/dy.

The function is chosen by an integer code (lower.ACTIVATION_CODES) once per row, outside the
inner loop, so each inner loop stays a simple vectorisable pass.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit, prange

LINEAR, SIGMOID, SOFTMAX, RLINEAR, SQUARE, SQRT, SRLINEAR, ABS, TANH, BRLINEAR = range(10)

# float32 constants: a float64 literal in a select made rlinear's in-place backward scalar and
# 8x slower (12 ms instead of 1.6 ms for 256 x 6272 values).
ZERO, ONE = np.float32(0.0), np.float32(1.0)


@jit
def _softmax_row(z, y):
    top = z[0]
    for j in range(1, z.size):  # not z.max(), whose numba version compiles for 0.5 s
        top = max(top, z[j])
    total = 0.0
    for j in range(z.size):
        y[j] = math.exp(z[j] - top)
        total += y[j]
    scale = 1.0 / total
    for j in range(z.size):
        y[j] *= scale


@jit
def _activate(code, z, y):
    """y = f(z) over one row: one loop per function, so that each loop vectorises (a test of
    the code per element measured 3-4x slower on rlinear)."""
    if code == SIGMOID:
        for j in range(z.size):
            y[j] = ONE / (ONE + np.exp(-z[j]))
    elif code == RLINEAR:
        for j in range(z.size):
            y[j] = max(z[j], ZERO)
    elif code == SQUARE:
        for j in range(z.size):
            y[j] = z[j] * z[j]
    elif code == SQRT:
        for j in range(z.size):
            y[j] = math.sqrt(max(z[j], 0.0))
    elif code == SRLINEAR:
        for j in range(z.size):
            y[j] = max(z[j], 0.0) + math.log1p(math.exp(-abs(z[j])))
    elif code == ABS:
        for j in range(z.size):
            y[j] = abs(z[j])
    elif code == TANH:
        for j in range(z.size):
            y[j] = math.tanh(z[j])
    elif code == BRLINEAR:
        for j in range(z.size):
            y[j] = min(max(z[j], 0.0), 1.0)
    else:
        for j in range(z.size):
            y[j] = z[j]


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
        else:
            _activate(code, zb, yb)


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
        if code == RLINEAR:  # the common functions get loops of their own, which vectorise
            for j in range(n):
                g = dyb[j]
                dzb[j] = g if zb[j] > ZERO else ZERO
            continue
        if code == SIGMOID:
            for j in range(n):
                out, g = yb[j], dyb[j]
                dzb[j] = g * out * (ONE - out)
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


# From this many values on, sigmoid's forward goes through numpy (its calls cost a few
# microseconds each, more than numba's scalar expf on a small batch).
NUMPY_SIGMOID = 1 << 12


def sigmoid_forward(z, bias, y):
    """The forward of sigmoid through numpy, whose float32 exp is vectorised: numba calls a
    scalar expf per element (about 7 ns; basic_conv's sigmoid layers took 40% of inference)."""
    if bias.size:
        z += bias
    with np.errstate(over="ignore", under="ignore"):  # exp(-z) = inf below -88: y = 0
        np.negative(z, out=y)
        np.exp(y, out=y)
    y += ONE
    np.reciprocal(y, out=y)
