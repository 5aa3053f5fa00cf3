"""Layer bias and output function, fused: y = f(z + bias); and dL/dz from dL/dy.

Each output function has kernels of its own (lower.ACTIVATION_CODES numbers them), each inner
loop a simple vectorisable pass over a block of rows as one flat run (softmax alone works row
by row: its max and sums are per row).

The sigmoid's exp is computed by exp_row below: numba calls a scalar expf per value (8-11 ns),
which no loop around it vectorises; exp_row's arithmetic vectorises (0.6 ns a value, numpy's
own exp 0.65), within 1.2 ulp of exp on [-86, 88] (numpy's float32 exp: 3.3); 0 below, inf
above, NaN for NaN. Softmax rows, short output layers, keep the scalar expf."""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from .jit import jit, prange, renamed

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
        block, source = copy[:stop - start], y[start:stop]
        for j in range(block.size):  # not block[:] = source: numba compiles that for 3 s
            block[j] = source[j]
        exp_row(block, source, sign)


@jit
def _softmax_rows(z, y, nodes):
    """Softmax of each row (`nodes` values) of the flat run z into y, by indexes (a slice
    per row: rows of 10 spent most of their time making slices). A scalar exp (expf, 8-11
    ns a value): output rows are short, 64 rows of 10 take 6 us, where exp_row's chain of
    kernels took 3 s to compile."""
    for start in range(0, z.size, nodes):
        top = z[start]
        for j in range(start + 1, start + nodes):  # not z.max(): 0.5 s more to compile
            top = max(top, z[j])
        total = 0.0
        for j in range(start, start + nodes):
            y[j] = math.exp(z[j] - top)
            total += y[j]
        scale = np.float32(1.0 / total)
        for j in range(start, start + nodes):
            y[j] *= scale


@jit
def _softmax_block(z, y, nodes):
    """_softmax_rows for a block of rows where exp_row is compiled anyway (kernels.chain's
    activate_flat): each row less its max into y, one exp_row over the whole block (its
    vectorised exp: 0.9 us for 64 rows of 10 against 6-12 for expf), then each row scaled."""
    shifted = np.empty(z.size, np.float32)
    for start in range(0, z.size, nodes):
        top = z[start]
        for j in range(start + 1, start + nodes):
            top = max(top, z[j])
        for j in range(start, start + nodes):
            shifted[j] = z[j] - top
    exp_row(shifted, y, ONE)
    for start in range(0, z.size, nodes):
        total = 0.0
        for j in range(start, start + nodes):
            total += y[j]
        scale = np.float32(1.0 / total)
        for j in range(start, start + nodes):
            y[j] *= scale


# One small kernel per elementwise function, each one vectorisable loop over a contiguous run
# (rows one after another): a test of the function per element measured 3-4x slower.

@jit
def _sigmoid(z, y):
    exp_row(z, y, -ONE)
    for j in range(z.size):
        y[j] = ONE / (ONE + y[j])


@jit
def _rlinear(z, y):
    for j in range(z.size):
        y[j] = max(z[j], ZERO)


@jit
def _square(z, y):
    for j in range(z.size):
        y[j] = z[j] * z[j]


@jit
def _sqrt(z, y):
    for j in range(z.size):
        y[j] = math.sqrt(max(z[j], 0.0))


@jit
def _srlinear(z, y):
    for j in range(z.size):
        y[j] = max(z[j], 0.0) + math.log1p(math.exp(-abs(z[j])))


@jit
def _abs(z, y):
    for j in range(z.size):
        y[j] = abs(z[j])


@jit
def _tanh(z, y):
    for j in range(z.size):
        y[j] = math.tanh(z[j])


@jit
def _brlinear(z, y):
    for j in range(z.size):
        y[j] = min(max(z[j], 0.0), 1.0)


@jit
def _linear(z, y):
    for j in range(z.size):
        y[j] = z[j]


# Row blocks a parallel activation is cut into: whole rows each, so that elementwise functions
# run over one contiguous run per block (rows of 10 or 100 alone leave most of a vectorised
# loop to its scalar remainder: sigmoid over 256 x 100 took 55 us that way, 20 as one run).
# The kernels take flat views (rows one after another) and the row length: slicing and
# reshaping 2-D arrays inside them tripled numba's compile time.
_BLOCKS = 8
NAMES = ("linear", "sigmoid", "softmax", "rlinear", "square", "sqrt", "srlinear", "abs", "tanh",
         "brlinear")


def forward(z, nodes, bias, code, y):
    """z += bias (when bias.size), then y = f(z), over flat rows of `nodes` values; y may be
    z itself. f is the output function numbered `code` (lower.ACTIVATION_CODES)."""
    _forward_kernel(code)(z, nodes, bias, y)


def backward(z, nodes, y, grad, code):
    """grad = dL/dz from grad = dL/dy, in place (softmax: its Jacobian), over flat rows of
    `nodes` values; kinks have slope 0. In place on one array for dL/dy in and dL/dz out:
    with two, LLVM's overlap test fails when they are one and the loops run scalar."""
    _backward_kernel(code)(z, nodes, y, grad)


# A kernel per output function: `code` is a constant of each kernel's closure, so numba drops
# the other functions' branches before compiling (a kernel for all ten took 5.3 s to compile
# forward and 1.5 s backward; a network uses two or three of them). numba's disk cache keys a
# closure by its constants; each kernel also has its own name, hence its own cache file.

@jit
def activate_flat(code, z, y, nodes):
    """y = f(z) over flat rows of `nodes` values, f the output function numbered `code` at
    run time (kernels.chain: a layer number's code). _forward_kernel keeps its own branches,
    on a constant code, so that numba compiles only its function's."""
    if code == SOFTMAX:
        _softmax_block(z, y, nodes)
    elif code == SIGMOID:
        _sigmoid(z, y)
    elif code == RLINEAR:
        _rlinear(z, y)
    elif code == SQUARE:
        _square(z, y)
    elif code == SQRT:
        _sqrt(z, y)
    elif code == SRLINEAR:
        _srlinear(z, y)
    elif code == ABS:
        _abs(z, y)
    elif code == TANH:
        _tanh(z, y)
    elif code == BRLINEAR:
        _brlinear(z, y)
    else:
        _linear(z, y)


@cache
def _forward_kernel(code: int):
    def forward(z, nodes, bias, y):
        rows = z.size // nodes
        blocks = min(rows, _BLOCKS)
        for block in prange(blocks):
            lo, hi = rows * block // blocks * nodes, rows * (block + 1) // blocks * nodes
            zb, yb = z[lo:hi], y[lo:hi]
            if bias.size:
                for start in range(0, hi - lo, nodes):
                    row = zb[start:start + nodes]
                    for j in range(nodes):
                        row[j] += bias[j]
            if code == SOFTMAX:
                _softmax_rows(zb, yb, nodes)
            elif code == SIGMOID:
                _sigmoid(zb, yb)
            elif code == RLINEAR:
                _rlinear(zb, yb)
            elif code == SQUARE:
                _square(zb, yb)
            elif code == SQRT:
                _sqrt(zb, yb)
            elif code == SRLINEAR:
                _srlinear(zb, yb)
            elif code == ABS:
                _abs(zb, yb)
            elif code == TANH:
                _tanh(zb, yb)
            elif code == BRLINEAR:
                _brlinear(zb, yb)
            else:
                _linear(zb, yb)

    return jit(renamed(forward, "_" + NAMES[code]), parallel=True)


@cache
def _backward_kernel(code: int):
    def backward(z, nodes, y, grad):
        rows = z.size // nodes
        blocks = min(rows, _BLOCKS)
        for block in prange(blocks):
            lo, hi = rows * block // blocks * nodes, rows * (block + 1) // blocks * nodes
            zb, yb, gb = z[lo:hi], y[lo:hi], grad[lo:hi]
            if code == SOFTMAX:
                for start in range(0, hi - lo, nodes):
                    dot = 0.0
                    for j in range(start, start + nodes):
                        dot += gb[j] * yb[j]
                    for j in range(start, start + nodes):
                        gb[j] = yb[j] * (gb[j] - dot)
            elif code == RLINEAR:
                for j in range(zb.size):
                    gb[j] = gb[j] if zb[j] > ZERO else ZERO
            elif code == SIGMOID:
                for j in range(zb.size):
                    gb[j] = gb[j] * yb[j] * (ONE - yb[j])
            elif code == SQUARE:
                for j in range(zb.size):
                    gb[j] *= 2.0 * zb[j]
            elif code == SQRT:
                for j in range(zb.size):
                    gb[j] = gb[j] / (2.0 * yb[j]) if zb[j] > 0 and yb[j] > 0 else 0.0
            elif code == SRLINEAR:
                for j in range(zb.size):
                    gb[j] /= 1.0 + math.exp(-zb[j])
            elif code == ABS:
                for j in range(zb.size):
                    gb[j] = gb[j] if zb[j] > 0 else (-gb[j] if zb[j] < 0 else 0.0)
            elif code == TANH:
                for j in range(zb.size):
                    gb[j] *= 1.0 - yb[j] * yb[j]
            elif code == BRLINEAR:
                for j in range(zb.size):
                    gb[j] = gb[j] if 0 < zb[j] < 1 else 0.0

    return jit(renamed(backward, "_" + NAMES[code]), parallel=True)


@jit
def softmax_cross_entropy(z, target, nodes, denominator, dz):
    """The numpy branch's softmax cross-entropy from the logits z (flat rows of `nodes`
    values, as target and dz): returns the loss summed over rows / denominator (float64
    sums), and fills dz = (p - target) / denominator. With log p = z - log(sum exp(z)), one
    exp per value, scalar as in _softmax_rows."""
    total, scale = 0.0, np.float32(1.0 / denominator)
    for start in range(0, z.size, nodes):
        top = z[start]
        for j in range(start + 1, start + nodes):
            top = max(top, z[j])
        sum_exp = 0.0
        for j in range(start, start + nodes):
            dz[j] = math.exp(z[j] - top)
            sum_exp += dz[j]
        log_sum, inverse = math.log(sum_exp) + top, np.float32(1.0 / sum_exp)
        for j in range(start, start + nodes):
            total += target[j] * (log_sum - z[j])
            dz[j] = (dz[j] * inverse - target[j]) * scale
    return total / denominator
