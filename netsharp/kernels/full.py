"""Full bundles: one matrix product each way (numpy's BLAS, both cores)."""

from __future__ import annotations

import numpy as np

# Batch sizes whose forward product runs as W @ x.T (measured faster from 8 to 48 rows; equal
# at 64, slower from 128 on), for layers of at least TRANSPOSED_MIN_OUTPUTS nodes: with fewer
# the product is a few microseconds either way and the transposing copy costs more (the
# MLP's 16 x 100 by 100 x 10: 4.4 us direct, 5.8 transposed; 16 x 784 by 784 x 100: 75
# direct, 61 transposed; AMD EPYC, 2 threads).
TRANSPOSED_FORWARD = (8, 48)
TRANSPOSED_MIN_OUTPUTS = 64


class FullOp:
    def buffers(self, batch: int, training: bool, dtype) -> dict:
        return {}

    def forward(self, x, w, z, space, accumulate):
        if TRANSPOSED_FORWARD[0] <= len(x) <= TRANSPOSED_FORWARD[1] and \
                len(w) >= TRANSPOSED_MIN_OUTPUTS:
            # W @ x.T, then transposed into place: OpenBLAS's x @ W.T is slow for a few
            # rows (the MLP's 16 x 784 by 784 x 100: 38 us this way, 69 the other)
            zt = space.get("zt")
            if zt is None or zt.shape != z.shape[::-1]:
                space["zt"] = zt = np.empty(z.shape[::-1], z.dtype)
            np.matmul(w, x.T, out=zt)
            if accumulate:
                z += zt.T
            else:
                z[...] = zt.T
        elif accumulate:
            z += x @ w.T
        else:
            np.matmul(x, w.T, out=z)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        # One sample: an outer product. numpy's matmul runs a product with an inner
        # dimension of 1 in a plain loop, 5x slower (784 x 100: 270 us against 53).
        product = np.multiply if len(x) == 1 else np.matmul
        if dw_accumulate:
            dw += product(dz.T, x)
        else:
            product(dz.T, x, out=dw)
        if dx is not None:
            if dx_accumulate:
                dx += dz @ w
            else:
                np.matmul(dz, w, out=dx)
