"""Convolution through index tables (lower.ConvTables): im2col gather, BLAS product, scatter.

Forward:  cols[g] = x gathered by table[g];  out[g] = W[kernels[g]] @ cols[g].T;  z[outputs] = out
Backward: dout[g] = dz gathered by outputs;  dW[kernels[g]] = dout[g] @ cols[g];
          dcols[g] = dout[g].T @ W[kernels[g]]; dx += dcols scattered through table (col2im).
Rows of cols, columns of out: (sample, position) pairs, b * positions + s. `out` is maps x
pairs so that the scatter into Net#'s map-major layout reads and writes contiguous runs.
"""

from __future__ import annotations

from math import prod

import numpy as np

from .jit import jit, prange


# Loops run over flat 1-D views: numba's multi-dimensional indexing, or building a view per
# short inner loop, measured 2-5x slower than one long flat loop per sample.


# A gather runs at memory speed: the serial twin measured faster than two threads up to half
# a million cells (12 samples of cntk103d_pool's C2), so inference chunks gather on one core.
@jit(parallel=True, work=2, scale=8)
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


@jit(parallel=True, work=2)
def gather_outputs(dz, outputs, dout):
    """dout[g, m, b*S + s] = dz[b, outputs[g, m, s]]."""
    groups, maps, positions = outputs.shape
    for r in prange(dz.shape[0] * groups * maps):
        b, gm = r // (groups * maps), r % (groups * maps)
        g, m = gm // maps, gm % maps
        dzb, nodes, dest = dz[b], outputs[g, m], dout[g, m, b * positions:(b + 1) * positions]
        for s in range(positions):
            dest[s] = dzb[nodes[s]]


# Inference gathers, multiplies and scatters a few samples at a time, so that the gathered
# columns are still in L2 when the product reads them (lenet's C1 and C3 at batch 256 measured
# 1.6x and 1.2x faster on one core). Training keeps every column for the weight gradient.
CHUNK_FLOATS = 1 << 17


def _view(buffer: np.ndarray, shape: tuple) -> np.ndarray:
    """The leading part of a buffer as a contiguous array of `shape` (a short last chunk)."""
    if buffer.shape == shape:  # every other chunk: a view costs microseconds per call
        return buffer
    return buffer.reshape(-1)[:prod(shape)].reshape(shape)


class ConvOp:
    """One convolution bundle; buffers per batch size live in the executor's workspace."""

    def __init__(self, tables):
        self.t = tables
        self.groups, self.maps, self.positions = tables.outputs.shape
        self.size = tables.kernel_size
        # Fully shared: one group whose kernels are the parameter's rows in order, so the
        # product reads W in place instead of a gathered copy.
        self.in_place = self.groups == 1 and np.array_equal(tables.kernels[0],
                                                            np.arange(self.maps))

    def chunk(self, batch: int, training: bool) -> int:
        if training:
            return batch
        return max(1, min(batch, CHUNK_FLOATS // (self.groups * self.positions * self.size)))

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        rows = self.chunk(batch, training) * self.positions
        space = {"cols": np.empty((self.groups, rows, self.size), dtype),
                 "out": np.empty((self.groups, self.maps, rows), dtype)}
        if training:
            space["dcols"] = np.empty((self.groups, rows, self.size), dtype)
        return space

    def forward(self, x, w, z, space, accumulate):
        rows = w[None] if self.in_place else w[self.t.kernels]    # (G, M, K + 1)
        space["kw"] = rows[:, :, :self.size]
        bias = np.ascontiguousarray(rows[:, :, self.size])
        step = space["cols"].shape[1] // self.positions
        for start in range(0, len(x), step):
            end = min(start + step, len(x))
            self._forward(x[start:end], z[start:end], space, bias, accumulate)

    def _forward(self, x, z, space, bias, accumulate):
        rows = len(x) * self.positions
        cols = _view(space["cols"], (self.groups, rows, self.size))
        out = _view(space["out"], (self.groups, self.maps, rows))
        im2col(x, self.t.table, cols)
        np.matmul(space["kw"], cols.transpose(0, 2, 1), out=out)
        scatter_outputs(out, bias, self.t.outputs, z, accumulate)

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
