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
def _exp_parts(u):
    """e^u for u in [-86, 88] as (m, e): u = k ln2 + r, m = e^r, e = k shifted to a float32's
    exponent bits (the caller adds e to m's bits: 2^k without a power)."""
    v = min(max(u, _EXP_LOW), _EXP_HIGH)
    k = (v * _LOG2E + _ROUND) - _ROUND
    r = v - k * _LN2_HIGH - k * _LN2_LOW
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    return p * r * r + r + ONE, np.int32(k) << 23


@jit
def exp_row(x, y, sign):
    """y = exp(sign * x) over a contiguous row. y may be x, but then LLVM's overlap test fails
    and the loop runs scalar (5-10x slower): in place, call exp_in_place."""
    bits = y.view(np.int32)
    for j in range(x.size):
        u = sign * x[j]
        y[j], exponent = _exp_parts(u)
        bits[j] += exponent
        y[j] = ZERO if u < _EXP_LOW else (_INF if u > _EXP_HIGH else (y[j] if u == u else u))


_IN_PLACE_BLOCK = 1024


@jit
def exp_in_place(y, sign):
    """y = exp(sign * y), a block at a time through a copy, so that exp_row's loop vectorises."""
    copy = np.empty(min(y.size, _IN_PLACE_BLOCK), y.dtype)
    for start in range(0, y.size, _IN_PLACE_BLOCK):
        stop = min(start + _IN_PLACE_BLOCK, y.size)
        block = copy[:stop - start]
        block[:] = y[start:stop]
        exp_row(block, y[start:stop], sign)


@jit
def _shift_by_max(z, y):
    """y = z - max(z) over a row; returns the max (not z.max(), whose numba version compiles
    for 0.5 s)."""
    top = z[0]
    for j in range(1, z.size):
        top = max(top, z[j])
    for j in range(z.size):
        y[j] = z[j] - top
    return top


@jit
def _row_sum(y):
    total = 0.0
    for j in range(y.size):
        total += y[j]
    return total


@jit
def _softmax_rows(z, y):
    """Softmax of each row of z into y: the shifts row by row, one exp over them all (rows of
    10 are all epilogue for a vectorised loop), the sums row by row."""
    for b in range(z.shape[0]):
        _shift_by_max(z[b], y[b])
    exp_in_place(y.reshape(-1), ONE)
    for b in range(z.shape[0]):
        scale = np.float32(1.0 / _row_sum(y[b]))
        for j in range(z.shape[1]):
            y[b, j] *= scale


@jit
def _activate(code, z, y):
    """y = f(z) over a contiguous run (rows one after another): one loop per function, so that
    each loop vectorises (a test of the code per element measured 3-4x slower on rlinear)."""
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


# Row blocks a parallel activation is cut into: whole rows each, so that elementwise functions
# run over one contiguous run per block (rows of 10 or 100 alone leave most of a vectorised
# loop to its scalar remainder: sigmoid over 256 x 100 took 55 us that way, 20 as one run).
_BLOCKS = 8


@jit
def _blocks(rows):
    return min(rows, _BLOCKS)


@jit(parallel=True)
def forward(z, bias, code, y):
    """z += bias (when bias.size), then y = f(z); y may be z itself. z and y C-contiguous."""
    rows, blocks = z.shape[0], _blocks(z.shape[0])
    for block in prange(blocks):
        lo, hi = rows * block // blocks, rows * (block + 1) // blocks
        zb, yb = z[lo:hi], y[lo:hi]
        if bias.size:
            for b in range(hi - lo):
                for j in range(bias.size):
                    zb[b, j] += bias[j]
        if code == SOFTMAX:
            _softmax_rows(zb, yb)
        else:
            _activate(code, zb.reshape(-1), yb.reshape(-1))


@jit
def _softmax_backward_rows(y, grad):
    """grad = softmax's Jacobian times grad, row by row, in place."""
    for b in range(y.shape[0]):
        yb, gb = y[b], grad[b]
        dot = 0.0
        for j in range(yb.size):
            dot += gb[j] * yb[j]
        for j in range(yb.size):
            gb[j] = yb[j] * (gb[j] - dot)


@jit
def _derivative_times(code, z, y, grad):
    """grad *= f'(z) over a contiguous run, in place (one array for dL/dy in and dL/dz out: with
    two, LLVM's overlap test fails when they are one and the loop runs scalar). Kinks: slope 0."""
    if code == RLINEAR:
        for j in range(z.size):
            grad[j] = grad[j] if z[j] > ZERO else ZERO
    elif code == SIGMOID:
        for j in range(z.size):
            grad[j] = grad[j] * y[j] * (ONE - y[j])
    elif code == SQUARE:
        for j in range(z.size):
            grad[j] *= 2.0 * z[j]
    elif code == SQRT:
        for j in range(z.size):
            grad[j] = grad[j] / (2.0 * y[j]) if z[j] > 0 and y[j] > 0 else 0.0
    elif code == SRLINEAR:
        for j in range(z.size):
            grad[j] /= 1.0 + math.exp(-z[j])
    elif code == ABS:
        for j in range(z.size):
            grad[j] = grad[j] if z[j] > 0 else (-grad[j] if z[j] < 0 else 0.0)
    elif code == TANH:
        for j in range(z.size):
            grad[j] *= 1.0 - y[j] * y[j]
    elif code == BRLINEAR:
        for j in range(z.size):
            grad[j] = grad[j] if 0 < z[j] < 1 else 0.0


@jit(parallel=True)
def backward(z, y, grad, code):
    """grad = dL/dz from grad = dL/dy, in place (softmax: its Jacobian). C-contiguous arrays."""
    rows, blocks = z.shape[0], _blocks(z.shape[0])
    for block in prange(blocks):
        lo, hi = rows * block // blocks, rows * (block + 1) // blocks
        if code == SOFTMAX:
            _softmax_backward_rows(y[lo:hi], grad[lo:hi])
        else:
            _derivative_times(code, z[lo:hi].reshape(-1), y[lo:hi].reshape(-1),
                              grad[lo:hi].reshape(-1))


@jit
def softmax_cross_entropy(z, target, denominator, dz):
    """The numpy branch's softmax cross-entropy from the logits z: returns the loss summed
    over rows / denominator (float64 sums), and fills dz = (p - target) / denominator.
    With log p = z - top - log(sum exp(z - top)), the loss needs one exp per value; as in
    _softmax_rows, one exp over all rows."""
    total, scale = 0.0, np.float32(1.0 / denominator)
    for b in range(z.shape[0]):
        _shift_by_max(z[b], dz[b])
        for j in range(z.shape[1]):
            total -= target[b, j] * dz[b, j]
    exp_in_place(dz.reshape(-1), ONE)
    for b in range(z.shape[0]):
        tb, db = target[b], dz[b]
        sum_exp = _row_sum(db)
        inverse, weights = np.float32(1.0 / sum_exp), 0.0
        for j in range(db.size):
            weights += tb[j]
            db[j] = (db[j] * inverse - tb[j]) * scale
        total += weights * math.log(sum_exp)
    return total / denominator
