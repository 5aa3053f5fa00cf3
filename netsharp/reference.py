"""A plain-numpy executor written to be obviously right; the fast kernels are tested against it.

Every bundle is rebuilt here from the IR by walking LANGUAGE.md section 5 literally, one output
node at a time through `geometry.Axis.window`, into explicit index lists. Convolution and
filtered bundles become edge lists (destination, source, weight index) and run through
`np.add.at`; pooling and normalization loop over output nodes. Nothing here is shared with
`lower.py`, so an agreement between the two is evidence, not a tautology.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import prod

import numpy as np

from .ir import Bundle, ConvBundle, Layer, Network

# ---- output functions (LANGUAGE.md section 4) ---------------------------------------------------


def activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    table = {
        "sigmoid": lambda: 1 / (1 + np.exp(-z)),
        "linear": lambda: z.copy(),
        "rlinear": lambda: np.maximum(z, 0),
        "square": lambda: z * z,
        "sqrt": lambda: np.sqrt(np.maximum(z, 0)),
        "srlinear": lambda: np.logaddexp(0, z),
        "abs": lambda: np.abs(z),
        "tanh": lambda: np.tanh(z),
        "brlinear": lambda: np.minimum(np.maximum(z, 0), 1),
    }
    return table[name]()


def activate_backward(name: str, z: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/dz from dL/dy; at kinks (0 for rlinear, abs ...) the derivative is taken as 0."""
    if name == "softmax":
        return y * (dy - (dy * y).sum(axis=1, keepdims=True))
    if name == "sqrt":
        return np.where(z > 0, dy / (2 * np.where(y > 0, y, 1)), 0)
    table = {
        "sigmoid": lambda: y * (1 - y),
        "linear": lambda: np.ones_like(z),
        "rlinear": lambda: (z > 0).astype(z.dtype),
        "square": lambda: 2 * z,
        "srlinear": lambda: 1 / (1 + np.exp(-z)),
        "abs": lambda: np.sign(z),
        "tanh": lambda: 1 - y * y,
        "brlinear": lambda: ((z > 0) & (z < 1)).astype(z.dtype),
    }
    return dy * table[name]()


# ---- bundles as explicit index lists ------------------------------------------------------------


@dataclass(frozen=True)
class Edges:
    """A linear bundle: z[:, dest] += x[:, source] * w[weight]; z[:, bias_dest] += w[bias]."""

    dest: np.ndarray
    source: np.ndarray
    weight: np.ndarray
    bias_dest: np.ndarray
    bias: np.ndarray


def conv_edges(bundle: ConvBundle) -> Edges:
    """One output node at a time: its map and position per dimension, its kernel, its window."""
    geometry, positions = bundle.geometry, bundle.geometry.positions
    row = geometry.kernel_size + 1  # kernel weights, then its bias
    kernel_dims = tuple(m if shared else m * n
                        for m, n, shared in zip(bundle.map_count, positions, bundle.sharing))
    dest, source, weight, bias = [], [], [], []
    for o in range(prod(bundle.output_shape)):
        out = np.unravel_index(o, bundle.output_shape)
        position = [int(c) % n for c, n in zip(out, positions)]
        kernel_coord = [int(c) // n if shared else int(c)
                        for c, n, shared in zip(out, positions, bundle.sharing)]
        kernel = int(np.ravel_multi_index(kernel_coord, kernel_dims))
        bias.append(kernel * row + geometry.kernel_size)
        cells = itertools.product(*(a.window(p) for a, p in zip(geometry.axes, position)))
        for offset, cell in enumerate(cells):
            if all(0 <= c < a.size for c, a in zip(cell, geometry.axes)):  # else: a zero
                dest.append(o)
                source.append(int(np.ravel_multi_index(cell, geometry.input_shape)))
                weight.append(kernel * row + offset)
    nodes = np.arange(prod(bundle.output_shape))
    return Edges(np.array(dest, dtype=np.int64), np.array(source, dtype=np.int64),
                 np.array(weight, dtype=np.int64), nodes, np.array(bias, dtype=np.int64))


def filtered_edges(bundle: Bundle) -> Edges:
    empty = np.zeros(0, dtype=np.int64)
    return Edges(np.asarray(bundle.edge_dest), np.asarray(bundle.edge_source),
                 np.arange(len(bundle.edge_dest)), empty, empty)


def windows(bundle: Bundle) -> list[tuple[int, list[int]]]:
    """Per output node of a pool or norm bundle: (centre cell, real cells of its window)."""
    geometry = bundle.geometry
    result = []
    for position in itertools.product(*(range(n) for n in geometry.positions)):
        real = itertools.product(*(a.real_cells(p) for a, p in zip(geometry.axes, position)))
        centre = [a.window(p).start + (a.kernel - 1) // 2 for a, p in zip(geometry.axes, position)]
        result.append((int(np.ravel_multi_index(centre, geometry.input_shape)),
                       [int(np.ravel_multi_index(c, geometry.input_shape)) for c in real]))
    return result


# ---- forward and backward per bundle kind -------------------------------------------------------


def linear_forward(edges: Edges, x: np.ndarray, w: np.ndarray, nodes: int) -> np.ndarray:
    z = np.zeros((x.shape[0], nodes), dtype=x.dtype)
    np.add.at(z, (slice(None), edges.dest), x[:, edges.source] * w.ravel()[edges.weight])
    np.add.at(z, (slice(None), edges.bias_dest), w.ravel()[edges.bias])
    return z


def linear_backward(edges: Edges, x, w, dz) -> tuple[np.ndarray, np.ndarray]:
    dx = np.zeros_like(x)
    np.add.at(dx, (slice(None), edges.source), dz[:, edges.dest] * w.ravel()[edges.weight])
    dw = np.zeros(w.size, dtype=w.dtype)
    np.add.at(dw, edges.weight, (dz[:, edges.dest] * x[:, edges.source]).sum(axis=0))
    np.add.at(dw, edges.bias, dz[:, edges.bias_dest].sum(axis=0))
    return dx, dw.reshape(w.shape)


def max_pool_forward(table, x):
    """Max over the real cells; the first maximal cell in window order is the winner."""
    return np.stack([x[:, cells].max(axis=1) for _, cells in table], axis=1)


def max_pool_backward(table, x, dz):
    dx = np.zeros_like(x)
    rows = np.arange(x.shape[0])
    for p, (_, cells) in enumerate(table):
        winner = np.asarray(cells)[x[:, cells].argmax(axis=1)]
        np.add.at(dx, (rows, winner), dz[:, p])
    return dx


def mean_pool_forward(table, x):
    return np.stack([x[:, cells].mean(axis=1) for _, cells in table], axis=1)


def mean_pool_backward(table, x, dz):
    dx = np.zeros_like(x)
    for p, (_, cells) in enumerate(table):
        np.add.at(dx, (slice(None), cells), (dz[:, p] / len(cells))[:, None])
    return dx


def _norm_count(bundle, cells) -> int:
    full = bundle.avg_over_full_kernel or not bundle.geometry.is_padded
    return bundle.geometry.kernel_size if full else len(cells)


def norm_forward(bundle, table, x):
    columns = []
    for centre, cells in table:
        d = bundle.offset + bundle.alpha / _norm_count(bundle, cells) * (x[:, cells] ** 2).sum(1)
        columns.append(x[:, centre] * d ** -bundle.beta)
    return np.stack(columns, axis=1)


def norm_backward(bundle, table, x, dz):
    """y = x_c d^-beta, d = offset + a/n sum x_i^2: dy/dx_i = [i == c] d^-beta
    - 2 beta a/n x_c x_i d^(-beta-1)."""
    dx = np.zeros_like(x)
    for p, (centre, cells) in enumerate(table):
        scale = bundle.alpha / _norm_count(bundle, cells)
        d = bundle.offset + scale * (x[:, cells] ** 2).sum(1)
        dx[:, centre] += dz[:, p] * d ** -bundle.beta
        common = dz[:, p] * x[:, centre] * -bundle.beta * d ** (-bundle.beta - 1) * 2 * scale
        np.add.at(dx, (slice(None), cells), common[:, None] * x[:, cells])
    return dx


# ---- the executor ------------------------------------------------------------------------------


class _Op:
    """One bundle: forward(x, w) -> z and backward(x, w, dz) -> (dx, dw or None)."""

    def __init__(self, bundle: Bundle, layer: Layer):
        self.bundle, self.nodes = bundle, layer.nodes
        if bundle.kind == "convolve":
            self.table = conv_edges(bundle)
        elif bundle.kind == "filtered":
            self.table = filtered_edges(bundle)
        elif bundle.kind != "full":
            self.table = windows(bundle)

    def forward(self, x, w):
        kind, table = self.bundle.kind, getattr(self, "table", None)
        if kind == "full":
            return x @ w.T
        if kind in ("convolve", "filtered"):
            return linear_forward(table, x, w, self.nodes)
        if kind == "max_pool":
            return max_pool_forward(table, x)
        if kind == "mean_pool":
            return mean_pool_forward(table, x)
        return norm_forward(self.bundle, table, x)

    def backward(self, x, w, dz):
        kind, table = self.bundle.kind, getattr(self, "table", None)
        if kind == "full":
            return dz @ w, dz.T @ x
        if kind in ("convolve", "filtered"):
            return linear_backward(table, x, w, dz)
        if kind == "max_pool":
            return max_pool_backward(table, x, dz), None
        if kind == "mean_pool":
            return mean_pool_backward(table, x, dz), None
        return norm_backward(self.bundle, table, x, dz), None


class ReferenceExecutor:
    """forward(params, inputs) -> state; backward(params, state, dz_output) -> gradients.

    `state` maps every layer name to (z, y): pre-activation and output (inputs: (x, x)).
    """

    name = "reference"

    def __init__(self, network: Network, dtype=np.float64):
        self.network, self.dtype = network, np.dtype(dtype)
        self.ops = {layer.name: [_Op(b, layer) for b in layer.bundles]
                    for layer in network.layers}

    def forward(self, params: dict, inputs: dict, training: bool = True) -> dict:
        state = {}
        for name in self.network.order:
            layer = self.network.layer(name)
            if layer.kind == "input":
                x = np.asarray(inputs[name], dtype=self.dtype)
                state[name] = (x, x)
                continue
            z = sum(op.forward(state[b.source][1], params.get(b.param))
                    for op, b in zip(self.ops[name], layer.bundles))
            if layer.bias:
                z = z + params[layer.bias]
            state[name] = (z, activate(layer.activation, z))
        return state

    def outputs(self, params: dict, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """The output layer's (z, y) for one batch, inference only."""
        return self.forward(params, inputs, training=False)[self.network.output.name]

    def backward(self, params: dict, state: dict, dz_output: np.ndarray) -> dict:
        grads = {p.name: np.zeros(p.shape, dtype=self.dtype) for p in self.network.parameters}
        dys = {self.network.output.name: None}
        for name in reversed(self.network.order):
            layer = self.network.layer(name)
            if layer.kind == "input" or name not in dys:
                continue
            z, y = state[name]
            dz = dz_output if layer.kind == "output" else \
                activate_backward(layer.activation, z, y, dys[name])
            if layer.bias:
                grads[layer.bias] += dz.sum(axis=0)
            for op, bundle in zip(self.ops[name], layer.bundles):
                dx, dw = op.backward(state[bundle.source][1], params.get(bundle.param), dz)
                if dw is not None:
                    grads[bundle.param] += dw
                dys[bundle.source] = dys.get(bundle.source, 0) + dx
        return grads
