"""The checked network: frozen records with exact shapes, counts and spans.

The IR is what every later stage (report, lowering, kernels) reads; nothing in it is mutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from math import prod
from typing import Any

from .geometry import Geometry
from .source import Source, Span

BUNDLE_KINDS = ("full", "filtered", "convolve", "max_pool", "mean_pool", "response_norm")
ACTIVATIONS = ("sigmoid", "linear", "softmax", "rlinear", "square", "sqrt", "srlinear", "abs",
               "tanh", "brlinear")
TASKS = ("multiclass", "binary", "regression")


@dataclass(frozen=True)
class Parameter:
    """One trainable tensor; shared bundles and biases point at the same Parameter."""

    name: str
    shape: tuple[int, ...]
    span: Span
    initial: tuple[float, ...] | None = None  # from a `Weights = ...` attribute, Net#'s order

    @property
    def size(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True, kw_only=True)
class _Bundle:
    source: str
    source_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    connections: int      # source-destination edges that carry a value (padding excluded)
    weights: int          # parameters of this bundle (shared ones counted here too)
    macs: int             # multiply-adds per sample
    param: str | None  # name of its Parameter, None for pooling and normalization
    shared: bool          # True when `param` is also used by another bundle
    span: Span


@dataclass(frozen=True, kw_only=True)
class FullBundle(_Bundle):
    kind: str = "full"


@dataclass(frozen=True, kw_only=True)
class FilteredBundle(_Bundle):
    """Edges in Net#'s order: by destination index, then source index (flat, row-major)."""

    edge_source: Any = field(compare=False)   # read-only numpy int64 arrays, one per edge
    edge_dest: Any = field(compare=False)
    kind: str = "filtered"


@dataclass(frozen=True, kw_only=True)
class ConvBundle(_Bundle):
    geometry: Geometry
    map_count: tuple[int, ...]
    sharing: tuple[bool, ...]
    kernel_count: int
    kind: str = "convolve"


@dataclass(frozen=True, kw_only=True)
class PoolBundle(_Bundle):
    geometry: Geometry
    kind: str  # 'max_pool' | 'mean_pool'


@dataclass(frozen=True, kw_only=True)
class NormBundle(_Bundle):
    geometry: Geometry
    alpha: float
    beta: float
    offset: float
    avg_over_full_kernel: bool
    kind: str = "response_norm"


Bundle = FullBundle | FilteredBundle | ConvBundle | PoolBundle | NormBundle


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str                   # 'input' | 'hidden' | 'output'
    shape: tuple[int, ...]
    activation: str | None   # None for input layers
    bundles: tuple[Bundle, ...]
    bias: str | None         # name of the bias Parameter, when the layer has one
    span: Span

    @property
    def nodes(self) -> int:
        return prod(self.shape)

    @property
    def weights(self) -> int:
        """Parameters of its bundles plus its bias (shared ones counted in every sharer)."""
        return sum(b.weights for b in self.bundles) + (self.nodes if self.bias else 0)

    @property
    def macs(self) -> int:
        return sum(b.macs for b in self.bundles)


@dataclass(frozen=True)
class Network:
    """A compiled Net# program: layers in declaration order and their distinct parameters."""

    layers: tuple[Layer, ...]
    parameters: tuple[Parameter, ...]
    order: tuple[str, ...]   # layer names in an order where every source precedes its users
    task: str
    source: Source = field(repr=False)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(self.layer_names)}")

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(f"no parameter named {name!r}")

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    # cached: read on every predict and training step
    @cached_property
    def inputs(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.kind == "input")

    @cached_property
    def output(self) -> Layer:
        return next(layer for layer in self.layers if layer.kind == "output")

    @property
    def total_weights(self) -> int:
        """Distinct parameters: shared ones are counted once."""
        return sum(p.size for p in self.parameters)

    @cached_property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def summary(self) -> str:
        """The table `netsharp compile` prints."""
        from .report import summary_table

        return summary_table(self)

    def to_dict(self) -> dict:
        """The document `netsharp compile --json` prints."""
        from .report import network_dict

        return network_dict(self)

    def __repr__(self) -> str:
        shapes = " -> ".join(f"{layer.name}{list(layer.shape)}" for layer in self.layers)
        return f"<Network {self.source.path}: {shapes}; {self.total_weights} weights>"
