"""Hypothesis strategies for Net# programs, and the weight counts they must compile to.

`valid_programs()` draws a whole, valid Net# program together with what LANGUAGE.md says it
describes: each layer's node count and weights and the network's total of distinct weights. The
generator counts by itself, from its own construction choices and LANGUAGE.md's rules, never by
asking netsharp:

- full bundle: |S| x |D|;  filtered bundle: its edges, found by testing every (s, d) pair in Python;
- convolution: KernelCount x (prod(KernelShape) + 1), KernelCount = prod over d of
  (MapCount[d] if Sharing[d] else MapCount[d] * N[d]);  pooling and response norm: 0;
- one bias per node in a layer with at least one full or filtered bundle;
- shared parameters (`share { .. }`) counted once.

Geometry is valid by construction (LANGUAGE.md 5.3): N = (I - K) / S + 1 without padding,
(I - 1) / S + 1 with `Padding = true`, (I + lo + hi - K) / S + 1 with pads that tile exactly.

Variety: constants (single and block forms, arrays, expressions with + - * / % ^, parentheses,
unary operators, min/max/abs, indexing), inputs of rank 1-3, hidden layers (also `auto` and group
forms) with several bundles each, filtered predicates, convolution, max/mean pooling, response
normalisation, `Weights` attributes, shares, random output functions, keywords and attribute
names in any case, free whitespace, `//` and `/* */` comments, stray `;` and statements in any
order. Every hidden layer reaches the single output layer: a hidden layer that no later layer
uses gets a bundle into the output layer.

Also here: `corrupted_programs()` (valid programs with random damage), `token_soup()` and
`printable_text()` for the robustness properties.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod

from hypothesis import strategies as st

MAX_NODES = 400          # nodes of any generated layer
MAX_FILTER_PAIRS = 2500  # (source, destination) pairs a filtered bundle is tested on
MAX_HIDDEN = 6

ACTIVATIONS = ("sigmoid", "linear", "softmax", "rlinear", "square", "sqrt", "srlinear", "abs",
               "tanh", "brlinear")
PUNCTUATION = frozenset("()[]{},;")
LAMBDA_PARAMS = (("s", "d"), ("src", "dst"), ("a", "b"), ("i", "o"), ("x", "y"), ("S", "D"),
                 ("from_", "to"))
LAYER_PREFIXES = ("H", "Hid", "Conv", "C", "Pool", "P", "L", "layer_", "_h", "Norm", "Dense",
                  "Hidden", "Output")
INPUT_PREFIXES = ("X", "Picture", "Img", "Input", "Meta", "Data", "in_")
OUTPUT_PREFIXES = ("Y", "Result", "Out", "Digit", "Output")
CONST_PREFIXES = ("k", "w", "img", "sz", "n_", "Const_", "maps", "stride_", "Kern")
WORDS = ("a comment", "from X all;", "const K = 3;", "{ [ ( ;", "#not a comment", "output Y",
         "TODO: tune", "weights 130", "/* nested? ", "x = y * z", "ünïcödé", "@", "\\", "\"'`")


# ---- the model of a generated network ---------------------------------------------------------

@dataclass
class Predicate:
    """A `where` predicate: its tokens (parameter names substituted) and a Python oracle."""

    params: tuple[str, str]
    tokens: list[str]
    test: Callable[[tuple, tuple], bool]


@dataclass
class Bundle:
    source: Layer
    kind: str                       # full filtered convolve max_pool mean_pool response_norm
    attrs: list[tuple[str, object]] = field(default_factory=list)
    predicate: Predicate | None = None
    weights: int = 0
    edges: int = 0
    output_shape: tuple[int, ...] = ()


@dataclass
class Layer:
    name: str
    kind: str                       # input hidden output
    shape: tuple[int, ...]
    auto: bool = False
    activation: str | None = None
    bundles: list[Bundle] = field(default_factory=list)
    used: bool = False              # some later layer takes a bundle from it

    @property
    def nodes(self) -> int:
        return prod(self.shape)

    @property
    def has_bias(self) -> bool:
        return any(b.kind in ("full", "filtered") for b in self.bundles)

    @property
    def weights(self) -> int:
        """As netsharp's Layer.weights: bundle weights plus bias, shared ones in every sharer."""
        return sum(b.weights for b in self.bundles) + (self.nodes if self.has_bias else 0)


@dataclass(frozen=True)
class Reals:
    """A `Weights` array of real numbers."""

    values: tuple[float, ...]


@dataclass
class GeneratedProgram:
    text: str
    total_weights: int
    layer_nodes: dict[str, int]
    layer_weights: dict[str, int]

    def __repr__(self) -> str:   # hypothesis prints this for a failing example
        return (f"GeneratedProgram(total_weights={self.total_weights}, "
                f"layer_nodes={self.layer_nodes}, layer_weights={self.layer_weights},\n"
                f"text=\n{self.text}\n)")


# ---- geometry (LANGUAGE.md 5.3) ---------------------------------------------------------------

@dataclass
class Geometry:
    input_shape: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[bool, ...] | None         # Padding attribute, None when absent
    pads: tuple[tuple[int, ...], tuple[int, ...]] | None   # (LowerPad, UpperPad) when explicit
    positions: tuple[int, ...]


def _positions(i: int, k: int, s: int, mode: str, lo: int = 0, hi: int = 0) -> int:
    if mode == "auto":
        return (i - 1) // s + 1
    if mode == "explicit":
        return (i + lo + hi - k) // s + 1
    return (i - k) // s + 1


def _tiles(i: int, k: int, s: int, lo: int, hi: int) -> bool:
    n = (i + lo + hi - k) // s + 1
    return (n - 1) * s + k == i + lo + hi


def random_geometry(rnd: random.Random, input_shape: tuple[int, ...]) -> Geometry:
    kernel, stride = [], []
    for i in input_shape:
        k = rnd.randint(1, min(i, 5))
        kernel.append(k)
        stride.append(rnd.randint(1, min(k, 3)))
    mode = rnd.choice(("none", "none", "auto", "auto", "explicit"))
    rank = len(input_shape)
    if mode == "explicit":
        lower, upper = [], []
        for d, i in enumerate(input_shape):
            k, s = kernel[d], stride[d]
            pairs = [(lo, hi) for lo in range((k - 1) // 2 + 1) for hi in range(k // 2 + 1)
                     if _tiles(i, k, s, lo, hi)]
            if not pairs:               # stride 1 always tiles with no pads
                stride[d], pairs = 1, [(0, 0)]
            lo, hi = rnd.choice(pairs)
            lower.append(lo)
            upper.append(hi)
        positions = tuple(_positions(i, k, s, "explicit", lo, hi) for i, k, s, lo, hi
                          in zip(input_shape, kernel, stride, lower, upper))
        return Geometry(input_shape, tuple(kernel), tuple(stride), None,
                        (tuple(lower), tuple(upper)), positions)
    if mode == "auto":
        padding = tuple(rnd.random() < 0.7 for _ in range(rank))
    else:
        padding = (False,) * rank if rnd.random() < 0.3 else None
    modes = ["auto" if padding and padding[d] else "none" for d in range(rank)]
    positions = tuple(_positions(i, k, s, m)
                      for i, k, s, m in zip(input_shape, kernel, stride, modes))
    return Geometry(input_shape, tuple(kernel), tuple(stride), padding, None, positions)


def input_shapes(rnd: random.Random, shape: tuple[int, ...]) -> tuple[int, ...]:
    """An InputShape for a source of this shape: itself or another shape of the same size."""
    count = prod(shape)
    choices = [shape, shape, shape, (count,)]
    if len(shape) >= 2:
        choices.append((shape[0] * shape[1],) + shape[2:])
        choices.append(shape[:-2] + (shape[-2] * shape[-1],))
    if len(shape) <= 2:
        last = shape[-1]
        factors = [f for f in range(2, last) if last % f == 0]
        if factors:
            f = rnd.choice(factors)
            choices.append(shape[:-1] + (f, last // f))
    return rnd.choice(choices)


def geometry_attrs(g: Geometry, rnd: random.Random) -> list[tuple[str, object]]:
    attrs: list[tuple[str, object]] = [("InputShape", g.input_shape), ("KernelShape", g.kernel)]
    if any(s != 1 for s in g.stride) or rnd.random() < 0.3:
        attrs.append(("Stride", g.stride))
    if g.padding is not None:
        same = len(set(g.padding)) == 1
        attrs.append(("Padding", g.padding[0] if same and rnd.random() < 0.6 else g.padding))
    if g.pads is not None:
        lower, upper = g.pads
        if any(lower) or rnd.random() < 0.5:
            attrs.append(("LowerPad", lower))
        if any(upper) or rnd.random() < 0.5 or not any(lower):
            attrs.append(("UpperPad", upper))
    return attrs


def split_maps(rnd: random.Random, maps: int, rank: int) -> tuple[int, ...]:
    """A MapCount tuple whose product is `maps`."""
    counts = [1] * rank
    remaining = maps
    for f in range(2, maps + 1):
        while remaining % f == 0:
            counts[rnd.randrange(rank)] *= f
            remaining //= f
    return tuple(counts)


def conv_bundle(rnd: random.Random, source: Layer, target: int | None) -> Bundle | None:
    """A convolution bundle from `source`; with `target`, one producing exactly that many nodes."""
    g = random_geometry(rnd, input_shapes(rnd, source.shape))
    rank, positions = len(g.positions), prod(g.positions)
    if target is None:
        maps = rnd.choice((1, 1, 2, 3, 4, 5, 6))
        while maps > 1 and maps * positions > MAX_NODES:
            maps -= 1
    else:
        if target % positions or target // positions > 12:
            return None
        maps = target // positions
    scalar = rnd.random() < 0.6
    map_count = (maps,) + (1,) * (rank - 1) if scalar else split_maps(rnd, maps, rank)
    sharing = tuple(rnd.random() < 0.75 for _ in range(rank))
    kernels = prod(m if sh else m * n for m, n, sh in zip(map_count, g.positions, sharing))
    weights = kernels * (prod(g.kernel) + 1)
    attrs = geometry_attrs(g, rnd)
    if scalar and (maps > 1 or rnd.random() < 0.3):
        attrs.append(("MapCount", maps if rnd.random() < 0.8 else map_count))
    elif not scalar:
        attrs.append(("MapCount", map_count))
    if not all(sharing) or rnd.random() < 0.3:
        same = len(set(sharing)) == 1
        attrs.append(("Sharing", sharing[0] if same and rnd.random() < 0.5 else sharing))
    if weights <= 24 and rnd.random() < 0.3:
        attrs.append(("Weights", _reals(rnd, weights)))
    rnd.shuffle(attrs)
    bundle = Bundle(source, "convolve", attrs, weights=weights)
    bundle.output_shape = tuple(m * n for m, n in zip(map_count, g.positions))
    return bundle


def pool_bundle(rnd: random.Random, source: Layer, target: int | None) -> Bundle | None:
    """Max/mean pooling or response normalisation: no parameters, output prod(N)."""
    g = random_geometry(rnd, input_shapes(rnd, source.shape))
    if target is not None and prod(g.positions) != target:
        if prod(g.input_shape) != target:
            return None
        g = Geometry(g.input_shape, (1,) * len(g.input_shape), (1,) * len(g.input_shape),
                     None, None, g.input_shape)        # 1x1 windows keep every position
    kind = rnd.choice(("max_pool", "max_pool", "mean_pool", "mean_pool", "response_norm"))
    attrs = geometry_attrs(g, rnd)
    if kind == "response_norm":
        attrs.append(("Alpha", rnd.choice(("0.0001", "1E-04", ".0001", "1e-4", "0.5"))))
        attrs.append(("Beta", rnd.choice(("0.75", ".75", "75e-2", "7.5E-01", "1"))))
        if rnd.random() < 0.5:
            attrs.append(("Offset", rnd.choice(("1", "1.0", "2", "0.5"))))
        if rnd.random() < 0.3:
            attrs.append(("AvgOverFullKernel", rnd.random() < 0.5))
    rnd.shuffle(attrs)
    bundle = Bundle(source, kind, attrs)
    bundle.output_shape = g.positions
    return bundle


def _reals(rnd: random.Random, count: int) -> Reals:
    return Reals(tuple(round(rnd.uniform(-1, 1), rnd.randint(1, 4)) for _ in range(count)))


# ---- filtered bundles -------------------------------------------------------------------------

@dataclass
class _Term:
    tokens: list[str]
    value: Callable[[tuple, tuple], int]
    nonneg: bool
    atomic: bool


def _paren(term: _Term) -> list[str]:
    return term.tokens if term.atomic else ["(", *term.tokens, ")"]


def _index_term(rnd: random.Random, which: int, rank: int, names: tuple[str, str]) -> _Term:
    dim = rnd.randrange(rank)
    name = names[which]
    tokens = [name] if rank == 1 else [name, "[", str(dim), "]"]
    if which == 0:
        return _Term(tokens, lambda s, d: s[dim], True, True)
    return _Term(tokens, lambda s, d: d[dim], True, True)


def _int_term(rnd: random.Random, ranks: tuple[int, int], names, depth: int) -> _Term:
    choice = rnd.random() if depth > 0 else 0.0
    if choice < 0.55:
        return _any_index(rnd, ranks, names)
    a = _int_term(rnd, ranks, names, depth - 1)
    b = _int_term(rnd, ranks, names, depth - 1)
    c = rnd.randint(1, 4)
    op = rnd.choice(("+", "-", "*", "/", "%", "abs", "min", "max"))
    if op == "+":
        return _Term([*_paren(a), "+", *_paren(b)], lambda s, d: a.value(s, d) + b.value(s, d),
                     a.nonneg and b.nonneg, False)
    if op == "-":
        return _Term([*_paren(a), "-", *_paren(b)], lambda s, d: a.value(s, d) - b.value(s, d),
                     False, False)
    if op == "*":
        return _Term([*_paren(a), "*", str(c)], lambda s, d: a.value(s, d) * c, a.nonneg, False)
    if op in ("/", "%") and a.nonneg:   # C# and Python agree on non-negative operands
        if op == "/":
            return _Term([*_paren(a), "/", str(c)], lambda s, d: a.value(s, d) // c, True, False)
        return _Term([*_paren(a), "%", str(c + 1)], lambda s, d: a.value(s, d) % (c + 1), True,
                     False)
    if op in ("min", "max"):
        f = min if op == "min" else max
        return _Term([op, "(", *a.tokens, ",", *b.tokens, ")"],
                     lambda s, d: f(a.value(s, d), b.value(s, d)), a.nonneg and b.nonneg, True)
    return _Term(["abs", "(", *a.tokens, "-", *_paren(b), ")"],
                 lambda s, d: abs(a.value(s, d) - b.value(s, d)), True, True)


def _any_index(rnd: random.Random, ranks: tuple[int, int], names) -> _Term:
    if rnd.random() < 0.15:
        c = rnd.randint(0, 6)
        return _Term([str(c)], lambda s, d: c, True, True)
    which = rnd.randrange(2)
    return _index_term(rnd, which, ranks[which], names)


_COMPARE = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y,
            ">=": lambda x, y: x >= y, "==": lambda x, y: x == y, "!=": lambda x, y: x != y}


def _bool_term(rnd: random.Random, ranks, names, depth: int) -> _Term:
    choice = rnd.random() if depth > 0 else 0.0
    if choice < 0.7:
        a = _int_term(rnd, ranks, names, 1)
        b = _int_term(rnd, ranks, names, 1)
        op = rnd.choice(tuple(_COMPARE))
        f = _COMPARE[op]
        return _Term([*_paren(a), op, *_paren(b)], lambda s, d: f(a.value(s, d), b.value(s, d)),
                     True, False)
    a = _bool_term(rnd, ranks, names, depth - 1)
    if choice < 0.8:
        return _Term(["!", "(", *a.tokens, ")"], lambda s, d: not a.value(s, d), True, True)
    b = _bool_term(rnd, ranks, names, depth - 1)
    if choice < 0.9:
        return _Term([*_paren(a), "&&", *_paren(b)],
                     lambda s, d: a.value(s, d) and b.value(s, d), True, False)
    return _Term([*_paren(a), "||", *_paren(b)], lambda s, d: a.value(s, d) or b.value(s, d),
                 True, False)


# Predicates LANGUAGE.md and user programs show; {s}/{d} are the index terms.
_CLASSIC = (
    ("{s0} < {c}", lambda s, d, c: s[0] < c),
    ("{s0} == {d0}", lambda s, d, c: s[0] == d[0]),
    ("({s0} + {d0}) % 2 == 0", lambda s, d, c: (s[0] + d[0]) % 2 == 0),
    ("abs({s1} - {d1}) <= 1", lambda s, d, c: abs(s[-1] - d[-1]) <= 1),
    ("{s0} >= {d0} && {s0} < {d0} + {c}", lambda s, d, c: d[0] <= s[0] < d[0] + c),
    ("{s1} / 2 == {d1} / 2 || {s0} == 0", lambda s, d, c: s[-1] // 2 == d[-1] // 2 or s[0] == 0),
)


def edges(test: Callable[[tuple, tuple], bool], source: tuple[int, ...],
          dest: tuple[int, ...]) -> int:
    """Brute force: every (source index, destination index) pair, as tuples."""
    sources = list(itertools.product(*map(range, source)))
    return sum(1 for d in itertools.product(*map(range, dest)) for s in sources if test(s, d))


def predicate_for(rnd: random.Random, source: tuple[int, ...],
                  dest: tuple[int, ...]) -> tuple[Predicate, int]:
    names = rnd.choice(LAMBDA_PARAMS)
    ranks = (len(source), len(dest))
    for _ in range(6):
        if rnd.random() < 0.4:
            predicate = _classic(rnd, names, source, dest)
        else:
            term = _bool_term(rnd, ranks, names, 2)
            predicate = Predicate(names, term.tokens, term.value)
        count = edges(predicate.test, source, dest)
        if count:
            return predicate, count
    # s[0] >= 0 holds everywhere
    term = _index_term(rnd, 0, len(source), names)
    predicate = Predicate(names, [*term.tokens, ">=", "0"], lambda s, d: True)
    return predicate, prod(source) * prod(dest)


def _classic(rnd: random.Random, names, source, dest) -> Predicate:
    text, test = rnd.choice(_CLASSIC)
    c = rnd.randint(1, max(source))
    subst = {"c": str(c)}
    for key, name, rank in (("s", names[0], len(source)), ("d", names[1], len(dest))):
        subst[key + "0"] = name if rank == 1 else f"{name}[0]"
        subst[key + "1"] = name if rank == 1 else f"{name}[{rank - 1}]"
    tokens = _lex(text.format(**subst))
    return Predicate(names, tokens, lambda s, d: test(s, d, c))


_TOKEN = re.compile(r"(?:\d+\.\d+|\.\d+|\d+)(?:[eE][+-]?\d+)?|\w+|=>|&&|\|\||[<>=!]=|\S")


def _lex(text: str) -> list[str]:
    return _TOKEN.findall(text)


# ---- drawing a network ------------------------------------------------------------------------

class _Names:
    def __init__(self, rnd: random.Random):
        self.rnd, self.counter = rnd, 0

    def new(self, prefixes) -> str:
        self.counter += 1
        return f"{self.rnd.choice(prefixes)}{self.counter}"


def _random_shape(rnd: random.Random, limit: int) -> tuple[int, ...]:
    rank = rnd.choice((1, 1, 1, 2, 2, 3))
    shape: tuple[int, ...] = ()
    for _ in range(rank):
        room = max(1, limit // max(1, prod(shape)))
        shape += (rnd.randint(1, min(room, 8 if rank > 1 else 40)),)
    return shape


def _declared_shape(rnd: random.Random, natural: tuple[int, ...]) -> tuple[int, ...]:
    """The destination's declared shape: the bundle's own, flat, or another factorisation."""
    count = prod(natural)
    roll = rnd.random()
    if roll < 0.5:
        return natural
    if roll < 0.8:
        return (count,)
    factors = [f for f in range(2, count) if count % f == 0]
    if not factors:
        return (count,)
    f = rnd.choice(factors)
    return (f, count // f)


def _input_shape(draw) -> tuple[int, ...]:
    rank = draw(st.sampled_from((1, 1, 2, 2, 3)))
    if rank == 1:
        return (draw(st.integers(1, 64)),)
    if rank == 2:
        return (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
    return (draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))


def _primary(draw, rnd: random.Random, source: Layer, output: bool) -> tuple[Bundle, tuple]:
    """The first bundle of a trainable layer; it decides the layer's shape."""
    kinds = ["full", "full", "convolve", "convolve", "pool"]
    if source.nodes <= MAX_FILTER_PAIRS // 2:
        kinds.append("filtered")
    kind = draw(st.sampled_from(kinds))
    if kind == "convolve":
        bundle = conv_bundle(rnd, source, None)
        return bundle, _declared_shape(rnd, bundle.output_shape)
    if kind == "pool":
        bundle = pool_bundle(rnd, source, None)
        return bundle, _declared_shape(rnd, bundle.output_shape)
    if kind == "full":
        shape = (rnd.randint(1, 10),) if output else _random_shape(rnd, 100)
        return Bundle(source, "full", weights=source.nodes * prod(shape)), shape
    limit = max(1, min(64, MAX_FILTER_PAIRS // source.nodes))
    shape = _random_shape(rnd, limit)
    predicate, count = predicate_for(rnd, source.shape, shape)
    return Bundle(source, "filtered", predicate=predicate, weights=count, edges=count), shape


def _extra(rnd: random.Random, source: Layer, dest_shape: tuple[int, ...]) -> Bundle:
    """Another bundle into a layer of a known shape: full, filtered, or a geometry that fits."""
    target = prod(dest_shape)
    roll = rnd.random()
    if roll < 0.25:
        for _ in range(4):
            bundle = conv_bundle(rnd, source, target)
            if bundle:
                return bundle
    elif roll < 0.4:
        for _ in range(4):
            bundle = pool_bundle(rnd, source, target)
            if bundle:
                return bundle
    if roll < 0.7 and source.nodes * target <= MAX_FILTER_PAIRS:
        predicate, count = predicate_for(rnd, source.shape, dest_shape)
        return Bundle(source, "filtered", predicate=predicate, weights=count, edges=count)
    return Bundle(source, "full", weights=source.nodes * target)


def _add_weights_attr(rnd: random.Random, bundle: Bundle) -> None:
    if bundle.kind in ("full", "filtered") and bundle.weights <= 16 and rnd.random() < 0.3:
        bundle.attrs.append(("Weights", _reals(rnd, bundle.weights)))


def _hidden_layer(draw, rnd, names: _Names, layers: list[Layer]) -> Layer:
    hidden = [layer for layer in layers if layer.kind == "hidden"]
    if hidden and draw(st.integers(0, 9)) == 0:        # a twin: same source, same shape
        model = draw(st.sampled_from(hidden))
        if len(model.bundles) >= 1 and model.bundles[0].kind == "full" and not model.auto:
            source = model.bundles[0].source
            bundle = Bundle(source, "full", weights=source.nodes * model.nodes)
            return Layer(names.new(LAYER_PREFIXES), "hidden", model.shape,
                         activation=model.activation, bundles=[bundle])
    source = layers[-1] if draw(st.booleans()) else draw(st.sampled_from(layers))
    if draw(st.integers(0, 11)) == 0:                   # `auto`: the default hidden size, 100
        bundle = Bundle(source, "full", weights=source.nodes * 100)
        layer = Layer(names.new(LAYER_PREFIXES), "hidden", (100,), auto=True, bundles=[bundle])
    else:
        bundle, shape = _primary(draw, rnd, source, output=False)
        layer = Layer(names.new(LAYER_PREFIXES), "hidden", shape, bundles=[bundle])
    if draw(st.integers(0, 3)) == 0:
        layer.activation = draw(st.sampled_from(ACTIVATIONS))
    _more_bundles(draw, rnd, layer, layers, draw(st.sampled_from((0, 0, 0, 1, 1, 2))))
    return layer


def _more_bundles(draw, rnd, layer: Layer, layers: list[Layer], count: int) -> None:
    used = {b.source.name for b in layer.bundles}
    candidates = [candidate for candidate in layers if candidate.name not in used]
    for source in rnd.sample(candidates, min(count, len(candidates))):
        layer.bundles.append(_extra(rnd, source, layer.shape))


def _output_layer(draw, rnd, names: _Names, layers: list[Layer]) -> Layer:
    unused = [layer for layer in layers if layer.kind == "hidden" and not layer.used]
    inputs = [layer for layer in layers if layer.kind == "input"]
    first = unused[-1] if unused else draw(st.sampled_from(inputs))
    bundle, shape = _primary(draw, rnd, first, output=True)
    output = Layer(names.new(OUTPUT_PREFIXES), "output", shape, bundles=[bundle])
    if draw(st.booleans()):
        output.activation = draw(st.sampled_from(ACTIVATIONS))
    for source in unused[:-1]:
        output.bundles.append(_extra(rnd, source, shape))
    rest = [layer for layer in layers if layer not in unused and layer is not first]
    if rest and draw(st.integers(0, 3)) == 0:
        output.bundles.append(_extra(rnd, rnd.choice(rest), shape))
    rnd.shuffle(output.bundles)
    return output


@dataclass
class _Share:
    form: str                       # 'bias' | 'bundle' | 'layer'
    layers: list[Layer]
    saved: int
    sources: list[str] = field(default_factory=list)


def _shares(rnd: random.Random, layers: list[Layer]) -> list[_Share]:
    """Shares among equal structures; each parameter is shared in at most one statement."""
    taken: set[int] = set()
    shares: list[_Share] = []
    trainable = [layer for layer in layers if layer.kind != "input"]
    whole = {}
    for layer in trainable:
        if len(layer.bundles) == 1 and layer.bundles[0].kind == "full":
            whole.setdefault((layer.bundles[0].source.nodes, layer.nodes), []).append(layer)
    for group in whole.values():
        if len(group) >= 2 and rnd.random() < 0.6:
            group = rnd.sample(group, rnd.randint(2, len(group)))
            taken.update(id(layer) for layer in group)
            per = group[0].bundles[0].weights + group[0].nodes
            shares.append(_Share("layer", group, per * (len(group) - 1)))
    biases = {}
    for layer in trainable:
        if layer.has_bias and id(layer) not in taken:
            biases.setdefault(layer.nodes, []).append(layer)
    for size, group in biases.items():
        if len(group) >= 2 and rnd.random() < 0.6:
            group = rnd.sample(group, rnd.randint(2, len(group)))
            shares.append(_Share("bias", group, size * (len(group) - 1)))
    fulls = {}
    for layer in trainable:
        if id(layer) in taken:
            continue
        for bundle in layer.bundles:
            if bundle.kind == "full":
                fulls.setdefault((bundle.source.nodes, layer.nodes), []).append((layer, bundle))
    for group in fulls.values():
        if len(group) >= 2 and rnd.random() < 0.6:
            group = rnd.sample(group, rnd.randint(2, len(group)))
            share = _Share("bundle", [layer for layer, _ in group],
                           group[0][1].weights * (len(group) - 1))
            share.sources = [bundle.source.name for _, bundle in group]
            shares.append(share)
    return shares


def _network(draw, rnd: random.Random) -> tuple[list[Layer], list[_Share]]:
    names = _Names(rnd)
    layers = [Layer(names.new(INPUT_PREFIXES), "input", _input_shape(draw))
              for _ in range(draw(st.sampled_from((1, 1, 1, 2, 2, 3))))]
    for _ in range(draw(st.integers(0, MAX_HIDDEN))):
        layer = _hidden_layer(draw, rnd, names, layers)
        for bundle in layer.bundles:
            bundle.source.used = True
        layers.append(layer)
    output = _output_layer(draw, rnd, names, layers)
    layers.append(output)
    for layer in layers:
        for bundle in layer.bundles:
            _add_weights_attr(rnd, bundle)
    shares = _shares(rnd, layers) if draw(st.integers(0, 2)) == 0 else []
    return layers, shares


def expected_total(layers: list[Layer], shares: list[_Share]) -> int:
    return sum(layer.weights for layer in layers) - sum(share.saved for share in shares)


# ---- rendering: constants, expressions, tokens, layout ----------------------------------------

def _same(a: object, b: object) -> bool:
    """Equal values of equal types (True == 1 in Python, not in Net#)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


class _Writer:
    """Turns the model into text, inventing constants and layout as it goes."""

    def __init__(self, rnd: random.Random, style: str, const_rate: float):
        self.rnd, self.style, self.const_rate = rnd, style, const_rate
        self.names = _Names(rnd)
        self.names.counter = 1000
        self.values: dict[str, object] = {}    # every constant defined so far
        self.pending: list[tuple[str, list[str]]] = []
        self.out: list[str] = []
        self.keyword_style = rnd.choice(("lower", "lower", "title", "upper", "mixed"))

    # keywords in any case
    def kw(self, word: str) -> str:
        style = self.keyword_style if self.rnd.random() < 0.8 else \
            self.rnd.choice(("lower", "title", "upper", "mixed"))
        if style == "lower":
            return word
        if style == "title":
            return word[0].upper() + word[1:]
        if style == "upper":
            return word.upper()
        return "".join(c.upper() if self.rnd.random() < 0.5 else c.lower() for c in word)

    def attr_name(self, name: str) -> str:
        roll = self.rnd.random()
        if roll < 0.75:
            return name
        return name.lower() if roll < 0.85 else name.upper() if roll < 0.95 else self.kw(name)

    # constants
    def define(self, value: object, tokens: list[str] | None = None) -> str:
        name = self.names.new(CONST_PREFIXES)
        self.pending.append((name, tokens if tokens is not None else self.value(value, 2)))
        self.values[name] = value
        return name

    def flush(self) -> None:
        """Emit the constants invented so far, as single statements or blocks."""
        while self.pending:
            if self.rnd.random() < 0.5:
                take = self.rnd.randint(1, len(self.pending))
                block, self.pending = self.pending[:take], self.pending[take:]
                self.out += [self.kw("const"), "{", "\n"]
                for name, tokens in block:
                    self.out += [name, "=", *tokens, ";", "\n"]
                    if self.rnd.random() < 0.1:
                        self.out += [";"]
                self.out += ["}", "\n"]
                if self.rnd.random() < 0.2:
                    self.out += [";", "\n"]
            else:
                name, tokens = self.pending.pop(0)
                self.out += [self.kw("const"), name, "=", *tokens, ";", "\n"]

    # values
    def value(self, value: object, depth: int = 2) -> list[str]:
        if isinstance(value, bool):
            return self.boolean(value, depth)
        if isinstance(value, int):
            return self.integer(value, depth)[0]
        if isinstance(value, str):                  # a real literal, written as given
            return _lex(value)
        if isinstance(value, Reals):
            return self.reals(value)
        return self.array(value, depth)

    def array(self, value: tuple, depth: int) -> list[str]:
        existing = [n for n, v in self.values.items() if _same(v, value)]
        roll = self.rnd.random()
        if existing and roll < 0.5:
            return [self.rnd.choice(existing)]
        if depth > 0 and roll < self.const_rate:
            return [self.define(value)]
        tokens = ["["]
        for k, element in enumerate(value):
            tokens += ([","] if k else []) + self.value(element, depth - 1)
        return tokens + ["]"]

    def reals(self, value: Reals) -> list[str]:
        tokens = ["["]
        for k, x in enumerate(value.values):
            text = repr(abs(x)) if self.rnd.random() < 0.8 else f"{abs(x):.2E}"
            tokens += ([","] if k else []) + (["-"] if x < 0 else []) + _lex(text)
        tokens.append("]")
        if self.rnd.random() < 0.4:
            name = self.names.new(("Weights_", "W_", "init"))
            self.pending.append((name, tokens))
            self.values[name] = value
            return [name]
        return tokens

    def boolean(self, value: bool, depth: int) -> list[str]:
        existing = [n for n, v in self.values.items() if v is value]
        roll = self.rnd.random()
        if existing and roll < 0.4:
            return [self.rnd.choice(existing)]
        if depth > 0 and roll < 0.5:
            return ["!", "(", *self.boolean(not value, depth - 1), ")"]
        if depth > 0 and roll < 0.6:
            a, b = self.rnd.randint(0, 9), self.rnd.randint(0, 9)
            op = next(o for o in self.rnd.sample(list(_COMPARE), 6) if _COMPARE[o](a, b) == value)
            return [str(a), op, str(b)]
        if depth > 0 and roll < 0.65:
            return ["(", *self.boolean(value, depth - 1), "&&", *self.boolean(True, 0), ")"]
        return [self.kw("true" if value else "false")]

    def integer(self, n: int, depth: int = 2) -> tuple[list[str], bool]:
        """Tokens of an expression worth n (n >= 0) and whether they form an atom."""
        rnd = self.rnd
        existing = [name for name, v in self.values.items() if type(v) is int and v == n]
        arrays = [(name, k) for name, v in self.values.items() if isinstance(v, tuple)
                  for k, x in enumerate(v) if type(x) is int and x == n]
        roll = rnd.random()
        if existing and roll < 0.3:
            return [rnd.choice(existing)], True
        if arrays and roll < 0.4:
            name, k = rnd.choice(arrays)
            return [name, "[", *self.integer(k, 0)[0], "]"], True
        if depth <= 0 or roll < 0.45:
            return [str(n)], True
        if roll < 0.45 + self.const_rate / 2:
            return [self.define(n)], True
        op = rnd.choice(("+", "-", "*", "/", "%", "^", "min", "max", "abs", "neg", "paren"))
        sub = lambda m: self._atom(self.integer(m, depth - 1))   # noqa: E731
        if op == "+":
            a = rnd.randint(0, n)
            return [*sub(a), "+", *sub(n - a)], False
        if op == "-":
            b = rnd.randint(0, 5)
            return [*sub(n + b), "-", *sub(b)], False
        if op == "*" and n > 0:
            a = rnd.choice([f for f in range(1, n + 1) if n % f == 0])
            return [*sub(a), "*", *sub(n // a)], False
        if op == "/":
            b = rnd.randint(1, 4)
            return [*sub(n * b + rnd.randrange(b)), "/", *sub(b)], False
        if op == "%":
            b = n + rnd.randint(1, 4)
            return [*sub(n + b * rnd.randint(0, 3)), "%", *sub(b)], False
        if op == "^":
            for e in (3, 2):
                root = round(n ** (1 / e))
                if root > 1 and root ** e == n:
                    return [*sub(root), "^", str(e)], False
            return [*sub(n), "^", "1"], False
        if op in ("min", "max"):
            other = n + rnd.randint(0, 5) if op == "min" else max(0, n - rnd.randint(0, 5))
            args = [self.integer(n, depth - 1)[0], self.integer(other, depth - 1)[0]]
            rnd.shuffle(args)
            return [self.kw(op), "(", *args[0], ",", *args[1], ")"], True
        if op == "abs":
            return [self.kw("abs"), "(", "-", *sub(n), ")"], True
        if op == "neg":
            return ["-", "(", "-", *sub(n), ")"], False
        return ["(", *self.integer(n, depth - 1)[0], ")"], True

    @staticmethod
    def _atom(expr: tuple[list[str], bool]) -> list[str]:
        tokens, atomic = expr
        return tokens if atomic else ["(", *tokens, ")"]

    # statements
    def statement(self, tokens: list[str]) -> None:
        self.flush()
        self.out += tokens + ["\n"]
        if self.rnd.random() < 0.05:
            self.out += [";", "\n"]

    def shape(self, layer: Layer) -> list[str]:
        if layer.auto:
            return [self.kw("auto")]
        tokens = ["["]
        for k, n in enumerate(layer.shape):
            tokens += ([","] if k else []) + self.integer(n)[0]
        return tokens + ["]"]

    def layer_decl(self, layer: Layer) -> list[str]:
        tokens = [layer.name, *self.shape(layer)]
        if layer.activation:
            tokens.append(self.kw(layer.activation))
        if layer.kind == "input":
            return tokens + [";"]
        if len(layer.bundles) == 1 and self.rnd.random() < 0.7:
            return tokens + ["\n", *self.bundle(layer.bundles[0])]
        tokens += ["{", "\n"]
        for bundle in layer.bundles:
            tokens += [*self.bundle(bundle), "\n"]
            if self.rnd.random() < 0.05:
                tokens.append(";")
        return tokens + ["}"]

    def bundle(self, bundle: Bundle) -> list[str]:
        tokens = [self.kw("from"), bundle.source.name]
        if bundle.kind == "full":
            tokens.append(self.kw("all"))
        elif bundle.kind == "filtered":
            p = bundle.predicate
            tokens += [self.kw("where"), "(", p.params[0], ",", p.params[1], ")", "=>",
                       *[self.kw(t) if t in ("abs", "min", "max") else t for t in p.tokens]]
        elif bundle.kind == "convolve":
            tokens.append(self.kw("convolve"))
        elif bundle.kind == "response_norm":
            tokens += [self.kw("response"), self.kw("norm")]
        else:
            tokens += [self.kw(bundle.kind.split("_")[0]), self.kw("pool")]
        if bundle.kind in ("full", "filtered") and not bundle.attrs:
            return tokens + [";"]
        tokens += ["{", "\n"]
        for name, value in bundle.attrs:
            tokens += [self.attr_name(name), "=", *self.value(value), ";", "\n"]
        return tokens + ["}"]

    def share(self, share: _Share) -> list[str]:
        items = []
        for k, layer in enumerate(share.layers):
            if share.form == "bias":
                items.append(["1", "=>", layer.name])
            elif share.form == "bundle":
                items.append([share.sources[k], "=>", layer.name])
            else:
                items.append([layer.name])
        tokens = [self.kw("share"), "{"]
        for k, item in enumerate(items):
            tokens += ([","] if k else []) + item
        return tokens + ["}"]

    # layout
    def render(self) -> str:
        rnd, parts = self.rnd, []
        if rnd.random() < 0.3:
            parts.append(self._comment() + "\n")
        previous = None
        for token in self.out:
            if token == "\n":
                if self.style != "compact":
                    parts.append(self._newline())
                    previous = None
                continue
            if previous is not None:
                parts.append(self._separator(previous, token))
            parts.append(token)
            previous = token
        if rnd.random() < 0.3:
            parts.append(" " + self._comment())
        if rnd.random() < 0.7:
            parts.append("\n")
        return "".join(parts)

    def _separator(self, a: str, b: str) -> str:
        rnd, tight = self.rnd, a in PUNCTUATION or b in PUNCTUATION
        roll = rnd.random()
        if self.style == "compact" or (self.style == "spaced" and roll < 0.9):
            return "" if tight and roll < 0.7 else " "
        if self.style == "comments" and roll < 0.2:
            return " " + self._comment() + (" " if rnd.random() < 0.5 else "\n")
        if self.style == "messy":
            return "".join(rnd.choice((" ", "  ", "\t", "\n", "\r\n", "\f", "\n    "))
                           for _ in range(rnd.randint(0 if tight else 1, 3)))
        return "" if tight and roll < 0.3 else " "

    def _newline(self) -> str:
        indent = " " * self.rnd.choice((0, 0, 2, 4)) if self.style != "messy" else "\t"
        if self.style == "comments" and self.rnd.random() < 0.3:
            return "  " + self._comment() + "\n" + indent
        return ("\r\n" if self.style == "crlf" else "\n") + indent

    def _comment(self) -> str:
        words = " ".join(self.rnd.sample(WORDS, self.rnd.randint(0, 3)))
        if self.rnd.random() < 0.5:
            return "// " + words + "\n"
        return "/* " + words.replace("*/", "* /") + ("\n  " if self.rnd.random() < 0.3 else "") \
            + " */"


def _render(rnd: random.Random, layers: list[Layer], shares: list[_Share]) -> str:
    style = rnd.choice(("compact", "spaced", "lines", "lines", "comments", "messy", "crlf"))
    writer = _Writer(rnd, style, rnd.choice((0.0, 0.1, 0.3)))
    if rnd.random() < 0.3:
        writer.define(True, [writer.kw("true")])
        writer.define(False, [writer.kw("false")])
    statements = _statements(rnd, writer, layers, shares)
    if rnd.random() < 0.2:     # declarations may come in any order
        rnd.shuffle(statements)
    for statement in statements:
        writer.statement(statement())
    return writer.render()


def _statements(rnd: random.Random, writer: _Writer, layers, shares) -> list[Callable]:
    """Deferred statements (rendered in their final order so constants precede their use)."""
    statements: list[Callable] = []
    k = 0
    while k < len(layers):
        kind = layers[k].kind
        run = [layers[k]]
        while k + len(run) < len(layers) and layers[k + len(run)].kind == kind and kind != "output":
            run.append(layers[k + len(run)])
        group = run[:rnd.randint(1, len(run))] if len(run) > 1 and rnd.random() < 0.4 else None
        if group:
            statements.append(lambda g=group, kind=kind: _group(writer, kind, g))
            k += len(group)
        else:
            layer = layers[k]
            statements.append(lambda layer=layer: [writer.kw(layer.kind),
                                                   *writer.layer_decl(layer)])
            k += 1
    for share in shares:
        statements.append(lambda share=share: writer.share(share))
    return statements


def _group(writer: _Writer, kind: str, layers: list[Layer]) -> list[str]:
    tokens = [writer.kw(kind), "{", "\n"]
    for layer in layers:
        tokens += [*writer.layer_decl(layer), "\n"]
    return tokens + ["}"]


# ---- public strategies ------------------------------------------------------------------------

@st.composite
def valid_programs(draw) -> GeneratedProgram:
    """A valid Net# program with the node and weight counts LANGUAGE.md gives it."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    layers, shares = _network(draw, rnd)
    text = _render(rnd, layers, shares)
    return GeneratedProgram(text, expected_total(layers, shares),
                            {layer.name: layer.nodes for layer in layers},
                            {layer.name: layer.weights for layer in layers})


def programs_with_weights() -> st.SearchStrategy[tuple[str, int]]:
    """(program text, expected total weights) pairs."""
    return valid_programs().map(lambda p: (p.text, p.total_weights))


# ---- damaged and random text ------------------------------------------------------------------

INSERTIONS = ("#", "@", "[", "]", "{", "}", "(", ")", ";", ",", "=", "=>", ".", "-", "^", "!",
              "99999999999999999999", "0", "-1", "1e999", "1E-99999", "0.5", ".", "/*", "*/",
              "//", "\n", "\r", "\t", "\f", "\x00", "\x0b", "\u2028", "\x85", "é", "€", "𝔁",
              "from", "all", "const", "input", "hidden", "output", "auto", "where", "share",
              "convolve", "max pool", "response norm", "(s, d) =>", "s[5]", "d[-1]",
              "Stride = [0];", "MapCount = 0;", "InputShape = [1];", "x", "Y", "_", "9",
              "^ 99", "^ 2 ^ 2 ^ 2 ^ 2 ^ 2", "[[[[", "]]]]", "((((((", "true", "1 / 0", "% 0",
              "abs(", "min(1)", "max()", "'", '"', "\\", "`", "$")


DAMAGE_KINDS = ("delete", "duplicate", "swap", "insert", "insert", "truncate", "token_delete",
                "token_duplicate", "token_swap", "number")
NUMBERS = ("0", "-1", "99999999999999999999", "2.5", "1e9", "007", "4611686018427387904",
           "3037000500", "65536", "")


def damage_with(text: str, integer, choice, insertion) -> str:
    """One piece of damage to `text`, its randomness drawn through `integer(lo, hi)`,
    `choice(sequence)` and `insertion()`: hypothesis draws here, `random` in scripts/fuzz.py."""
    kind = choice(DAMAGE_KINDS)
    if kind.startswith("token") or kind == "number":
        pattern = r"\d+(\.\d*)?" if kind == "number" else _TOKEN
        spans = [m.span() for m in re.finditer(pattern, text)]
        if not spans:
            return text
        i, j = choice(spans)
        if kind == "token_delete":
            return text[:i] + text[j:]
        if kind == "token_duplicate":
            return text[:j] + " " + text[i:j] + text[j:]
        if kind == "number":
            return text[:i] + choice(NUMBERS) + text[j:]
        (i, j), (k, m) = sorted((choice(spans), (i, j)))
        return text if k < j else text[:i] + text[k:m] + text[j:k] + text[i:j] + text[m:]
    i = integer(0, len(text))
    j = integer(i, min(len(text), i + 12))
    if kind == "delete":
        return text[:i] + text[j:]
    if kind == "duplicate":
        return text[:j] + text[i:j] + text[j:]
    if kind == "truncate":
        return text[:i]
    if kind == "swap":
        k = integer(j, len(text))
        m = integer(k, min(len(text), k + 12))
        return text[:i] + text[k:m] + text[j:k] + text[i:j] + text[m:]
    return text[:i] + insertion() + text[i:]


@st.composite
def _damage(draw, text: str) -> str:
    return damage_with(
        text, lambda lo, hi: draw(st.integers(lo, hi)),
        lambda options: draw(st.sampled_from(options)),
        lambda: draw(st.sampled_from(INSERTIONS) | st.text(min_size=1, max_size=4)))


@st.composite
def corrupted_programs(draw) -> str:
    """A valid program with one to three random pieces of damage."""
    text = draw(valid_programs()).text
    for _ in range(draw(st.integers(1, 3))):
        text = draw(_damage(text))
    return text


SOUP = ("const", "Const", "input", "hidden", "HIDDEN", "output", "auto", "from", "all", "where",
        "convolve", "max", "mean", "pool", "response", "norm", "share", "true", "True", "false",
        "sigmoid", "softmax", "linear", "abs", "min", "X", "Y", "H", "K", "s", "d", "s[0]",
        "InputShape", "KernelShape", "Stride", "Padding", "LowerPad", "UpperPad", "MapCount",
        "Sharing", "Weights", "Alpha", "Beta", "Offset", "AvgOverFullKernel", "0", "1", "2", "5",
        "28", "0.5", ".5", "1E-07", "99999999999999999999", "[", "]", "{", "}", "(", ")", ";",
        ",", "=", "=>", "+", "-", "*", "/", "%", "^", "!", "<", "<=", "==", "!=", "&&", "||",
        "//", "/*", "*/", "#", "@", "\n")


def token_soup() -> st.SearchStrategy[str]:
    """Random sequences of Net# words and symbols: they reach past the lexer more often."""
    return st.lists(st.sampled_from(SOUP), max_size=60).map(" ".join)


def printable_text() -> st.SearchStrategy[str]:
    """Random text: printable ASCII with line breaks, and any Unicode."""
    ascii_text = st.text(st.characters(min_codepoint=9, max_codepoint=126), max_size=200)
    return ascii_text | st.text(max_size=100)
