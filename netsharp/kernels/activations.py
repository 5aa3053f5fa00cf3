"""Layer bias and output function, fused: y = f(z + bias); and dL/dz from dL/dy.

The function is chosen by an integer code (lower.ACTIVATION_CODES) once per row, outside the
inner loop, so each inner loop stays a simple vectorisable pass.

exp (sigmoid, softmax, the softmax loss) is computed by exp_row below: numba calls a scalar expf
per value (8-11 ns), which no loop around it vectorises; exp_row's arithmetic vectorises (0.6
ns a value, numpy's own exp 0.65), within 1.2 ulp of exp on [-86, 88] (numpy's float32 exp:
3.3); 0 below, inf above, NaN for NaN.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit, prange

LINEAR, SIGMOID, SOFTMAX, RLINEAR, SQUARE, SQRT, SRLINEAR, ABS, TANH, BRLINEAR = range(10)

# float32 constants: a float64 literal in a select made rlinear's in-place backward scalar and
# 8x slower (12 ms instead of 1.6 ms for 256 x 6272 values).
ZERO, ONE = np.float32(0.0), np.float32(1.0)

# exp_row: x = k ln2 + r with |r| <= ln2 / 2, e^r by Cephes' expf polynomial, 2^k added to the
# result's exponent bits (so x is clamped to [-86, 88], where 2^k is a normal float's). Beyond:
# 0 below -86 and inf above 88, as float32's exp nearly gives; NaN stays NaN. (A floor at e^-86
# made a confident softmax's gradients denormal, and lenet's batch-1 training 5x slower.)
_EXP_LOW, _EXP_HIGH = np.float32(-86.0), np.float32(88.0)
_INF = np.float32(np.inf)
_LOG2E, _LN2_HIGH, _LN2_LOW = np.float32(1.4426950408889634), np.float32(0.693359375), \
    np.float32(-2.12194440e-4)
_ROUND = np.float32(12582912.0)   # 1.5 * 2^23: adding and subtracting it rounds to an integer
_P0, _P1, _P2, _P3, _P4, _P5 = (np.float32(c) for c in (
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
    5.0000001201e-1))


@jit
def exp_row(x, y, sign):
    """y = exp(sign * x) over a contiguous row (y may be x)."""
    bits = y.view(np.int32)
    for j in range(x.size):
        u = sign * x[j]
        v = min(max(u, _EXP_LOW), _EXP_HIGH)
        k = (v * _LOG2E + _ROUND) - _ROUND
        r = v - k * _LN2_HIGH - k * _LN2_LOW
        p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
        y[j] = p * r * r + r + ONE
        bits[j] += np.int32(k) << 23
        y[j] = ZERO if u < _EXP_LOW else (_INF if u > _EXP_HIGH else (y[j] if u == u else u))


@jit
def _shifted_exp(z, y):
    """y = exp(z - max(z)) over a row; returns (max(z), the sum of y in float64): softmax's
    and its cross-entropy's shared part."""
    top = z[0]
    for j in range(1, z.size):  # not z.max(), whose numba version compiles for 0.5 s
        top = max(top, z[j])
    for j in range(z.size):
        y[j] = z[j] - top
    exp_row(y, y, ONE)
    total = 0.0
    for j in range(z.size):
        total += y[j]
    return top, total


@jit
def _softmax_row(z, y):
    total = _shifted_exp(z, y)[1]
    scale = 1.0 / total
    for j in range(z.size):
        y[j] *= scale


@jit
def _activate(code, z, y):
    """y = f(z) over one row: one loop per function, so that each loop vectorises (a test of
    the code per element measured 3-4x slower on rlinear)."""
    if code == SIGMOID:
        exp_row(z, y, -ONE)
        for j in range(z.size):
            y[j] = ONE / (ONE + y[j])
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


@jit
def softmax_cross_entropy(z, target, denominator, dz):
    """The numpy branch's softmax cross-entropy from the logits z: returns the loss summed
    over rows / denominator (float64 sums), and fills dz = (p - target) / denominator.
    With log p = z - top - log(sum exp(z - top)), the loss needs one exp per value."""
    total, scale = 0.0, np.float32(1.0 / denominator)
    for b in range(z.shape[0]):
        zb, tb, db = z[b], target[b], dz[b]
        top, sum_exp = _shifted_exp(zb, db)
        inverse = np.float32(1.0 / sum_exp)
        weights, dot = 0.0, 0.0
        for j in range(zb.size):
            weights += tb[j]
            dot += tb[j] * (zb[j] - top)
            db[j] = (db[j] * inverse - tb[j]) * scale
        total += weights * math.log(sum_exp) - dot
    return total / denominator
