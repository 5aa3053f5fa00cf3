"""IR -> Plan: the layers in execution order, index tables per bundle, and who writes first.

Convolution of any arity and sharing is lowered to one form: groups of output positions that
share a set of kernels. Within a group the bundle is an im2col gather through an index table
followed by one matrix product, so fully shared convolutions are a single BLAS call and locally
connected ones are many small ones. Pooling and normalization get the same window table.
Numpy only: lowering never imports numba.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
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


def padded_input(geometry: Geometry) -> tuple[Geometry, np.ndarray]:
    """The same sweep over the input zero-padded by each axis's lower and upper padding (its
    windows have no padding cells), and where each input cell lies in the padded input."""
    axes = tuple(replace(a, size=a.size + a.lower_pad + a.upper_pad, origin=a.origin + a.lower_pad)
                 for a in geometry.axes)
    cells = np.indices(geometry.input_shape).reshape(len(axes), -1)
    cells = cells + np.array(geometry.lower_pad, dtype=np.int64)[:, None]
    return Geometry(axes), np.ravel_multi_index(tuple(cells), [a.size for a in axes]).astype(
        np.int32)


# The grid may widen the last axis by at most this factor (the extra positions are computed
# and thrown away) to make each kernel cell's gather one contiguous run. 1: never. Widening
# (1.5) paid on a Xeon while the gather read an index per cell; since it copies runs (an
# image row each), the products' waste costs more than the longer runs save: on an AMD EPYC,
# one core, 32 samples, training steps of cntk103d_pool and lenet took 0.93-0.95x the time
# without widening and inference 0.93-0.96x (alternate steps in one process).
GRID_WASTE = 1.0


def grid_positions(geometry: Geometry, sharing) -> tuple[int, ...]:
    """Kernel positions of the fast path's grid: the last axis widened from P to P' (garbage
    positions beyond P) when that makes the input cells under one kernel cell an arithmetic
    sequence across the last two axes: P' * stride[-1] == stride[-2] * padded size[-1]."""
    positions = geometry.positions
    if len(positions) < 2 or not (sharing[-1] and sharing[-2]) or positions[-2] < 2:
        return positions
    last, previous = geometry.axes[-1], geometry.axes[-2]
    width = previous.stride * (last.size + last.lower_pad + last.upper_pad)
    if width % last.stride or width // last.stride == positions[-1]:
        return positions
    wide = width // last.stride
    if not positions[-1] < wide <= GRID_WASTE * positions[-1]:
        return positions
    return positions[:-1] + (wide,)


def _conv_layout(bundle: ConvBundle, positions: tuple[int, ...]):
    """(kernels (G, M), outputs (G, M, S), position (G, S)) for the kernel positions
    `positions` (the bundle's own, or a grid's with positions beyond the bundle's, whose
    outputs are -1)."""
    real, maps, rank = bundle.geometry.positions, bundle.map_count, len(positions)
    unshared = [d for d in range(rank) if not bundle.sharing[d]]
    shared = [d for d in range(rank) if bundle.sharing[d]]
    sizes = [positions[d] for d in unshared] + list(maps) + [positions[d] for d in shared]
    grid = list(np.indices(sizes).reshape(len(sizes), -1)) if sizes else []
    p, m = [None] * rank, grid[len(unshared):len(unshared) + rank]
    for d, g in zip(unshared + shared, grid[:len(unshared)] + grid[len(unshared) + rank:]):
        p[d] = g
    inside = np.ones(len(grid[0]) if grid else 1, dtype=bool)
    for d in range(rank):
        inside &= p[d] < real[d]
    out = [m[d] * real[d] + np.minimum(p[d], real[d] - 1) for d in range(rank)]
    kernel_dims = [maps[d] if bundle.sharing[d] else maps[d] * real[d] for d in range(rank)]
    kernel = np.ravel_multi_index([m[d] if bundle.sharing[d] else out[d] for d in range(rank)],
                                  kernel_dims)
    shape = (prod(positions[d] for d in unshared), prod(maps), prod(positions[d] for d in shared))
    outputs = np.where(inside, np.ravel_multi_index(out, bundle.output_shape), -1).reshape(shape)
    position = np.ravel_multi_index(p, positions).reshape(shape)[:, 0, :]
    return (kernel.reshape(shape)[:, :, 0].astype(np.int64), outputs.astype(np.int32),
            position)


def _raw_cells(geometry: Geometry, positions: tuple[int, ...]) -> np.ndarray:
    """(positions, kernel cells) -> flat input cell, row-major, with no bounds test: past the
    last axis's end a window runs on into the next row (or past the end of the input)."""
    rank = len(positions)
    strides = np.cumprod((1,) + geometry.input_shape[:0:-1])[::-1]
    flat = np.zeros([1] * (2 * rank), dtype=np.int64)
    for d, (axis, stride) in enumerate(zip(geometry.axes, strides)):
        cells = (axis.origin + axis.stride * np.arange(positions[d])[:, None]
                 + np.arange(axis.kernel)[None, :])
        shape = [1] * (2 * rank)
        shape[d], shape[rank + d] = positions[d], axis.kernel
        flat = flat + cells.reshape(shape) * stride
    return flat.reshape(prod(positions), geometry.kernel_size)


@dataclass(frozen=True)
class ConvTables:
    """Output nodes grouped by the kernels they use: group g, map m, shared position s.

    table[g, s, k]: input cell under kernel cell k (or -1); kernels[g, m]: the kernel's row in
    the parameter; outputs[g, m, s]: the output node. Each kernel occurs once in `kernels`.

    The fast path's grid: the input is copied into a zero buffer of padded_size cells (input
    cell i at pad_cells[i]; the padding, then slack that windows of garbage positions may
    reach); grid_table[g, s', k] is a cell of that buffer (never -1) and grid_outputs[g, m, s']
    the output node or -1 for a garbage position (see grid_positions). A strided sweep's buffer
    holds its cells in phases (phase_order).
    """

    table: np.ndarray
    kernels: np.ndarray
    outputs: np.ndarray
    grid_table: np.ndarray
    grid_outputs: np.ndarray
    pad_cells: np.ndarray
    padded_size: int

    @property
    def kernel_size(self) -> int:
        return self.table.shape[2]


def conv_tables(bundle: ConvBundle) -> ConvTables:
    geometry = bundle.geometry
    kernels, outputs, position = _conv_layout(bundle, geometry.positions)
    table = window_table(geometry)[position]
    padded, pad_cells = padded_input(geometry)
    wide = grid_positions(padded, bundle.sharing)
    _, grid_outputs, grid_position = _conv_layout(bundle, wide)
    grid_table = _raw_cells(padded, wide)[grid_position]
    size = max(prod(padded.input_shape), int(grid_table.max()) + 1)
    if wide == geometry.positions and size == prod(padded.input_shape) and \
            any(stride > 1 for stride in padded.stride):
        phases, size = phase_order(padded)
        grid_table, pad_cells = phases[grid_table], phases[pad_cells]
    return ConvTables(table, kernels, outputs, grid_table.astype(np.int32), grid_outputs,
                      pad_cells.astype(np.int32), size)


def phase_order(geometry: Geometry) -> tuple[np.ndarray, int]:
    """A strided sweep's buffer in phases: cell (.., y, x) moves to phase (y % Sy, x % Sx) at
    (.., y // Sy, x // Sx) of that phase's block; returns each cell's new place and the buffer
    size. One kernel cell then reads consecutive cells at consecutive positions along the last
    axis (stride-2 gathers read every other float: 1.6 ns a float against 0.1 for a run)."""
    shape, strides = np.array(geometry.input_shape), np.array(geometry.stride)
    cells = np.indices(tuple(shape)).reshape(len(shape), -1)
    within = -(-shape // strides)
    phase = np.ravel_multi_index(tuple(cells % strides[:, None]), tuple(strides))
    place = np.ravel_multi_index(tuple(cells // strides[:, None]), tuple(within))
    return phase * prod(within) + place, int(prod(strides) * prod(within))


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

    @cached_property
    def full_only(self) -> bool:
        """Every bundle is a full one: the network is all BLAS products, no numba kernel."""
        return all(b.kind == "full" for s in self.layers for b in s.bundles)


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

# A convolution runs a chunk of samples at a time whose gathered columns and products take
# about this many floats (512 KB, well inside a core's 1.25 MB L2), in training and inference.
CONV_CHUNK_FLOATS = 1 << 17
# Threads convolving chunks side by side (kernels.conv.WORKERS), each with its own buffers.
CONV_WORKERS = 2


def conv_chunk(tables: ConvTables, batch: int, floats: int = CONV_CHUNK_FLOATS) -> int:
    """Samples per convolution chunk (kernels.conv.ConvOp)."""
    groups, maps, positions = tables.grid_outputs.shape
    per_sample = groups * positions * (tables.kernel_size + maps)
    return max(1, min(batch, floats // per_sample))


def bundle_workspace(step: BundleStep, batch: int, training: bool) -> int:
    """Floats (or int32s) a bundle keeps per batch beyond the layer buffers."""
    if step.kind == "convolve":
        tables = step.tables
        groups, maps, positions = tables.grid_outputs.shape
        size, chunk = tables.kernel_size, conv_chunk(tables, batch)
        # per worker: one chunk's columns, products and padded input, the weight gradient
        # and a chunk's share of it, the bias gradient (float64); the gather's runs (at most
        # 5 ints a table cell)
        floats = groups * chunk * positions * (size + maps) + chunk * tables.padded_size
        floats += 2 * groups * maps * size + 2 * groups * maps if training else 0
        return CONV_WORKERS * floats + 5 * groups * size * positions
    if step.kind == "response_norm" or (step.kind == "max_pool" and training):
        return batch * prod(step.bundle.output_shape)   # max pooling's maxima: training only
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
