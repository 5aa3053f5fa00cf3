"""Kernels: the reference is right (hand-worked values, central differences in float64), and the
fast numba kernels agree with it on hypothesis-drawn geometries of every bundle kind."""

from __future__ import annotations

from math import prod

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import netsharp
from netsharp.geometry import auto_padded_axis, explicit_padded_axis, unpadded_axis
from netsharp.ir import ACTIVATIONS
from netsharp.kernels.losses import loss_and_grad, loss_kind
from netsharp.lower import lower, window_table
from netsharp.model import initial_parameters
from netsharp.reference import ReferenceExecutor

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


# ---- helpers -----------------------------------------------------------------------------------


def tup(values) -> str:
    return "[" + ", ".join(str(v).lower() if isinstance(v, bool) else str(v)
                           for v in values) + "]"


def conv_text(kind: str, shape, kernel, stride, pad, sharing=None, maps=None, extra="") -> str:
    """A program: X -> H (one geometry bundle) -> 3-way softmax output. pad: None,
    ('auto', bools) or ('explicit', lower, upper)."""
    attrs = f"InputShape = {tup(shape)}; KernelShape = {tup(kernel)}; Stride = {tup(stride)};"
    axes = positions(shape, kernel, stride, pad)
    if pad and pad[0] == "auto":
        attrs += f" Padding = {tup(pad[1])};"
    elif pad:
        attrs += f" LowerPad = {tup(pad[1])}; UpperPad = {tup(pad[2])};"
    nodes = prod(axes)
    if kind == "convolve":
        count = maps if isinstance(maps, int) else tup(maps)  # an int means [m, 1, ..., 1]
        attrs += f" Sharing = {tup(sharing)}; MapCount = {count};"
        nodes *= maps if isinstance(maps, int) else prod(maps)
    activation = "tanh" if kind == "convolve" else ""
    return (f"input X {tup(shape)}; hidden H [{nodes}] {activation} from X {kind} "
            f"{{ {attrs} {extra} }} output Y [3] softmax from H all;")


def positions(shape, kernel, stride, pad) -> list[int]:
    result = []
    for d, (i, k, s) in enumerate(zip(shape, kernel, stride)):
        if pad and pad[0] == "auto" and pad[1][d]:
            result.append(auto_padded_axis(i, k, s).positions)
        elif pad and pad[0] == "explicit":
            result.append(explicit_padded_axis(i, k, s, pad[1][d], pad[2][d]).positions)
        else:
            result.append(unpadded_axis(i, k, s).positions)
    return result


def random_case(network, seed=0, batch=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {k: v.astype(dtype) for k, v in initial_parameters(network, rng, 1.0).items()}
    inputs = {layer.name: rng.normal(size=(batch, layer.nodes)).astype(dtype)
              for layer in network.inputs}
    out = network.output
    if network.task == "regression":
        target = rng.normal(size=(batch, out.nodes))
    elif out.nodes == 1:
        target = rng.integers(0, 2, (batch, 1)).astype(float)
    else:
        target = np.eye(out.nodes)[rng.integers(0, out.nodes, batch)]
    return params, inputs, target.astype(dtype)


def assert_gradients(network, seed=0, tolerance=1e-6):
    """Reference backward == central differences of the loss, every parameter entry."""
    params, inputs, target = random_case(network, seed)
    executor = ReferenceExecutor(network)
    out = network.output
    kind = loss_kind(network.task, out.nodes)

    def loss():
        z, y = executor.forward(params, inputs)[out.name]
        return loss_and_grad(kind, out.activation, z, y, target)

    _, dz = loss()
    grads = executor.backward(params, executor.forward(params, inputs), dz)
    for name, value in params.items():
        flat, analytic = value.reshape(-1), grads[name].reshape(-1)
        numeric = np.empty_like(flat)
        for i in range(flat.size):
            keep, h = flat[i], 1e-6
            flat[i] = keep + h
            up = loss()[0]
            flat[i] = keep - h
            numeric[i] = (up - loss()[0]) / (2 * h)
            flat[i] = keep
        np.testing.assert_allclose(analytic, numeric, rtol=tolerance, atol=tolerance,
                                   err_msg=name)


def assert_fast_matches_reference(network, seed=0, batch=3):
    """Forward values and gradients of the numba executor (float32) == reference (float64)."""
    from netsharp.kernels.executor import FastExecutor

    params, inputs, _ = random_case(network, seed, batch, np.float32)
    wide = {k: v.astype(np.float64) for k, v in params.items()}
    reference, fast = ReferenceExecutor(network), FastExecutor(lower(network))
    ref_state = reference.forward(wide, inputs)
    fast_state = fast.forward(params, inputs)
    for layer in network.layers:
        np.testing.assert_allclose(fast_state[layer.name][1], ref_state[layer.name][1],
                                   rtol=2e-4, atol=2e-5, err_msg=layer.name)
    dz = np.random.default_rng(seed + 1).normal(size=ref_state[network.output.name][0].shape)
    ref_grads = reference.backward(wide, ref_state, dz)
    fast_grads = fast.backward(params, fast_state, dz.astype(np.float32))
    for name, grad in ref_grads.items():
        scale = max(1.0, float(np.abs(grad).max()))
        np.testing.assert_allclose(fast_grads[name], grad, rtol=1e-3, atol=1e-4 * scale,
                                   err_msg=name)


def assert_inference_matches_reference(network, seed=0, batch=3):
    """Inference (training=False: chunked convolution, max pooling that keeps no winners)
    == reference forward values."""
    from netsharp.kernels.executor import FastExecutor

    params, inputs, _ = random_case(network, seed, batch, np.float32)
    wide = {k: v.astype(np.float64) for k, v in params.items()}
    ref_state = ReferenceExecutor(network).forward(wide, inputs)
    fast_state = FastExecutor(lower(network)).forward(params, inputs, training=False)
    for layer in network.layers:
        np.testing.assert_allclose(fast_state[layer.name][1], ref_state[layer.name][1],
                                   rtol=2e-4, atol=2e-5, err_msg=layer.name)


# ---- the reference follows LANGUAGE.md section 5 (hand-worked values) --------------------------


def test_unpadded_kernels_are_centred_and_map_major():
    # I=8, K=3, S=3: N=2, extra = 8 - (3 + 3) = 2 -> origin 1; kernels cover 1-3 and 4-6.
    text = ("input X [8]; hidden H [4] linear from X convolve { InputShape = [8]; "
            "KernelShape = [3]; Stride = [3]; MapCount = 2; "
            "Weights = [1, 10, 100, 0, 2, 0, 0, 0.5]; } output Y [1] from H all;")
    net = netsharp.compile(text, task="regression")
    params = initial_parameters(net, np.random.default_rng(0))
    x = np.arange(1.0, 9.0)[None, :]
    z = ReferenceExecutor(net).forward(params, {"X": x})["H"][0]
    # map 0 (w 1, 10, 100, bias 0) at positions 0, 1; then map 1 (w 2, 0, 0, bias 0.5)
    np.testing.assert_allclose(z, [[432, 765, 4.5, 10.5]])


def test_mean_pool_divides_by_real_cells_and_max_ignores_padding():
    # I=3, K=3, Padding: 3 windows -1..1, 0..2, 1..3 -> real cells {0,1}, {0,1,2}, {1,2}
    for kind, expected in (("mean", [[-1.5, -2.0, -2.5]]), ("max", [[-1.0, -1.0, -2.0]])):
        text = (f"input X [3]; hidden P [3] from X {kind} pool {{ InputShape = [3]; "
                "KernelShape = [3]; Padding = true; } output Y [1] from P all;")
        net = netsharp.compile(text, task="regression")
        params = initial_parameters(net, np.random.default_rng(0))
        state = ReferenceExecutor(net).forward(params, {"X": np.array([[-1.0, -2.0, -3.0]])})
        np.testing.assert_allclose(state["P"][1], expected)


@pytest.mark.parametrize("full, n", [(False, 2), (True, 3)])
def test_response_norm_formula(full, n):
    text = ("input X [3]; hidden N [3] from X response norm { InputShape = [3]; "
            "KernelShape = [3]; Padding = true; Alpha = 0.5; Beta = 0.75; Offset = 2; "
            f"AvgOverFullKernel = {str(full).lower()}; }} output Y [1] from N all;")
    net = netsharp.compile(text, task="regression")
    x = np.array([[1.0, 2.0, 3.0]])
    params = initial_parameters(net, np.random.default_rng(0))
    y = ReferenceExecutor(net).forward(params, {"X": x})["N"][1]
    # node 0: window cells -1..1, real {0, 1}, centre 0
    np.testing.assert_allclose(y[0, 0], 1.0 * (2 + 0.5 / n * (1 + 4)) ** -0.75)


def test_window_table_follows_axis_windows():
    net = netsharp.compile_file("samples/padded_pool.ns")
    geometry = net.layer("P1").bundles[0].geometry
    table = window_table(geometry)
    p = 5 * 144 + 3 * 12 + 11  # some position near the upper edge
    coords = np.unravel_index(p, geometry.positions)
    cells = [range(len(a.window(c))) for a, c in zip(geometry.axes, coords)]
    expected = []
    for offset in np.ndindex(*[len(c) for c in cells]):
        cell = [a.window(c)[o] for a, c, o in zip(geometry.axes, coords, offset)]
        real = all(0 <= v < a.size for v, a in zip(cell, geometry.axes))
        expected.append(np.ravel_multi_index(cell, geometry.input_shape) if real else -1)
    assert table[p].tolist() == expected


# ---- gradients == central differences (float64) ------------------------------------------------

GRADIENT_PROGRAMS = {
    "full": "input X [4]; hidden H [3] from X all; output Y [2] softmax from H all;",
    "filtered": ("input X [3, 4]; hidden H [3, 2] from X where (s, d) => s[0] == d[0] && "
                 "s[1] >= d[1]; output Y [2] softmax from H all;"),
    "conv1d_padded_unshared": conv_text("convolve", [7], [3], [2], ("auto", [True]), [False],
                                        [2]),
    "conv2d_explicit": conv_text("convolve", [5, 4], [3, 2], [2, 1],
                                 ("explicit", [1, 0], [1, 1]), [True, True], [2, 1]),
    "conv3d_mixed_sharing": conv_text("convolve", [2, 4, 4], [1, 3, 2], [1, 1, 2],
                                      ("auto", [False, True, False]), [False, True, True], 2),
    "conv4d": conv_text("convolve", [2, 3, 3, 2], [2, 2, 2, 1], [1, 1, 1, 1], None,
                        [True, False, True, True], [1, 1, 2, 1]),
    "max_pool": conv_text("max pool", [5, 5], [3, 2], [2, 1], ("auto", [True, False])),
    "mean_pool": conv_text("mean pool", [5, 5], [3, 3], [2, 2], ("explicit", [1, 1], [1, 1])),
    "norm_padded": conv_text("response norm", [3, 4], [3, 1], [1, 1], ("auto", [True, False]),
                             extra="Alpha = 0.7; Beta = 0.75;"),
    "norm_unpadded": conv_text("response norm", [4, 3], [2, 3], [1, 1], None,
                               extra="Alpha = 0.5; Beta = 0.6; Offset = 1.5;"),
    "norm_full_kernel": conv_text("response norm", [5], [3], [1], ("auto", [True]),
                                  extra="Alpha = 0.5; Beta = 0.75; AvgOverFullKernel = true;"),
    "two_bundles_summed": ("input X [4]; input Z [3]; hidden H [3] tanh { from X all; "
                           "from Z where (s, d) => s != d; } output Y [2] softmax from H all;"),
    "shared_weights": ("input { A [3]; B [3]; } hidden { H1 [4] tanh from A all; "
                       "H2 [4] tanh from B all; } output Y [2] softmax { from H1 all; "
                       "from H2 all; } share { H1, H2 }"),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_PROGRAMS))
def test_bundle_gradients(name):
    assert_gradients(netsharp.compile(GRADIENT_PROGRAMS[name]))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_gradients(activation):
    text = (f"input X [4]; hidden H [5] {activation} from X all; "
            "output Y [2] linear from H all;")
    assert_gradients(netsharp.compile(text, task="regression"), seed=3)


@pytest.mark.parametrize("task, output", [("multiclass", "[3] softmax"),
                                          ("multiclass", "[3] tanh"),
                                          ("binary", "[1] sigmoid"), ("binary", "[1] linear"),
                                          ("binary", "[2] softmax"),
                                          ("regression", "[2] linear"),
                                          ("regression", "[2] srlinear")])
def test_loss_gradients(task, output):
    text = f"input X [4]; hidden H [5] tanh from X all; output Y {output} from H all;"
    assert_gradients(netsharp.compile(text, task=task), seed=5)


# ---- fast == reference --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRADIENT_PROGRAMS))
def test_fast_matches_reference_on_gradient_programs(name):
    assert_fast_matches_reference(netsharp.compile(GRADIENT_PROGRAMS[name]))


@pytest.mark.parametrize("sample", ["mlp", "basic_conv"])
def test_fast_matches_reference_on_one_sample(sample):
    """A batch of one: full bundles take their weight gradient as an outer product."""
    assert_fast_matches_reference(netsharp.compile_file(f"samples/{sample}.ns"), batch=1)


@pytest.mark.parametrize("batch", [7, 8, 48, 49])
def test_full_forward_both_ways_match_reference(batch):
    """Full bundles multiply W @ x.T for 8 to 48 rows into layers of 64 nodes or more, and
    x @ W.T otherwise (here H one way or the other, Y always directly); a layer with two full
    bundles accumulates in both ways."""
    from netsharp.kernels.full import TRANSPOSED_FORWARD, TRANSPOSED_MIN_OUTPUTS

    assert TRANSPOSED_FORWARD == (8, 48) and TRANSPOSED_MIN_OUTPUTS == 64
    text = ("input A [5]; input B [3]; hidden H [64] { from A all; from B all; } "
            "output Y [2] from H all;")
    assert_fast_matches_reference(netsharp.compile(text), batch=batch)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fast_activations_match_reference(activation):
    text = (f"input X [4]; hidden H [6] {activation} from X all; "
            "output Y [2] linear from H all;")
    assert_fast_matches_reference(netsharp.compile(text, task="regression"), batch=4)


@st.composite
def geometries(draw, max_rank=4):
    """(shape, kernel, stride, pad) with a legal padding form for every dimension."""
    rank = draw(st.integers(1, max_rank))
    limit = {1: 9, 2: 6, 3: 4, 4: 3}[rank]
    shape = [draw(st.integers(1, limit)) for _ in range(rank)]
    kernel = [draw(st.integers(1, i)) for i in shape]
    stride = [draw(st.integers(1, k)) for k in kernel]
    form = draw(st.sampled_from(["none", "auto", "explicit"]))
    if form == "auto":
        return shape, kernel, stride, ("auto", [draw(st.booleans()) for _ in range(rank)])
    if form == "explicit":
        lower_pad = [draw(st.integers(0, (k - 1) // 2)) for k in kernel]
        upper_pad = []
        for i, k, s, lo in zip(shape, kernel, stride, lower_pad):
            fits = [hi for hi in range(k // 2 + 1) if (i + lo + hi - k) % s == 0]
            upper_pad.append(draw(st.sampled_from(fits)) if fits else None)
        if None not in upper_pad:
            return shape, kernel, stride, ("explicit", lower_pad, upper_pad)
    return shape, kernel, stride, None


@SETTINGS
@given(geometries(), st.data())
def test_fast_convolution_matches_reference(geometry, data):
    shape, kernel, stride, pad = geometry
    rank = len(shape)
    sharing = [data.draw(st.booleans()) for _ in range(rank)]
    maps = data.draw(st.one_of(st.integers(1, 3),
                               st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    network = netsharp.compile(conv_text("convolve", shape, kernel, stride, pad, sharing, maps))
    assert_fast_matches_reference(network, seed=data.draw(st.integers(0, 99)))


@SETTINGS
@given(geometries(), st.sampled_from(["max pool", "mean pool", "response norm"]), st.data())
def test_fast_pooling_and_norm_match_reference(geometry, kind, data):
    shape, kernel, stride, pad = geometry
    extra = ""
    if kind == "response norm":
        extra = (f"Alpha = {data.draw(st.sampled_from([0.1, 1.0]))}; Beta = 0.75; "
                 f"AvgOverFullKernel = {str(data.draw(st.booleans())).lower()};")
    network = netsharp.compile(conv_text(kind, shape, kernel, stride, pad, extra=extra))
    seed = data.draw(st.integers(0, 99))
    assert_fast_matches_reference(network, seed=seed, batch=2)
    assert_inference_matches_reference(network, seed=seed, batch=3)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(0, 99))
def test_fast_filtered_matches_reference(rows, cols, dest, seed):
    text = (f"input X [{rows}, {cols}]; hidden H [{dest}] from X where (s, d) => "
            f"(s[0] + s[1] + d) % 2 == 0 || s[1] == 0; output Y [2] softmax from H all;")
    assert_fast_matches_reference(netsharp.compile(text), seed=seed)


@pytest.mark.parametrize("sample", ["basic_conv", "cntk103d_pool", "lenet", "response_norm",
                                    "share_bundles", "filtered"])
def test_fast_matches_reference_on_samples(sample):
    assert_fast_matches_reference(netsharp.compile_file(f"samples/{sample}.ns"), batch=2)
    assert_inference_matches_reference(netsharp.compile_file(f"samples/{sample}.ns"), batch=5)


@pytest.mark.parametrize("sample", ["basic_conv", "cntk103d_pool", "lenet", "response_norm",
                                    "share_bundles", "filtered"])
def test_parallel_kernels_match_reference(sample, monkeypatch):
    """Small batches run the serial twins; with no threshold every kernel runs in parallel."""
    from netsharp.kernels import jit

    monkeypatch.setattr(jit, "SERIAL_BELOW", 0)
    assert_fast_matches_reference(netsharp.compile_file(f"samples/{sample}.ns"), batch=5)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("floats", [1, 3000])
@pytest.mark.parametrize("sample", ["basic_conv", "cntk103d_pool", "lenet", "share_bundles"])
def test_chunked_inference_matches_whole_batch(sample, floats, workers, monkeypatch):
    """Inference convolves a few samples at a time (a short last chunk included); only the
    summation order of the products differs."""
    from netsharp.kernels import conv
    from netsharp.kernels.executor import FastExecutor

    network = netsharp.compile_file(f"samples/{sample}.ns")
    params, inputs, _ = random_case(network, 0, 7, np.float32)
    whole = FastExecutor(lower(network)).forward(params, inputs)
    monkeypatch.setattr(conv, "CHUNK_FLOATS", floats)
    monkeypatch.setattr(conv, "WORKERS", workers)
    monkeypatch.setattr(conv, "DIRECT", False)   # the gathered forward is the chunked one
    chunked = FastExecutor(lower(network)).forward(params, inputs, training=False)
    for layer in network.layers:
        np.testing.assert_allclose(chunked[layer.name][1], whole[layer.name][1], rtol=1e-4,
                                   atol=1e-5, err_msg=layer.name)


# ---- the convolution's fast-path layout: padded input, widened grid, chunks --------------------


def _conv_network(geometry, data, sharing=None):
    shape, kernel, stride, pad = geometry
    rank = len(shape)
    if sharing is None:
        sharing = [data.draw(st.booleans()) for _ in range(rank)]
    maps = data.draw(st.one_of(st.integers(1, 3),
                               st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    return netsharp.compile(conv_text("convolve", shape, kernel, stride, pad, sharing, maps))


@SETTINGS
@given(geometries(), st.data())
def test_grid_tables_agree_with_window_tables(geometry, data):
    """Every real output position's grid window reads, in the padded input, the cells its
    window table names, and padding (zero) where the window table has -1."""
    from netsharp import lower as lowering

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lowering, "GRID_WASTE", 1000)   # widen wherever the grid allows it
        network = _conv_network(geometry, data)
        tables = lower(network).layers[0].bundles[0].tables
    real = set(tables.pad_cells.tolist())
    assert len(real) == tables.pad_cells.size and max(real) < tables.padded_size
    assert tables.grid_table.min() >= 0 and tables.grid_table.max() < tables.padded_size
    assert sorted(tables.grid_outputs[tables.grid_outputs >= 0]) == sorted(
        tables.outputs.reshape(-1))
    for g in range(tables.outputs.shape[0]):
        where = {node: s for s, node in enumerate(tables.outputs[g, 0])}
        for s_grid, node in enumerate(tables.grid_outputs[g, 0]):
            if node < 0:
                continue
            window, grid = tables.table[g, where[node]], tables.grid_table[g, s_grid]
            for cell, padded in zip(window, grid):
                if cell >= 0:
                    assert padded == tables.pad_cells[cell]
                else:
                    assert padded not in real


@SETTINGS
@given(geometries(), st.integers(1, 5), st.data())
def test_fast_convolution_on_wide_grids_matches_reference(geometry, batch, data):
    """The grid widened wherever it can be (garbage positions computed and dropped)."""
    from netsharp import lower as lowering
    from netsharp.kernels import conv

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lowering, "GRID_WASTE", 1000)
        patch.setattr(conv, "DIRECT", False)
        network = _conv_network(geometry, data, sharing=[True] * len(geometry[0]))
        assert_fast_matches_reference(network, seed=data.draw(st.integers(0, 99)), batch=batch)


@SETTINGS
@given(geometries(), st.integers(1, 5), st.data())
def test_transposed_forward_product_matches_reference(geometry, batch, data):
    """Every convolution forced onto the forward product of positions x maps (kernels of
    conv.TRANSPOSED_MIN_CELLS cells or more take it), shared or not, padded or not."""
    from netsharp.kernels import conv

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "TRANSPOSED_MIN_CELLS", 1)
        patch.setattr(conv, "DIRECT", False)
        network = _conv_network(geometry, data)
        assert_fast_matches_reference(network, seed=data.draw(st.integers(0, 99)), batch=batch)
        assert_inference_matches_reference(network, batch=batch)


def test_transposed_product_sums_two_convolutions_into_one_layer(monkeypatch):
    """Two convolution bundles into one layer: the second scatter adds to the first's."""
    from netsharp.kernels import conv

    monkeypatch.setattr(conv, "TRANSPOSED_MIN_CELLS", 1)
    monkeypatch.setattr(conv, "DIRECT", False)
    text = ("input X [2, 6, 6]; hidden H [3, 4, 4] tanh { from X convolve { "
            "InputShape = [2, 6, 6]; KernelShape = [2, 3, 3]; MapCount = 3; } "
            "from X convolve { InputShape = [2, 6, 6]; KernelShape = [2, 3, 3]; "
            "Sharing = [false, true, false]; MapCount = 3; } } "
            "output Y [2] softmax from H all;")
    assert_fast_matches_reference(netsharp.compile(text), batch=4)


@pytest.mark.parametrize("shape, kernel, stride, pad", [
    ([28, 28], [5, 5], [2, 2], None), ([3, 9, 9], [1, 3, 3], [1, 2, 3], None),
    ([7, 7], [3, 3], [2, 2], ("auto", [True, True]))])
def test_strided_convolutions_gather_runs_of_consecutive_cells(shape, kernel, stride, pad):
    """A strided sweep's padded input is kept in phases (lower.phase_order), so that one
    kernel cell's cells at consecutive positions are consecutive (runs of step 1, which the
    gather copies) and the pieces still compute the reference's values."""
    from netsharp.kernels.conv import table_runs

    network = netsharp.compile(conv_text("convolve", shape, kernel, stride, pad,
                                         [True] * len(shape), 2))
    tables = lower(network).layers[0].bundles[0].tables
    runs = table_runs(np.ascontiguousarray(tables.grid_table.transpose(0, 2, 1)))
    real = runs[runs[:, 2] >= 0]
    assert ((real[:, 3] == 1) | (real[:, 4] == 1)).all()
    assert real[:, 4].max() >= network.layer("H").bundles[0].geometry.positions[-1]
    assert sorted(tables.pad_cells) == sorted(set(tables.pad_cells.tolist()))
    assert_fast_matches_reference(network, batch=5)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("floats", [1, 3000, 60000])
@pytest.mark.parametrize("sample", ["basic_conv", "cntk103d_pool", "lenet", "share_bundles"])
def test_chunked_training_matches_reference(sample, floats, workers, monkeypatch):
    """Training convolves a chunk of samples at a time too (1 sample, a few with a short last
    chunk, or the whole batch), in turn or on two threads: the weight gradient is summed over
    chunks and workers, and backward gathers each chunk's columns again. (The direct weight
    gradient, which takes no chunks, is off: these are the gathered one's chunks.)"""
    from netsharp.kernels import conv

    monkeypatch.setattr(conv, "CHUNK_FLOATS", floats)
    monkeypatch.setattr(conv, "WORKERS", workers)
    monkeypatch.setattr(conv, "DIRECT_BACKWARD", False)
    assert_fast_matches_reference(netsharp.compile_file(f"samples/{sample}.ns"), batch=7)


@SETTINGS
@given(geometries(), st.integers(1, 9), st.integers(1, 5), st.data())
def test_direct_forward_matches_reference(geometry, maps, batch, data):
    """kernels.direct's forward (tiles of 4 maps and one of 2, maps padded to an even count,
    garbage starts dropped) and weight gradient (tiles of 4 or 2 maps x 2 kernel cells, an
    odd kernel's first cell repeated) against the reference, training and inference, on
    every fully shared convolution whose windows are shifts of one set of cells, however
    many garbage starts it has (the default limit leaves some small geometries to the
    gathered forward)."""
    from netsharp.kernels import direct

    shape, kernel, stride, pad = geometry
    network = netsharp.compile(conv_text("convolve", shape, kernel, stride, pad,
                                         [True] * len(shape), maps))
    tables = lower(network).layers[0].bundles[0].tables
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(direct, "MAX_WASTE", 1e9)
        patch.setattr(direct, "GATHERED_CELL", 1e9)
        patch.setattr(direct, "MIN_WEIGHT_STARTS", 0)
        plan = direct.DirectPlan.make(tables)
        assert plan is not None or len(shape) > 1 and any(s > 1 for s in stride[:-1])
        assert_fast_matches_reference(network, seed=data.draw(st.integers(0, 99)), batch=batch)
        assert_inference_matches_reference(network, batch=batch)


@SETTINGS
@given(geometries(max_rank=3), st.integers(1, 6), st.integers(1, 4), st.data())
def test_direct_forward_of_unshared_kernels_matches_reference(geometry, maps, batch, data):
    """Kernels not shared along some dimension: a group of kernels for each position there,
    each group's windows the same shifts from the group's own first cell (basic_conv's C2);
    the direct forward and weight gradient take the groups in turn."""
    from netsharp.kernels import direct

    shape, kernel, stride, pad = geometry
    sharing = [data.draw(st.booleans()) for _ in shape]
    assume(not all(sharing))
    network = netsharp.compile(conv_text("convolve", shape, kernel, stride, pad, sharing,
                                         maps))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(direct, "GATHERED_CELL", 1e9)
        patch.setattr(direct, "MIN_WEIGHT_STARTS", 0)
        assert_fast_matches_reference(network, seed=data.draw(st.integers(0, 99)), batch=batch)
        assert_inference_matches_reference(network, batch=batch)


@pytest.mark.parametrize("maps, pad", [(10, None), (3, ("auto", [False, True, True]))])
def test_direct_convolution_in_groups(maps, pad):
    """basic_conv's C2 (5 groups of kernels, one per input map, stride 2) and an odd map
    count with padding: computed directly, forward and backward, as the reference does."""
    from netsharp.kernels import direct
    from netsharp.kernels.conv import ConvOp

    text = _convolution_from_a_hidden_layer([5, 12, 12], [1, 5, 5], [1, 2, 2], pad, maps)
    network = netsharp.compile(text.replace("Sharing = [true, true, true]",
                                            "Sharing = [false, true, true]"))
    op = ConvOp(next(s for s in lower(network).layers if s.name == "H").bundles[0].tables)
    assert op.groups == 5 and op.direct is not None and op.direct.input_plan is None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(direct, "MIN_WEIGHT_STARTS", 0)
        assert_fast_matches_reference(network, batch=3)
    assert_fast_matches_reference(network, batch=3)        # the gathered weight gradient
    assert_inference_matches_reference(network, batch=3)


@SETTINGS
@given(st.lists(st.integers(0, 200), min_size=1, max_size=60, unique=True), st.data())
def test_direct_tiles_hold_every_real_start_once(starts, data):
    """The forward's tiles (direct._cover): each real position's start lies in a tile and
    lands at its own place in their output; no more tiles than consecutive ones would take."""
    from netsharp.kernels import direct

    steps = np.array(sorted(starts), np.int64)
    real = np.array(data.draw(st.lists(st.booleans(), min_size=len(steps),
                                       max_size=len(steps))))
    assume(real.any())
    tiles, placed = direct._cover(steps, real)
    span = direct.SPAN
    for step, where in zip(steps[real], placed[real]):
        t = where // span
        assert tiles[t] <= step < tiles[t] + span and where == t * span + step - tiles[t]
    assert len(set(placed[real].tolist())) == real.sum()
    assert tiles.size <= -(-(steps[real].max() - steps[real].min() + 1) // span)


def test_direct_tiles_skip_the_padding_columns():
    """cntk103d_pool's C2: 14 positions a row in rows of 18 padded cells, a tile per row (224
    starts computed for 196 positions) where consecutive tiles compute 256; the same for the
    input gradient's 14 x 14 input cells of each channel."""
    from netsharp.kernels.conv import ConvOp

    step = next(s for s in lower(netsharp.compile_file("samples/cntk103d_pool.ns")).layers
                if s.name == "C2")
    plan = ConvOp(step.bundles[0].tables).direct
    assert plan.tiles.tolist() == [18 * row for row in range(14)]
    assert plan.width == 256
    channels, tiles, index = plan.input_plan[0], plan.input_plan[7], plan.input_plan[8]
    assert tiles.tolist() == [18 * row for row in range(14)]
    assert sorted(index.tolist()) == sorted(c * 224 + 16 * row + column for c in range(channels)
                                            for row in range(14) for column in range(14))


def _convolution_from_a_hidden_layer(shape, kernel, stride, pad, maps) -> str:
    """conv_text's program with X a hidden layer (fed by a 4-node input), so that the
    convolution's dL/dx is computed and checked through the gradient of X's weights."""
    text = conv_text("convolve", shape, kernel, stride, pad, [True] * len(shape), maps)
    return text.replace(f"input X {tup(shape)};",
                        f"input I [4]; hidden X {tup(shape)} tanh from I all;")


@SETTINGS
@given(geometries(), st.integers(1, 6), st.integers(1, 4), st.data())
def test_direct_input_gradient_matches_reference(geometry, maps, batch, data):
    """kernels.direct.input_gradient (the forward's adjoint: the output gradient convolved
    with each channel's cells) against the reference, wherever a channel split exists."""
    from netsharp.kernels import direct

    shape, kernel, stride, pad = geometry
    network = netsharp.compile(_convolution_from_a_hidden_layer(shape, kernel, stride, pad,
                                                                maps))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(direct, "MAX_WASTE", 1e9)
        patch.setattr(direct, "GATHERED_CELL", 1e9)
        patch.setattr(direct, "MIN_WEIGHT_STARTS", 0)
        assert_fast_matches_reference(network, seed=data.draw(st.integers(0, 99)), batch=batch)


@pytest.mark.parametrize("shape, kernel, stride, pad, channels", [
    ([3, 7, 7], [3, 3, 3], [1, 1, 1], ("auto", [False, True, True]), 3),
    ([2, 6, 6], [2, 3, 3], [1, 1, 1], None, 2),
    ([3, 5, 5], [2, 3, 3], [1, 1, 1], None, 1),      # windows slide across channels
    ([9, 9], [3, 3], [1, 1], ("auto", [True, True]), 1)])
def test_direct_input_gradient_splits_kernels_into_channels(shape, kernel, stride, pad,
                                                            channels):
    """The input gradient sums, for each input cell, only the cells of the channel that
    reads it: as many channels as the kernel spans where no window slides across them."""
    from netsharp.kernels import direct
    from netsharp.kernels.conv import ConvOp

    network = netsharp.compile(_convolution_from_a_hidden_layer(shape, kernel, stride, pad, 4))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(direct, "MAX_WASTE", 1e9)
        patch.setattr(direct, "GATHERED_CELL", 1e9)
        patch.setattr(direct, "MIN_WEIGHT_STARTS", 0)
        step = next(s for s in lower(network).layers if s.name == "H")
        op = ConvOp(step.bundles[0].tables)
        assert op.direct.input_plan[0] == channels
        assert_fast_matches_reference(network, batch=3)


def test_direct_forward_adds_a_second_bundle_into_the_layer():
    """Two direct convolutions into one layer (the second adds to the first's outputs, and
    its input gradient to the first's) and a layer of 7 maps (a tile of 4 and one of 3)."""
    from netsharp.kernels.conv import ConvOp

    text = ("input I [4]; hidden X [2, 9, 9] tanh from I all; "
            "hidden H [7, 9, 9] tanh { from X convolve { "
            "InputShape = [2, 9, 9]; KernelShape = [2, 3, 3]; Padding = [false, true, true]; "
            "MapCount = 7; } from X convolve { InputShape = [2, 9, 9]; KernelShape = [2, 5, 5]; "
            "Padding = [false, true, true]; MapCount = 7; } } "
            "output Y [3] softmax from H all;")
    network = netsharp.compile(text)
    ops = [ConvOp(b.tables) for b in lower(network).layers[1].bundles]
    assert all(op.direct is not None and op.direct.input_plan is not None for op in ops)
    assert_fast_matches_reference(network, batch=4)
    assert_inference_matches_reference(network, batch=4)


def test_sample_convolutions_take_the_fast_layouts():
    """The benchmark networks' stride-1 convolutions gather runs of whole image rows (no
    garbage positions: the grid is not widened by default) and lenet's C5 reads its input
    in place."""
    from netsharp.kernels.conv import ConvOp

    ops = {}
    for sample in ["cntk103d_pool", "lenet"]:
        for step in lower(netsharp.compile_file(f"samples/{sample}.ns")).layers:
            for b in step.bundles:
                if b.kind == "convolve":
                    ops[sample, step.name] = ConvOp(b.tables)
    for key, width in [(("cntk103d_pool", "C1"), 28), (("cntk103d_pool", "C2"), 14),
                       (("lenet", "C1"), 28), (("lenet", "C3"), 10)]:
        op = ops[key]
        assert op.positions == width * width, key
        assert (op.runs[:, 3] == 1).all() and (op.runs[:, 4] == width).all(), key
        assert len(op.runs) == op.groups * op.size * width, key
    assert ops["lenet", "C5"].whole
    # the forward product transposed for the kernels of many cells only
    assert [key for key, op in ops.items() if op.outputs_t is not None] == [
        ("cntk103d_pool", "C2"), ("lenet", "C3")]
    # the forward without columns for every convolution but C5 (one position: a product)
    assert [key for key, op in ops.items() if op.direct is None] == [("lenet", "C5")]
    assert all(op.direct.weights for op in ops.values() if op.direct is not None)
    # the input gradient without columns where its products are few enough: C2's 8 channels
    assert ops["cntk103d_pool", "C2"].direct.input_plan[0] == 8
    assert ops["lenet", "C3"].direct.input_plan is None   # unpadded: 196 cells, 100 windows


@SETTINGS
@given(st.lists(st.lists(st.integers(-1, 30), min_size=1, max_size=12), min_size=1, max_size=4))
def test_table_runs_and_blocks_reproduce_the_table(rows):
    """conv.table_runs cuts each row into runs, row_runs groups runs into blocks; expanding
    either gives the table back, and no block mixes padding (-1) with real cells."""
    from netsharp.kernels.conv import row_runs, table_runs

    width = max(len(r) for r in rows)
    table = np.array([r + [-1] * (width - len(r)) for r in rows], np.int32)
    runs = table_runs(table[None])
    blocks = row_runs(runs)
    from_runs = np.full_like(table, -7)
    for row, s, first, step, length in runs:
        for j in range(length):
            from_runs[row, s + j] = first if first < 0 else first + j * step
    from_blocks = np.full_like(table, -7)
    for row, s0, first0, step, length, count, ds, dfirst in blocks:
        for c in range(count):
            first = first0 + c * dfirst
            assert (first < 0) == (first0 < 0)
            for j in range(length):
                from_blocks[row, s0 + c * ds + j] = first if first < 0 else first + j * step
    np.testing.assert_array_equal(from_runs, table)
    np.testing.assert_array_equal(from_blocks, table)


def _greedy_runs_reference(table_t):
    """table_runs as a plain loop: from each run's start, take cells while the step from the
    previous one equals the run's first step (runs of -1 alike)."""
    groups, size, positions = table_t.shape
    runs = []
    for row, cells in enumerate(table_t.reshape(groups * size, positions).tolist()):
        s = 0
        while s < positions:
            end, step = s + 1, 0
            if cells[s] < 0:
                while end < positions and cells[end] < 0:
                    end += 1
            elif end < positions and cells[end] >= 0:
                step = cells[end] - cells[s]
                while end < positions and cells[end] >= 0 and cells[end] - cells[end - 1] == step:
                    end += 1
            runs.append([row, s, cells[s] if cells[s] >= 0 else -1, step, end - s])
            s = end
    return np.array(runs, np.int32).reshape(-1, 5)


def _greedy_blocks_reference(runs):
    """row_runs as a plain loop: runs of one row, step, length and kind (padding or not),
    grouped while the (ds, dfirst) from the previous run equals the block's first."""
    blocks, r = [], 0
    rows = runs.tolist()

    def joins(a, b):
        return a[0] == b[0] and a[3] == b[3] and a[4] == b[4] and (a[2] < 0) == (b[2] < 0)

    while r < len(rows):
        end, ds, dfirst = r + 1, 0, 0
        if end < len(rows) and joins(rows[r], rows[end]):
            ds, dfirst = rows[end][1] - rows[r][1], rows[end][2] - rows[r][2]
            while (end < len(rows) and joins(rows[end - 1], rows[end])
                   and rows[end][1] - rows[end - 1][1] == ds
                   and rows[end][2] - rows[end - 1][2] == dfirst):
                end += 1
        blocks.append(rows[r] + [end - r, ds, dfirst])
        r = end
    return np.array(blocks, np.int32).reshape(-1, 8)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 14), st.data())
def test_table_runs_and_blocks_are_the_greedy_cuts(groups, size, positions, data):
    """The numpy cuts are exactly the plain greedy loops' (as long as they can be), on tables
    of arithmetic stretches, padding and noise."""
    from netsharp.kernels.conv import row_runs, table_runs

    pieces = st.tuples(st.integers(-1, 20), st.sampled_from([-3, -1, 0, 1, 2, 5]),
                       st.integers(1, 6))
    cells = []
    while len(cells) < groups * size * positions:
        first, step, length = data.draw(pieces)
        cells += [-1] * length if first < 0 else [max(first + j * step, 0)
                                                  for j in range(length)]
    table = np.array(cells[:groups * size * positions], np.int32).reshape(groups, size,
                                                                           positions)
    runs = table_runs(table)
    np.testing.assert_array_equal(runs, _greedy_runs_reference(table))
    np.testing.assert_array_equal(row_runs(runs), _greedy_blocks_reference(runs))


def test_sample_tables_cut_as_the_greedy_loops_cut_them():
    from netsharp.kernels.conv import ConvOp, row_runs, table_runs

    for sample in ["basic_conv", "cntk103d_pool", "lenet", "padded_pool"]:
        for step in lower(netsharp.compile_file(f"samples/{sample}.ns")).layers:
            for b in step.bundles:
                if b.kind != "convolve":
                    continue
                op = ConvOp(b.tables)
                for table in (op.outputs, np.ascontiguousarray(
                        b.tables.grid_table.transpose(0, 2, 1))):
                    runs = table_runs(table)
                    np.testing.assert_array_equal(runs, _greedy_runs_reference(table))
                    np.testing.assert_array_equal(row_runs(runs),
                                                  _greedy_blocks_reference(runs))


def test_sigmoid_matches_the_reference_and_saturates_quietly():
    """Sigmoid layers (exp through activations.exp_row) match the reference, also far from 0
    where exp(-z) leaves float32's range."""
    from netsharp.kernels.executor import FastExecutor

    assert_fast_matches_reference(netsharp.compile_file("samples/basic_conv.ns"), batch=3)
    network = netsharp.compile("input X [3]; hidden H [4] from X all; output Y [2] from H all;")
    params, inputs, _ = random_case(network, 0, 2, np.float32)
    inputs["X"] *= 1e4
    with np.errstate(all="raise"):
        state = FastExecutor(lower(network)).forward(params, inputs)
    with np.errstate(over="ignore"):
        reference = ReferenceExecutor(network).forward(
            {k: v.astype(np.float64) for k, v in params.items()}, inputs)
    np.testing.assert_allclose(state["H"][1], reference["H"][1], atol=1e-6)


def test_exp_row_is_within_two_ulps_of_exp():
    """exp_row against float64 exp over its range, in place and into another array, with both
    signs, and exp_in_place; beyond its range 0 or inf (never a denormal, which slows every
    product it enters)."""
    from netsharp.kernels.activations import exp_in_place, exp_row

    x = np.concatenate([np.linspace(-86, 88, 400_001), [0.0, -1e-30, 1e-30, 1e-7, -1e-7]])
    x = x.astype(np.float32)
    exact = np.exp(x.astype(np.float64))
    y = np.empty_like(x)
    exp_row(x, y, np.float32(1))
    assert np.all(np.abs(y - exact) <= 2 * np.spacing(exact.astype(np.float32)))
    negated = np.empty_like(x)
    exp_row(-x, negated, np.float32(-1))
    np.testing.assert_array_equal(negated, y)
    in_place = x.copy()
    exp_row(in_place, in_place, np.float32(1))
    np.testing.assert_array_equal(in_place, y)
    for sign in (1, -1):  # block by block through a copy: 400,006 values, blocks of 1024
        blocks = sign * x
        exp_in_place(blocks, np.float32(sign))
        np.testing.assert_array_equal(blocks, y)
    beyond = np.array([-200, -86.5, 88.5, 1e4, -1e4, -np.inf, np.inf, np.nan], np.float32)
    exp_in_place(beyond, np.float32(1))
    np.testing.assert_array_equal(beyond, [0, 0, np.inf, np.inf, 0, 0, np.inf, np.nan])


@pytest.mark.parametrize("rows, nodes, scale, denominator", [
    (1, 10, 1.0, None), (16, 10, 5.0, None), (64, 3, 30.0, 128), (7, 100, 0.01, 9)])
def test_float32_softmax_cross_entropy_matches_the_numpy_branch(rows, nodes, scale,
                                                               denominator):
    """The numba backend's fused softmax loss (float32 logits) against the numpy branch that
    the gradient checks cover (float64): one-hot and soft targets."""
    rng = np.random.default_rng(rows)
    z = (scale * rng.standard_normal((rows, nodes))).astype(np.float32)
    for target in (np.eye(nodes)[rng.integers(0, nodes, rows)],
                   rng.dirichlet(np.ones(nodes), rows)):
        fast_loss, fast_dz = loss_and_grad("cross_entropy", "softmax", z, None,
                                           target.astype(np.float32), denominator, fused=True)
        loss, dz = loss_and_grad("cross_entropy", "softmax", z.astype(np.float64), None,
                                 target, denominator)
        assert fast_dz.dtype == np.float32
        assert fast_loss == pytest.approx(loss, rel=1e-6, abs=1e-7)
        np.testing.assert_allclose(fast_dz, dz, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("kernel, stride, pad, path", [
    ([3, 2], [2, 2], ("auto", [True, True]), "table"),    # padded windows
    ([3, 2], [2, 2], None, "overlapping"),                # windows sharing cells: scattered adds
    ([2, 2], [2, 2], None, "disjoint"),                   # 2 x 2 windows, rows under 8 cells
    ([3, 3], [3, 3], None, "disjoint"),                   # cells no window reads (a border)
])
def test_max_pool_gradient_goes_to_the_first_maximal_cell(kernel, stride, pad, path,
                                                          accumulate):
    """Windows full of ties (a ReLU's zeros, repeated values): the fast path's forward keeps
    only the maxima and its backward finds the first real cell holding each, as a plain
    reading of the window table does, on each of its paths: padded windows (the table),
    unpadded ones that overlap, and disjoint ones (two passes); onto dx or added to it."""
    from netsharp.kernels.pool import PoolOp

    network = netsharp.compile(conv_text("max pool", [7, 8], kernel, stride, pad))
    step = lower(network).layers[0].bundles[0]
    op = PoolOp(step.tables, True)   # no geometry: never kernels.grid_pool's (tested below)
    assert (len(op.blocks) > 0) == (pad is None)
    assert (op.source is not None) == (path == "disjoint")
    assert op.grid is None
    assert_max_pool_routes_to_first_maximum(op, step.tables.table, 56, accumulate)


def assert_max_pool_routes_to_first_maximum(op, table, cells, accumulate, batch=6):
    """op's forward and backward against a plain reading of the window table, on values
    -2..2 (many ties), dx overwritten or added to."""
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, size=(batch, cells)).astype(np.float32)
    dz = rng.normal(size=(batch, len(table))).astype(np.float32)
    space = op.buffers(batch, True, np.float32)
    z = np.zeros_like(dz)
    op.forward(x, None, z, space, False)
    dx = np.full_like(x, 7.0)
    op.backward(dz, x, None, space, dx, accumulate, None, False)
    expected_z = np.zeros_like(dz)
    expected_dx = np.full_like(x, 7.0) if accumulate else np.zeros_like(x)
    for b in range(batch):
        for p, window in enumerate(table):
            cells = window[window >= 0]
            winner = cells[np.argmax(x[b, cells])]   # argmax: the first maximal
            expected_z[b, p] = x[b, winner]
            expected_dx[b, winner] += dz[b, p]
    np.testing.assert_array_equal(z, expected_z)
    np.testing.assert_array_equal(space["best"], expected_z)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6, atol=1e-6)
    z_added = np.full_like(dz, 3.0)
    op.forward(x, None, z_added, space, True)
    np.testing.assert_allclose(z_added, expected_z + 3.0, rtol=1e-6)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape, kernel, stride, routed", [
    ([28], [2], [2], True),                           # one row of 14 windows
    ([3, 10, 17], [1, 2, 2], [1, 2, 2], True),        # 8 windows a row, a column unread
    ([2, 9, 31], [1, 3, 3], [1, 3, 3], True),         # 10 a row: the last 8 overlap
    ([4, 14, 14], [1, 3, 3], [1, 3, 3], True),        # cntk103d_pool's P2: 4 a row, borders
    ([2, 3, 10, 18], [1, 1, 2, 2], [1, 1, 2, 2], True),   # two axes of planes
    ([2, 3, 14, 14], [1, 1, 2, 2], [1, 1, 2, 2], False),  # 7 a row: the last 8 leave the input
    ([2, 6, 12], [1, 3, 3], [1, 3, 3], False),        # the last row's 8 windows leave the input
    ([2, 9, 19], [1, 3, 3], [1, 2, 2], False),        # overlapping windows: forward only
    ([2, 6, 20], [1, 3, 3], [1, 2, 3], False),        # rows of windows overlap, columns not
])
def test_grid_max_pool_matches_the_table(shape, kernel, stride, routed, accumulate):
    """kernels.grid_pool: max over 8 windows at a time, a run's last 8 overlapping, rows of
    fewer windows, borders no window reads, and the backward's first maximal cell."""
    from netsharp.kernels.pool import PoolOp

    network = netsharp.compile(conv_text("max pool", shape, kernel, stride, None))
    step = lower(network).layers[0].bundles[0]
    op = PoolOp(step.tables, True, step.bundle.geometry)
    assert op.grid is not None
    assert op.grid_backward == routed
    assert_max_pool_routes_to_first_maximum(op, step.tables.table, prod(shape), accumulate)


def test_grid_pooling_is_found_where_it_applies():
    from netsharp.kernels.grid_pool import pool_grid

    grids = {}
    for sample in ["cntk103d_pool", "lenet", "padded_pool", "conv_pool_deep"]:
        for layer in lower(netsharp.compile_file(f"samples/{sample}.ns")).layers:
            for step in layer.bundles:
                if step.kind == "max_pool":
                    grids[sample, layer.name] = pool_grid(step.bundle.geometry,
                                                          step.tables.table)
    assert tuple(grids["cntk103d_pool", "P1"]) == (8, 28, 28, 2, 2, 2, 2, 0, 0, 14, 14)
    assert tuple(grids["cntk103d_pool", "P2"]) == (16, 14, 14, 3, 3, 3, 3, 1, 1, 4, 4)
    assert all(grid is None for (sample, _), grid in grids.items() if sample == "padded_pool")


# ---- chains of full layers infer in one kernel (kernels.chain) ---------------------------------

CHAIN = ("input X [13]; hidden A [37] sigmoid from X all; hidden B [6] rlinear from A all; "
         "hidden C [3] tanh from B all; hidden D [9] linear from C all; "
         "output Y [5] softmax from D all;")


def assert_chain_matches_reference(network, batch, threaded=True, seed=0):
    from netsharp.kernels.executor import FastExecutor

    params, inputs, _ = random_case(network, seed, batch, np.float32)
    wide = {k: v.astype(np.float64) for k, v in params.items()}
    z_ref, y_ref = ReferenceExecutor(network).forward(wide, inputs)[network.output.name]
    fast = FastExecutor(lower(network))
    assert fast.chain is not None
    (x,) = inputs.values()
    z, y = fast.chain.forward(params, x, threaded)
    assert z.shape == y.shape == (batch, network.output.nodes)
    np.testing.assert_allclose(z, z_ref, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(y, y_ref, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("batch", [1, 2, 3, 7, 16, 33, 64])
@pytest.mark.parametrize("text", [CHAIN, "samples/mlp.ns"])
def test_chain_matches_reference(text, batch, threaded, monkeypatch):
    """Odd rows (a tile's second row past the last), inputs not a multiple of 8 (13, 37: the
    tiles' remainder), outputs not a multiple of 4 or 2 (37, 5, 3), on one thread and split
    between threads at any size."""
    from netsharp.kernels import chain

    monkeypatch.setattr(chain, "PARALLEL_FROM", 0)
    network = (netsharp.compile_file(text) if text.endswith(".ns") else netsharp.compile(text))
    assert_chain_matches_reference(network, batch, threaded)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_chain_activations_match_reference(activation):
    text = (f"input X [9]; hidden H [11] {activation} from X all; "
            "output Y [2] linear from H all;")
    assert_chain_matches_reference(netsharp.compile(text, task="regression"), batch=5)


@pytest.mark.parametrize("text, chained", [
    ("samples/mlp.ns", ["H1", "Result"]),
    ("samples/basic_conv.ns", ["H3", "Result"]),
    ("samples/letters_conv.ns", ["FC1", "FC2", "Letter"]),
    ("samples/lenet.ns", None),   # its output layer alone: no chain of one
    ("input X [4]; hidden H [3] { from X all; from X all; } output Y [2] from H all;", None),
    ("input X [4]; hidden H [3] from X all; output Y [2] { from H all; from X all; }", None),
    ("input A [4]; input B [2]; hidden H [3] from A all; output Y [2] from H all;",
     ["H", "Y"]),
    ("input X [4]; hidden G [3] from X all; hidden H [3] from X all; "
     "hidden K [3] { from G all; from H all; } hidden L [3] from K all; "
     "output Y [2] from L all;", ["L", "Y"]),
])
def test_chains_are_the_last_full_layers_each_fed_by_the_one_before(text, chained):
    from netsharp.kernels.chain import chain_layers

    network = netsharp.compile_file(text) if text.endswith(".ns") else netsharp.compile(text)
    layers = chain_layers(lower(network))
    assert (None if layers is None else [step.name for step in layers]) == chained


@pytest.mark.parametrize("sample", ["basic_conv", "conv_pool_deep", "digit_doc", "letters_conv"])
def test_inference_through_a_dense_head_matches_reference(sample):
    """The layers before the chain one by one, then the chain, from the executor's outputs."""
    from netsharp.kernels.executor import FastExecutor

    network = netsharp.compile_file(f"samples/{sample}.ns")
    params, inputs, _ = random_case(network, 0, 5, np.float32)
    wide = {k: v.astype(np.float64) for k, v in params.items()}
    z_ref, y_ref = ReferenceExecutor(network).forward(wide, inputs)[network.output.name]
    executor = FastExecutor(lower(network))
    assert executor.chain is not None and executor.head
    z, y = executor.outputs(params, inputs)
    np.testing.assert_allclose(z, z_ref, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(y, y_ref, rtol=2e-4, atol=2e-5)


def test_chain_waits_for_blas_threads_after_training(monkeypatch):
    """Right after a training step's products the chain runs only where one thread of it beats
    BLAS; later every batch takes it. Both ways give the reference's outputs."""
    from netsharp.kernels import chain, executor

    network = netsharp.compile_file("samples/mlp.ns")
    params, inputs, _ = random_case(network, 0, 64, np.float32)
    fast = executor.FastExecutor(lower(network))
    calls = []
    chained = fast.chain.forward
    monkeypatch.setattr(fast.chain, "forward",
                        lambda *args: calls.append(args[2]) or chained(*args))
    monkeypatch.setattr(executor, "BLAS_SPIN_SECONDS", 3600)
    fast.forward(params, inputs)   # a training step's forward: BLAS's threads spin
    after_training = np.array(fast.outputs(params, inputs)[1])
    small = {k: v[:2] for k, v in inputs.items()}
    fast.outputs(params, small)
    assert calls == [False]   # 64 rows on BLAS, 2 rows on the chain's one thread
    fast._blas_spins_until = 0.0
    idle = fast.outputs(params, inputs)[1]
    assert calls == [False, True]
    assert chain.SERIAL_BEATS_BLAS_BELOW < 64 * fast.chain.macs_per_row
    np.testing.assert_allclose(idle, after_training, rtol=1e-5, atol=1e-6)


# ---- moves of runs 8 floats at a time (kernels.vectors) ----------------------------------------

def test_runs_split_targets_into_moves_and_gaps():
    from netsharp.kernels.vectors import runs

    targets = np.array([5, 6, 7, -1, -1, 0, 1, 9, 10, -1, 3, 4])
    assert runs(targets).tolist() == [[0, 5, 3], [3, -1, 2], [5, 0, 2], [7, 9, 2],
                                      [9, -1, 1], [10, 3, 2]]
    assert runs(np.array([-1, 0, 1])).tolist() == [[0, -1, 1], [1, 0, 2]]
    assert runs(np.zeros(0, np.int64)).shape == (0, 3)


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 16, 23])
def test_runs_of_any_length_move_exactly_their_cells(length):
    """Under 8 one at a time, else 8 at a time with the last 8 overlapping: nothing outside
    the run is written."""
    from netsharp.kernels.vectors import copy_run, shift_run

    rng = np.random.default_rng(length)
    src = rng.normal(size=40).astype(np.float32)
    for move, args, expected in [(copy_run, (), src[3:3 + length]),
                                 (shift_run, (np.float32(0.5),), src[3:3 + length] + 0.5)]:
        dst = np.full(40, -9.0, np.float32)
        move(dst, 5, src, 3, *args, length)
        np.testing.assert_array_equal(dst[5:5 + length], expected)
        assert (dst[:5] == -9).all() and (dst[5 + length:] == -9).all()


@pytest.mark.parametrize("kernel", ["max_backward_disjoint", "max_backward_grid"])
def test_max_pool_backward_twins_write_every_cell(kernel):
    """The parallel twin (what a batch of 32 runs) and the serial one give the same dx, onto
    stale values: cntk103d_pool's P2 has cells no window reads (its last row and column),
    which the parallel twin of max_backward_disjoint once left as they were."""
    from netsharp.kernels import pool
    from netsharp.kernels.pool import PoolOp

    step = lower(netsharp.compile_file("samples/cntk103d_pool.ns")).layers[3].bundles[0]
    op = PoolOp(step.tables, True, step.bundle.geometry)
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, size=(32, 3136)).astype(np.float32)
    space = op.buffers(32, True, np.float32)
    op.forward(x, None, np.zeros((32, 256), np.float32), space, False)
    dz = rng.normal(size=(32, 256)).astype(np.float32)
    extra = (op.table_u, op.source) if kernel == "max_backward_disjoint" else (op.grid,)
    results = []
    for twin in (getattr(pool, kernel).parallel, getattr(pool, kernel).serial):
        dx = np.full_like(x, 7.0)
        twin(dz, x, *extra, space["best"], dx, False)
        results.append(dx)
    np.testing.assert_array_equal(results[0], results[1])
    assert not (results[0] == 7.0).any()
