"""Convolution through index tables (lower.ConvTables): im2col gather, BLAS product, scatter.

Forward:  cols[g] = x gathered by grid_table[g].T;  out[g] = W[kernels[g]] @ cols[g] (or
          its transpose, cols[g].T @ W[kernels[g]].T: TRANSPOSED_MIN_CELLS);
          z[grid_outputs] = out + bias
Backward: dout[g] = dz gathered by grid_outputs;  dW[kernels[g]] += (cols[g] @ dout[g].T).T;
          dcols[g] = W[kernels[g]].T @ dout[g]; dx += dcols scattered back (col2im).
cols is kernel cells x (sample, position) pairs, column b * positions + s (a layout of
position rows measured 2-3x slower in sgemm on a Xeon), each row written in contiguous runs;
out is maps x pairs, or pairs x maps for large kernels, which OpenBLAS multiplies faster
from cols' transposed view (1.75x on an AMD EPYC for 16 x 200 x 504).

The gather reads the input copied into a zero-padded buffer, over lower's grid, a run of
cells at a time (conv.table_runs: an image row of a stride-1 convolution). The grid can widen
a 2-D convolution's positions to the padded row width, so that each kernel cell's row of cols
is one run of the padded input (garbage positions, computed and dropped: lower.GRID_WASTE,
by default off).

The batch is convolved a chunk of samples at a time, in training too, so that the gathered
columns are still in L2 when the product reads them: backward gathers its chunk's columns again
rather than keeping a whole batch's (50 MB for cntk103d_pool's C2 at batch 256), and sums the
weight gradient over chunks. With WORKERS = 2 two threads take half the chunks each, with
their own buffers and one-threaded BLAS.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from math import prod

import numba
import numpy as np

from .. import lower
from . import blas
from .direct import DirectPlan
from .jit import jit, prange

# Loops run over flat 1-D views: numba's multi-dimensional indexing, or building a view per
# short inner loop, measured 2-5x slower than one long flat loop per sample.


# table_runs and row_runs run once per model, in numpy: as numba kernels they cost 3 s of
# compiling at a first start, before either process could compile anything else.

def table_runs(table_t: np.ndarray) -> np.ndarray:
    """The rows of table_t (G, K, S) cut into runs (row g*K + k, first s, first cell, cell
    step, length) along which the cell advances by a fixed step, and runs of padding (cell
    -1, step 0). A stride-1 convolution's row is a few runs as long as the image's rows or
    longer, so the gather copies runs instead of reading an index per cell."""
    groups, size, positions = table_t.shape
    cells = table_t.reshape(-1).astype(np.int64)
    count = cells.size
    if count == 0:
        return np.zeros((0, 5), np.int32)
    real = cells >= 0
    row_end = (np.arange(count - 1) + 1) % positions == 0
    link = ~row_end & (real[:-1] == real[1:])
    step = np.where(real[:-1] & real[1:], cells[1:] - cells[:-1], 0)
    starts = _greedy_starts(link, step[:, None], np.arange(0, count, positions))
    lengths = np.diff(np.append(starts, count))
    runs = np.empty((starts.size, 5), np.int32)
    runs[:, 0], runs[:, 1] = np.divmod(starts, positions)
    runs[:, 2] = np.where(real[starts], cells[starts], -1)
    runs[:, 3] = np.where(lengths > 1, np.append(step, 0)[starts], 0)
    runs[:, 4] = lengths
    return runs


def row_runs(runs: np.ndarray) -> np.ndarray:
    """Runs (row, s, first, step, length) of conv.table_runs grouped into blocks of `count`
    runs of one row with the same step and length, each `ds` positions and `dfirst` cells
    after the previous: (row, s, first, step, length, count, ds, dfirst). Runs of padding
    (first -1) are blocks of their own. A 2x2 pooling of
    8 maps of 28x28 is one block per kernel cell (112 runs of 14)."""
    count = runs.shape[0]
    if count == 0:
        return np.zeros((0, 8), np.int32)
    runs = runs.astype(np.int64)
    real = runs[:, 2] >= 0
    link = ((runs[1:, 0] == runs[:-1, 0]) & (runs[1:, 3] == runs[:-1, 3])
            & (runs[1:, 4] == runs[:-1, 4]) & (real[1:] == real[:-1]))
    delta = runs[1:, 1:3] - runs[:-1, 1:3]
    firsts = np.flatnonzero(np.append(True, runs[1:, 0] != runs[:-1, 0]))
    starts = _greedy_starts(link, delta, firsts)
    counts = np.diff(np.append(starts, count))
    blocks = np.zeros((starts.size, 8), np.int32)
    blocks[:, :5], blocks[:, 5] = runs[starts], counts
    grouped = counts > 1
    blocks[grouped, 6:8] = delta[starts[grouped]]
    return blocks


def _greedy_starts(link: np.ndarray, delta: np.ndarray, firsts: np.ndarray) -> np.ndarray:
    """Where the runs start when a sequence of n items is cut greedily, each segment
    (beginning at `firsts`, sorted) on its own: a run starting at item s takes s + 1, s + 2,
    ... while each is linked to the one before (link[i]: items i and i + 1 may share a run;
    False across segments) and its difference from it (delta[i], a row) equals the run's
    first. Each pass of the loop takes one run from every segment at once."""
    n = link.size + 1
    chained = np.zeros(n - 1, bool)  # item i + 1 continues the run that holds items i - 1, i
    chained[1:] = link[1:] & link[:-1] & (delta[1:] == delta[:-1]).all(axis=1)
    breaks = np.where(chained, n - 1, np.arange(n - 1))
    last = np.append(np.minimum.accumulate(breaks[::-1])[::-1], n - 1)  # run's last item
    following = np.arange(1, n + 1)
    linked = np.flatnonzero(link)
    following[linked] = last[linked + 1] + 1
    cursor, limit = firsts, np.append(firsts[1:], n)
    found = []
    while cursor.size:
        found.append(cursor)
        cursor = following[cursor]
        open_ = cursor < limit
        cursor, limit = cursor[open_], limit[open_]
    return np.sort(np.concatenate(found))


@jit
def _im2col_sample(xb, runs, flat, rows, offset):
    """One sample's columns: flat[row * rows + offset + s ...] from xb, run by run."""
    for r in range(runs.shape[0]):
        row, s, first, step, length = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3], runs[r, 4]
        dst = row * rows + offset + s
        d = flat[dst:dst + length]  # slices first: indexing flat[dst + j] measured 3-10x
        if first < 0:               # slower (a possibly negative index defeats vectorising)
            d[:] = 0
        elif step == 1:
            src = xb[first:first + length]
            for j in range(length):
                d[j] = src[j]
        else:
            for j in range(length):
                d[j] = xb[first + j * step]


@jit
def _col2im_sample(flat, runs, dxb, rows, offset):
    """One sample's dxb[table_t[g, k, s]] += its columns, run by run."""
    for r in range(runs.shape[0]):
        row, s, first, step, length = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3], runs[r, 4]
        if first < 0:
            continue
        src = row * rows + offset + s
        d = flat[src:src + length]
        if step == 1:
            target = dxb[first:first + length]
            for j in range(length):
                target[j] += d[j]
        else:
            for j in range(length):
                dxb[first + j * step] += d[j]


@jit(parallel=True, work=2, scale=8)
def im2col(x, runs, cols):
    """cols[g, k, b*S + s] = x[b, table_t[g, k, s]] (table_t cut into runs: table_runs)."""
    batch, rows = x.shape[0], cols.shape[2]
    positions, flat = rows // batch, cols.reshape(-1)
    for b in prange(batch):
        _im2col_sample(x[b], runs, flat, rows, b * positions)


@jit(parallel=True, work=2, scale=8)
def col2im(dcols, runs, dx, accumulate):
    """dx[b, table_t[g, k, s]] (+)= dcols[g, k, b*S + s]; one sample per thread (no races)."""
    batch, rows = dx.shape[0], dcols.shape[2]
    positions, flat = rows // batch, dcols.reshape(-1)
    for b in prange(batch):
        if not accumulate:
            dx[b, :] = 0
        _col2im_sample(flat, runs, dx[b], rows, b * positions)


@jit(parallel=True, work=4, scale=8)
def pad_im2col(x, pad_runs, xpad, runs, cols):
    """im2col of x copied into the zero-padded buffer xpad, run by run (pad_runs: table_runs
    of the buffer's cells for x's; a cell at a time measured 3 ns a float)."""
    batch, rows = x.shape[0], cols.shape[2]
    positions, flat = rows // batch, cols.reshape(-1)
    for b in prange(batch):
        xb, pb = x[b], xpad[b]
        pb[:] = 0
        for r in range(pad_runs.shape[0]):
            s, first, step = pad_runs[r, 1], pad_runs[r, 2], pad_runs[r, 3]
            for j in range(pad_runs[r, 4]):
                pb[first + j * step] = xb[s + j]
        _im2col_sample(pb, runs, flat, rows, b * positions)


@jit(parallel=True, work=0, scale=8)
def col2im_extract(dcols, runs, dxpad, cells, dx, accumulate):
    """col2im into the padded buffer dxpad, then dx[b, i] (+)= dxpad[b, cells[i]]."""
    batch, rows = dx.shape[0], dcols.shape[2]
    positions, flat = rows // batch, dcols.reshape(-1)
    for b in prange(batch):
        db, pb = dx[b], dxpad[b]
        pb[:] = 0
        _col2im_sample(flat, runs, pb, rows, b * positions)
        if accumulate:
            for i in range(cells.size):
                db[i] += pb[cells[i]]
        else:
            for i in range(cells.size):
                db[i] = pb[cells[i]]


@jit(parallel=True, work=3)
def scatter_outputs(out, bias, outputs, z, accumulate):
    """z[b, outputs[g, m, s]] (+)= out[g, m, b*S + s] + bias[g, m], where the output is not -1
    (a garbage position of the grid)."""
    groups, maps, positions = outputs.shape
    for r in prange(z.shape[0] * groups * maps):
        b, gm = r // (groups * maps), r % (groups * maps)
        g, m = gm // maps, gm % maps
        zb, nodes, src = z[b], outputs[g, m], out[g, m, b * positions:(b + 1) * positions]
        add = bias[g, m]
        if accumulate:
            for s in range(positions):
                if nodes[s] >= 0:
                    zb[nodes[s]] += src[s] + add
        else:
            for s in range(positions):
                if nodes[s] >= 0:
                    zb[nodes[s]] = src[s] + add


@jit(parallel=True, work=3)
def scatter_blocks(out, bias, blocks, z, accumulate):
    """scatter_outputs through blocks (row_runs) of the output table's runs, every real run
    with step 1: z[b, node:node + length] (+)= out[g, m, b*S + s:...] + bias[g, m], a
    contiguous copy per run (an index and a test per value measured 1 ns a value)."""
    groups, maps, rows = out.shape
    batch = z.shape[0]
    positions = rows // batch
    flat = out.reshape(-1)
    for b in prange(batch):
        zb = z[b]
        for r in range(blocks.shape[0]):
            gm, s0, node0, length = blocks[r, 0], blocks[r, 1], blocks[r, 2], blocks[r, 4]
            if node0 < 0:
                continue
            add = bias[gm // maps, gm % maps]
            base = gm * rows + b * positions
            for c in range(blocks[r, 5]):
                src = base + s0 + c * blocks[r, 6]
                node = node0 + c * blocks[r, 7]
                d, v = zb[node:node + length], flat[src:src + length]
                if accumulate:
                    for j in range(length):
                        d[j] += v[j] + add
                else:
                    for j in range(length):
                        d[j] = v[j] + add


@jit(parallel=True, work=3)
def scatter_transposed(out_t, bias, outputs_t, z, accumulate):
    """z[b, outputs_t[g, s, m]] (+)= out_t[g, b*S + s, m] + bias[g, m], where the output is
    not -1: a position's maps are read in a row, their nodes from the transposed table."""
    groups, positions, maps = outputs_t.shape
    for b in prange(z.shape[0]):
        zb = z[b]
        for g in range(groups):
            add = bias[g]
            for s in range(positions):
                src, nodes = out_t[g, b * positions + s], outputs_t[g, s]
                for m in range(maps):
                    i = nodes[m]
                    if i >= 0:
                        zb[i] = zb[i] + src[m] + add[m] if accumulate else src[m] + add[m]


@jit(parallel=True, work=2)
def gather_outputs(dz, outputs, dout):
    """dout[g, m, b*S + s] = dz[b, outputs[g, m, s]], or 0 where the output is -1."""
    groups, maps, positions = outputs.shape
    for r in prange(dz.shape[0] * groups * maps):
        b, gm = r // (groups * maps), r % (groups * maps)
        g, m = gm // maps, gm % maps
        dzb, nodes, dest = dz[b], outputs[g, m], dout[g, m, b * positions:(b + 1) * positions]
        for s in range(positions):
            i = nodes[s]
            dest[s] = dzb[max(i, 0)] if i >= 0 else 0


@jit(parallel=True, work=2)
def gather_blocks(dz, blocks, dout):
    """gather_outputs through blocks (row_runs) of the output table's runs, every real run
    with step 1: dout[g, m, b*S + s:...] = dz[b, node:node + length], a contiguous copy per
    run, or zeros for a run of garbage positions (an index and a test per value measured
    1.6 ns a value)."""
    groups, maps, rows = dout.shape
    batch = dz.shape[0]
    positions = rows // batch
    flat = dout.reshape(-1)
    for b in prange(batch):
        dzb = dz[b]
        for r in range(blocks.shape[0]):
            gm, s0, node0, length = blocks[r, 0], blocks[r, 1], blocks[r, 2], blocks[r, 4]
            base = gm * rows + b * positions
            for c in range(blocks[r, 5]):
                dst = base + s0 + c * blocks[r, 6]
                d = flat[dst:dst + length]
                if node0 < 0:
                    d[:] = 0
                else:
                    node = node0 + c * blocks[r, 7]
                    v = dzb[node:node + length]
                    for j in range(length):
                        d[j] = v[j]


# Kernels of at least this many cells multiply positions x maps in the forward (cols' transposed
# view times the kernels'). Measured on an AMD EPYC (Zen), one core, forward of 32 samples,
# against maps x positions in alternate calls: cntk103d_pool's C2 (200 cells) 0.72-0.82x the
# time, lenet's C3 (150) 0.82-0.86x; kernels of 25 cells 1.08-1.25x (C1 of both, basic_conv's).
TRANSPOSED_MIN_CELLS = 64
# The forward by kernels.direct where a convolution allows it; a module attribute so that
# tests can compare both ways.
DIRECT = True
DIRECT_BACKWARD = True   # the weight gradient too (kernels.direct.weight_gradient)
# Floats of columns + products per chunk; a module attribute so that tests can force chunks.
CHUNK_FLOATS = lower.CONV_CHUNK_FLOATS
# Threads that convolve chunks side by side, each with one-threaded BLAS (kernels.blas): the
# gather, product and scatter of a chunk then run on one core with its own L2, and no thread
# wakes another per call. 1 runs the chunks in turn (parallel kernels, BLAS on every core).
WORKERS = min(lower.CONV_WORKERS, numba.get_num_threads()) if blas.available else 1
_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=lower.CONV_WORKERS - 1,
                                        thread_name_prefix="netsharp-conv"))
    return _POOL[0]


def _view(buffer: np.ndarray, shape: tuple) -> np.ndarray:
    """The leading part of a buffer as a contiguous array of `shape` (a short last chunk)."""
    if buffer.shape == shape:  # every other chunk: a view costs microseconds per call
        return buffer
    return buffer.reshape(-1)[:prod(shape)].reshape(shape)


class ConvOp:
    """One convolution bundle; buffers per batch size live in the executor's workspace."""

    def __init__(self, tables):
        self.t = tables
        self.groups, self.maps, self.positions = tables.grid_outputs.shape
        self.size = tables.kernel_size
        self.outputs = tables.grid_outputs
        runs = table_runs(self.outputs)
        real = runs[runs[:, 2] >= 0]
        # the scatter copies runs of consecutive output nodes where every run is one
        self.blocks = row_runs(runs) if ((real[:, 3] == 1) | (real[:, 4] == 1)).all() \
            else None
        self.runs = table_runs(np.ascontiguousarray(tables.grid_table.transpose(0, 2, 1)))
        cells = tables.pad_cells
        # No padding and no slack: the gather reads the input itself.
        self.pad_cells = None if (tables.padded_size == cells.size and np.array_equal(
            cells, np.arange(cells.size))) else cells
        self.pad_runs = None if self.pad_cells is None else table_runs(
            np.ascontiguousarray(cells, np.int32).reshape(1, 1, -1))
        # One position whose window is the whole input in order (lenet's C5): the columns
        # are the input transposed, read in place.
        self.whole = (self.groups == 1 and self.positions == 1 and self.pad_cells is None
                      and np.array_equal(tables.grid_table[0, 0], np.arange(self.size)))
        # Fully shared: one group whose kernels are the parameter's rows in order, so the
        # product reads W in place instead of a gathered copy.
        self.in_place = self.groups == 1 and np.array_equal(tables.kernels[0],
                                                            np.arange(self.maps))
        # Kernels of many cells: the forward product is positions x maps (out transposed),
        # scattered through the output table transposed.
        self.outputs_t = np.ascontiguousarray(self.outputs.transpose(0, 2, 1)) if (
            self.size >= TRANSPOSED_MIN_CELLS and not self.whole) else None
        # Windows that are shifts of one set of cells: the forward without columns (direct)
        self.direct = None if self.whole or not DIRECT else DirectPlan.make(tables)

    def chunk(self, batch: int) -> int:
        return lower.conv_chunk(self.t, batch, CHUNK_FLOATS)

    def buffers(self, batch: int, training: bool, dtype) -> dict:
        chunk = self.chunk(batch)
        rows = chunk * self.positions
        # the calling thread's numba thread count: `netsharp train --threads 1` means one
        workers = max(1, min(WORKERS, numba.get_num_threads(), -(-batch // chunk)))
        sets = []
        for _ in range(workers):
            space = {"cols": np.empty((self.groups, self.size, rows), dtype),
                     "out": np.empty((self.groups, self.maps, rows), dtype)}
            if self.pad_cells is not None:
                space["xpad"] = np.zeros((chunk, self.t.padded_size), dtype)
            if training:
                # the weight gradient transposed, (G, K, M): cols @ dout.T measured 2x faster
                # in sgemm than dout @ cols.T
                space["dkw"] = np.empty((self.groups, self.size, self.maps), dtype)
                space["dkw_chunk"] = np.empty((self.groups, self.size, self.maps), dtype)
                space["dbias"] = np.zeros((self.groups, self.maps), np.float64)
            sets.append(space)
        return {"chunk": chunk, "sets": sets}

    def _split(self, batch: int, space: dict) -> list:
        """[(buffers, [(start, end), ...])]: each worker's chunks, a contiguous share."""
        step, sets = space["chunk"], space["sets"]
        bounds = [(start, min(start + step, batch)) for start in range(0, batch, step)]
        share = -(-len(bounds) // len(sets))
        return [(sets[i], bounds[i * share:(i + 1) * share]) for i in range(len(sets))
                if bounds[i * share:(i + 1) * share]]

    def _run(self, work, batch: int, space: dict) -> list:
        """work(buffers, chunks, serial) for each worker's share; the first share runs here."""
        shares = self._split(batch, space)
        if len(shares) == 1:
            work(*shares[0], False)
            return [shares[0][0]]
        with blas.single_threaded():
            futures = [_pool().submit(work, *share, True) for share in shares[1:]]
            work(*shares[0], True)
            for future in futures:
                future.result()
        return [share[0] for share in shares]

    def _buffers(self, bufs, start, end):
        rows = (end - start) * self.positions
        return (_view(bufs["cols"], (self.groups, self.size, rows)),
                _view(bufs["out"], (self.groups, self.maps, rows)))

    def _gather(self, x, bufs, cols, serial):
        """The chunk's columns: cols filled, or a view of x."""
        if self.whole and x.shape[1] == self.size:
            return x.T[None]
        if self.pad_cells is None:
            (im2col.serial if serial else im2col)(x, self.runs, cols)
        else:
            xpad = _view(bufs["xpad"], (len(x), self.t.padded_size))
            (pad_im2col.serial if serial else pad_im2col)(x, self.pad_runs, xpad, self.runs,
                                                          cols)
        return cols

    def _scatter(self, dcols, bufs, dx, accumulate, serial):
        if self.whole and dx.shape[1] == self.size:
            if accumulate:
                dx += dcols[0].T
            else:
                dx[...] = dcols[0].T
        elif self.pad_cells is None:
            (col2im.serial if serial else col2im)(dcols, self.runs, dx, accumulate)
        else:
            dxpad = _view(bufs["xpad"], (len(dx), self.t.padded_size))
            (col2im_extract.serial if serial else col2im_extract)(
                dcols, self.runs, dxpad, self.pad_cells, dx, accumulate)

    def _kernel_rows(self, w):
        return w[None] if self.in_place else w[self.t.kernels]    # (G, M, K + 1)

    def forward(self, x, w, z, space, accumulate):
        rows = self._kernel_rows(w)
        space["kw"] = kw = rows[:, :, :self.size]
        bias = np.ascontiguousarray(rows[:, :, self.size])
        if self.direct is not None:
            self.direct.forward(x, kw, bias, z, accumulate)
            return

        def work(bufs, chunks, serial):
            if self.outputs_t is not None:
                scatter, table = scatter_transposed, self.outputs_t
            elif self.blocks is None:
                scatter, table = scatter_outputs, self.outputs
            else:
                scatter, table = scatter_blocks, self.blocks
            scatter = scatter.serial if serial else scatter
            for start, end in chunks:
                cols, out = self._buffers(bufs, start, end)
                cols = self._gather(x[start:end], bufs, cols, serial)
                if self.outputs_t is None:
                    np.matmul(kw, cols, out=out)
                else:
                    out = out.reshape(self.groups, -1, self.maps)
                    np.matmul(cols.transpose(0, 2, 1), kw.transpose(0, 2, 1), out=out)
                scatter(out, bias, table, z[start:end], accumulate)

        self._run(work, len(x), space)

    def backward(self, dz, x, w, space, dx, dx_accumulate, dw, dw_accumulate):
        # the forward's gathered kernels (kernels.warm runs a backward with no forward)
        kw = space["kw"] if "kw" in space else self._kernel_rows(w)[:, :, :self.size]
        kw_t = kw.transpose(0, 2, 1)

        # the direct weight gradient: no columns; the chunks then only carry dL/dx
        direct = self.direct is not None and self.direct.weights and DIRECT_BACKWARD

        def work(bufs, chunks, serial):
            if self.blocks is None:
                gather, table = gather_outputs, self.outputs
            else:
                gather, table = gather_blocks, self.blocks
            gather = gather.serial if serial else gather
            dkw, part, dbias = bufs["dkw"], bufs["dkw_chunk"], bufs["dbias"]
            if not direct:
                dbias[:] = 0
            for i, (start, end) in enumerate(chunks):
                cols, dout = self._buffers(bufs, start, end)
                gather(dz[start:end], table, dout)
                if not direct:
                    np.matmul(self._gather(x[start:end], bufs, cols, serial),
                              dout.transpose(0, 2, 1), out=part if i else dkw)
                    if i:
                        dkw += part
                    dbias += dout.sum(axis=2)  # garbage positions' dout is 0
                if dx is not None:
                    np.matmul(kw_t, dout, out=cols)                # dL/d(cols), in place
                    self._scatter(cols, bufs, dx[start:end], dx_accumulate, serial)

        if direct:
            first = space["sets"][0]
            dkw, dbias = first["dkw"], first["dbias"]
            self.direct.weight_gradient(x, dz, dkw, dbias)
            if dx is not None and self.direct.input_plan is not None:
                self.direct.input_gradient(dz, kw[0], dx, dx_accumulate)
            elif dx is not None:
                self._run(work, len(x), space)
        else:
            used = self._run(work, len(x), space)
            dkw, dbias = used[0]["dkw"], used[0]["dbias"]
            for bufs in used[1:]:
                dkw += bufs["dkw"]
                dbias += bufs["dbias"]
        kernels, dkw = self.t.kernels, dkw.transpose(0, 2, 1)
        if dw_accumulate:
            dw[kernels, :self.size] += dkw
            dw[kernels, self.size] += dbias
        else:  # each kernel occurs once in `kernels`: this writes every row of dw
            dw[kernels, :self.size] = dkw
            dw[kernels, self.size] = dbias
