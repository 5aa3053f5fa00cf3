"""Edges of a filtered bundle: its `where` predicate evaluated over all (source, destination) pairs.

The predicate is evaluated by netsharp's own evaluator on numpy index arrays, a block of
destinations at a time, so memory stays bounded and no Python code from the program ever runs.
"""

from __future__ import annotations

from math import prod
from typing import Any

from . import ast
from .consts import Evaluator, kind_of
from .errors import ResourceError, SemanticError

MAX_PREDICATE_PAIRS = 200_000_000   # some seconds of evaluation; beyond it we refuse
BLOCK_PAIRS = 1 << 20               # pairs evaluated at once


def filtered_edges(predicate: ast.Predicate, source_shape: tuple[int, ...],
                   dest_shape: tuple[int, ...], constants: dict[str, Any]):
    """(edge_source, edge_dest): flat indices, ordered by destination then source."""
    import numpy as np

    if predicate.source_param == predicate.dest_param:
        raise SemanticError("the predicate's two parameters need different names",
                            predicate.span)
    sources, dests = prod(source_shape), prod(dest_shape)
    if sources * dests > MAX_PREDICATE_PAIRS:
        raise ResourceError(f"this predicate would have to be tested on {sources * dests:,} "
                            f"(source, destination) pairs; the limit is "
                            f"{MAX_PREDICATE_PAIRS:,}", predicate.span,
                            ("use a convolution bundle for local connections between large "
                             "layers",))
    source_block = min(sources, BLOCK_PAIRS)
    dest_block = max(1, BLOCK_PAIRS // source_block)
    edge_source, edge_dest = [], []
    # Blocks are visited destination-major, so the edges come out in Net#'s order.
    for d0 in range(0, dests, dest_block):
        d1 = min(dests, d0 + dest_block)
        dest_index = _coordinates(np.arange(d0, d1), dest_shape, (d1 - d0, 1))
        for s0 in range(0, sources, source_block):
            s1 = min(sources, s0 + source_block)
            source_index = _coordinates(np.arange(s0, s1), source_shape, (1, s1 - s0))
            names = {**constants, predicate.source_param: source_index,
                     predicate.dest_param: dest_index}
            mask = _boolean(Evaluator(names, vectorized=True).eval(predicate.body), predicate)
            d, s = np.nonzero(np.broadcast_to(mask, (d1 - d0, s1 - s0)))
            edge_source.append(s + s0)
            edge_dest.append(d + d0)
    return _frozen(np.concatenate(edge_source)), _frozen(np.concatenate(edge_dest))


def _coordinates(flat, shape: tuple[int, ...], view: tuple[int, int]):
    """A rank-1 layer's index is a plain integer; a higher rank's is a tuple of integers."""
    import numpy as np

    coords = tuple(c.reshape(view).astype(np.int64) for c in np.unravel_index(flat, shape))
    return coords[0] if len(shape) == 1 else coords


def _boolean(value: Any, predicate: ast.Predicate):
    if kind_of(value) != "bool":
        raise SemanticError("a predicate must be true or false for each pair, but this is "
                            f"{'an array' if isinstance(value, tuple) else 'a number'}",
                            predicate.body.span)
    return value


def _frozen(array):
    array = array.astype("int64")
    array.flags.writeable = False
    return array
