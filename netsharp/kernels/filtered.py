"""Filtered bundles: an edge list in Net#'s order (by destination, then source)."""

from __future__ import annotations

from .jit import jit, prange


@jit(parallel=True)
def forward(x, w, source, dest, z, accumulate):
    for b in prange(x.shape[0]):
        zb, xb = z[b], x[b]
        if not accumulate:
            zb[:] = 0
        for e in range(source.size):
            zb[dest[e]] += w[e] * xb[source[e]]


@jit(parallel=True)
def backward_input(dz, w, source, dest, dx, accumulate):
    for b in prange(dz.shape[0]):
        dxb, dzb = dx[b], dz[b]
        if not accumulate:
            dxb[:] = 0
        for e in range(source.size):
            dxb[source[e]] += w[e] * dzb[dest[e]]


@jit(parallel=True, work=4)
def backward_weights(dz, x, source, dest, dw, accumulate):
    """One edge per iteration, summed over the batch in order: no races, same result always."""
    for e in prange(source.size):
        total = 0.0
        for b in range(dz.shape[0]):
            total += dz[b, dest[e]] * x[b, source[e]]
        dw[e] = dw[e] + total if accumulate else total


class FilteredOp:
    def __init__(self, tables):
        self.t = tables

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        return {}

    def forward(self, x, w, z, space, accumulate):
        forward(x, w, self.t.source, self.t.dest, z, accumulate)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        backward_weights(dz, x, self.t.source, self.t.dest, dw, dw_accumulate)
        if dx is not None:
            backward_input(dz, w, self.t.source, self.t.dest, dx, dx_accumulate)
