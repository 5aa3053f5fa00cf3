"""Convolution through index tables (lower.ConvTables): im2col gather, BLAS product, scatter.

Forward:  cols[g] = x gathered by table[g];  out[g] = W[kernels[g]] @ cols[g].T;  z[outputs] = out
Backward: dout[g] = dz gathered by outputs;  dW[kernels[g]] = dout[g] @ cols[g];
          dcols[g] = dout[g].T @ W[kernels[g]]; dx += dcols scattered through table (col2im).
Rows of cols, columns of out: (sample, position) pairs, b * positions + s. `out` is maps x
pairs so that the scatter into Net#'s map-major layout reads and writes contiguous runs.
"""

from __future__ import annotations

import numpy as np

from .jit import jit, prange


# Loops run over flat 1-D views: numba's multi-dimensional indexing, or building a view per
# short inner loop, measured 2-5x slower than one long flat loop per sample.


@jit(parallel=True)
def im2col(x, table, cols):
    """cols[g, b*S + s, k] = x[b, table[g, s, k]], or 0 where the kernel cell is padding."""
    groups, positions, size = table.shape
    batch, run = x.shape[0], positions * size
    cells, flat = table.reshape(-1), cols.reshape(-1)
    for b in prange(batch):
        xb = x[b]
        for g in range(groups):
            src, dst = g * run, (g * batch + b) * run
            for j in range(run):
                i = cells[src + j]
                v = xb[max(i, 0)]
                flat[dst + j] = v if i >= 0 else 0


@jit(parallel=True)
def col2im(dcols, table, dx, accumulate):
    """dx[b, table[g, s, k]] += dcols[g, b*S + s, k]; one sample per thread (no races)."""
    groups, positions, size = table.shape
    batch, run = dx.shape[0], positions * size
    cells, flat = table.reshape(-1), dcols.reshape(-1)
    for b in prange(batch):
        dxb = dx[b]
        if not accumulate:
            dxb[:] = 0
        for g in range(groups):
            src, dst = (g * batch + b) * run, g * run
            for j in range(run):
                i = cells[dst + j]
                if i >= 0:
                    dxb[i] += flat[src + j]


@jit(parallel=True)
def scatter_outputs(out, bias, outputs, z, accumulate):
    """z[b, outputs[g, m, s]] (+)= out[g, m, b*S + s] + bias[g, m]."""
    groups, maps, positions = outputs.shape
    for r in prange(z.shape[0] * groups * maps):
        b, gm = r // (groups * maps), r % (groups * maps)
        g, m = gm // maps, gm % maps
        zb, nodes, src = z[b], outputs[g, m], out[g, m, b * positions:(b + 1) * positions]
        add = bias[g, m]
        if accumulate:
            for s in range(positions):
                zb[nodes[s]] += src[s] + add
        else:
            for s in range(positions):
                zb[nodes[s]] = src[s] + add


@jit(parallel=True)
def gather_outputs(dz, outputs, dout):
    """dout[g, m, b*S + s] = dz[b, outputs[g, m, s]]."""
    groups, maps, positions = outputs.shape
    for r in prange(dz.shape[0] * groups * maps):
        b, gm = r // (groups * maps), r % (groups * maps)
        g, m = gm // maps, gm % maps
        dzb, nodes, dest = dz[b], outputs[g, m], dout[g, m, b * positions:(b + 1) * positions]
        for s in range(positions):
            dest[s] = dzb[nodes[s]]


class ConvOp:
    """One convolution bundle; buffers per batch size live in the executor's workspace."""

    def __init__(self, tables):
        self.t = tables
        self.groups, self.maps, self.positions = tables.outputs.shape
        self.size = tables.kernel_size

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        rows = batch * self.positions
        space = {"cols": np.empty((self.groups, rows, self.size), dtype),
                 "out": np.empty((self.groups, self.maps, rows), dtype)}
        if training:
            space["dcols"] = np.empty((self.groups, rows, self.size), dtype)
        return space

    def forward(self, x, w, z, space, accumulate):
        im2col(x, self.t.table, space["cols"])
        rows = w[self.t.kernels]                                   # (G, M, K + 1)
        space["kw"] = np.ascontiguousarray(rows[:, :, :self.size])
        np.matmul(space["kw"], space["cols"].transpose(0, 2, 1), out=space["out"])
        scatter_outputs(space["out"], np.ascontiguousarray(rows[:, :, self.size]),
                        self.t.outputs, z, accumulate)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        dout = space["out"]                                        # reused for dL/d(out)
        gather_outputs(dz, self.t.outputs, dout)
        dkw = np.matmul(dout, space["cols"])                       # (G, M, K)
        dbias = dout.sum(axis=2)                                   # (G, M)
        kernels = self.t.kernels
        if dw_accumulate:
            dw[kernels, :self.size] += dkw
            dw[kernels, self.size] += dbias
        else:  # each kernel occurs once in `kernels`: this writes every row of dw
            dw[kernels, :self.size] = dkw
            dw[kernels, self.size] = dbias
        if dx is not None:
            np.matmul(dout.transpose(0, 2, 1), space["kw"], out=space["dcols"])
            col2im(space["dcols"], self.t.table, dx, dx_accumulate)
