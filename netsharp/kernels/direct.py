"""Direct convolution: a forward without gathered columns, for convolutions whose windows are
one set of offsets shifted along the padded input (lower's grid, strided sweeps in phases),
in each group of kernels the same shifts from the group's own first cell.

Where grid_table[0, s, k] = start[s] + offset[k], the output of map m at grid position s is
sum_k W[m, k] * xpad[start[s] + offset[k]]: over a run of consecutive starts, kernel cell k
reads a run of consecutive cells. The product is computed in tiles of MAPS maps x 16
consecutive starts held in eight 8-float registers, one kernel cell at a time (two vector
loads, MAPS broadcasts, 2 x MAPS fused multiply-adds): LLVM IR written here, as numba's loops
do not keep such a tile in registers (scalar accumulators measured 2 GF/s). Starts between
the grid's positions (a row's last columns) are computed and dropped. Measured on an AMD EPYC
(Zen), one core, 8 samples: cntk103d_pool's C2 26-28 GF/s of useful work against OpenBLAS's
26-27 for the product alone, which gathered columns must also be written for (im2col: half the
product's time again).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .jit import jit, prange
from .vectors import _I32, _I64, _VEC, LANES, _load, copy_run, runs, shift_run

VECTORS = 2               # registers of consecutive starts in a tile
SPAN = LANES * VECTORS    # starts per tile
MAPS = 4                  # maps per tile: 8 accumulators, 2 loads + 4 broadcasts per cell
# Maps and kernel cells are padded to even counts (zero maps, a repeated cell), so that the
# kernels need tiles of 4 and 2 maps (of 2 cells) only: each variant is unrolled code that
# numba compiles on a first run (8 weight tiles took 0.9-1.1 s to compile, 2 take 0.5-0.7).
# A convolution is computed directly unless the products at garbage starts (those in its
# whole tiles beyond its grid positions, computed and dropped) outnumber GATHERED_CELL
# products a position and kernel cell: gathering a cell into columns costs about as much
# (2-2.5 ns against 0.1-0.15 for a tile's multiply-add, AMD EPYC). Per map of a group:
# cntk103d_pool's C2 has 0.31 garbage starts a position (16 maps: 4.9 products), lenet's C3
# 0.44 (7.0), basic_conv's C2 1.0 (10 maps: 10); a one-position layer (lenet's C5 were it
# not read in place: 15 garbage starts, 120 maps) stays a matrix product.
GATHERED_CELL = 16
# The input gradient is computed directly when its starts are at most this many times the
# positions it needs.
MAX_WASTE = 1.6
# The weight gradient's tiles loop over a group's starts 8 at a time, then add up and store
# their 8 partial sums: below this many starts that end costs more than the gathered
# columns it saves (basic_conv's C2, 32 starts: a backward 1.09x the gathered one's time at
# 32 samples; cntk103d_pool's C2, 256 starts: 0.9x).
MIN_WEIGHT_STARTS = 64

def _tile(maps: int):
    """An intrinsic tile(x, base, offsets, wt, m0, out, out_base, out_stride):
    out[out_base + i * out_stride + j] = sum_k wt[k, m0 + i] * x[base + offsets[k] + j]
    for i < maps, j < SPAN; wt is (K, M) C-contiguous, the others 1-D."""

    @intrinsic
    def tile(typingctx, x, base, offsets, wt, m0, out, out_base, out_stride):
        signature = types.void(x, base, offsets, wt, m0, out, out_base, out_stride)

        def codegen(context, builder, sig, args):
            arrays = [context.make_array(sig.args[i])(context, builder, args[i])
                      for i in (0, 2, 3, 5)]
            xp, offp, wp, outp = (a.data for a in arrays)
            base, m0, out_base, out_stride = args[1], args[4], args[6], args[7]
            cells = builder.extract_value(arrays[2].shape, 0)
            width = builder.extract_value(arrays[2].shape, 1)
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_VEC, [_VEC] * 3), "llvm.fma.v8f32")
            zero = ir.Constant(_VEC, [0.0] * LANES)
            entry = builder.block
            loop = builder.append_basic_block("tile.loop")
            done = builder.append_basic_block("tile.done")
            builder.cbranch(builder.icmp_signed("<=", cells, ir.Constant(_I64, 0)), done, loop)

            builder.position_at_end(loop)
            k = builder.phi(_I64)
            k.add_incoming(ir.Constant(_I64, 0), entry)
            sums = []
            for _ in range(maps * VECTORS):
                phi = builder.phi(_VEC)
                phi.add_incoming(zero, entry)
                sums.append(phi)
            first = builder.add(base, builder.load(builder.gep(offp, [k])))
            columns = [builder.load(builder.bitcast(
                builder.gep(xp, [builder.add(first, ir.Constant(_I64, LANES * v))]),
                _VEC.as_pointer()), align=4) for v in range(VECTORS)]
            row = builder.add(builder.mul(k, width), m0)
            updated = []
            for i in range(maps):
                weight = builder.load(builder.gep(wp, [builder.add(row, ir.Constant(_I64, i))]))
                weight = builder.insert_element(ir.Constant(_VEC, ir.Undefined), weight,
                                                ir.Constant(_I32, 0))
                weight = builder.shuffle_vector(weight, ir.Constant(_VEC, ir.Undefined),
                                                ir.Constant(ir.VectorType(_I32, LANES),
                                                            [0] * LANES))
                updated += [builder.call(fma, [weight, columns[v], sums[i * VECTORS + v]])
                            for v in range(VECTORS)]
            following = builder.add(k, ir.Constant(_I64, 1))
            end = builder.block
            k.add_incoming(following, end)
            for phi, value in zip(sums, updated):
                phi.add_incoming(value, end)
            builder.cbranch(builder.icmp_signed("<", following, cells), loop, done)

            builder.position_at_end(done)
            totals = []   # every phi first: LLVM wants them at the top of the block
            for value in updated:
                total = builder.phi(_VEC)
                total.add_incoming(zero, entry)
                total.add_incoming(value, end)
                totals.append(total)
            for i in range(maps):
                start = builder.add(out_base, builder.mul(out_stride, ir.Constant(_I64, i)))
                for v in range(VECTORS):
                    place = builder.gep(outp, [builder.add(start, ir.Constant(_I64, LANES * v))])
                    place = builder.bitcast(place, _VEC.as_pointer())
                    builder.store(totals[i * VECTORS + v], place, align=4)
            return context.get_dummy_value()

        return signature, codegen

    return tile


_tile4, _tile2 = _tile(4), _tile(2)


def _horizontal_sum(builder, vector):
    """The sum of a vector's 8 floats, halving it three times."""
    width = LANES
    while width > 1:
        width //= 2
        low = builder.shuffle_vector(vector, vector, ir.Constant(
            ir.VectorType(_I32, width), list(range(width))))
        high = builder.shuffle_vector(vector, vector, ir.Constant(
            ir.VectorType(_I32, width), list(range(width, 2 * width))))
        vector = builder.fadd(low, high)
    return builder.extract_element(vector, ir.Constant(_I32, 0))


def _weight_tile(maps: int, cells: int):
    """An intrinsic wtile(d, d_base, d_stride, x, x_base, offsets, k0, count, dkw, m0):
    dkw[k0 + j, m0 + i] += sum_{q < count} d[d_base + i * d_stride + q]
    * x[x_base + offsets[k0 + j] + q] for i < maps, j < cells; count a multiple of LANES,
    dkw (K, M) C-contiguous. 8-float partial sums, added up at the end."""

    @intrinsic
    def wtile(typingctx, d, d_base, d_stride, x, x_base, offsets, k0, count, dkw, m0):
        signature = types.void(d, d_base, d_stride, x, x_base, offsets, k0, count, dkw, m0)

        def codegen(context, builder, sig, args):
            arrays = [context.make_array(sig.args[i])(context, builder, args[i])
                      for i in (0, 3, 5, 8)]
            dp, xp, offp, outp = (a.data for a in arrays)
            d_base, d_stride, x_base, k0, count, m0 = (args[i] for i in (1, 2, 4, 6, 7, 9))
            width = builder.extract_value(arrays[3].shape, 1)
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_VEC, [_VEC] * 3), "llvm.fma.v8f32")
            zero = ir.Constant(_VEC, [0.0] * LANES)
            rows = [builder.add(d_base, builder.mul(d_stride, ir.Constant(_I64, i)))
                    for i in range(maps)]
            starts = [builder.add(x_base, builder.load(builder.gep(
                offp, [builder.add(k0, ir.Constant(_I64, j))]))) for j in range(cells)]
            entry = builder.block
            loop = builder.append_basic_block("wtile.loop")
            done = builder.append_basic_block("wtile.done")
            builder.cbranch(builder.icmp_signed("<=", count, ir.Constant(_I64, 0)), done, loop)

            builder.position_at_end(loop)
            q = builder.phi(_I64)
            q.add_incoming(ir.Constant(_I64, 0), entry)
            sums = []
            for _ in range(maps * cells):
                phi = builder.phi(_VEC)
                phi.add_incoming(zero, entry)
                sums.append(phi)
            grads = [_load(builder, dp, builder.add(row, q)) for row in rows]
            inputs = [_load(builder, xp, builder.add(start, q)) for start in starts]
            updated = [builder.call(fma, [grads[i], inputs[j], sums[i * cells + j]])
                       for i in range(maps) for j in range(cells)]
            following = builder.add(q, ir.Constant(_I64, LANES))
            end = builder.block
            q.add_incoming(following, end)
            for phi, value in zip(sums, updated):
                phi.add_incoming(value, end)
            builder.cbranch(builder.icmp_signed("<", following, count), loop, done)

            builder.position_at_end(done)
            totals = []
            for value in updated:
                total = builder.phi(_VEC)
                total.add_incoming(zero, entry)
                total.add_incoming(value, end)
                totals.append(total)
            for i in range(maps):
                for j in range(cells):
                    index = builder.add(builder.mul(builder.add(k0, ir.Constant(_I64, j)), width),
                                        builder.add(m0, ir.Constant(_I64, i)))
                    place = builder.gep(outp, [index])
                    value = _horizontal_sum(builder, totals[i * cells + j])
                    builder.store(builder.fadd(builder.load(place), value), place)
            return context.get_dummy_value()

        return signature, codegen

    return wtile


_wtile4, _wtile2 = _weight_tile(4, 2), _weight_tile(2, 2)


@jit
def _weight_products(d, xp, first, offsets, dkw):
    """dkw[k, m] += sum_q d[m, q] * xp[first + offsets[k] + q] over q < d.shape[1] (a
    multiple of LANES), M = dkw.shape[1] and K = offsets.size both even: tiles of 4 maps x 2
    kernel cells, 2 maps for the last of them when M is not a multiple of 4."""
    maps, width = d.shape
    flat = d.reshape(-1)
    for k in range(0, offsets.size, 2):
        m = 0
        while m + MAPS <= maps:
            _wtile4(flat, m * width, width, xp, first, offsets, k, width, dkw, m)
            m += MAPS
        if m < maps:
            _wtile2(flat, m * width, width, xp, first, offsets, k, width, dkw, m)


@jit
def weight_gradient(x, places, place_runs, buffer_size, offsets, firsts, dz, blocks, width,
                    dkw, dbias):
    """dkw[g, k, m] = sum over samples and grid positions of dout[g, m, q] * xpad[firsts[g] +
    offsets[k] + q], dbias[g, m] = sum of dout[g, m, q], with dout[g, m, q:q + length] =
    dz[b, node:node + length] for each block (g, m, q, node, length) and 0 at garbage starts;
    dkw's last two dimensions even (DirectPlan.weight_gradient pads them)."""
    groups, maps = dkw.shape[0], dkw.shape[2]
    dkw[:] = 0
    dbias[:] = 0
    d = np.zeros((groups, maps, width), np.float32)   # garbage starts stay 0
    flat = d.reshape(-1)
    for b in range(x.shape[0]):
        xp = np.zeros(buffer_size, np.float32)
        _place(xp, x[b], places, place_runs)
        dzb = dz[b]
        for r in range(blocks.shape[0]):
            g, m, q, node, length = blocks[r, 0], blocks[r, 1], blocks[r, 2], blocks[r, 3], \
                blocks[r, 4]
            copy_run(flat, (g * maps + m) * width + q, dzb, node, length)
        for g in range(groups):
            for m in range(maps):
                total = np.float32(0.0)   # a local sum over the whole row vectorises
                row = d[g, m]
                for j in range(width):
                    total += row[j]
                dbias[g, m] += total
            _weight_products(d[g], xp, firsts[g], offsets, dkw[g])


@jit
def _place(xp, xb, places, place_runs):
    """xp[places[i]] = xb[i]: by runs where there are (place_runs), else cell by cell."""
    if place_runs.shape[0] == 0:
        for i in range(places.size):
            xp[places[i]] = xb[i]
        return
    for r in range(place_runs.shape[0]):
        copy_run(xp, place_runs[r, 1], xb, place_runs[r, 0], place_runs[r, 2])


@jit
def _products(xp, first, tiles, offsets, wt, out):
    """out[m, t * SPAN + j] = sum_k wt[k, m] * xp[first + offsets[k] + tiles[t] + j] for
    every map m (M even), tile t and j < SPAN; out (M, tiles.size * SPAN)."""
    maps, width = out.shape
    flat = out.reshape(-1)
    for t in range(tiles.size):
        q, column = tiles[t], t * SPAN
        m = 0
        while m + MAPS <= maps:
            _tile4(xp, first + q, offsets, wt, m, flat, m * width + column, width)
            m += MAPS
        if m < maps:
            _tile2(xp, first + q, offsets, wt, m, flat, m * width + column, width)


@jit(parallel=True, work=0)
def forward(x, places, place_runs, buffer_size, offsets, firsts, tiles, wt, bias, blocks, z,
            accumulate):
    """z[b, node:node + length] (+)= out[g, m, q:q + length] + bias[g, m] for each block (g, m,
    q, node, length), out[g] = the direct products (_products: the tiles' starts side by side)
    of group g's kernels wt[g] (K, M) from firsts[g] on in sample b's input placed in a zero
    buffer (xpad[places[i]] = x[b, i]; place_runs: _moves(places))."""
    groups, maps, width = wt.shape[0], wt.shape[2], tiles.size * SPAN
    for b in prange(x.shape[0]):
        xp = np.zeros(buffer_size, np.float32)
        _place(xp, x[b], places, place_runs)
        zb = z[b]
        out = np.empty((groups, maps, width), np.float32)
        for g in range(groups):
            _products(xp, firsts[g], tiles, offsets, wt[g], out[g])
        flat = out.reshape(-1)
        for r in range(blocks.shape[0]):
            g, m, q, node, length = blocks[r, 0], blocks[r, 1], blocks[r, 2], blocks[r, 3], \
                blocks[r, 4]
            at = (g * maps + m) * width + q
            if accumulate:
                for j in range(length):
                    zb[node + j] += flat[at + j] + bias[g, m]
            else:
                shift_run(zb, node, flat, at, bias[g, m], length)


@jit(parallel=True, work=0)
def input_gradient(dz, blocks, maps, row, shift, first, offsets, wt, tiles, index, index_runs,
                   dx, accumulate):
    """dx[b, i] (+)= out[index[i]] (0 where index[i] is -1; index_runs: _moves(index)), out (C,
    tiles.size * SPAN) the direct products (tiles: runs of the starts that input cells need)
    of the output gradient placed in a zero buffer of `maps` rows of `row` floats (d[m, shift
    + q:shift + q + length] = dz[b, node:node + length] for each block (0, m, q, node,
    length)) with the channels' kernels wt (M * J, C), C even: DirectPlan.input_plan (one
    group)."""
    for b in prange(dz.shape[0]):
        # SPAN floats of slack: a last tile's starts past the span (dropped) read them
        d = np.zeros(maps * row + SPAN, np.float32)
        dzb, dxb = dz[b], dx[b]
        for r in range(blocks.shape[0]):
            m, q, node, length = blocks[r, 1], blocks[r, 2], blocks[r, 3], blocks[r, 4]
            copy_run(d, m * row + shift + q, dzb, node, length)
        out = np.empty((wt.shape[1], tiles.size * SPAN), np.float32)
        _products(d, first, tiles, offsets, wt, out)
        flat = out.reshape(-1)
        if accumulate or index_runs.shape[0] == 0:
            for i in range(index.size):
                value = flat[max(index[i], 0)] if index[i] >= 0 else np.float32(0.0)
                dxb[i] = dxb[i] + value if accumulate else value
            continue
        for r in range(index_runs.shape[0]):
            start, source, length = index_runs[r, 0], index_runs[r, 1], index_runs[r, 2]
            if source >= 0:
                copy_run(dxb, start, flat, source, length)
            else:
                for j in range(start, start + length):
                    dxb[j] = 0


def _input_plan(offsets, first, width, places, steps, real, maps):
    """The input gradient as a direct convolution of the output gradient (the forward's
    adjoint), or None. The kernel cells split into C channels of J cells at the same offsets
    r[j] from each channel's first (offsets[c * J + j] = base[c] + r[j]): each input cell
    that a real window reads is read by the cells of one channel only (checked), so the
    gradient of channel c's cells is sum over maps m and j of w[m, c * J + j] * dout[m,
    p - first - base[c] - r[j]], a convolution of the maps' output gradients with C output
    maps, M * J cells and starts p over the span of channel c's input cells. The most
    channels that allow it (fewest products per cell)."""
    cells = offsets.size
    reads = (first + steps[real])[:, None] + offsets[None, :]      # (real starts, K)
    position = np.full(int(max(reads.max(), places.max())) + 1, -1, np.int64)
    position[places] = np.arange(places.size)
    for channels in (c for c in range(cells, 0, -1) if cells % c == 0):
        per = cells // channels
        table = offsets.reshape(channels, per)
        base, pattern = table[:, 0], table[0] - table[0, 0]
        if not np.array_equal(table - base[:, None], np.broadcast_to(pattern, table.shape)):
            continue
        owner = np.full(position.size, -1, np.int64)   # the channel reading each cell
        clash = False
        for c in range(channels):
            read = np.unique(reads[:, c * per:(c + 1) * per])
            clash = (owner[read] >= 0).any()
            if clash:
                break
            owner[read] = c
        if clash:
            continue
        channel = owner[places]                        # -1: a cell no real window reads
        relative = places - base[np.maximum(channel, 0)]
        used = channel >= 0
        if not used.any():
            return None
        low, high = int(relative[used].min()), int(relative[used].max())
        span = -(-(high - low + 1) // SPAN) * SPAN
        # the products' tiles: those that hold a start u = relative - low an input cell
        # needs (cntk103d_pool's C2: 14 of each padded row of 18, a tile a row)
        needed = np.zeros(span, bool)
        needed[relative[used] - low] = True
        tiles, placed = _cover(np.arange(span), needed)
        if tiles.size * SPAN > MAX_WASTE * steps[real].size:
            return None
        # d[m, shift + q] holds dout[m, q]: q = low + u - first - pattern[j] >= -shift
        lowest = low - first - int(pattern.max())
        shift = max(0, -lowest)
        row = max(shift + width, shift + low + span - first - int(pattern.min()))
        cell_offsets = (np.arange(maps)[:, None] * row
                        + (int(pattern.max()) - pattern)[None, :]).reshape(-1)
        where = placed[np.where(used, relative - low, 0)]
        index = np.where(used, np.maximum(channel, 0) * tiles.size * SPAN + where, -1)
        return (channels, per, maps, row, shift, shift + lowest, cell_offsets, tiles,
                index.astype(np.int64))
    return None


class DirectPlan:
    """What the direct kernels need of a convolution's tables, or None from `make` where the
    windows are not shifts of one set of offsets (the same in every group of kernels)."""

    def __init__(self, offsets, firsts, width, places, buffer_size, blocks, tiles,
                 forward_blocks, input_plan):
        self.offsets, self.firsts, self.width = offsets, firsts, width
        self.places, self.buffer_size, self.blocks = places, buffer_size, blocks
        self.place_runs = _moves(places)   # where runs of input cells go in the zero buffer
        # the forward's tiles (their first starts) and its blocks in their output
        self.tiles, self.forward_blocks = tiles, forward_blocks
        self.input_plan = input_plan   # _input_plan's, or None
        self.index_runs = None if input_plan is None else _moves(input_plan[-1])
        self.weights = width >= MIN_WEIGHT_STARTS   # whether weight_gradient pays
        # an odd number of kernel cells gets its first repeated: the weight gradient's tiles
        # take them in pairs
        self.even_offsets = offsets if offsets.size % 2 == 0 else np.append(offsets, offsets[0])

    @staticmethod
    def make(tables) -> DirectPlan | None:
        groups, maps, positions = tables.grid_outputs.shape
        grid = tables.grid_table.astype(np.int64)                  # (G, S, K)
        starts, offsets = grid[:, :, 0], grid[0, 0] - grid[0, 0, 0]
        if not np.array_equal(grid, starts[:, :, None] + offsets):
            return None
        firsts = starts.min(axis=1)
        steps = starts[0] - firsts[0]
        if not np.array_equal(starts - firsts[:, None], np.broadcast_to(steps, starts.shape)):
            return None
        width = -(-(int(steps.max()) + 1) // SPAN) * SPAN   # whole tiles
        real = (tables.grid_outputs >= 0).any(axis=(0, 1))
        tiles, placed = _cover(steps, real)
        if (tiles.size * SPAN - positions) * maps > GATHERED_CELL * positions:
            return None
        reach = max(width, int(tiles[-1]) + SPAN)
        buffer_size = max(int(tables.padded_size), int(firsts.max() + offsets.max()) + reach)
        places = tables.pad_cells.astype(np.int64)
        blocks, forward_blocks = (np.concatenate([
            _output_blocks(g, tables.grid_outputs[g], where) for g in range(groups)])
            for where in (steps, placed))
        input_plan = None
        if groups == 1:
            input_plan = _input_plan(offsets, int(firsts[0]), width, places, steps, real, maps)
        return DirectPlan(offsets, firsts, width, places, buffer_size, blocks, tiles,
                          forward_blocks, input_plan)

    def input_gradient(self, dz, kw, dx, accumulate):
        """dx (+)= dL/dx of the batch; kw: the kernels (M, K) of the one group."""
        channels, per, maps, row, shift, first, offsets, tiles, index = self.input_plan
        # wt[(m, j), c] = kw[m, c * J + j]
        wt = _even_columns(kw.reshape(maps, channels, per).transpose(0, 2, 1)
                           .reshape(maps * per, channels))
        input_gradient(dz, self.blocks, maps, row, shift, first, offsets, wt, tiles, index,
                       self.index_runs, dx, accumulate)

    def weight_gradient(self, x, dz, dkw, dbias):
        """dkw (G, K, M) and dbias (G, M) of the batch, overwritten."""
        groups, cells, maps = dkw.shape
        if cells % 2 == 0 and maps % 2 == 0:
            weight_gradient(x, self.places, self.place_runs, self.buffer_size, self.offsets,
                            self.firsts, dz, self.blocks, self.width, dkw, dbias)
            return
        even_dkw = np.empty((groups, self.even_offsets.size, maps + maps % 2), np.float32)
        even_dbias = np.empty((groups, even_dkw.shape[2]), dbias.dtype)
        weight_gradient(x, self.places, self.place_runs, self.buffer_size, self.even_offsets,
                        self.firsts, dz, self.blocks, self.width, even_dkw, even_dbias)
        dkw[:] = even_dkw[:, :cells, :maps]
        dbias[:] = even_dbias[:, :maps]

    def forward(self, x, kw, bias, z, accumulate):
        """kw: the kernels (G, M, K); bias (G, M)."""
        wt = _even_maps(kw.transpose(0, 2, 1))
        forward(x, self.places, self.place_runs, self.buffer_size, self.offsets, self.firsts,
                self.tiles, wt, bias, self.forward_blocks, z, accumulate)


def _moves(targets: np.ndarray) -> np.ndarray:
    """vectors.runs(targets) where its runs are 8 cells long on average, else none (0 rows):
    a strided sweep's input places its cells one by one in phases, which a loop over cells
    moves faster than one over runs of 1 (basic_conv's C1: 5.5 us a sample against 6.8)."""
    moves = runs(targets)
    return moves if len(targets) >= LANES * len(moves) else np.zeros((0, 3), np.int64)


def _even_columns(matrix: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy of matrix with a zero column added where its columns are
    odd (a zero map: the kernels' tiles take 4 or 2 maps)."""
    return _even_maps(matrix[None])[0]


def _even_maps(stack: np.ndarray) -> np.ndarray:
    """_even_columns of each matrix of a (G, K, M) stack."""
    groups, rows, columns = stack.shape
    even = np.zeros((groups, rows, columns + columns % 2), np.float32)
    even[:, :, :columns] = stack
    return even


def _cover(steps: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forward's tiles: the fewest runs of SPAN starts that hold every real position's
    start (greedily, from the lowest), and where each position's start lands in the tiles'
    output (tile t's starts at t * SPAN on; -1 for a garbage position left out). A padded
    image row of 14 positions in 18 cells (cntk103d_pool's C2) takes one tile instead of
    the 18 of consecutive tiles."""
    tiles = []
    for step in np.unique(steps[real]):
        if not tiles or step >= tiles[-1] + SPAN:
            tiles.append(int(step))
    tiles = np.array(tiles, np.int64)
    tile = np.searchsorted(tiles, steps, side="right") - 1
    offset = steps - tiles[np.maximum(tile, 0)]            # from the start of its tile
    placed = np.where((tile >= 0) & (offset < SPAN), tile * SPAN + offset, -1)
    return tiles, placed


def _output_blocks(group: int, outputs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(group, m, q, node, length) runs over each map's grid positions along which both the
    start q and the output node advance by one; garbage positions (node -1) are left out."""
    maps, positions = outputs.shape
    rows = []
    for m in range(maps):
        nodes = outputs[m].astype(np.int64)
        real = np.flatnonzero(nodes >= 0)
        if real.size == 0:
            continue
        q, node = steps[real], nodes[real]
        breaks = np.flatnonzero((np.diff(q) != 1) | (np.diff(node) != 1)) + 1
        begins = np.concatenate(([0], breaks))
        lengths = np.diff(np.concatenate((begins, [real.size])))
        rows += [(group, m, q[b], node[b], n) for b, n in zip(begins, lengths)]
    return np.array(rows, np.int64).reshape(-1, 5)
