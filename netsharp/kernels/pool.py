"""Max and mean pooling over the real cells of each window (padding cells are absent)."""

from __future__ import annotations

import numpy as np

from .conv import row_runs, table_runs
from .jit import jit, prange


@jit(parallel=True)
def forward(x, table, table_t, blocks, count, is_max, track, z, winner, accumulate):
    """Max: the first maximal real cell in window order wins (its index kept for backward).
    Mean: the sum over real cells divided by their count. Max pooling whose windows have no
    padding, when the winners are not wanted (inference: track False), runs block by block
    (row_runs) over strided slices: 0.5 ns a cell where reading an index per cell measured
    2.5 (keeping the winners in that loop measured 4)."""
    positions, size = table.shape
    cells = table.reshape(-1)
    zero = np.float32(0.0)
    for b in prange(x.shape[0]):
        xb, zb, wb = x[b], z[b], winner[b % winner.shape[0]]
        if is_max and blocks.shape[0] and not track:
            value = np.empty(positions, np.float32)
            for r in range(blocks.shape[0]):
                k, s0, first0, step, length = blocks[r, 0], blocks[r, 1], blocks[r, 2], \
                    blocks[r, 3], blocks[r, 4]
                for c in range(blocks[r, 5]):
                    s, first = s0 + c * blocks[r, 6], first0 + c * blocks[r, 7]
                    v = value[s:s + length]
                    # slices, so that no index can be negative (numba's wraparound test
                    # per read defeats vectorising), with a literal step where it is a
                    # pooling's usual 1, 2 or 3 (a stride known when compiling vectorises)
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
            for p in range(positions):
                zb[p] = zb[p] + value[p] if accumulate else value[p]
            continue
        if is_max:  # branch-free: random data would mispredict a branch half the time
            for p in range(positions):
                base = p * size
                best, arg = xb[0], -1
                for k in range(size):
                    i = cells[base + k]
                    v = xb[max(i, 0)]
                    take = (i >= 0) & ((arg < 0) | (v > best))
                    best = v if take else best
                    arg = i if take else arg
                wb[p] = arg
                zb[p] = zb[p] + best if accumulate else best
            continue
        # mean: one kernel cell at a time over every position (the transposed table), so
        # that the inner loop vectorises (a window at a time measured 5x slower)
        value = np.empty(positions, np.float32)
        for p in range(positions):
            value[p] = zero
        for k in range(size):
            row = table_t[k]
            for p in range(positions):
                i = row[p]
                v = xb[max(i, 0)]
                value[p] += v if i >= 0 else zero
        for p in range(positions):
            zb[p] = zb[p] + value[p] / count[p] if accumulate else value[p] / count[p]


@jit(parallel=True, work=5)
def backward(dz, table, count, is_max, winner, dx, accumulate):
    positions, size = table.shape
    for b in prange(dz.shape[0]):
        dxb, dzb = dx[b], dz[b]
        if not accumulate:
            dxb[:] = 0
        if is_max:
            cells = winner[b]
            for p in range(positions):
                dxb[cells[p]] += dzb[p]
            continue
        for p in range(positions):
            share, cells = dzb[p] / count[p], table[p]
            for k in range(size):
                if cells[k] >= 0:
                    dxb[cells[k]] += share


class PoolOp:
    def __init__(self, tables, is_max: bool):
        self.t, self.is_max = tables, is_max
        self.table_t = np.ascontiguousarray(tables.table.T)
        # max pooling without padding: the blocks of evenly spaced cells (else none)
        runs = table_runs(self.table_t[None])
        unpadded = is_max and (tables.table >= 0).all() and (
            (runs[:, 3] > 0) | (runs[:, 4] == 1)).all()
        self.blocks = row_runs(runs) if unpadded else np.zeros((0, 8), np.int32)

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        shape = (batch, len(self.t.table)) if self.is_max and training else \
            (1, len(self.t.table))
        return {"winner": np.zeros(shape, np.int32), "track": training}

    def forward(self, x, w, z, space, accumulate):
        forward(x, self.t.table, self.table_t, self.blocks, self.t.count, self.is_max,
                space["track"], z, space["winner"], accumulate)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        if dx is not None:
            backward(dz, self.t.table, self.t.count, self.is_max, space["winner"], dx,
                     dx_accumulate)
