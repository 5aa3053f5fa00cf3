"""IR -> Plan: the layers in execution order, index tables per bundle, and who writes first.

Convolution of any arity and sharing is lowered to one form: groups of output positions that
share a set of kernels. Within a group the bundle is an im2col gather through an index table
followed by one matrix product, so fully shared convolutions are a single BLAS call and locally
connected ones are many small ones. Pooling and normalization get the same window table.
Numpy only: lowering never imports numba.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from .geometry import Geometry
from .ir import Bundle, ConvBundle, Layer, Network

ACTIVATION_CODES = {name: i for i, name in enumerate(
    ("linear", "sigmoid", "softmax", "rlinear", "square", "sqrt", "srlinear", "abs", "tanh",
     "brlinear"))}


# ---- index tables ------------------------------------------------------------------------------


def window_table(geometry: Geometry) -> np.ndarray:
    """(positions, kernel cells) -> flat input cell, or -1 where the cell is padding.

    Positions and kernel cells are both row-major; built by broadcasting one axis at a time.
    """
    rank = len(geometry.axes)
    strides = np.cumprod((1,) + geometry.input_shape[:0:-1])[::-1]
    flat = np.zeros([1] * (2 * rank), dtype=np.int64)
    real = np.ones([1] * (2 * rank), dtype=bool)
    for d, (axis, stride) in enumerate(zip(geometry.axes, strides)):
        cells = (axis.origin + axis.stride * np.arange(axis.positions)[:, None]
                 + np.arange(axis.kernel)[None, :])
        shape = [1] * (2 * rank)
        shape[d], shape[rank + d] = axis.positions, axis.kernel
        cells = cells.reshape(shape)
        flat = flat + cells * stride
        real = real & (cells >= 0) & (cells < axis.size)
    table = np.where(real, flat, -1)
    return table.reshape(prod(geometry.positions), geometry.kernel_size).astype(np.int32)


@dataclass(frozen=True)
class ConvTables:
    """Output nodes grouped by the kernels they use: group g, map m, shared position s.

    table[g, s, k]: input cell under kernel cell k (or -1); kernels[g, m]: the kernel's row in
    the parameter; outputs[g, m, s]: the output node. Each kernel occurs once in `kernels`.
    """

    table: np.ndarray
    kernels: np.ndarray
    outputs: np.ndarray

    @property
    def kernel_size(self) -> int:
        return self.table.shape[2]


def conv_tables(bundle: ConvBundle) -> ConvTables:
    geometry, positions, maps = bundle.geometry, bundle.geometry.positions, bundle.map_count
    rank = len(positions)
    unshared = [d for d in range(rank) if not bundle.sharing[d]]
    shared = [d for d in range(rank) if bundle.sharing[d]]
    sizes = [positions[d] for d in unshared] + list(maps) + [positions[d] for d in shared]
    grid = list(np.indices(sizes).reshape(len(sizes), -1)) if sizes else []
    p, m = [None] * rank, grid[len(unshared):len(unshared) + rank]
    for d, g in zip(unshared + shared, grid[:len(unshared)] + grid[len(unshared) + rank:]):
        p[d] = g
    out = [m[d] * positions[d] + p[d] for d in range(rank)]
    kernel_dims = [maps[d] if bundle.sharing[d] else maps[d] * positions[d] for d in range(rank)]
    kernel = np.ravel_multi_index([m[d] if bundle.sharing[d] else out[d] for d in range(rank)],
                                  kernel_dims)
    shape = (prod(positions[d] for d in unshared), prod(maps), prod(positions[d] for d in shared))
    outputs = np.ravel_multi_index(out, bundle.output_shape).reshape(shape)
    position = np.ravel_multi_index(p, positions).reshape(shape)[:, 0, :]
    return ConvTables(window_table(geometry)[position],
                      kernel.reshape(shape)[:, :, 0].astype(np.int64),
                      outputs.astype(np.int32))


@dataclass(frozen=True)
class WindowTables:
    """Pooling and normalization: per output node its window, real-cell count and centre."""

    table: np.ndarray      # (positions, kernel cells) int32, -1 for padding
    count: np.ndarray      # (positions,) float32: real cells (or the full kernel, see norm_count)
    centre: np.ndarray     # (positions,) int32: the input cell at offset (K-1)//2


def window_tables(bundle: Bundle) -> WindowTables:
    table = window_table(bundle.geometry)
    count = (table >= 0).sum(axis=1)
    if bundle.kind == "response_norm" and (bundle.avg_over_full_kernel
                                           or not bundle.geometry.is_padded):
        count = np.full(len(table), bundle.geometry.kernel_size)
    centre_offset = np.ravel_multi_index([(k - 1) // 2 for k in bundle.geometry.kernel_shape],
                                         bundle.geometry.kernel_shape)
    return WindowTables(table, count.astype(np.float32), table[:, centre_offset].copy())


@dataclass(frozen=True)
class EdgeTables:
    source: np.ndarray     # int32, one per edge, Net#'s order (destination, then source)
    dest: np.ndarray


def tables_for(bundle: Bundle):
    if bundle.kind == "convolve":
        return conv_tables(bundle)
    if bundle.kind == "filtered":
        return EdgeTables(np.asarray(bundle.edge_source, dtype=np.int32),
                          np.asarray(bundle.edge_dest, dtype=np.int32))
    if bundle.kind == "full":
        return None
    return window_tables(bundle)


# ---- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleStep:
    bundle: Bundle
    tables: object
    grad_first: bool   # the first, in backward order, to write its parameter's gradient
    dx_first: bool     # the first, in backward order, to write its source's gradient
    needs_dx: bool     # False when the source is an input layer

    @property
    def kind(self) -> str:
        return self.bundle.kind

    @property
    def source(self) -> str:
        return self.bundle.source

    @property
    def param(self) -> str | None:
        return self.bundle.param


@dataclass(frozen=True)
class LayerStep:
    layer: Layer
    bundles: tuple[BundleStep, ...]
    bias_first: bool

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def alias(self) -> bool:
        """Linear with no bias: the output buffer is the pre-activation buffer."""
        return self.layer.activation == "linear" and not self.layer.bias

    @property
    def code(self) -> int:
        return ACTIVATION_CODES[self.layer.activation]


@dataclass(frozen=True)
class Plan:
    network: Network
    layers: tuple[LayerStep, ...]     # trainable layers in execution order
    inputs: tuple[Layer, ...]         # declaration order: how features are split

    @property
    def output(self) -> LayerStep:
        return next(step for step in self.layers if step.layer.kind == "output")


def lower(network: Network) -> Plan:
    layers = [network.layer(n) for n in network.order if network.layer(n).kind != "input"]
    inputs = {layer.name for layer in network.inputs}
    seen_grad, seen_dx, steps = set(), set(), []
    for layer in reversed(layers):  # backward order decides who writes first
        bias_first = bool(layer.bias) and layer.bias not in seen_grad
        seen_grad.add(layer.bias)
        bundles = []
        for b in layer.bundles:
            bundles.append(BundleStep(b, tables_for(b), b.param not in seen_grad,
                                      b.source not in seen_dx, b.source not in inputs))
            seen_grad.add(b.param)
            seen_dx.add(b.source)
        steps.append(LayerStep(layer, tuple(bundles), bias_first))
    return Plan(network, tuple(reversed(steps)), network.inputs)


# ---- memory estimate ---------------------------------------------------------------------------


def bundle_workspace(step: BundleStep, batch: int, training: bool) -> int:
    """Floats (or int32s) a bundle keeps per batch beyond the layer buffers."""
    if step.kind == "convolve":
        groups, maps, positions = step.tables.outputs.shape
        rows = groups * batch * positions
        return (rows * (step.tables.kernel_size + maps)) * (2 if training else 1)
    if step.kind in ("max_pool", "response_norm"):
        return batch * prod(step.bundle.output_shape)
    return 0


def memory_estimate(plan: Plan, batch: int, training: bool,
                    optimizer_slots: int) -> tuple[int, dict[str, int]]:
    """(total bytes, bytes per layer) for float32 parameters, state and activations."""
    copies = 2 + optimizer_slots if training else 1   # values, gradients, optimizer slots
    total = 4 * copies * plan.network.total_weights
    per_layer = {layer.name: 4 * batch * layer.nodes for layer in plan.inputs}
    for step in plan.layers:
        buffers = (2 if not step.alias else 1) + (1 if training else 0)
        floats = buffers * batch * step.layer.nodes
        floats += sum(bundle_workspace(b, batch, training) for b in step.bundles)
        per_layer[step.name] = 4 * floats
    return total + sum(per_layer.values()), per_layer
