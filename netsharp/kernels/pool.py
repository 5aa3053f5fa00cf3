"""Max and mean pooling over the real cells of each window (padding cells are absent)."""

from __future__ import annotations

import numpy as np

from .jit import jit, prange


@jit(parallel=True)
def forward(x, table, count, is_max, z, winner, accumulate):
    """Max: the first maximal real cell in window order wins (its index kept for backward).
    Mean: the sum over real cells divided by their count."""
    positions, size = table.shape
    cells = table.reshape(-1)
    for b in prange(x.shape[0]):
        xb, zb, wb = x[b], z[b], winner[b % winner.shape[0]]
        for p in range(positions):
            base = p * size
            if is_max:  # branch-free: random data would mispredict a branch half the time
                best, arg = xb[0], -1
                for k in range(size):
                    i = cells[base + k]
                    v = xb[max(i, 0)]
                    take = (i >= 0) & ((arg < 0) | (v > best))
                    best = v if take else best
                    arg = i if take else arg
                wb[p] = arg
                value = best
            else:
                total = 0.0
                for k in range(size):
                    i = cells[base + k]
                    total += xb[max(i, 0)] if i >= 0 else 0.0
                value = total / count[p]
            zb[p] = zb[p] + value if accumulate else value


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

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        shape = (batch, len(self.t.table)) if self.is_max else (1, len(self.t.table))
        return {"winner": np.zeros(shape, np.int32)}

    def forward(self, x, w, z, space, accumulate):
        forward(x, self.t.table, self.t.count, self.is_max, z, space["winner"], accumulate)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        if dx is not None:
            backward(dz, self.t.table, self.t.count, self.is_max, space["winner"], dx,
                     dx_accumulate)
