"""Every sample in samples/ compiles to the weight count worked out by hand from LANGUAGE.md.

The expected figures are written as the arithmetic of LANGUAGE.md sections 5.1-5.6 on the layer
sizes (never copied from the compiler's output), so a wrong count in the checker fails here:
- full bundle: |S| x |D| weights; filtered bundle: one weight per edge;
- a layer with at least one full or filtered bundle: one bias per node, once;
- convolution: KernelCount x (prod(KernelShape) + 1), KernelCount = prod over d of
  (MapCount[d] if Sharing[d] else MapCount[d] * N[d]);
- pooling and response normalization: no parameters; shared parameters are counted once.
Each sample's header comment states the same total ("Total: N weights"), checked here too.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

import netsharp

SAMPLES = Path(__file__).parent.parent / "samples"

# Samples that use `auto` need the data's figures; their header comments say so.
OPTIONS: dict[str, dict] = {
    "language_example": {"features": 884},
    "auto_mlp": {"features": 4, "classes": 3},
    "regression_auto": {"features": 5, "task": "regression"},
}

# Hand arithmetic, layer by layer, in declaration order (the same sums as the headers).
EXPECTED_TOTALS: dict[str, int] = {
    "digits": 16 * (3 * 3 + 1) + (16 * 6 * 6) * 64 + 64 + 64 * 10 + 10,
    "basic_conv": 5 * (5 * 5 + 1) + 10 * 5 * (1 * 5 * 5 + 1) + (50 * 4 * 4) * 100 + 100
    + 100 * 10 + 10,
    "conv_pool_deep": 5 * (5 * 5 + 1) + 10 * 5 * (1 * 5 * 5 + 1) + (50 * 6 * 6) * 100 + 100
    + 100 * 10 + 10,
    "two_bundle": 28 * 28 * 200 + 200 + (200 * 200 + 50 * 200 + 200) + 200 * 10 + 10,
    "cntk103d_conv": 8 * (1 * 5 * 5 + 1) + 16 * (8 * 5 * 5 + 1) + (16 * 7 * 7) * 10 + 10,
    "cntk103d_pool": 8 * (5 * 5 + 1) + 16 * (8 * 5 * 5 + 1) + (16 * 4 * 4) * 10 + 10,
    "lenet": 6 * (5 * 5 + 1) + 16 * (6 * 5 * 5 + 1) + 120 * (16 * 5 * 5 + 1) + 120 * 10 + 10,
    "mlp": 784 * 100 + 100 + 100 * 10 + 10,
    "letters_conv": 32 * (3 * 3 + 1) + 64 * (32 * 3 * 3 + 1) + 128 * (64 * 3 * 3 + 1)
    + (128 * 2 * 2) * 64 + 64 + 64 * 128 + 128 + 128 * 26 + 26,
    "language_example": 28 * 28 * 200 + 200 + (200 * 200 + 50 * 200 + 200) + 200 * 10 + 10,
    "digit_doc": 5 * (5 * 5 + 1) + 10 * 5 * (1 * 5 * 5 + 1) + (50 * 5 * 5) * 100 + 100
    + 100 * 10 + 10,
    "share_example": (37 * 50 + 50) + (50 * 2 + 50 * 2 + 2),
    "share_example_unshared": 2 * (37 * 50 + 50) + (50 * 2 + 50 * 2 + 2),
    "share_bundles": 37 * 50 + 50 + 50 + (50 * 2 + 50 * 2 + 2),
    "share_biases": 2 * 37 * 50 + 50 + (50 * 2 + 50 * 2 + 2),
    "response_norm": 5 * (5 * 5 + 1) + (5 * 12 * 12) * 100 + (5 * 10 * 10) * 100 + 100
    + 100 * 10 + 10,
    "padded_pool": 16 * (3 * 5 * 5 + 1) + (16 * 12 * 12) * 10 + 10,
    "filtered": (10 * 12 * 20 + 10 * 12) + (5 * 10 * (18 * 3 + 2 * 2) + 5 * 20)
    + (10 * 12 * 3 + 5 * 20 * 3 + 3),
    "padding_doc": 5 * (5 * 5 + 1) + 5 * (5 * 5 + 1) + (5 * 13 * 13) * 10 + (5 * 14 * 14) * 10
    + 10,
    "auto_mlp": 4 * 100 + 100 + 100 * 3 + 3,
    "regression_auto": 5 * 100 + 100 + 100 * 1 + 1,
    "tiny": 3 * 1 + 1 + 1 * 1 + 1,
    "const_weights": 1 * (3 + 1) + 6 * 1 + 1,
}

TOTAL_IN_HEADER = re.compile(r"Total: (\d[\d,]*) weights")


@cache
def compiled(name: str) -> netsharp.Network:
    return netsharp.compile_file(SAMPLES / f"{name}.ns", **OPTIONS.get(name, {}))


def header(path: Path) -> str:
    """The `//` comment block that opens a sample."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("//"):
            break
        lines.append(line)
    return "\n".join(lines)


def check_layer(net, name, *, shape, weights, activation=None, kind=None):
    layer = net.layer(name)
    assert layer.name == name
    assert layer.shape == shape
    nodes = 1
    for extent in shape:
        nodes *= extent
    assert layer.nodes == nodes
    assert layer.weights == weights
    if activation is not None:
        assert layer.activation == activation
    if kind is not None:
        assert layer.kind == kind
    return layer


def only_bundle(net, name):
    bundles = net.layer(name).bundles
    assert len(bundles) == 1
    return bundles[0]


# ---- every sample --------------------------------------------------------------------------

def test_every_sample_has_an_expected_total():
    on_disk = {path.stem for path in SAMPLES.glob("*.ns")}
    assert on_disk == set(EXPECTED_TOTALS)


@pytest.mark.parametrize("name", sorted(EXPECTED_TOTALS))
def test_total_weights(name):
    assert compiled(name).total_weights == EXPECTED_TOTALS[name]


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.ns")), ids=lambda p: p.stem)
def test_header_states_the_compiled_total(path):
    text = header(path)
    assert text.startswith(f"// {path.name} - "), "a sample opens with a `//` comment naming it"
    totals = TOTAL_IN_HEADER.findall(text)
    assert len(totals) == 1, "the header states its total once, as 'Total: N weights'"
    assert int(totals[0].replace(",", "")) == compiled(path.stem).total_weights


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_header_says_which_options_auto_needs(name):
    text = header(SAMPLES / f"{name}.ns")
    for key, value in OPTIONS[name].items():
        assert f"{key}={value!r}" in text


def test_auto_sample_without_features_is_an_error():
    with pytest.raises(netsharp.NetsharpError):
        netsharp.compile_file(SAMPLES / "language_example.ns")


# ---- seed 000 and Microsoft's guide ----------------------------------------------------------

def test_basic_conv_layers():
    net = compiled("basic_conv")
    assert [layer.name for layer in net.layers] == ["Picture", "C1", "C2", "H3", "Result"]
    check_layer(net, "Picture", shape=(28, 28), weights=0, kind="input")
    c1 = check_layer(net, "C1", shape=(5, 12, 12), weights=5 * (5 * 5 + 1),
                     activation="sigmoid", kind="hidden")
    conv = only_bundle(net, "C1")
    assert (conv.kind, conv.source) == ("convolve", "Picture")
    # rank-2 convolution, MapCount 5 = [5, 1]: Out = [5 * 12, 1 * 12] (map-major)
    assert conv.output_shape == (5 * 12, 12)
    assert conv.connections == c1.nodes * 5 * 5   # unpadded: every kernel cell is real
    check_layer(net, "C2", shape=(50, 4, 4), weights=10 * 5 * (1 * 5 * 5 + 1))
    assert only_bundle(net, "C2").output_shape == (10 * 5, 4, 4)
    check_layer(net, "H3", shape=(100,), weights=800 * 100 + 100, activation="sigmoid")
    full = only_bundle(net, "H3")
    assert (full.kind, full.weights, full.connections) == ("full", 800 * 100, 800 * 100)
    check_layer(net, "Result", shape=(10,), weights=100 * 10 + 10, activation="softmax",
                kind="output")


def test_basic_conv_with_full_sharing_has_260_weights_in_c2():
    text = (SAMPLES / "basic_conv.ns").read_text(encoding="utf-8")
    assert "Sharing     = [ F,  T,  T];" in text
    net = netsharp.compile(text.replace("Sharing     = [ F,  T,  T];", ""))
    assert net.layer("C2").weights == 10 * (1 * 5 * 5 + 1)
    assert net.total_weights == EXPECTED_TOTALS["basic_conv"] - (50 - 10) * (5 * 5 + 1)


def test_conv_pool_deep_layers():
    net = compiled("conv_pool_deep")
    check_layer(net, "C1", shape=(5, 24, 24), weights=5 * (5 * 5 + 1), activation="sigmoid")
    p1 = check_layer(net, "P1", shape=(5, 12, 12), weights=0, activation="linear")
    pool = only_bundle(net, "P1")
    assert (pool.kind, pool.weights, pool.output_shape) == ("max_pool", 0, (5, 12, 12))
    assert pool.connections == p1.nodes * 2 * 2
    check_layer(net, "C2", shape=(50, 12, 12), weights=50 * (1 * 5 * 5 + 1))
    # Padding in x and y: kernel p covers p-2 .. p+2 of 0..11, real cells per axis
    # 3 + 4 + 8*5 + 4 + 3 = 54; each of the 50 output maps reads one input map.
    assert only_bundle(net, "C2").connections == 50 * 54 * 54
    check_layer(net, "P2", shape=(50, 6, 6), weights=0)
    check_layer(net, "Hid3", shape=(100,), weights=50 * 6 * 6 * 100 + 100)
    check_layer(net, "Digit", shape=(10,), weights=100 * 10 + 10, activation="softmax")


def test_two_bundle_layers():
    net = compiled("two_bundle")
    check_layer(net, "Metadata", shape=(100,), weights=0, kind="input")
    check_layer(net, "H1", shape=(200,), weights=784 * 200 + 200)
    h2 = check_layer(net, "H2", shape=(200,), weights=200 * 200 + 50 * 200 + 200)
    full, filtered = h2.bundles
    assert (full.kind, full.source, full.weights) == ("full", "H1", 200 * 200)
    assert (filtered.kind, filtered.source) == ("filtered", "Metadata")
    assert filtered.connections == filtered.weights == 50 * 200
    check_layer(net, "Result", shape=(10,), weights=200 * 10 + 10)


def test_language_example_layers():
    net = compiled("language_example")
    check_layer(net, "Meta", shape=(884 - 28 * 28,), weights=0, kind="input")
    check_layer(net, "H2", shape=(200,), weights=200 * 200 + 50 * 200 + 200,
                activation="rlinear")
    check_layer(net, "H1", shape=(200,), weights=784 * 200 + 200, activation="sigmoid")


def test_digit_doc_layers():
    net = compiled("digit_doc")
    check_layer(net, "Image", shape=(29, 29), weights=0)
    check_layer(net, "Conv1", shape=(5, 13, 13), weights=5 * (5 * 5 + 1))
    assert only_bundle(net, "Conv1").output_shape == (5 * 13, 13)
    check_layer(net, "Conv2", shape=(50, 5, 5), weights=50 * (5 * 5 + 1))
    assert only_bundle(net, "Conv2").output_shape == (10 * 5, 5, 5)
    check_layer(net, "Hid3", shape=(100,), weights=1250 * 100 + 100)
    check_layer(net, "Digit", shape=(10,), weights=100 * 10 + 10)


def test_share_examples():
    shared, unshared = compiled("share_example"), compiled("share_example_unshared")
    for net in (shared, unshared):
        check_layer(net, "H1", shape=(50,), weights=37 * 50 + 50)   # a layer's own view
        check_layer(net, "H2", shape=(50,), weights=37 * 50 + 50)
        check_layer(net, "Result", shape=(2,), weights=50 * 2 + 50 * 2 + 2,
                    activation="softmax")
    assert unshared.total_weights - shared.total_weights == 37 * 50 + 50
    assert compiled("share_bundles").total_weights == unshared.total_weights - 37 * 50
    assert compiled("share_biases").total_weights == unshared.total_weights - 50


def test_response_norm_layers():
    net = compiled("response_norm")
    for name, shape in (("N1", (5, 12, 12)), ("N2", (5, 10, 10)), ("N3", (5, 12, 12))):
        check_layer(net, name, shape=shape, weights=0, activation="linear")
        norm = only_bundle(net, name)
        assert (norm.kind, norm.weights, norm.output_shape) == ("response_norm", 0, shape)
    h = check_layer(net, "H", shape=(100,), weights=720 * 100 + 500 * 100 + 100)
    assert [bundle.source for bundle in h.bundles] == ["N3", "N2"]


def test_padded_pool_layers():
    net = compiled("padded_pool")
    check_layer(net, "C1", shape=(16, 24, 24), weights=16 * (3 * 5 * 5 + 1),
                activation="rlinear")
    assert only_bundle(net, "C1").output_shape == (16 * 1, 24, 24)
    check_layer(net, "P1", shape=(16, 12, 12), weights=0)
    assert only_bundle(net, "P1").output_shape == (16, 12, 12)
    check_layer(net, "Result", shape=(10,), weights=16 * 12 * 12 * 10 + 10)


def test_filtered_layers():
    net = compiled("filtered")
    rows = only_bundle(net, "Rows")
    band = only_bundle(net, "Band")
    assert (rows.kind, rows.connections, rows.weights) == ("filtered", 2400, 10 * 12 * 20)
    assert (band.kind, band.connections, band.weights) == ("filtered", 2900, 2900)
    check_layer(net, "Rows", shape=(10, 12), weights=2400 + 10 * 12)
    check_layer(net, "Band", shape=(5, 20), weights=2900 + 5 * 20)
    check_layer(net, "Out", shape=(3,), weights=(120 + 100) * 3 + 3)


def test_padding_doc_layers():
    net = compiled("padding_doc")
    check_layer(net, "A", shape=(5 * 13 * 13,), weights=5 * (5 * 5 + 1))
    assert only_bundle(net, "A").output_shape == (5 * 13, 13)
    check_layer(net, "B", shape=(5, 14, 14), weights=5 * (5 * 5 + 1))
    assert only_bundle(net, "B").output_shape == (5 * 14, 14)


def test_auto_samples():
    net = compiled("auto_mlp")
    check_layer(net, "Features", shape=(4,), weights=0)
    check_layer(net, "H", shape=(100,), weights=4 * 100 + 100, activation="sigmoid")
    check_layer(net, "Out", shape=(3,), weights=100 * 3 + 3, activation="softmax")
    net = compiled("regression_auto")
    check_layer(net, "Value", shape=(1,), weights=100 + 1, activation="linear")
    six = netsharp.compile_file(SAMPLES / "regression_auto.ns", features=6, task="regression")
    assert six.total_weights == 6 * 100 + 100 + 100 + 1   # the trainer's 6-100-1 log: 801


def test_tiny_and_const_weights():
    net = compiled("tiny")
    check_layer(net, "H", shape=(1,), weights=3 + 1)
    check_layer(net, "Out", shape=(1,), weights=1 + 1, activation="sigmoid")
    net = compiled("const_weights")
    check_layer(net, "Smoothed", shape=(6,), weights=3 + 1, activation="linear")
    assert only_bundle(net, "Smoothed").output_shape == (6,)


# ---- the seed networks of DESIGN.md section 4 ------------------------------------------------

def test_cntk103d_conv_layers():
    net = compiled("cntk103d_conv")
    check_layer(net, "C1", shape=(8, 14, 14), weights=8 * 25 + 8, activation="rlinear")
    assert only_bundle(net, "C1").output_shape == (8, 14, 14)   # CNTK prints (8, 14, 14)
    check_layer(net, "C2", shape=(16, 7, 7), weights=16 * 8 * 25 + 16, activation="rlinear")
    assert only_bundle(net, "C2").output_shape == (16 * 1, 7, 7)
    check_layer(net, "Digit", shape=(10,), weights=16 * 7 * 7 * 10 + 10, activation="softmax")
    assert net.total_weights == 11274   # "Training 11274 parameters" in seed 001


def test_cntk103d_pool_layers():
    net = compiled("cntk103d_pool")
    check_layer(net, "C1", shape=(8, 28, 28), weights=8 * 25 + 8)
    assert only_bundle(net, "C1").output_shape == (8 * 28, 28)
    check_layer(net, "P1", shape=(8, 14, 14), weights=0)
    check_layer(net, "C2", shape=(16, 14, 14), weights=16 * 8 * 25 + 16)
    check_layer(net, "P2", shape=(16, 4, 4), weights=0)
    assert only_bundle(net, "P2").kind == "max_pool"
    check_layer(net, "Digit", shape=(10,), weights=16 * 4 * 4 * 10 + 10)


def test_lenet_layers():
    net = compiled("lenet")
    check_layer(net, "C1", shape=(6, 28, 28), weights=6 * (5 * 5 + 1), activation="rlinear")
    p1 = check_layer(net, "P1", shape=(6, 14, 14), weights=0, activation="linear")
    assert p1.bundles[0].kind == "mean_pool"
    check_layer(net, "C3", shape=(16, 10, 10), weights=16 * (6 * 5 * 5 + 1))
    check_layer(net, "P4", shape=(16, 5, 5), weights=0)
    check_layer(net, "C5", shape=(120,), weights=120 * (16 * 5 * 5 + 1))
    assert only_bundle(net, "C5").output_shape == (120, 1, 1)
    check_layer(net, "Digit", shape=(10,), weights=120 * 10 + 10, activation="softmax")


def test_mlp_layers():
    net = compiled("mlp")
    check_layer(net, "Picture", shape=(784,), weights=0)
    check_layer(net, "H1", shape=(100,), weights=784 * 100 + 100, activation="sigmoid")
    check_layer(net, "Result", shape=(10,), weights=100 * 10 + 10, activation="softmax")


def test_letters_conv_layers():
    net = compiled("letters_conv")
    check_layer(net, "C1", shape=(32, 26, 26), weights=32 * (3 * 3 + 1))
    check_layer(net, "P1", shape=(32, 13, 13), weights=0)
    check_layer(net, "C2", shape=(64, 11, 11), weights=64 * (32 * 3 * 3 + 1))
    check_layer(net, "P2", shape=(64, 6, 6), weights=0)
    assert only_bundle(net, "P2").output_shape == (64, 6, 6)
    check_layer(net, "C3", shape=(128, 4, 4), weights=128 * (64 * 3 * 3 + 1))
    check_layer(net, "P3", shape=(128, 2, 2), weights=0)
    check_layer(net, "FC1", shape=(64,), weights=512 * 64 + 64, activation="rlinear")
    check_layer(net, "FC2", shape=(128,), weights=64 * 128 + 128, activation="rlinear")
    check_layer(net, "Letter", shape=(26,), weights=128 * 26 + 26, activation="softmax")
