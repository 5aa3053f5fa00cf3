"""Max and mean pooling over the real cells of each window (padding cells are absent).

Max pooling's gradient goes to the first maximal real cell of each window in window order.
The forward keeps no winners: it keeps each window's max (training only), and backward finds
the first cell holding it. Keeping the winner's index in the forward measured 5-6x slower
than the max alone (cntk103d_pool's P1 over 32 samples on an AMD EPYC: 1.5 ms against 0.26,
in every form tried: the index's select became a mispredicted branch, or a dependency chain
a window at a time). Forward and backward together, against keeping winners (alternate
calls, one core, 32 samples): P1's 2x2 windows 0.6-0.75x the time, P2's 3x3 1.3-1.5x.
"""

from __future__ import annotations

import numpy as np

from .conv import row_runs, table_runs
from .grid_pool import _put, max_backward_grid, max_forward_grid, pool_grid
from .jit import jit, prange


@jit
def _max_table(xb, table_t, value):
    """value[p] = the max over window p's real cells, one kernel cell at a time over every
    position (the transposed table; -1 is padding). A window's first real cell starts its
    max, as the reference's (a window of padding only, if any, gets xb[0])."""
    size, positions = table_t.shape
    started = np.zeros(positions, np.bool_)
    for p in range(positions):
        value[p] = xb[0]
    for k in range(size):
        row = table_t[k]
        for p in range(positions):
            i = row[p]
            v = xb[max(i, 0)]
            take = (i >= 0) & (~started[p] | (v > value[p]))
            value[p] = v if take else value[p]
            started[p] |= i >= 0


@jit
def _mean_table(xb, table_t, count, value):
    """value[p] = the mean over window p's real cells, one kernel cell at a time over every
    position, so that the inner loop vectorises (a window at a time measured 5x slower)."""
    size, positions = table_t.shape
    zero = np.float32(0.0)
    for p in range(positions):
        value[p] = zero
    for k in range(size):
        row = table_t[k]
        for p in range(positions):
            i = row[p]
            v = xb[max(i, 0)]
            value[p] += v if i >= 0 else zero
    for p in range(positions):
        value[p] /= count[p]


# One kernel per kind of pooling, so that numba compiles only what a network uses (a kernel
# holding all three took 2x as long to compile: 16 s on an empty cache for lenet's step).
@jit(parallel=True)
def mean_forward(x, table_t, count, z, accumulate):
    """z (+)= each window's mean over its real cells."""
    for b in prange(x.shape[0]):
        value = np.empty(table_t.shape[1], np.float32)
        _mean_table(x[b], table_t, count, value)
        _put(value, z[b], accumulate)


@jit(parallel=True)
def max_forward_blocks(x, blocks, z, best, accumulate):
    """z (+)= each window's max, windows without padding (blocks: row_runs); best[b] = the
    maxima where best has a row per sample (training; inference passes one row)."""
    keep = best.shape[0] == x.shape[0]
    for b in prange(x.shape[0]):
        xb, value = x[b], np.empty(z.shape[1], np.float32)
        # block by block (row_runs) over strided slices: 0.5 ns a cell where reading an
        # index per cell measured 2.5
        for r in range(blocks.shape[0]):
            k, s0, first0, step, length = blocks[r, 0], blocks[r, 1], blocks[r, 2], \
                blocks[r, 3], blocks[r, 4]
            for c in range(blocks[r, 5]):
                s, first = s0 + c * blocks[r, 6], first0 + c * blocks[r, 7]
                v = value[s:s + length]
                # slices, so that no index can be negative (numba's wraparound test per read
                # defeats vectorising), with a literal step where it is a pooling's usual 1, 2
                # or 3 (a stride known when compiling vectorises)
                end = first + (length - 1) * step + 1
                if step == 2:
                    src = xb[first:end:2]
                elif step == 3:
                    src = xb[first:end:3]
                elif step <= 1:
                    src = xb[first:first + length]
                else:
                    src = xb[first:end:step]
                if k == 0:  # the first cell of every window starts its max
                    for j in range(length):
                        v[j] = src[j]
                else:
                    for j in range(length):
                        v[j] = max(v[j], src[j])
        if keep:
            _put(value, best[b], False)
        _put(value, z[b], accumulate)


@jit(parallel=True)
def max_forward_table(x, table_t, z, best, accumulate):
    """max_forward_blocks for windows with padding (the transposed table, -1 for padding)."""
    keep = best.shape[0] == x.shape[0]
    for b in prange(x.shape[0]):
        value = np.empty(z.shape[1], np.float32)
        _max_table(x[b], table_t, value)
        if keep:
            _put(value, best[b], False)
        _put(value, z[b], accumulate)


@jit
def _route_to_first_max(dzb, xb, table_t, top, dxb):
    """dxb[cell] += dzb[p] for the first real cell of window p (window order) that holds the
    window's max top[p] (no cell where the max is NaN). Kernel cell by kernel cell over every
    position, in float arithmetic: a branch or select on the comparison measured 2-3x slower
    (mispredicted on data whose maxima fall anywhere; LLVM turns the select into a branch)."""
    size, positions = table_t.shape
    one = np.float32(1.0)
    found = np.zeros(positions, np.float32)
    for k in range(size):
        row = table_t[k]
        for p in range(positions):
            i = row[p]
            cell = max(i, 0)   # padding (-1) reads and adds to cell 0 with weight 0
            hit = np.float32((xb[cell] == top[p]) & (i >= 0))
            first = hit * (one - found[p])
            found[p] += first
            dxb[cell] += first * dzb[p]


@jit(parallel=True, work=4)
def max_backward(dz, x, table_t, best, dx, accumulate):
    """dz[p] to the first real cell of window p holding its max."""
    for b in prange(dz.shape[0]):
        if not accumulate:
            dx[b, :] = 0
        _route_to_first_max(dz[b], x[b], table_t, best[b], dx[b])


@jit(parallel=True, work=5)
def max_backward_disjoint(dz, x, table_t, source, best, dx, accumulate):
    """max_backward for windows without padding that share no cell, in two passes a
    sample: each kernel cell's share of every window (the first maximal cell's takes dz[p],
    in float arithmetic as _route_to_first_max), then each input cell's one share read
    through source (k * P + p of the window cell reading it; K * P, a zero, where none
    does). Unsigned indices, that numba reads without a wraparound test: cntk103d_pool's P1
    and P2 over 32 samples in 0.7x and 0.8x max_backward's time (AMD EPYC, one core)."""
    size, positions = table_t.shape
    one = np.float32(1.0)
    for b in prange(dz.shape[0]):
        xb, dzb, top, dxb = x[b], dz[b], best[b], dx[b]
        share = np.zeros(size * positions + 1, np.float32)
        found = np.zeros(positions, np.float32)
        for k in range(size):
            row, part = table_t[k], share[k * positions:(k + 1) * positions]
            for p in range(positions):
                hit = np.float32(xb[row[p]] == top[p]) * (one - found[p])
                found[p] += hit
                part[p] = hit * dzb[p]
        for i in range(source.size):
            dxb[i] = dxb[i] + share[source[i]] if accumulate else share[source[i]]
        if not accumulate:   # a loop: the slice's `= 0` was skipped in the parallel twin
            for i in range(source.size, dxb.size):
                dxb[i] = 0


@jit(parallel=True, work=3)
def mean_backward(dz, table, count, dx, accumulate):
    """dz[p] / count shared by window p's real cells."""
    positions, size = table.shape
    for b in prange(dz.shape[0]):
        dxb, dzb = dx[b], dz[b]
        if not accumulate:
            dxb[:] = 0
        for p in range(positions):
            share, cells = dzb[p] / count[p], table[p]
            for k in range(size):
                if cells[k] >= 0:
                    dxb[cells[k]] += share


class PoolOp:
    def __init__(self, tables, is_max: bool, geometry=None):
        self.t, self.is_max = tables, is_max
        self.table_t = np.ascontiguousarray(tables.table.T)
        # max pooling over rows of planes: kernels.grid_pool's vectors (a tuple: numba's type)
        grid = pool_grid(geometry, tables.table) if is_max and geometry is not None else None
        self.grid = None if grid is None else tuple(grid)
        self.grid_backward = grid is not None and grid.routable
        # max pooling without padding: the blocks of evenly spaced cells (else none)
        runs = table_runs(self.table_t[None])
        unpadded = is_max and (tables.table >= 0).all() and (
            (runs[:, 3] > 0) | (runs[:, 4] == 1)).all()
        self.blocks = row_runs(runs) if unpadded else np.zeros((0, 8), np.int32)
        # max pooling whose windows share no cell: the backward without scattered adds
        self.source = _disjoint_source(tables.table) if is_max else None
        self.table_u = None if self.source is None else self.table_t.astype(np.uint32)

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        rows = batch if self.is_max and training else 1
        return {"best": np.zeros((rows, len(self.t.table)), np.float32)}

    def forward(self, x, w, z, space, accumulate):
        if not self.is_max:
            mean_forward(x, self.table_t, self.t.count, z, accumulate)
        elif self.grid is not None:
            max_forward_grid(x, self.grid, z, space["best"], accumulate)
        elif len(self.blocks):
            max_forward_blocks(x, self.blocks, z, space["best"], accumulate)
        else:
            max_forward_table(x, self.table_t, z, space["best"], accumulate)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        if dx is None:
            return
        if self.grid_backward:
            max_backward_grid(dz, x, self.grid, space["best"], dx, dx_accumulate)
        elif self.source is not None:
            max_backward_disjoint(dz, x, self.table_u, self.source, space["best"], dx,
                                  dx_accumulate)
        elif self.is_max:
            max_backward(dz, x, self.table_t, space["best"], dx, dx_accumulate)
        else:
            mean_backward(dz, self.t.table, self.t.count, dx, dx_accumulate)


def _disjoint_source(table: np.ndarray) -> np.ndarray | None:
    """For windows without padding that share no cell: per input cell up to the last one
    read, k * P + p of the window cell (p, k) reading it, or K * P where none does (uint32:
    max_backward_disjoint); else None."""
    positions, size = table.shape
    cells = table.T.reshape(-1)          # k-major: index k * P + p
    if (cells < 0).any() or np.unique(cells).size != cells.size:
        return None
    source = np.full(int(cells.max()) + 1, size * positions, np.uint32)
    source[cells] = np.arange(cells.size, dtype=np.uint32)
    return source
