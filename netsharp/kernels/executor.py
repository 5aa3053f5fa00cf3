"""The fast executor: runs a lower.Plan with the numba kernels, float32, buffers reused.

forward(params, inputs) -> workspace; workspace[name] is (z, y) for every layer.
backward(params, workspace, dz_output) -> gradients (the executor's own buffers: read or copy
them before the next call). Buffers are kept per batch size (the last short batch of an epoch
gets its own set), so a training step allocates almost nothing.
"""

from __future__ import annotations

import contextlib
import time
from typing import NamedTuple

import numpy as np

from ..lower import Plan
from . import blas
from . import activations
from .chain import ChainForward, chain_layers
from .conv import ConvOp
from .filtered import FilteredOp
from .full import FullOp
from .norm import NormOp
from .pool import PoolOp

DTYPE = np.float32
_NO_BIAS = np.zeros(0, DTYPE)
# How long OpenBLAS's idle threads spin after a product before they sleep: 2^28 cycles
# (its THREAD_TIMEOUT), 0.1 s at 2.7 GHz; measured here, a threaded chain (kernels.chain)
# was slowed up to 0.12-0.15 s after a training step, not from 0.16 s on.
BLAS_SPIN_SECONDS = 0.2


def make_op(step):
    kind = step.kind
    if kind == "full":
        return FullOp()
    if kind == "filtered":
        return FilteredOp(step.tables)
    if kind == "convolve":
        return ConvOp(step.tables)
    if kind in ("max_pool", "mean_pool"):
        return PoolOp(step.tables, kind == "max_pool", step.bundle.geometry)
    return NormOp(step.tables, step.bundle)


class LayerForward(NamedTuple):
    """A layer's forward with its look-ups done once (a small batch's predict spent a third of
    its time on them): per bundle (op, source layer, parameter, accumulate into z); the bias
    and output function, or alias when y is z (linear, no bias)."""

    name: str
    bundles: tuple
    bias: str | None
    code: int
    alias: bool


def layer_forward(step, ops: dict) -> LayerForward:
    bundles = tuple((ops[step.name, i], b.source, b.param, i > 0)
                    for i, b in enumerate(step.bundles))
    return LayerForward(step.name, bundles, step.layer.bias, step.code, step.alias)


class Workspace:
    """Buffers for one batch size: z, y and dy per layer, and each bundle's own."""

    def __init__(self, plan: Plan, ops: dict, batch: int, training: bool):
        self.batch, self.training = batch, training
        self.z, self.y, self.dy, self.space = {}, {}, {}, {}
        for step in plan.layers:
            nodes = step.layer.nodes
            self.z[step.name] = np.zeros((batch, nodes), DTYPE)
            self.y[step.name] = self.z[step.name] if step.alias else np.zeros((batch, nodes), DTYPE)
            if training:
                self.dy[step.name] = np.zeros((batch, nodes), DTYPE)
            for i in range(len(step.bundles)):
                self.space[step.name, i] = ops[step.name, i].buffers(batch, training, DTYPE)
        self.acts: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name in self.z:
            return self.z[name], self.y[name]
        return self.acts[name], self.acts[name]


class FastExecutor:
    name = "numba"

    def __init__(self, plan: Plan):
        self.plan = plan
        self.ops = {(s.name, i): make_op(b) for s in plan.layers for i, b in enumerate(s.bundles)}
        self.forwards = {s.name: layer_forward(s, self.ops) for s in plan.layers}
        self.grads = {p.name: np.zeros(p.shape, DTYPE) for p in plan.network.parameters}
        self._spaces: dict[tuple[int, bool], Workspace] = {}
        # OpenBLAS's idle threads spin for ~0.1 s after a product; in a network whose other
        # kernels run on numba's threads they take a core from them (up to 1.6x slower steps
        # on two cores). Networks of full bundles only are all BLAS and keep both its threads.
        self.blas_threads = (contextlib.nullcontext if plan.full_only
                             else blas.single_threaded)
        # The last layers, where they chain full bundles, infer in one kernel (kernels.chain):
        # the layers before them (self.head) run one by one.
        layers = chain_layers(plan)
        self.chain = ChainForward(layers) if layers is not None else None
        self.head = plan.layers[:len(plan.layers) - len(layers or ())]
        self._blas_spins_until = 0.0

    def workspace(self, batch: int, training: bool) -> Workspace:
        key = (batch, training)
        if key not in self._spaces:
            if len(self._spaces) >= 4:  # a few sizes (full and last batch) are all that recur
                self._spaces.pop(next(iter(self._spaces)))
            self._spaces[key] = Workspace(self.plan, self.ops, batch, training)
        return self._spaces[key]

    def forward(self, params: dict, inputs: dict, training: bool = True) -> Workspace:
        with self.blas_threads():
            ws = self._forward(params, inputs, training, self.plan.layers)
        self._note_blas()
        return ws

    def _note_blas(self) -> None:
        """A network of full bundles only runs BLAS on its threads, which then spin."""
        if self.plan.full_only:
            self._blas_spins_until = time.perf_counter() + BLAS_SPIN_SECONDS

    def outputs(self, params: dict, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """The output layer's (z, y) for one batch, inference only: buffers the next call
        with a batch of this size reuses."""
        if self.chain is not None:
            # OpenBLAS's threads, still spinning after a product, would share a core with
            # numba's worker (predicts up to 20x slower): until they sleep, the chain runs
            # on one thread where that beats BLAS, and BLAS runs the rest.
            threaded = time.perf_counter() >= self._blas_spins_until
            batch = len(next(iter(inputs.values())))
            if threaded or self.chain.serial_beats_blas(batch):
                with self.blas_threads():
                    ws = self._forward(params, inputs, False, self.head)
                return self.chain.forward(params, ws.acts[self.chain.source], threaded)
        return self.forward(params, inputs, training=False)[self.plan.output.name]

    def backward(self, params: dict, ws: Workspace, dz_output: np.ndarray) -> dict:
        with self.blas_threads():
            grads = self._backward(params, ws, dz_output)
        self._note_blas()
        return grads

    def compile_backward_first(self, params: dict, batch: int, loss=None) -> None:
        """Run every layer's backward kernels on zeros from the first layer to the last,
        then loss(z, y) of the output layer, then the forward kernels from the last layer to
        the first: the reverse of a training step's order, in which kernels.warm's helper
        process compiles them."""
        with self.blas_threads():
            ws = self.workspace(batch, True)
            ws.acts = {layer.name: np.zeros((batch, layer.nodes), DTYPE)
                       for layer in self.plan.network.inputs}
            ws.acts.update(ws.y)
            last = self.plan.layers[-1].name
            dz_output = np.zeros_like(ws.z[last])
            for step in self.plan.layers:
                self._backward_layer(step, params, ws, dz_output)
            if loss is not None:
                loss(ws.z[last], ws.y[last])
            for step in reversed(self.plan.layers):
                self._forward_layer(step, params, ws)

    def _forward(self, params: dict, inputs: dict, training: bool, layers) -> Workspace:
        batch = len(next(iter(inputs.values())))
        ws = self.workspace(batch, training)
        ws.acts = {name: np.ascontiguousarray(x, DTYPE) for name, x in inputs.items()}
        for step in layers:
            self._forward_layer(step, params, ws)
        return ws

    def _forward_layer(self, step, params: dict, ws: Workspace) -> None:
        name, bundles, bias, code, alias = self.forwards[step.name]
        z, acts = ws.z[name], ws.acts
        for i, (op, source, param, accumulate) in enumerate(bundles):
            op.forward(acts[source], params.get(param), z, ws.space[name, i], accumulate)
        y = ws.y[name]
        if not alias:
            activations.forward(z.reshape(-1), z.shape[1], params[bias] if bias else _NO_BIAS,
                                code, y.reshape(-1))
        acts[name] = y

    def _backward(self, params: dict, ws: Workspace, dz_output: np.ndarray) -> dict:
        for step in reversed(self.plan.layers):
            self._backward_layer(step, params, ws, dz_output)
        return self.grads

    def _backward_layer(self, step, params: dict, ws: Workspace, dz_output) -> None:
        grads = self.grads
        if step.layer.kind == "output":
            dz = dz_output
        else:
            dz = ws.dy[step.name]
            if not step.alias:  # in place: dy becomes dz
                z = ws.z[step.name]
                activations.backward(z.reshape(-1), z.shape[1], ws.y[step.name].reshape(-1),
                                     dz.reshape(-1), step.code)
        if step.layer.bias:
            _add_column_sums(dz, grads[step.layer.bias], not step.bias_first)
        for i, b in enumerate(step.bundles):
            dx = ws.dy[b.source] if b.needs_dx else None
            self.ops[step.name, i].backward(
                dz, ws.acts[b.source], params.get(b.param), ws.space[step.name, i],
                dx, not b.dx_first, grads.get(b.param), not b.grad_first)


def _add_column_sums(dz: np.ndarray, out: np.ndarray, accumulate: bool) -> None:
    if accumulate:
        out += dz.sum(axis=0)
    else:
        np.sum(dz, axis=0, out=out)
