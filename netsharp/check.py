"""Syntax tree -> IR: names, shapes, graph, bundle geometry, weight counts and sharing.

Each step is a small function over plain records; every error points at the text it is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import prod
from typing import Any

from . import ast, ir
from .consts import Evaluator, describe, kind_of
from .errors import NetsharpError, SemanticError, did_you_mean
from .geometry import (Axis, Geometry, auto_padded_axis, explicit_padded_axis, tiles_exactly,
                       unpadded_axis)
from .predicates import filtered_edges
from .source import Span

GEOMETRY_ATTRIBUTES = ("InputShape", "KernelShape", "Stride", "Padding", "LowerPad", "UpperPad")
ATTRIBUTES_BY_KIND = {
    "full": ("Weights",),
    "filtered": ("Weights",),
    "convolve": GEOMETRY_ATTRIBUTES + ("Sharing", "MapCount", "Weights"),
    "max_pool": GEOMETRY_ATTRIBUTES,
    "mean_pool": GEOMETRY_ATTRIBUTES,
    "response_norm": GEOMETRY_ATTRIBUTES + ("Alpha", "Beta", "Offset", "AvgOverFullKernel"),
}
ALL_ATTRIBUTES = {name.lower(): name for names in ATTRIBUTES_BY_KIND.values() for name in names}
KIND_WORDS = {"full": "full (all)", "filtered": "filtered (where)", "convolve": "convolve",
              "max_pool": "max pool", "mean_pool": "mean pool", "response_norm": "response norm"}
TRAINABLE_KINDS = ("full", "filtered", "convolve")


@dataclass(frozen=True)
class Context:
    """What `auto` and the default output function depend on: the data and the task."""

    features: int | None = None
    classes: int | None = None
    task: str | None = None      # 'multiclass' | 'binary' | 'regression'; inferred when None
    hidden_size: int = 100
    binary_outputs: int = 1      # two-class output nodes for `auto` (Microsoft's trainer used 1)

    def __post_init__(self):
        for name in ("features", "classes", "hidden_size", "binary_outputs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.task is not None and self.task not in ir.TASKS:
            raise ValueError(f"task must be one of {', '.join(ir.TASKS)}, not {self.task!r}")


# ---- phase 1: evaluate constants, layer shapes and attribute values in text order -------------

@dataclass
class _Attr:
    value: Any
    node: ast.Attribute


@dataclass
class _BundleInfo:
    node: ast.Bundle
    attrs: dict[str, _Attr]
    constants: dict[str, Any] | None  # the constants a `where` predicate can see


@dataclass
class _LayerInfo:
    decl: ast.LayerDecl
    shape: tuple[int, ...] | None    # None until `auto` is resolved
    bundles: list[_BundleInfo]
    index: int


@dataclass
class _Program:
    layers: dict[str, _LayerInfo] = field(default_factory=dict)
    shares: list[ast.Share] = field(default_factory=list)


def check(program: ast.Program, context: Context = Context()) -> ir.Network:
    """The whole semantic pass; raises SemanticError (with the program's text attached)."""
    try:
        return _check(program, context)
    except NetsharpError as error:
        raise error.with_source(program.source) from None


def _check(program: ast.Program, context: Context) -> ir.Network:
    collected = _collect(program)
    output = _check_layer_counts(collected, program)
    task = _resolve_task(context, output)
    _resolve_shapes(collected, context, task)
    order = _check_graph(collected)
    layers = [_build_layer(info, collected, task) for info in collected.layers.values()]
    layers, parameters = _resolve_shares(layers, collected)
    return ir.Network(tuple(layers), tuple(parameters), order, task, program.source)


def _collect(program: ast.Program) -> _Program:
    constants: dict[str, Any] = {}
    defined: dict[str, Span] = {}
    collected = _Program()
    for statement in program.statements:
        if isinstance(statement, ast.ConstDef):
            _define(statement.name, statement.name_span, defined)
            constants[statement.name] = Evaluator(constants).eval(statement.value)
        elif isinstance(statement, ast.LayerDecl):
            _define(statement.name, statement.name_span, defined)
            collected.layers[statement.name] = _collect_layer(statement, constants,
                                                              len(collected.layers))
        else:
            collected.shares.append(statement)
    return collected


def _define(name: str, span: Span, defined: dict[str, Span]) -> None:
    if name in defined:
        first = defined[name]
        raise SemanticError(f"'{name}' is already defined", span,
                            (f"first defined at {first.line}:{first.col}",))
    defined[name] = span


def _collect_layer(decl: ast.LayerDecl, constants: dict, index: int) -> _LayerInfo:
    shape = None if decl.shape is None else tuple(_size(e, constants) for e in decl.shape)
    bundles = [_collect_bundle(b, constants) for b in decl.bundles]
    return _LayerInfo(decl, shape, bundles, index)


def _size(expr: ast.Expr, constants: dict) -> int:
    value = Evaluator(constants).eval(expr)
    if kind_of(value) != "int" or value < 1:
        raise SemanticError(f"a layer size must be a positive integer, not {describe(value)}",
                            expr.span)
    return value


def _collect_bundle(node: ast.Bundle, constants: dict) -> _BundleInfo:
    attrs: dict[str, _Attr] = {}
    for attribute in node.attributes:
        name = _attribute_name(attribute, node.kind)
        if name in attrs:
            raise SemanticError(f"{name} is given twice", attribute.name_span)
        attrs[name] = _Attr(Evaluator(constants).eval(attribute.value), attribute)
    snapshot = dict(constants) if node.kind == "filtered" else None
    return _BundleInfo(node, attrs, snapshot)


def _attribute_name(attribute: ast.Attribute, kind: str) -> str:
    canonical = ALL_ATTRIBUTES.get(attribute.name.lower())
    if canonical is None:
        raise SemanticError(f"unknown attribute '{attribute.name}'", attribute.name_span,
                            did_you_mean(attribute.name, ATTRIBUTES_BY_KIND[kind])
                            or (f"{KIND_WORDS[kind]} bundles take: "
                                f"{', '.join(ATTRIBUTES_BY_KIND[kind])}",))
    if canonical not in ATTRIBUTES_BY_KIND[kind]:
        raise SemanticError(f"{KIND_WORDS[kind]} bundles do not take {canonical}",
                            attribute.name_span,
                            (f"they take: {', '.join(ATTRIBUTES_BY_KIND[kind])}",))
    return canonical


# ---- phase 2: layer counts, task, `auto` ------------------------------------------------------

def _check_layer_counts(collected: _Program, program: ast.Program) -> _LayerInfo:
    everywhere = Span(program.source.path, 1, 1, 1, 2)
    outputs = [info for info in collected.layers.values() if info.decl.kind == "output"]
    if not outputs:
        raise SemanticError("the program has no output layer", everywhere,
                            ("declare one, e.g. `output Result [10] softmax from H all;`",))
    if len(outputs) > 1:
        first = outputs[0].decl.name_span
        raise SemanticError("a program has exactly one output layer; this is a second one",
                            outputs[1].decl.name_span,
                            (f"the first output layer is at {first.line}:{first.col}",))
    if not any(info.decl.kind == "input" for info in collected.layers.values()):
        raise SemanticError("the program has no input layer", everywhere,
                            ("declare one, e.g. `input Picture [28, 28];`",))
    return outputs[0]


def _resolve_task(context: Context, output: _LayerInfo) -> str:
    if context.task:
        return context.task
    if context.classes is not None:
        one_node = output.shape is None or prod(output.shape) == 1
        return "binary" if context.classes == 2 and one_node else "multiclass"
    if output.shape is None:
        raise SemanticError("the output layer's size is auto, but neither the number of classes "
                            "nor the task is known", output.decl.shape_span,
                            ("give classes=N or task='regression' (CLI: --classes N or "
                             "--task regression)",))
    return "binary" if prod(output.shape) == 1 else "multiclass"


def _resolve_shapes(collected: _Program, context: Context, task: str) -> None:
    for info in collected.layers.values():
        if info.shape is None:
            info.shape = (_auto_size(info, collected, context, task),)
    _check_features(collected, context)
    output = next(i for i in collected.layers.values() if i.decl.kind == "output")
    if task == "multiclass" and context.classes and prod(output.shape) != context.classes:
        raise SemanticError(f"the output layer has {prod(output.shape)} nodes, but there are "
                            f"{context.classes} classes", output.decl.shape_span)


def _auto_size(info: _LayerInfo, collected: _Program, context: Context, task: str) -> int:
    if info.decl.kind == "hidden":
        return context.hidden_size
    if info.decl.kind == "output":
        if task == "regression":
            return 1
        if task == "binary":
            return context.binary_outputs
        if context.classes is None:
            raise SemanticError("the output layer's size is auto, but the number of classes is "
                                "not known", info.decl.shape_span,
                                ("give classes=N (CLI: --classes N)",))
        return context.classes
    return _auto_input_size(info, collected, context)


def _auto_input_size(info: _LayerInfo, collected: _Program, context: Context) -> int:
    inputs = [i for i in collected.layers.values() if i.decl.kind == "input"]
    autos = [i for i in inputs if i.decl.shape is None]
    if context.features is None:
        raise SemanticError(f"input layer '{info.decl.name}' is auto, but the number of features "
                            "is not known", info.decl.shape_span,
                            ("give features=N (CLI: --features N), or train on data",))
    if len(autos) > 1:
        raise SemanticError("only one input layer can be auto: the others' sizes decide how "
                            "the features are split", autos[1].decl.shape_span)
    rest = sum(prod(i.shape) for i in inputs if i is not info)
    if context.features <= rest:
        raise SemanticError(f"input layer '{info.decl.name}' is auto, but the other input layers "
                            f"already take {rest} of the {context.features} features",
                            info.decl.shape_span)
    return context.features - rest


def _check_features(collected: _Program, context: Context) -> None:
    inputs = [i for i in collected.layers.values() if i.decl.kind == "input"]
    total = sum(prod(i.shape) for i in inputs)
    if context.features is not None and total != context.features:
        several = ("several input layers split the features in declaration order",)
        raise SemanticError(f"the input layers take {total} features, but the data has "
                            f"{context.features}", inputs[0].decl.shape_span,
                            several if len(inputs) > 1 else ())


# ---- phase 3: the graph -----------------------------------------------------------------------

def _check_graph(collected: _Program) -> tuple[str, ...]:
    for info in collected.layers.values():
        _check_layer_bundles(info, collected)
    order = _topological_order(collected)
    _check_reaches_output(collected)
    return order


def _check_layer_bundles(info: _LayerInfo, collected: _Program) -> None:
    decl = info.decl
    if decl.kind == "input":
        if decl.activation:
            raise SemanticError("input layers have no output function", decl.activation_span)
        if decl.bundles:
            raise SemanticError("input layers take no bundles", decl.bundles[0].span,
                                ("an input layer's values come from the data",))
        return
    if not decl.bundles:
        raise SemanticError(f"{decl.kind} layer '{decl.name}' has no bundles", decl.name_span,
                            ("connect it to a source, e.g. `from Picture all;`",))
    for bundle in decl.bundles:
        _check_source(bundle, decl, collected)


def _check_source(bundle: ast.Bundle, decl: ast.LayerDecl, collected: _Program) -> None:
    source = collected.layers.get(bundle.source)
    if source is None:
        raise SemanticError(f"unknown layer '{bundle.source}'", bundle.source_span,
                            did_you_mean(bundle.source, collected.layers))
    if bundle.source == decl.name:
        raise SemanticError(f"layer '{decl.name}' cannot take a bundle from itself",
                            bundle.source_span)
    if source.decl.kind == "output":
        raise SemanticError(f"the output layer '{bundle.source}' cannot be a bundle's source",
                            bundle.source_span)


def _topological_order(collected: _Program) -> tuple[str, ...]:
    """Sources before users; a cycle is reported at the bundle that closes it."""
    done: list[str] = []
    state: dict[str, str] = {}
    for name in collected.layers:
        _visit(name, collected, state, done, [])
    return tuple(done)


def _visit(name: str, collected: _Program, state: dict, done: list, path: list) -> None:
    # iterative depth-first search: deep chains of layers must not hit Python's recursion limit
    if state.get(name) == "done":
        return
    stack = [(name, iter(collected.layers[name].decl.bundles))]
    state[name] = "active"
    path.append(name)
    while stack:
        current, bundles = stack[-1]
        bundle = next(bundles, None)
        if bundle is None:
            stack.pop()
            path.pop()
            state[current] = "done"
            done.append(current)
        elif state.get(bundle.source) == "active":
            cycle = path[path.index(bundle.source):] + [bundle.source]
            raise SemanticError("these bundles form a cycle: " + " <- ".join(
                f"'{n}'" for n in reversed(cycle)), bundle.source_span)
        elif state.get(bundle.source) != "done":
            state[bundle.source] = "active"
            path.append(bundle.source)
            stack.append((bundle.source, iter(collected.layers[bundle.source].decl.bundles)))


def _check_reaches_output(collected: _Program) -> None:
    output = next(n for n, i in collected.layers.items() if i.decl.kind == "output")
    reaching, pending = {output}, [output]
    while pending:
        for bundle in collected.layers[pending.pop()].decl.bundles:
            if bundle.source not in reaching:
                reaching.add(bundle.source)
                pending.append(bundle.source)
    for name, info in collected.layers.items():
        if info.decl.kind == "hidden" and name not in reaching:
            raise SemanticError(f"hidden layer '{name}' does not reach the output layer",
                                info.decl.name_span,
                                ("every hidden layer must feed, directly or through others, "
                                 f"the output layer '{output}'",))


# ---- phase 4: layers and bundles --------------------------------------------------------------

def _build_layer(info: _LayerInfo, collected: _Program, task: str) -> ir.Layer:
    decl = info.decl
    names = _parameter_names(decl)
    bundles = tuple(_build_bundle(b, info, collected, name) for b, name in zip(info.bundles, names))
    has_bias = any(b.kind in ("full", "filtered") for b in bundles)
    return ir.Layer(decl.name, decl.kind, info.shape, _activation(decl, bundles, task),
                    bundles, f"{decl.name}.bias" if has_bias else None, decl.span)


def _parameter_names(decl: ast.LayerDecl) -> list[str]:
    """`Layer.Source`, with the bundle's position appended when one source feeds it twice."""
    sources = [b.source for b in decl.bundles]
    return [f"{decl.name}.{s}" if sources.count(s) == 1 else f"{decl.name}.{s}.{i}"
            for i, s in enumerate(sources)]


def _activation(decl: ast.LayerDecl, bundles: tuple, task: str) -> str | None:
    if decl.kind == "input" or decl.activation:
        return decl.activation
    if decl.kind == "output":
        return {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}[task]
    trainable = any(b.kind in TRAINABLE_KINDS for b in bundles)
    return "sigmoid" if trainable else "linear"


def _build_bundle(info: _BundleInfo, dest: _LayerInfo, collected: _Program,
                  param: str) -> ir.Bundle:
    source_shape = collected.layers[info.node.source].shape
    builder = {"full": _full, "filtered": _filtered, "convolve": _convolve,
               "max_pool": _pool, "mean_pool": _pool, "response_norm": _norm}[info.node.kind]
    return builder(info, source_shape, dest, param)


def _common(info: _BundleInfo, source_shape, output_shape, connections, weights, macs, param):
    return dict(source=info.node.source, source_shape=source_shape, output_shape=output_shape,
                connections=connections, weights=weights, macs=macs, param=param,
                shared=False, span=info.node.span)


def _full(info: _BundleInfo, source_shape, dest: _LayerInfo, param: str) -> ir.FullBundle:
    edges = prod(source_shape) * prod(dest.shape)
    _initial_weights(info, edges)
    return ir.FullBundle(**_common(info, source_shape, dest.shape, edges, edges, edges, param))


def _filtered(info: _BundleInfo, source_shape, dest: _LayerInfo,
              param: str) -> ir.FilteredBundle:
    edge_source, edge_dest = filtered_edges(info.node.predicate, source_shape, dest.shape,
                                            info.constants)
    edges = len(edge_source)
    if edges == 0:
        raise SemanticError("this predicate selects no connections", info.node.predicate.span,
                            (f"it was tested on all {prod(source_shape) * prod(dest.shape)} "
                             f"(source, destination) pairs",))
    _initial_weights(info, edges)
    return ir.FilteredBundle(**_common(info, source_shape, dest.shape, edges, edges, edges, param),
                             edge_source=edge_source, edge_dest=edge_dest)


def _convolve(info: _BundleInfo, source_shape, dest: _LayerInfo, param: str) -> ir.ConvBundle:
    geometry = _geometry(info, source_shape)
    rank = len(geometry.axes)
    map_count = _map_count(info, rank)
    sharing = _bools(info, "Sharing", rank, True)
    output_shape = tuple(m * n for m, n in zip(map_count, geometry.positions))
    _check_output_nodes(info, dest, geometry, output_shape, map_count)
    kernel_count = prod(m if shared else m * n
                        for m, n, shared in zip(map_count, geometry.positions, sharing))
    weights = kernel_count * (geometry.kernel_size + 1)
    _initial_weights(info, weights, f"{kernel_count} kernels x ({geometry.kernel_size} + 1)")
    connections = prod(map_count) * geometry.real_connections
    return ir.ConvBundle(**_common(info, source_shape, output_shape, connections, weights,
                                   connections, param),
                         geometry=geometry, map_count=map_count, sharing=sharing,
                         kernel_count=kernel_count)


def _pool(info: _BundleInfo, source_shape, dest: _LayerInfo, param: str) -> ir.PoolBundle:
    geometry = _geometry(info, source_shape)
    _check_output_nodes(info, dest, geometry, geometry.positions, None)
    return ir.PoolBundle(**_common(info, source_shape, geometry.positions,
                                   geometry.real_connections, 0, 0, None),
                         geometry=geometry, kind=info.node.kind)


def _norm(info: _BundleInfo, source_shape, dest: _LayerInfo, param: str) -> ir.NormBundle:
    geometry = _geometry(info, source_shape)
    _check_output_nodes(info, dest, geometry, geometry.positions, None)
    connections = geometry.real_connections
    return ir.NormBundle(**_common(info, source_shape, geometry.positions, connections, 0,
                                   connections, None),
                         geometry=geometry, alpha=_number(info, "Alpha", None),
                         beta=_number(info, "Beta", None), offset=_number(info, "Offset", 1.0),
                         avg_over_full_kernel=_bools(info, "AvgOverFullKernel", 1, False)[0])


def _check_output_nodes(info: _BundleInfo, dest: _LayerInfo, geometry: Geometry,
                        output_shape: tuple, map_count: tuple | None) -> None:
    if prod(output_shape) == prod(dest.shape):
        return
    notes = [f"dimension {d}: {_positions_note(axis)}" for d, axis in enumerate(geometry.axes)]
    if map_count is not None:
        notes.append(f"output shape = MapCount x positions = {list(map_count)} x "
                     f"{list(geometry.positions)} = {list(output_shape)}")
    raise SemanticError(f"layer '{dest.decl.name}' declares {prod(dest.shape)} nodes but its "
                        f"{KIND_WORDS[info.node.kind]} bundle produces {prod(output_shape)} "
                        f"({list(output_shape)})", dest.decl.shape_span, tuple(notes))


def _positions_note(axis: Axis) -> str:
    i, k, s, n = axis.size, axis.kernel, axis.stride, axis.positions
    if axis.padding == "auto":
        return f"(InputShape - 1) / Stride + 1 = ({i} - 1) / {s} + 1 = {n}"
    if axis.padding == "explicit":
        return (f"(InputShape + LowerPad + UpperPad - KernelShape) / Stride + 1 = "
                f"({i} + {axis.lower_pad} + {axis.upper_pad} - {k}) / {s} + 1 = {n}")
    return f"(InputShape - KernelShape) / Stride + 1 = ({i} - {k}) / {s} + 1 = {n}"


# ---- geometry attributes ----------------------------------------------------------------------

def _geometry(info: _BundleInfo, source_shape: tuple[int, ...]) -> Geometry:
    input_shape = _input_shape(info, source_shape)
    rank = len(input_shape)
    kernel = _ints(info, "KernelShape", rank, None, 1)
    for d, (i, k) in enumerate(zip(input_shape, kernel)):
        if k > i:
            raise SemanticError(f"KernelShape[{d}] = {k} is larger than InputShape[{d}] = {i}",
                                info.attrs["KernelShape"].node.value.span)
    stride = _ints(info, "Stride", rank, 1, 1)
    for d, (k, s) in enumerate(zip(kernel, stride)):
        if s > k:
            raise SemanticError(f"Stride[{d}] = {s} is larger than KernelShape[{d}] = {k}",
                                info.attrs["Stride"].node.value.span,
                                ("a stride larger than the kernel would skip input cells",))
    return Geometry(tuple(_axes(info, input_shape, kernel, stride)))


def _input_shape(info: _BundleInfo, source_shape: tuple[int, ...]) -> tuple[int, ...]:
    if "InputShape" not in info.attrs:
        raise _missing(info, "InputShape", f"[{', '.join(map(str, source_shape))}]")
    value = info.attrs["InputShape"].value
    rank = len(value) if isinstance(value, tuple) else 1
    shape = _ints(info, "InputShape", rank, None, 1)
    if prod(shape) != prod(source_shape):
        raise SemanticError(f"InputShape {list(shape)} has {prod(shape)} cells, but the source "
                            f"layer '{info.node.source}' has {prod(source_shape)} nodes "
                            f"({list(source_shape)})", info.attrs["InputShape"].node.value.span)
    return shape


def _axes(info: _BundleInfo, input_shape, kernel, stride):
    rank = len(input_shape)
    explicit = "LowerPad" in info.attrs or "UpperPad" in info.attrs
    if explicit and "Padding" in info.attrs:
        raise SemanticError("Padding cannot be combined with LowerPad/UpperPad",
                            info.attrs["Padding"].node.name_span,
                            ("use Padding for automatic padding, or LowerPad and UpperPad for "
                             "exact pads",))
    if not explicit:
        padding = _bools(info, "Padding", rank, False)
        return [(auto_padded_axis if pad else unpadded_axis)(i, k, s)
                for i, k, s, pad in zip(input_shape, kernel, stride, padding)]
    lower = _ints(info, "LowerPad", rank, 0, 0)
    upper = _ints(info, "UpperPad", rank, 0, 0)
    return [_explicit_axis(info, d, i, k, s, lo, hi)
            for d, (i, k, s, lo, hi) in enumerate(zip(input_shape, kernel, stride, lower, upper))]


def _explicit_axis(info: _BundleInfo, d: int, i: int, k: int, s: int, lo: int, hi: int) -> Axis:
    if lo > (k - 1) // 2:
        raise SemanticError(f"LowerPad[{d}] = {lo} is too large for KernelShape[{d}] = {k}",
                            info.attrs["LowerPad"].node.value.span,
                            (f"LowerPad can be at most (KernelShape - 1) / 2 = {(k - 1) // 2}",))
    if hi > k // 2:
        raise SemanticError(f"UpperPad[{d}] = {hi} is too large for KernelShape[{d}] = {k}",
                            info.attrs["UpperPad"].node.value.span,
                            (f"UpperPad can be at most KernelShape / 2 = {k // 2}",))
    if not tiles_exactly(i, k, s, lo, hi):
        n = (i + lo + hi - k) // s + 1
        node = info.attrs.get("UpperPad", info.attrs.get("LowerPad")).node
        raise SemanticError(f"in dimension {d} the kernels do not tile the padded input exactly",
                            node.value.span,
                            (f"{n} kernels of {k} with stride {s} cover (N - 1) * Stride + "
                             f"KernelShape = {(n - 1) * s + k} cells, but the padded input has "
                             f"InputShape + LowerPad + UpperPad = {i} + {lo} + {hi} = "
                             f"{i + lo + hi}",))
    return explicit_padded_axis(i, k, s, lo, hi)


def _map_count(info: _BundleInfo, rank: int) -> tuple[int, ...]:
    attr = info.attrs.get("MapCount")
    if attr is not None and kind_of(attr.value) == "int":
        if attr.value < 1:
            raise SemanticError("MapCount must be a positive integer", attr.node.value.span)
        return (attr.value,) + (1,) * (rank - 1)
    return _ints(info, "MapCount", rank, 1, 1)


def _missing(info: _BundleInfo, name: str, example: str) -> SemanticError:
    return SemanticError(f"{KIND_WORDS[info.node.kind]} bundle needs {name}", info.node.kind_span,
                         (f"add e.g. `{name} = {example};` to its attributes",))


def _ints(info: _BundleInfo, name: str, rank: int, default: int | None,
          minimum: int) -> tuple[int, ...]:
    attr = info.attrs.get(name)
    if attr is None:
        if default is None:
            raise _missing(info, name, "[" + ", ".join(["1"] * rank) + "]")
        return (default,) * rank
    value, span = attr.value, attr.node.value.span
    if kind_of(value) != "tuple" or len(value) != rank:
        raise SemanticError(f"{name} must be an array of {rank} integers, not {describe(value)}",
                            span, (f"write e.g. {name} = [{', '.join(['1'] * rank)}];",))
    for element in value:
        if kind_of(element) != "int" or element < minimum:
            least = "positive" if minimum == 1 else "non-negative"
            raise SemanticError(f"{name} must hold {least} integers; {describe(element)} is not",
                                span)
    return value


def _bools(info: _BundleInfo, name: str, rank: int, default: bool) -> tuple[bool, ...]:
    attr = info.attrs.get(name)
    if attr is None:
        return (default,) * rank
    value, span = attr.value, attr.node.value.span
    if kind_of(value) == "bool":
        return (value,) * rank
    if kind_of(value) != "tuple" or len(value) != rank or any(kind_of(v) != "bool" for v in value):
        raise SemanticError(f"{name} must be true, false or an array of {rank} booleans, not "
                            f"{describe(value)}", span)
    return value


def _number(info: _BundleInfo, name: str, default: float | None) -> float:
    attr = info.attrs.get(name)
    if attr is None:
        if default is None:
            raise _missing(info, name, "0.0001" if name == "Alpha" else "0.75")
        return default
    if kind_of(attr.value) not in ("int", "real"):
        raise SemanticError(f"{name} must be a number, not {describe(attr.value)}",
                            attr.node.value.span)
    return float(attr.value)


def _initial_weights(info: _BundleInfo, count: int, how: str | None = None) -> None:
    attr = info.attrs.get("Weights")
    if attr is None:
        return
    value = attr.value
    if kind_of(value) != "tuple" or any(kind_of(v) not in ("int", "real") for v in value):
        raise SemanticError("Weights must be an array of numbers", attr.node.value.span)
    if len(value) != count:
        raise SemanticError(f"Weights has {len(value)} numbers, but this bundle has {count} "
                            "weights", attr.node.value.span, (how,) if how else ())


def _initial_values(bundle_node_attrs: dict) -> tuple[float, ...] | None:
    attr = bundle_node_attrs.get("Weights")
    return None if attr is None else tuple(float(v) for v in attr.value)


# ---- phase 5: sharing and the parameter list --------------------------------------------------

@dataclass(frozen=True)
class _Slot:
    """A parameter before sharing: a bundle's weights or a layer's bias."""

    name: str
    shape: tuple[int, ...]
    span: Span
    initial: tuple[float, ...] | None
    bundle: ir.Bundle | None  # None for a bias
    layer: ir.Layer

    def structure(self) -> tuple:
        """Computed only for shared slots: a filtered bundle's key copies its whole edge list."""
        if self.bundle is None:
            return ("bias", self.layer.nodes)
        return _structure(self.bundle, self.layer)


def _resolve_shares(layers: list[ir.Layer], collected: _Program):
    slots = _slots(layers, collected)
    owner = {name: name for name in slots}
    for share in collected.shares:
        _apply_share(share, layers, slots, owner)
    groups: dict[str, list[str]] = {}
    for name in slots:
        groups.setdefault(_find(owner, name), []).append(name)
    parameters = [ir.Parameter(root, slots[root].shape, slots[root].span,
                               next((slots[n].initial for n in members if slots[n].initial),
                                    None))
                  for root, members in groups.items()]
    return [_with_owners(layer, owner, groups) for layer in layers], parameters


def _slots(layers: list[ir.Layer], collected: _Program) -> dict[str, _Slot]:
    slots: dict[str, _Slot] = {}
    for layer in layers:
        infos = collected.layers[layer.name].bundles
        for bundle, info in zip(layer.bundles, infos):
            if bundle.param is not None:
                slots[bundle.param] = _Slot(bundle.param, _param_shape(bundle, layer),
                                            bundle.span, _initial_values(info.attrs), bundle,
                                            layer)
        if layer.bias:
            slots[layer.bias] = _Slot(layer.bias, (layer.nodes,), layer.span, None, None, layer)
    return slots


def _param_shape(bundle: ir.Bundle, layer: ir.Layer) -> tuple[int, ...]:
    if bundle.kind == "full":
        return (layer.nodes, prod(bundle.source_shape))
    if bundle.kind == "filtered":
        return (bundle.weights,)
    return (bundle.kernel_count, bundle.geometry.kernel_size + 1)


def _structure(bundle: ir.Bundle, layer: ir.Layer) -> tuple:
    """What two bundles must agree on to share weights."""
    if bundle.kind == "convolve":
        return ("convolve", prod(bundle.source_shape), bundle.geometry, bundle.map_count,
                bundle.sharing)
    if bundle.kind == "filtered":
        return ("filtered", prod(bundle.source_shape), layer.nodes,
                bundle.edge_source.tobytes(), bundle.edge_dest.tobytes())
    return ("full", prod(bundle.source_shape), layer.nodes)


def _find(owner: dict[str, str], name: str) -> str:
    while owner[name] != name:
        name = owner[name]
    return name


def _apply_share(share: ast.Share, layers: list[ir.Layer], slots: dict, owner: dict) -> None:
    if len(share.items) < 2:
        raise SemanticError("a share names at least two items", share.span)
    forms = {item.form for item in share.items}
    if len(forms) > 1:
        raise SemanticError("a share mixes its three forms; use one form per share", share.span,
                            ("`share { H1, H2 }`, `share { A => H1, B => H2 }` or "
                             "`share { 1 => H1, 1 => H2 }`",))
    by_name = {layer.name: layer for layer in layers}
    items = [_share_slots(item, by_name) for item in share.items]
    for index, names in enumerate(items):
        if names in items[:index]:
            raise SemanticError(f"'{share.items[index].layer}' is named twice in this share",
                                share.items[index].span)
    first = items[0]
    for item, names in zip(share.items[1:], items[1:]):
        _check_same_structure(item, share.items[0], names, first, slots)
        for mine, theirs in zip(names, first):
            a, b = _find(owner, mine), _find(owner, theirs)
            root, other = sorted((a, b), key=list(slots).index)
            owner[other] = root


def _share_slots(item: ast.ShareItem, by_name: dict[str, ir.Layer]) -> list[str]:
    layer = by_name.get(item.layer)
    if layer is None:
        raise SemanticError(f"unknown layer '{item.layer}'", item.layer_span,
                            did_you_mean(item.layer, by_name))
    if layer.kind == "input":
        raise SemanticError(f"input layer '{item.layer}' has no weights to share", item.span)
    if item.form == "bias":
        if layer.bias is None:
            raise SemanticError(f"layer '{item.layer}' has no bias vector", item.span,
                                ("only layers with a full or filtered bundle have one; "
                                 "convolution biases live in the kernels",))
        return [layer.bias]
    if item.form == "layer":
        if len(layer.bundles) != 1:
            raise SemanticError(f"layer '{item.layer}' has {len(layer.bundles)} bundles; sharing "
                                "a whole layer needs exactly one", item.span,
                                ("name the bundle instead: `share { Source => Layer, ... }`",))
        return _bundle_slot(layer.bundles[0], item) + ([layer.bias] if layer.bias else [])
    matches = [b for b in layer.bundles if b.source == item.source]
    if len(matches) != 1:
        problem = "no bundle" if not matches else f"{len(matches)} bundles"
        raise SemanticError(f"layer '{item.layer}' has {problem} from '{item.source}'", item.span)
    return _bundle_slot(matches[0], item)


def _bundle_slot(bundle: ir.Bundle, item: ast.ShareItem) -> list[str]:
    if bundle.param is None:
        raise SemanticError(f"{KIND_WORDS[bundle.kind]} bundles have no weights to share",
                            item.span)
    return [bundle.param]


def _check_same_structure(item, first_item, names, first_names, slots) -> None:
    mismatch = len(names) != len(first_names) or any(
        slots[a].structure() != slots[b].structure() for a, b in zip(names, first_names))
    if mismatch:
        mine = ", ".join(f"{n} {list(slots[n].shape)}" for n in names)
        theirs = ", ".join(f"{n} {list(slots[n].shape)}" for n in first_names)
        raise SemanticError(f"'{item.layer}' cannot share with '{first_item.layer}': their "
                            "structures differ", item.span, (f"{mine} vs {theirs}",))


def _with_owners(layer: ir.Layer, owner: dict, groups: dict) -> ir.Layer:
    def shared(name):
        return len(groups[_find(owner, name)]) > 1

    bundles = tuple(replace(b, param=_find(owner, b.param), shared=shared(b.param))
                    if b.param else b for b in layer.bundles)
    bias = _find(owner, layer.bias) if layer.bias else None
    return replace(layer, bundles=bundles, bias=bias)

