"""Inference of a chain of full layers (all of the MLP, a convolution network's dense head)
in one kernel.

A predict of such a network was two BLAS products with numba's bias, activation and copies
around them; each BLAS call wakes its threads and each small kernel is a dispatch, about 60 us
a call beyond the big product at 64 rows (AMD EPYC). Here each of numba's threads takes a
block of rows through every layer: per layer, z = bias, then x . w of 4 outputs x 2 rows at a
time on direct.py's register tiles (reading both along the inputs: no packing, the model's
weights as they are), then the output function over the block. One parallel region a call,
no BLAS, no threads waiting on others between layers. Measured (AMD EPYC, 2 threads, the
MLP's predict): 64 rows 167 us against 228, 256 rows 582 against 620, 1 row 10 against 41.

Training keeps BLAS (its backward needs the transposed products too).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .activations import activate_flat
from .direct import LANES, _wtile2, _wtile4
from .jit import jit, prange

# Below this many multiply-adds a call, one thread: waking numba's sleeping worker costs
# ~17 us (measured with an empty parallel loop), about 0.6M multiply-adds on one core.
PARALLEL_FROM = 1 << 20
# Below this many multiply-adds a call, the chain on one thread is faster than BLAS's two
# threads with numba's kernels around them (the MLP: 16 rows 73 us against ~100; 64 rows 285
# against ~240).
SERIAL_BEATS_BLAS_BELOW = 2 << 20
_ROWS = 2  # rows per register tile (the tiles' "cells")


def chain_layers(plan) -> tuple | None:
    """The plan's last layers that form a chain of full bundles, each layer fed by the one
    before it (the first by any layer or input): all of an MLP's, a convolution network's
    dense head. None when fewer than two layers chain: one layer alone runs as fast on its
    own kernels (lenet's 10-way output), and the chain would cost its compile (seconds on an
    empty cache) in this process and in kernels.lanes' worker."""
    tail = []
    for step in reversed(plan.layers):
        full = len(step.bundles) == 1 and step.bundles[0].kind == "full"
        if not full or (tail and tail[-1].bundles[0].source != step.name):
            break
        tail.append(step)
    if len(tail) < 2 or plan.layers[-1] is not plan.output:
        return None
    return tuple(reversed(tail))


@jit
def _full_rows(x, width, lo, hi, w, outputs, offsets, z):
    """z[r, o] += sum_k x[r * width + k] * w[o * width + k] for lo <= r < hi (x and w flat;
    offsets[r] = r * width, clamped so that a pair's second row past the last reads the
    last; z has a row more than x when the rows are odd: the pair's second row lands there)."""
    whole = width - width % LANES   # the tiles' span of inputs; the rest one at a time
    for r in range(lo, hi, _ROWS):
        o = 0
        while o + 4 <= outputs:
            _wtile4(w, o * width, width, x, 0, offsets, r, whole, z, o)
            o += 4
        if o + 2 <= outputs:
            _wtile2(w, o * width, width, x, 0, offsets, r, whole, z, o)
            o += 2
        for last in range(o, outputs):   # an odd output count's last output
            for row in range(r, min(r + _ROWS, hi)):
                z[row, last] += _dot(x, offsets[row], w, last * width, 0, whole)
    # the inputs past the tiles' span, one at a time over every output (the MLP's 100 -> 10
    # over 64 rows: 9.1 us against 18.6 with a 4-input dot product per output)
    if whole < width:
        for r in range(lo, hi):
            row, rest = z[r], x[r * width + whole:(r + 1) * width]
            for j in range(width - whole):
                value, column = rest[j], w[whole + j:]
                for o in range(outputs):
                    row[o] += value * column[o * width]


@jit
def _dot(x, x_start, w, w_start, start, stop):
    """sum of x[x_start + k] * w[w_start + k] over start <= k < stop, in float32."""
    total = np.float32(0.0)
    for k in range(start, stop):
        total += x[x_start + k] * w[w_start + k]
    return total


@jit(parallel=True)
def _chain_forward(x, weights, biases, codes, zs, z_flats, y_flats, offsets, blocks):
    """Every layer of the chain for rows split into `blocks` blocks of even starts: layer l
    reads x (l = 0) or y_flats[l - 1], writes zs[l] (z_flats[l] its flat view) and
    y_flats[l]; offsets[l][r] = min(r, rows - 1) * (layer l's inputs)."""
    rows = x.shape[0]
    for block in prange(blocks):
        lo = rows * block // blocks // _ROWS * _ROWS
        hi = rows if block == blocks - 1 else rows * (block + 1) // blocks // _ROWS * _ROWS
        source = x.reshape(-1)
        for layer in range(len(weights)):
            w, bias, z, zf, yf = weights[layer], biases[layer], zs[layer], z_flats[layer], \
                y_flats[layer]
            outputs, width = w.shape
            for r in range(lo, hi):
                for o in range(outputs):
                    z[r, o] = bias[o]
            _full_rows(source, width, lo, hi, w.reshape(-1), outputs, offsets[layer], z)
            activate_flat(codes[layer], zf[lo * outputs:hi * outputs],
                          yf[lo * outputs:hi * outputs], outputs)
            source = yf


class _Buffers:
    """One batch size's z (a row more than the batch), y and offset arrays per layer."""

    def __init__(self, layers, batch: int):
        self.zs = tuple(np.zeros((batch + 1, step.layer.nodes), np.float32) for step in layers)
        self.z_flats = tuple(z.reshape(-1) for z in self.zs)
        self.ys = tuple(np.zeros((batch, step.layer.nodes), np.float32) for step in layers)
        self.y_flats = tuple(y.reshape(-1) for y in self.ys)
        rows = np.minimum(np.arange(batch + 1), batch - 1)
        self.offsets = tuple(rows * _inputs(step) for step in layers)


def _inputs(step) -> int:
    """The layer's inputs: its bundle's source nodes."""
    return math.prod(step.bundles[0].bundle.source_shape)


class ChainForward:
    """forward(params, x) -> (z, y) of the output layer for a chain plan (chain_layers)."""

    def __init__(self, layers):
        self.layers = layers
        self.codes = np.array([step.code for step in layers], np.int64)
        self.params = tuple(step.bundles[0].param for step in layers)
        self.biases = tuple(step.layer.bias for step in layers)  # full layers: always one
        self.macs_per_row = sum(step.layer.nodes * _inputs(step) for step in layers)
        self._buffers: dict[int, _Buffers] = {}

    def buffers(self, batch: int) -> _Buffers:
        if batch not in self._buffers:
            if len(self._buffers) >= 4:   # a few sizes (full and last batch) are all that recur
                self._buffers.pop(next(iter(self._buffers)))
            self._buffers[batch] = _Buffers(self.layers, batch)
        return self._buffers[batch]

    def serial_beats_blas(self, batch: int) -> bool:
        return batch * self.macs_per_row < SERIAL_BEATS_BLAS_BELOW

    @property
    def source(self) -> str:
        """The layer or input the chain reads."""
        return self.layers[0].bundles[0].source

    def forward(self, params: dict, x: np.ndarray, threaded: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
        """(z, y) of the output layer for the rows of x, on numba's threads when `threaded`
        and the batch is worth waking them for."""
        batch = len(x)
        space = self.buffers(batch)
        weights = tuple(np.ascontiguousarray(params[name], np.float32) for name in self.params)
        biases = tuple(np.ascontiguousarray(params[name], np.float32) for name in self.biases)
        threads = numba.get_num_threads()
        if threaded and threads > 1 and batch >= _ROWS * threads and \
                batch * self.macs_per_row >= PARALLEL_FROM:
            kernel, blocks = _chain_forward.parallel, threads
        else:
            kernel, blocks = _chain_forward.serial, 1
        kernel(x, weights, biases, self.codes, space.zs, space.z_flats, space.y_flats,
               space.offsets, blocks)
        return space.zs[-1][:batch], space.ys[-1]
