"""Max pooling over the rows of planes, 8 floats at a time: the usual 2-D pooling (windows on
a layer's last two axes, no padding, strides of 2 or 3) of convolution networks.

A window row of cells lies along an input row, so a whole output row is two steps over
contiguous runs: the max over the window's input rows (8 floats a vector, the run's last 8
overlapping those before: max is idempotent), then each window's max over its columns,
picked from that run by shuffles (8 windows a vector). LLVM IR written here: numba's loops
over rows of 14-28 cells stayed scalar (a wraparound test per index, too short a trip for the
vectoriser). The backward, for windows that share no cell, routes each window's gradient to
its first maximal cell (window order: rows, then columns) 8 windows at a time, with a "found"
mask carried from one window row to the next. Measured on an AMD EPYC (Zen), one core, 32
samples, cntk103d_pool's P1 (8 x 28 x 28, 2 x 2) and P2 (16 x 14 x 14, 3 x 3): forward 2.9
and 1.4 us a sample against 8.4 and 5.0 over strided slices (pool.max_forward_blocks),
backward 5.8 and 5.0 against 14.0 and 5.9 (pool.max_backward_disjoint). Mean pooling keeps
pool.py's kernels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import jit, prange
from .vectors import _I32, _I64, _VEC, LANES, _data, _load, _splat, _store

# (column stride, window columns) with compiled column picks: 2 x 2 and 3 x 3 windows and
# the overlapping 3-wide windows of stride 2; others keep pool.py's kernels.
PICKS = ((2, 2), (3, 3), (2, 3))


class Grid(NamedTuple):
    """Windows of kh x kw cells at strides (sh, sw) over `planes` planes of height x width
    cells, the first at row r0, column c0 of each plane; oh x ow windows a plane."""

    planes: int
    height: int
    width: int
    kh: int
    kw: int
    sh: int
    sw: int
    r0: int
    c0: int
    oh: int
    ow: int

    @property
    def span(self) -> int:
        """The columns a row of windows reads, from c0."""
        return (self.ow - 1) * self.sw + self.kw

    @property
    def routable(self) -> bool:
        """max_backward_grid's case: windows that tile their rows and share no cell, and rows
        of 8 windows (more than a row's windows where they are fewer) that stay in the
        input."""
        last_row = ((self.planes - 1) * self.height + self.r0 + (self.oh - 1) * self.sh
                    + self.kh - 1) * self.width + self.c0
        reach = last_row + max(self.ow, LANES) * self.sw
        return (self.kw == self.sw and self.kh <= self.sh
                and reach <= self.planes * self.height * self.width)

    def table(self) -> np.ndarray:
        """The (positions, kernel cells) table of flat input cells these windows read."""
        plane, i, j = np.meshgrid(np.arange(self.planes), np.arange(self.oh),
                                  np.arange(self.ow), indexing="ij")
        first = ((plane * self.height + self.r0 + i * self.sh) * self.width
                 + self.c0 + j * self.sw).reshape(-1, 1)
        a, b = np.meshgrid(np.arange(self.kh), np.arange(self.kw), indexing="ij")
        return first + (a * self.width + b).reshape(1, -1)


def pool_grid(geometry, table: np.ndarray) -> Grid | None:
    """The grid of a pooling's windows where its kernels can run it (axes before the last two
    pooled one cell at a time, no padding, a compiled column pick, rows of 8 cells or more),
    checked against its table; else None."""
    axes = geometry.axes
    rows, columns = (axes[-2], axes[-1]) if len(axes) > 1 else (None, axes[-1])
    planes = axes[:-2] if len(axes) > 1 else ()
    if any((a.kernel, a.stride, a.origin, a.positions) != (1, 1, 0, a.size) for a in planes):
        return None
    if rows is None:
        height, kh, sh, r0, oh = 1, 1, 1, 0, 1
    else:
        height, kh, sh, r0, oh = rows.size, rows.kernel, rows.stride, rows.origin, rows.positions
    grid = Grid(math.prod(a.size for a in planes), height, columns.size, kh, columns.kernel,
                sh, columns.stride, r0, columns.origin, oh, columns.positions)
    if (grid.sw, grid.kw) not in PICKS or grid.span < LANES or (table < 0).any():
        return None
    expected = grid.table()
    if expected.shape != table.shape or not (expected == table).all():
        return None
    return grid


# ---- LLVM IR ----------------------------------------------------------------------------------

def _larger(builder, a, b):
    """Lane by lane, b where b > a, else a."""
    return builder.select(builder.fcmp_ordered(">", b, a), b, a)


def _lanes(builder, vectors, sources):
    """An 8-lane vector: lane l is lane sources[l] of the vectors laid end to end. The first
    two vectors it reads enter by one shuffle, each further one by another."""
    used = sorted({s // LANES for s in sources})
    first, second = used[0], used[min(1, len(used) - 1)]
    mask = [s - LANES * first if s // LANES == first
            else LANES + s - LANES * second if s // LANES == second else 0 for s in sources]
    result = builder.shuffle_vector(vectors[first], vectors[second], _mask(mask))
    for v in used[2:]:   # lanes not yet taken keep their place until a later vector's comes
        mask = [LANES + s % LANES if s // LANES == v else lane for lane, s in enumerate(sources)]
        result = builder.shuffle_vector(result, vectors[v], _mask(mask))
    return result


def _mask(lanes):
    return ir.Constant(ir.VectorType(_I32, len(lanes)), lanes)


def _window_order(stride: int) -> list[int]:
    """The order of 8 windows in a vector: for 2-cell windows, the order in which shuffles
    within each 128-bit half (cheap: Zen splits 256-bit vectors, and a shuffle across the
    halves costs several) deal out the columns of two vectors of cells; else in order."""
    return [0, 1, 4, 5, 2, 3, 6, 7] if stride == 2 else list(range(LANES))


@intrinsic
def _max8(typingctx, dst, dst_at, src, src_at, first):
    """dst[dst_at:+8] = src[src_at:+8] if first, else their max lane by lane."""
    signature = types.void(dst, dst_at, src, src_at, first)

    def codegen(context, builder, sig, args):
        dst_p, src_p = _data(context, builder, sig, args, (0, 2))
        new, old = _load(builder, src_p, args[3]), _load(builder, dst_p, args[1])
        _store(builder, dst_p, args[1], builder.select(args[4], new, _larger(builder, old, new)))
        return context.get_dummy_value()

    return signature, codegen


def _vectors(builder, pointer, start, count: int) -> list:
    return [_load(builder, pointer, builder.add(start, ir.Constant(_I64, LANES * v)))
            for v in range(count)]


def _picker(stride: int, kernel: int):
    """An intrinsic pick(src, src_at, dst, dst_at): dst[dst_at + l] = the max over b < kernel
    of src[src_at + l * stride + b], for l < 8 (reads src up to 8 * stride + kernel on)."""
    loads = (LANES * stride + kernel - stride + LANES - 1) // LANES
    order = _window_order(stride) if kernel == stride else list(range(LANES))
    inverse = [order.index(w) for w in range(LANES)]

    @intrinsic
    def pick(typingctx, src, src_at, dst, dst_at):
        signature = types.void(src, src_at, dst, dst_at)

        def codegen(context, builder, sig, args):
            src_p, dst_p = _data(context, builder, sig, args, (0, 2))
            vectors = _vectors(builder, src_p, args[1], loads)
            result = None
            for b in range(kernel):
                cells = _lanes(builder, vectors, [w * stride + b for w in order])
                result = cells if result is None else _larger(builder, result, cells)
            _store(builder, dst_p, args[3], _lanes(builder, [result], inverse))
            return context.get_dummy_value()

        return signature, codegen

    return pick


_pick22, _pick33, _pick23 = (_picker(s, k) for s, k in PICKS)


def _router(stride: int):
    """An intrinsic route(x, x_at, best, dz, at, found_in, found_out, found_at, dx, count)
    for a row of 8 windows `stride` cells wide over x[x_at:+8 * stride]: each cell whose
    value is its window's best, the first such in the window not yet found (found_in[found_at
    + l] != 0: found in an earlier row), gets dz[at + l] in dx at the same place; every other
    cell gets 0, and so do all cells of windows l >= count; found_out = found_in or found in
    this row."""

    order = _window_order(stride)
    inverse = [order.index(w) for w in range(LANES)]

    @intrinsic
    def route(typingctx, x, x_at, best, dz, at, found_in, found_out, found_at, dx, count):
        signature = types.void(x, x_at, best, dz, at, found_in, found_out, found_at, dx,
                               count)

        def codegen(context, builder, sig, args):
            x_p, best_p, dz_p, in_p, out_p, dx_p = _data(context, builder, sig, args,
                                                           (0, 2, 3, 5, 6, 8))
            # masks as 32-bit lanes of all ones or zeros: i1 vectors cost packing and unpacking
            flags = ir.VectorType(_I32, LANES)
            found_place = builder.bitcast(builder.gep(in_p, [args[7]]), flags.as_pointer())
            found = _lanes(builder, [builder.load(found_place, align=4)], order)
            windows = ir.Constant(flags, order)
            limit = _splat(builder, builder.trunc(args[9], _I32), flags)
            real = builder.sext(builder.icmp_signed("<", windows, limit), flags)
            top = _lanes(builder, [_load(builder, best_p, args[4])], order)
            grad = builder.bitcast(_lanes(builder, [_load(builder, dz_p, args[4])], order),
                                   flags)
            row = _vectors(builder, x_p, args[1], stride)
            shares = []
            for b in range(stride):
                values = _lanes(builder, row, [w * stride + b for w in order])
                equal = builder.sext(builder.fcmp_ordered("==", values, top), flags)
                hit = builder.and_(equal, builder.not_(found))
                found = builder.or_(found, hit)
                shares.append(builder.bitcast(builder.and_(builder.and_(hit, real), grad), _VEC))
            _store(builder, out_p, args[7], _lanes(builder, [found], inverse))
            for v in range(stride):   # cell t of the row: window t // stride, column t % stride
                out = _lanes(builder, shares, [(t % stride) * LANES + inverse[t // stride]
                                               for t in range(LANES * v, LANES * (v + 1))])
                _store(builder, dx_p, builder.add(args[1], ir.Constant(_I64, LANES * v)), out)
            return context.get_dummy_value()

        return signature, codegen

    return route


_route2, _route3 = _router(2), _router(3)


# ---- kernels ----------------------------------------------------------------------------------

@jit
def _max_rows(dst, dst_at, src, src_at, step, rows, count):
    """dst[dst_at:+count] = the max over a < rows of src[src_at + a * step:+count], count >= 8:
    8 cells at a time, the last 8 overlapping those before."""
    q0 = 0
    while q0 < count:
        q = min(q0, count - LANES)
        for a in range(rows):
            _max8(dst, dst_at + q, src, src_at + a * step + q, a == 0)
        q0 += LANES


@jit
def _pick(sw, kw, row, row_at, dst, dst_at):
    if sw == 2 and kw == 2:
        _pick22(row, row_at, dst, dst_at)
    elif sw == 3:
        _pick33(row, row_at, dst, dst_at)
    else:
        _pick23(row, row_at, dst, dst_at)


@jit
def _max_windows(xb, grid, value):
    """value[p] = window p's max, for p < positions (value has 8 cells of slack)."""
    planes, height, width, kh, kw, sh, sw, r0, c0, oh, ow = grid
    span = (ow - 1) * sw + kw
    row = np.empty(span + 4 * LANES, np.float32)
    for c in range(planes):
        for i in range(oh):
            _max_rows(row, 0, xb, (c * height + r0 + i * sh) * width + c0, width, kh, span)
            out = (c * oh + i) * ow
            j0 = 0
            while j0 < ow:   # a row under 8 windows writes past it: the next row overwrites
                j = max(min(j0, ow - LANES), 0)
                _pick(sw, kw, row, j * sw, value, out + j)
                j0 += LANES


@jit
def _put(value, zb, accumulate):
    """zb[:n] (+)= value[:n], n the smaller size; a loop: `zb[:] = value` costs numba seconds
    of compiling."""
    for p in range(min(value.size, zb.size)):
        zb[p] = zb[p] + value[p] if accumulate else value[p]


@jit(parallel=True)
def max_forward_grid(x, grid, z, best, accumulate):
    """z (+)= each window's max; best[b] = the maxima where best has a row per sample
    (training; inference passes one row)."""
    keep = best.shape[0] == x.shape[0]
    for b in prange(x.shape[0]):
        value = np.empty(z.shape[1] + LANES, np.float32)
        _max_windows(x[b], grid, value)
        if keep:
            _put(value, best[b], False)
        _put(value, z[b], accumulate)


@jit
def _route(sw, xb, top, best, dz, at, found_in, found_out, dxb, ow):
    """A row of ow windows, sw columns each, over xb[top:+ow * sw]: dxb there = dz[at + j]
    at each window's first maximal cell not found before, else 0."""
    j0 = 0
    while j0 < ow:
        j = max(min(j0, ow - LANES), 0)
        count = min(ow - j, LANES)
        if sw == 2:
            _route2(xb, top + j * sw, best, dz, at + j, found_in, found_out, j, dxb, count)
        else:
            _route3(xb, top + j * sw, best, dz, at + j, found_in, found_out, j, dxb, count)
        j0 += LANES


@jit
def _route_windows(xb, grid, best, dz, dxb):
    """dxb = each window's dz at its first maximal cell, 0 elsewhere (best and dz: 8 windows
    readable from any row's start)."""
    planes, height, width, kh, kw, sh, sw, r0, c0, oh, ow = grid
    found_in = np.zeros(ow + LANES, np.int32)
    found_out = np.zeros(ow + LANES, np.int32)
    for n in range(dxb.size):
        dxb[n] = 0
    for c in range(planes):
        for i in range(oh):
            for j in range(ow):
                found_in[j] = 0
            for a in range(kh):
                top = (c * height + r0 + i * sh + a) * width + c0
                _route(sw, xb, top, best, dz, (c * oh + i) * ow, found_in, found_out, dxb, ow)
                found_in, found_out = found_out, found_in


@jit(parallel=True, work=4)
def max_backward_grid(dz, x, grid, best, dx, accumulate):
    """dx (+)= each window's dz at its first maximal cell, for windows that share no cell and
    rows of 8 windows that stay in the sample (Grid.routable): the forward's maxima in best."""
    positions, ow = dz.shape[1], grid[10]
    for b in prange(x.shape[0]):
        top, grad = best[b], dz[b]
        if ow < LANES:   # the last row's 8 windows read past the sample's: copies with slack
            top = np.zeros(positions + LANES, np.float32)
            grad = np.zeros(positions + LANES, np.float32)
            _put(best[b], top, False)
            _put(dz[b], grad, False)
        if accumulate:
            routed = np.empty(x.shape[1], np.float32)
            _route_windows(x[b], grid, top, grad, routed)
            _put(routed, dx[b], True)
        else:
            _route_windows(x[b], grid, top, grad, dx[b])
