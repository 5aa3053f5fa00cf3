"""Full bundles: one matrix product each way (numpy's BLAS, both cores)."""

from __future__ import annotations

import numpy as np


class FullOp:
    def buffers(self, batch: int, training: bool, dtype) -> dict:
        return {}

    def forward(self, x, w, z, space, accumulate):
        if accumulate:
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
