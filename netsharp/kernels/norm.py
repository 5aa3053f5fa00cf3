"""Response normalization: y = x_c * d^-beta, d = offset + alpha/n * sum over the window x_i^2.

x_c is the input cell at the window's centre; the window's padding cells are absent; n is
lower.WindowTables.count. The backward pass uses d kept from the forward pass:
dy/dx_i = [i == c] d^-beta - 2 beta alpha/n x_c x_i d^(-beta-1).
"""

from __future__ import annotations

import numpy as np

from .jit import jit, prange


@jit(parallel=True)
def forward(x, table, centre, count, alpha, beta, offset, z, denominator, accumulate):
    positions, size = table.shape
    cells = table.reshape(-1)
    for b in prange(x.shape[0]):
        xb, zb, db = x[b], z[b], denominator[b]
        for p in range(positions):
            total = 0.0
            for k in range(size):
                i = cells[p * size + k]
                v = xb[max(i, 0)] if i >= 0 else 0.0
                total += v * v
            d = offset + alpha / count[p] * total
            db[p] = d
            value = xb[centre[p]] * d ** -beta
            zb[p] = zb[p] + value if accumulate else value


@jit(parallel=True)
def backward(dz, x, table, centre, count, alpha, beta, denominator, dx, accumulate):
    positions, size = table.shape
    for b in prange(dz.shape[0]):
        dxb, xb, dzb = dx[b], x[b], dz[b]
        if not accumulate:
            dxb[:] = 0
        for p in range(positions):
            d, c, cells = denominator[b, p], centre[p], table[p]
            dxb[c] += dzb[p] * d ** -beta
            common = -2.0 * beta * alpha / count[p] * dzb[p] * xb[c] * d ** (-beta - 1)
            for k in range(size):
                i = cells[k]
                if i >= 0:
                    dxb[i] += common * xb[i]


class NormOp:
    def __init__(self, tables, bundle):
        self.t = tables
        self.alpha, self.beta, self.offset = bundle.alpha, bundle.beta, bundle.offset

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        return {"denominator": np.empty((batch, len(self.t.table)), dtype)}

    def forward(self, x, w, z, space, accumulate):
        forward(x, self.t.table, self.t.centre, self.t.count, self.alpha, self.beta,
                self.offset, z, space["denominator"], accumulate)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        if dx is not None:
            backward(dz, x, self.t.table, self.t.centre, self.t.count, self.alpha, self.beta,
                     space["denominator"], dx, dx_accumulate)
