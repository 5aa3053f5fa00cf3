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
        if dw_accumulate:
            dw += dz.T @ x
        else:
            np.matmul(dz.T, x, out=dw)
        if dx is not None:
            if dx_accumulate:
                dx += dz @ w
            else:
                np.matmul(dz, w, out=dx)
