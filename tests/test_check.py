"""Shapes, node counts, weight counts and geometry: LANGUAGE.md section 8 and more.

Every expected figure is written here as the arithmetic of LANGUAGE.md section 5 on the layer
sizes (never copied from the compiler's output):
- positions per dimension: (I - K) / S + 1 unpadded, (I - 1) / S + 1 with Padding,
  (I + lo + hi - K) / S + 1 with explicit pads (`/` is integer division);
- full bundle |S| x |D| weights; filtered bundle one weight per edge;
- a layer with a full or filtered bundle has one bias per node, once;
- convolution KernelCount x (prod(K) + 1), KernelCount = prod over d of
  (MapCount[d] if Sharing[d] else MapCount[d] * N[d]);
- pooling and normalization have no parameters; shared parameters are counted once.
"""

from __future__ import annotations

import json

import pytest

import netsharp


def compile_(text: str, **options) -> netsharp.Network:
    return netsharp.compile(text, path="check.ns", **options)


# ---- seed 000 (Microsoft's blog post on Net# convolutional networks) --------------------------

SEED_000_BASIC = """
const { T = true; F = false; }

input Picture [28, 28];

hidden C1 [5, 12, 12]
  from Picture convolve {
    InputShape  = [28, 28]; // required
    KernelShape = [ 5,  5]; // required
    Stride      = [ 2,  2]; // optional, default is 1 in all dimensions
    MapCount    = 5;        // optional, default is 1
  }

hidden C2 [50, 4, 4]
  from C1 convolve {
    InputShape  = [ 5, 12, 12];
    KernelShape = [ 1,  5,  5];
    Stride      = [ 1,  2,  2];
    Sharing     = [ F,  T,  T]; // optional, default is true in all dimensions
    MapCount    = 10;
  }

hidden H3 [100] from C2 all;

output Result [10] softmax from H3 all;
"""


def test_seed_000_c1_has_130_weights():
    c1 = compile_(SEED_000_BASIC).layer("C1")
    conv = c1.bundles[0]
    assert conv.kind == "convolve"
    assert conv.geometry.positions == ((28 - 5) // 2 + 1, (28 - 5) // 2 + 1) == (12, 12)
    assert conv.map_count == (5, 1)
    assert conv.output_shape == (5 * 12, 1 * 12)        # map-major along dimension 0
    assert conv.kernel_count == 5
    assert conv.weights == 5 * (5 * 5 + 1) == 130
    assert c1.bias is None                               # biases live in the kernels
    assert c1.weights == 130
    assert c1.shape == (5, 12, 12) and c1.nodes == 5 * 12 * 12


def test_seed_000_c2_has_1300_weights_unshared_in_z():
    conv = compile_(SEED_000_BASIC).layer("C2").bundles[0]
    assert conv.geometry.positions == ((5 - 1) // 1 + 1, (12 - 5) // 2 + 1, (12 - 5) // 2 + 1)
    assert conv.geometry.positions == (5, 4, 4)
    assert conv.output_shape == (10 * 5, 1 * 4, 1 * 4)
    assert conv.sharing == (False, True, True)
    assert conv.kernel_count == 10 * 5
    assert conv.weights == (5 * 5 + 1) * 5 * 10 == 1300


def test_seed_000_c2_has_260_weights_with_full_sharing():
    shared = SEED_000_BASIC.replace("Sharing     = [ F,  T,  T];", "Sharing     = [ T,  T,  T];")
    conv = compile_(shared).layer("C2").bundles[0]
    assert conv.kernel_count == 10
    assert conv.weights == (5 * 5 + 1) * 10 == 260
    default = SEED_000_BASIC.replace("Sharing     = [ F,  T,  T];", "")
    assert compile_(default).layer("C2").bundles[0].weights == 260


def test_seed_000_basic_network_total():
    net = compile_(SEED_000_BASIC)
    assert net.total_weights == (5 * (5 * 5 + 1) + 50 * (1 * 5 * 5 + 1)
                                 + (50 * 4 * 4) * 100 + 100 + 100 * 10 + 10)


SEED_000_TWO_BUNDLES = """
// Two input layers.
input Picture [28, 28];
input Metadata [100];
hidden H1 [200] from Picture all;
// H2 connected both to H1 and Metadata layers using different connection types
hidden H2 [200] {
  from H1 all;                          // This is a fully-connected bundle.
  from Metadata where (s, d) => s < 50; // This is a filtered (sparse) bundle.
}
output Result [10] softmax from H2 all;
"""


def test_seed_000_two_bundle_h2_has_50200_weights():
    net = compile_(SEED_000_TWO_BUNDLES)
    h2 = net.layer("H2")
    full, filtered = h2.bundles
    assert (full.kind, filtered.kind) == ("full", "filtered")
    assert full.weights == 200 * 200
    assert filtered.connections == filtered.weights == 50 * 200   # sources 0..49, every d
    assert h2.weights == 200 * 200 + 50 * 200 + 200 == 50200      # one bias vector, once
    assert net.total_weights == (28 * 28 * 200 + 200) + 50200 + (200 * 10 + 10)


# ---- Microsoft's trainer logs: full networks --------------------------------------------------

@pytest.mark.parametrize("features, hidden, outputs, expected, figure", [
    (5, 100, 1, (5 * 100 + 100) + (100 * 1 + 1), 701),
    (4, 100, 3, (4 * 100 + 100) + (100 * 3 + 3), 803),
    (6, 100, 1, (6 * 100 + 100) + (100 * 1 + 1), 801),
    (3, 1, 1, (3 * 1 + 1) + (1 * 1 + 1), 6),
])
def test_trainer_log_full_networks(features, hidden, outputs, expected, figure):
    net = compile_(f"input X [{features}];\nhidden H [{hidden}] from X all;\n"
                   f"output Y [{outputs}] from H all;\n")
    assert net.total_weights == expected == figure
    assert net.layer("H").weights == features * hidden + hidden
    assert net.layer("Y").weights == hidden * outputs + outputs


def test_trainer_log_networks_with_auto_sizes():
    text = "input X auto;\nhidden H auto from X all;\noutput Y auto from H all;\n"
    assert compile_(text, features=5, classes=2).total_weights == 5 * 100 + 100 + 100 * 1 + 1
    assert compile_(text, features=4, classes=3).total_weights == 4 * 100 + 100 + 100 * 3 + 3
    assert compile_(text, features=3, classes=2, hidden_size=1).total_weights == 3 + 1 + 1 + 1


# ---- the reference guide's digit network ------------------------------------------------------

DOC_DIGIT_NET = """
const { T = true; F = false; }
input Image [29, 29];
hidden Conv1 [5, 13, 13] from Image convolve {
  InputShape  = [29, 29];
  KernelShape = [ 5,  5];
  Stride      = [ 2,  2];
  MapCount    = 5;
}
hidden Conv2 [50, 5, 5] from Conv1 convolve {
  InputShape  = [ 5, 13, 13];
  KernelShape = [ 1,  5,  5];
  Stride      = [ 1,  2,  2];
  Sharing     = [ F,  T,  T];
  MapCount    = 10;
}
hidden Hid3 [100] from Conv2 all;
output Digit [10] from Hid3 all;
"""


def test_doc_digit_net_has_127540_weights():
    net = compile_(DOC_DIGIT_NET)
    conv1, conv2 = net.layer("Conv1").bundles[0], net.layer("Conv2").bundles[0]
    assert conv1.geometry.positions == ((29 - 5) // 2 + 1,) * 2 == (13, 13)
    assert conv1.weights == 5 * (5 * 5 + 1)
    assert conv2.geometry.positions == ((5 - 1) // 1 + 1, (13 - 5) // 2 + 1, (13 - 5) // 2 + 1)
    assert conv2.weights == 10 * 5 * (1 * 5 * 5 + 1)
    assert net.layer("Hid3").weights == 50 * 5 * 5 * 100 + 100
    assert net.layer("Digit").weights == 100 * 10 + 10
    assert net.total_weights == 130 + 1300 + 125100 + 1010 == 127540


def test_doc_conv1_declared_as_845_nodes_of_another_shape():
    # only the node count must match: `hidden C1 [5 * 13^2]` ran
    net = compile_(DOC_DIGIT_NET.replace("Conv1 [5, 13, 13]", "Conv1 [5 * 13^2]"))
    assert net.layer("Conv1").shape == (5 * 13 * 13,)
    assert net.total_weights == 127540


# ---- padding, pooling and normalization figures -----------------------------------------------

def _conv_28(extra: str, out: int) -> netsharp.Network:
    return compile_(f"""
input Picture [28, 28];
hidden C [{out}, {out}] from Picture convolve {{
  InputShape = [28, 28]; KernelShape = [5, 5]; Stride = [2, 2]; {extra}
}}
output Y [10] from C all;""")


def test_doc_upper_pad_1_gives_13_positions():
    conv = _conv_28("LowerPad = [0, 0]; UpperPad = [1, 1];", 13).layer("C").bundles[0]
    assert conv.geometry.positions == ((28 + 0 + 1 - 5) // 2 + 1,) * 2 == (13, 13)
    assert conv.output_shape == (13, 13)
    assert conv.geometry.upper_pad == (1, 1) and conv.geometry.lower_pad == (0, 0)


def test_doc_upper_pad_alone_defaults_lower_pad_to_zero():
    conv = _conv_28("UpperPad = [1, 1];", 13).layer("C").bundles[0]
    assert conv.geometry.positions == (13, 13)


def test_doc_padding_true_gives_14_positions():
    conv = _conv_28("Padding = true;", 14).layer("C").bundles[0]
    assert conv.geometry.positions == ((28 - 1) // 2 + 1,) * 2 == (14, 14)
    assert conv.output_shape == (14, 14)
    assert conv.weights == 1 * (5 * 5 + 1)


def test_doc_pooling_5_24_24_gives_5_12_12():
    net = compile_("""
input C [5, 24, 24];
hidden P [5, 12, 12] from C max pool {
  InputShape = [5, 24, 24]; KernelShape = [1, 2, 2]; Stride = [1, 2, 2];
}
output Y [10] from P all;""")
    pool = net.layer("P").bundles[0]
    assert pool.kind == "max_pool"
    assert pool.output_shape == ((5 - 1) // 1 + 1, (24 - 2) // 2 + 1, (24 - 2) // 2 + 1)
    assert pool.output_shape == (5, 12, 12)
    assert pool.weights == 0 and pool.param is None
    assert net.layer("P").weights == 0 and net.layer("P").bias is None


NORM = """
input C [5, 12, 12];
hidden N [{shape}] from C response norm {{
  InputShape = [5, 12, 12]; KernelShape = [1, 3, 3]; Alpha = 0.0001; Beta = 0.75; {extra}
}}
output Y [10] from N all;"""


def test_doc_response_norm_unpadded_gives_5_10_10():
    net = compile_(NORM.format(shape="5, 10, 10", extra=""))
    norm = net.layer("N").bundles[0]
    assert norm.output_shape == ((5 - 1) // 1 + 1, (12 - 3) // 1 + 1, (12 - 3) // 1 + 1)
    assert norm.output_shape == (5, 10, 10)
    assert net.layer("N").weights == 0
    assert norm.connections == 5 * (10 * 3) * (10 * 3)           # no window reaches padding


def test_doc_response_norm_padded_gives_5_12_12():
    net = compile_(NORM.format(shape="5, 12, 12", extra="Padding = [false, true, true];"))
    norm = net.layer("N").bundles[0]
    assert norm.output_shape == ((5 - 1) // 1 + 1, (12 - 1) // 1 + 1, (12 - 1) // 1 + 1)
    assert norm.output_shape == (5, 12, 12)
    # per padded dimension: the two end windows each lose one cell to padding
    assert norm.connections == 5 * (12 * 3 - 2) * (12 * 3 - 2)
    assert (norm.alpha, norm.beta, norm.offset, norm.avg_over_full_kernel) == (
        0.0001, 0.75, 1.0, False)


def test_seed_000_padded_convolution_and_overlapping_pool():
    net = compile_("""
input Image [3, 24, 24];
hidden C1 [16, 24, 24] rlinear
    from Image convolve {
        InputShape  = [3, 24, 24];
        KernelShape = [3, 5, 5];
        Stride      = [1, 1, 1];
        Padding     = [false, true, true];
        MapCount    = 16;
    }
hidden P1 [16, 12, 12]
    from C1 max pool {
        InputShape  = [16, 24, 24];
        KernelShape = [1,  3,  3];
        Stride      = [1,  2,  2];
        Padding     = [false, true, true];
    }
output Y [10] from P1 all;""")
    conv = net.layer("C1").bundles[0]
    assert conv.geometry.positions == ((3 - 3) // 1 + 1, (24 - 1) // 1 + 1, (24 - 1) // 1 + 1)
    assert conv.output_shape == (16 * 1, 24, 24)
    assert conv.weights == 16 * (3 * 5 * 5 + 1)
    pool = net.layer("P1").bundles[0]
    assert pool.output_shape == ((16 - 1) // 1 + 1, (24 - 1) // 2 + 1, (24 - 1) // 2 + 1)
    assert net.total_weights == 16 * (3 * 5 * 5 + 1) + 16 * 12 * 12 * 10 + 10


# ---- filtered bundles -------------------------------------------------------------------------

DOC_FILTERED = """
input S [10, 20];
hidden Rows [10, 12] from S where (s, d) => s[0] == d[0];
hidden Band [5, 20] from S where (s, d) => abs(s[1] - d[1]) <= 1;
output Y [2] { from Rows all; from Band all; }
"""


def test_doc_filtered_same_row_has_2400_edges():
    rows = compile_(DOC_FILTERED).layer("Rows")
    bundle = rows.bundles[0]
    # each of the 10 x 12 destinations sees the 20 sources of its row
    assert bundle.connections == bundle.weights == 10 * 12 * 20 == 2400
    assert rows.weights == 2400 + 10 * 12


def test_doc_filtered_band_has_2900_edges():
    bundle = compile_(DOC_FILTERED).layer("Band").bundles[0]
    # a destination column d[1] sees columns d[1]-1..d[1]+1 that exist (2 at the two ends, 3
    # elsewhere) in each of the 10 source rows; 5 destination rows
    assert bundle.weights == 5 * 10 * (18 * 3 + 2 * 2) == 2900


def test_filtered_edge_order_is_by_destination_then_source():
    net = compile_("input S [3];\nhidden H [3] from S where (s, d) => s >= d;\n"
                   "output Y [2] from H all;")
    bundle = net.layer("H").bundles[0]
    # d = 0: s = 0, 1, 2; d = 1: s = 1, 2; d = 2: s = 2
    assert bundle.edge_dest.tolist() == [0, 0, 0, 1, 1, 2]
    assert bundle.edge_source.tolist() == [0, 1, 2, 1, 2, 2]
    assert bundle.weights == 3 + 2 + 1


def test_filtered_edge_order_uses_flat_row_major_indices():
    net = compile_("input S [2, 3];\nhidden H [2, 2] from S where (s, d) => s[0] == d[1];\n"
                   "output Y [2] from H all;")
    bundle = net.layer("H").bundles[0]
    # destinations (0,0)=0 (0,1)=1 (1,0)=2 (1,1)=3; a source row r is flat 3r..3r+2
    assert bundle.edge_dest.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    assert bundle.edge_source.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]


def test_filtered_edges_are_read_only():
    bundle = compile_(DOC_FILTERED).layer("Rows").bundles[0]
    with pytest.raises(ValueError):
        bundle.edge_source[0] = 1


@pytest.mark.parametrize("predicate, sources", [
    ("(s - 5) / 2 == -2", [0, 1]),          # -5/2 and -4/2 truncate to -2 (floor: s = 1, 2)
    ("(s - 5) % 3 == -1", [1, 4]),          # the sign of the dividend (Python's %: s = 3, 6, 9)
    ("-2 ^ 2 + s == 0", [4]),
    ("s ^ 2 > 50 || s == 0", [0, 8, 9]),
    ("max(s, 7) == s && !(s == 9)", [7, 8]),
    ("s / 2.0 == 1.5", [3]),
    ("abs(s - 4) <= 1", [3, 4, 5]),
    ("min(s, 3) == 3 && s % 2 != 0", [3, 5, 7, 9]),
])
def test_predicates_follow_the_constant_semantics(predicate, sources):
    net = compile_(f"input S [10];\nhidden H [1] from S where (s, d) => {predicate};\n"
                   "output Y [2] from H all;")
    assert net.layer("H").bundles[0].edge_source.tolist() == sources


def test_rank_1_predicate_parameters_are_plain_integers_with_any_names():
    net = compile_("const Half = 2;\ninput S [4];\nhidden H [3] from S where (src, dst) => "
                   "src < Half && dst != 1;\noutput Y [2] from H all;")
    assert net.layer("H").bundles[0].weights == 2 * (3 - 1)


# ---- sharing ----------------------------------------------------------------------------------

SHARE_EXAMPLE = """
input {Data1 [37]; Data2 [37];}
hidden { H1 [50] from Data1 all; H2 [50] from Data2 all; }
output Result [2] { from H1 all; from H2 all; }
"""
UNSHARED_TOTAL = (37 * 50 + 50) + (37 * 50 + 50) + (50 * 2 + 50 * 2 + 2)


def test_share_example_unshared_has_4002_parameters():
    net = compile_(SHARE_EXAMPLE)
    assert net.total_weights == UNSHARED_TOTAL == 4002
    assert not any(b.shared for layer in net.layers for b in layer.bundles)


def test_share_example_shared_layers_have_2102_parameters():
    net = compile_(SHARE_EXAMPLE + "share { H1, H2 }\n")
    assert net.total_weights == (37 * 50 + 50) + (50 * 2 + 50 * 2 + 2) == 2102
    h1, h2 = net.layer("H1"), net.layer("H2")
    assert h1.bundles[0].param == h2.bundles[0].param
    assert h1.bias == h2.bias
    assert h1.bundles[0].shared and h2.bundles[0].shared
    # each layer still reports its own weights; only the total counts shared ones once
    assert h1.weights == h2.weights == 37 * 50 + 50
    assert sum(layer.weights for layer in net.layers) == 4002


def test_share_bundle_form_shares_the_1850_weights_only():
    net = compile_(SHARE_EXAMPLE + "share { Data1 => H1, Data2 => H2 }\n")
    assert net.total_weights == UNSHARED_TOTAL - 37 * 50 == 4002 - 1850
    h1, h2 = net.layer("H1"), net.layer("H2")
    assert h1.bundles[0].param == h2.bundles[0].param
    assert h1.bias != h2.bias


def test_share_bias_form_shares_the_bias_vectors_only():
    net = compile_(SHARE_EXAMPLE + "share { 1 => H1, 1 => H2 }\n")
    assert net.total_weights == UNSHARED_TOTAL - 50
    h1, h2 = net.layer("H1"), net.layer("H2")
    assert h1.bias == h2.bias
    assert h1.bundles[0].param != h2.bundles[0].param
    assert not h1.bundles[0].shared


def test_share_of_convolution_layers():
    net = compile_("""
input P [8];
hidden C1 [6] from P convolve { InputShape = [8]; KernelShape = [3]; }
hidden C2 [6] from P convolve { InputShape = [8]; KernelShape = [3]; }
output Y [2] { from C1 all; from C2 all; }
share { C1, C2 }""")
    assert net.total_weights == 1 * (3 + 1) + (6 * 2 + 6 * 2 + 2)


# ---- kernel placement (LANGUAGE.md 5.3) --------------------------------------------------------

def _pool_axis(size: int, kernel: int, stride: int, positions: int, extra: str = ""):
    net = compile_(f"""
input In [{size}];
hidden P [{positions}] from In max pool {{
  InputShape = [{size}]; KernelShape = [{kernel}]; Stride = [{stride}]; {extra}
}}
output Y [2] from P all;""")
    geometry = net.layer("P").bundles[0].geometry
    assert geometry.positions == (positions,)
    return geometry.axes[0]


def test_unpadded_placement_with_no_extra_cells():
    axis = _pool_axis(29, 5, 2, (29 - 5) // 2 + 1)
    assert 29 - ((13 - 1) * 2 + 5) == 0
    assert axis.origin == 0
    assert axis.window(0) == range(0, 5)
    assert axis.window(12) == range(12 * 2, 12 * 2 + 5) == range(24, 29)


def test_unpadded_placement_with_one_extra_cell_puts_it_at_the_high_end():
    axis = _pool_axis(28, 5, 2, (28 - 5) // 2 + 1)
    extra = 28 - ((12 - 1) * 2 + 5)
    assert extra == 1
    assert axis.origin == extra // 2 == 0
    assert axis.window(11) == range(22, 27)          # cell 27 is reached by no kernel
    assert axis.real_cells(11) == range(22, 27)


def test_unpadded_placement_splits_extra_cells_low_end_smaller():
    axis = _pool_axis(20, 5, 4, (20 - 5) // 4 + 1)
    extra = 20 - ((4 - 1) * 4 + 5)
    assert extra == 3
    assert axis.origin == extra // 2 == 1
    assert [axis.window(p) for p in range(4)] == [range(1 + p * 4, 1 + p * 4 + 5)
                                                  for p in range(4)]
    assert axis.window(3) == range(13, 18)           # cells 18 and 19 are left out


def test_auto_padded_placement_centres_kernels():
    axis = _pool_axis(28, 5, 2, (28 - 1) // 2 + 1, "Padding = true;")
    first_centre = (28 - ((14 - 1) * 2 + 1)) // 2
    assert first_centre == 0
    assert axis.origin == first_centre - (5 - 1) // 2 == -2
    assert axis.window(0) == range(-2, 3)
    assert axis.real_cells(0) == range(0, 3)
    assert axis.window(13) == range(26 - 2, 26 + 5 - 1 - 2 + 1)   # centre 26
    assert axis.real_cells(13) == range(24, 28)
    assert axis.lower_pad == 2 and axis.upper_pad == 1


def test_auto_padded_placement_with_an_even_kernel():
    axis = _pool_axis(6, 4, 2, (6 - 1) // 2 + 1, "Padding = true;")
    # centres 0, 2, 4; a kernel of 4 covers centre - 1 .. centre + 2
    assert axis.window(0) == range(-1, 3)
    assert axis.window(2) == range(3, 7)
    assert axis.real_cells(2) == range(3, 6)


def test_auto_padded_placement_with_spare_cells_moves_the_first_centre():
    axis = _pool_axis(9, 3, 3, (9 - 1) // 3 + 1, "Padding = true;")
    first_centre = (9 - ((3 - 1) * 3 + 1)) // 2
    assert first_centre == 1
    assert axis.origin == 1 - (3 - 1) // 2 == 0
    assert [axis.window(p) for p in range(3)] == [range(0, 3), range(3, 6), range(6, 9)]


def test_explicit_pads_placement():
    axis = _pool_axis(28, 5, 2, (28 + 0 + 1 - 5) // 2 + 1, "LowerPad = [0]; UpperPad = [1];")
    assert axis.origin == 0
    assert axis.window(12) == range(24, 29)
    assert axis.real_cells(12) == range(24, 28)
    axis = _pool_axis(10, 5, 1, (10 + 2 + 2 - 5) // 1 + 1, "LowerPad = [2]; UpperPad = [2];")
    assert axis.origin == -2
    assert axis.window(0) == range(-2, 3)
    assert axis.real_cells(0) == range(0, 3)
    assert axis.real_cells(9) == range(7, 10)


def test_pool_connections_count_real_cells_only():
    net = compile_("input In [5];\nhidden P [5] from In mean pool { InputShape = [5]; "
                   "KernelShape = [3]; Padding = true; }\noutput Y [2] from P all;")
    # windows -1..1, 0..2, 1..3, 2..4, 3..5: the two end ones hold 2 real cells
    assert net.layer("P").bundles[0].connections == 2 + 3 + 3 + 3 + 2


# ---- convolution: MapCount, Sharing, connections, multiply-adds -------------------------------

def test_padded_convolution_connections_and_macs_count_real_cells():
    net = compile_("""
input In [5, 5];
hidden C [2, 5, 5] from In convolve {
  InputShape = [5, 5]; KernelShape = [3, 3]; Padding = true; MapCount = 2;
}
output Y [2] from C all;""")
    conv = net.layer("C").bundles[0]
    per_axis = 2 + 3 + 3 + 3 + 2
    assert conv.connections == 2 * per_axis * per_axis
    assert conv.macs == conv.connections
    assert conv.weights == 2 * (3 * 3 + 1)


def test_map_count_as_a_tuple():
    net = compile_("""
input In [4, 6, 6];
hidden C [192] from In convolve {
  InputShape = [4, 6, 6]; KernelShape = [2, 3, 3]; Stride = [2, 1, 1]; MapCount = [2, 3, 1];
}
output Y [2] from C all;""")
    conv = net.layer("C").bundles[0]
    positions = ((4 - 2) // 2 + 1, (6 - 3) // 1 + 1, (6 - 3) // 1 + 1)
    assert conv.geometry.positions == positions == (2, 4, 4)
    assert conv.map_count == (2, 3, 1)
    assert conv.output_shape == (2 * 2, 3 * 4, 1 * 4)
    assert conv.kernel_count == 2 * 3 * 1
    assert conv.weights == 6 * (2 * 3 * 3 + 1)


def test_integer_map_count_means_first_dimension():
    net = compile_("""
input In [4, 6, 6];
hidden C [3 * 2 * 4 * 4] from In convolve {
  InputShape = [4, 6, 6]; KernelShape = [2, 3, 3]; Stride = [2, 1, 1]; MapCount = 3;
}
output Y [2] from C all;""")
    conv = net.layer("C").bundles[0]
    assert conv.map_count == (3, 1, 1)
    assert conv.output_shape == (3 * 2, 4, 4)


def test_sharing_false_gives_locally_connected_kernels():
    net = compile_("""
input In [8];
hidden C [2 * 6] from In convolve {
  InputShape = [8]; KernelShape = [3]; Sharing = false; MapCount = 2;
}
output Y [2] from C all;""")
    conv = net.layer("C").bundles[0]
    assert conv.kernel_count == 2 * ((8 - 3) // 1 + 1) == 12
    assert conv.weights == 12 * (3 + 1)


@pytest.mark.parametrize("sharing, kernels", [
    ("[true, false]", 1 * 4), ("[false, true]", 4 * 1), ("false", 4 * 4), ("true", 1)])
def test_sharing_per_dimension(sharing, kernels):
    net = compile_(f"""
input In [6, 6];
hidden C [4, 4] from In convolve {{
  InputShape = [6, 6]; KernelShape = [3, 3]; Sharing = {sharing};
}}
output Y [2] from C all;""")
    conv = net.layer("C").bundles[0]
    assert conv.kernel_count == kernels
    assert conv.weights == kernels * (3 * 3 + 1)


def test_multiply_adds():
    net = compile_("input X [784];\nhidden H [100] from X all;\noutput Y [10] from H all;")
    assert net.layer("H").macs == 784 * 100
    assert net.layer("Y").macs == 100 * 10
    assert net.total_macs == 784 * 100 + 100 * 10
    net = compile_(SEED_000_TWO_BUNDLES)
    assert net.layer("H2").macs == 200 * 200 + 50 * 200
    conv = compile_(SEED_000_BASIC).layer("C1").bundles[0]
    assert conv.macs == 5 * (12 * 12) * (5 * 5)        # no padding: every window is whole


# ---- output functions -------------------------------------------------------------------------

def test_default_output_functions():
    net = compile_("""
input In [1, 8, 8];
hidden C [2, 6, 6] from In convolve { InputShape = [1, 8, 8]; KernelShape = [1, 3, 3];
                                      MapCount = 2; }
hidden P [2, 3, 3] from C max pool { InputShape = [2, 6, 6]; KernelShape = [1, 2, 2];
                                     Stride = [1, 2, 2]; }
hidden N [2, 3, 3] from P response norm { InputShape = [2, 3, 3]; KernelShape = [1, 1, 1];
                                          Alpha = 1; Beta = 1; }
hidden Q [2, 3, 3] from N mean pool { InputShape = [2, 3, 3]; KernelShape = [1, 1, 1]; }
hidden H [10] from Q all;
hidden R [10] rlinear from H all;
output Y [10] from R all;""")
    functions = {layer.name: layer.activation for layer in net.layers}
    assert functions == {"In": None, "C": "sigmoid", "P": "linear", "N": "linear", "Q": "linear",
                         "H": "sigmoid", "R": "rlinear", "Y": "softmax"}


@pytest.mark.parametrize("outputs, options, task, function", [
    (10, {}, "multiclass", "softmax"),
    (1, {}, "binary", "sigmoid"),
    (1, {"task": "regression"}, "regression", "linear"),
    (3, {"task": "regression"}, "regression", "linear"),
    (4, {"classes": 4}, "multiclass", "softmax"),
])
def test_output_function_follows_the_task(outputs, options, task, function):
    net = compile_(f"input X [3];\noutput Y [{outputs}] from X all;", **options)
    assert net.task == task
    assert net.output.activation == function


@pytest.mark.parametrize("function", ["sigmoid", "linear", "softmax", "rlinear", "square", "sqrt",
                                      "srlinear", "abs", "tanh", "brlinear"])
def test_every_output_function_keyword(function):
    net = compile_(f"input X [3];\nhidden H [4] {function} from X all;\n"
                   f"output Y [2] {function} from H all;")
    assert net.layer("H").activation == function
    assert net.output.activation == function


# ---- auto -------------------------------------------------------------------------------------

AUTO = "input F auto;\nhidden H auto from F all;\noutput O auto from H all;\n"


def test_auto_with_features_classes_and_hidden_size():
    net = compile_(AUTO, features=20, classes=4, hidden_size=7)
    assert [layer.shape for layer in net.layers] == [(20,), (7,), (4,)]
    assert net.task == "multiclass" and net.output.activation == "softmax"
    assert net.total_weights == 20 * 7 + 7 + 7 * 4 + 4


def test_auto_hidden_size_defaults_to_100():
    net = compile_(AUTO, features=20, classes=4)
    assert net.layer("H").shape == (100,)


def test_auto_two_classes_gives_one_sigmoid_node():
    net = compile_(AUTO, features=20, classes=2)
    assert net.task == "binary"
    assert net.output.shape == (1,) and net.output.activation == "sigmoid"


def test_auto_two_classes_with_two_binary_outputs():
    net = compile_(AUTO, features=20, classes=2, binary_outputs=2)
    assert net.output.shape == (2,)


def test_auto_regression_gives_one_linear_node():
    net = compile_(AUTO, features=20, task="regression")
    assert net.output.shape == (1,) and net.output.activation == "linear"


def test_auto_input_takes_the_features_left_by_the_others():
    net = compile_("input A [3];\ninput B auto;\ninput C [2];\n"
                   "output O [2] { from A all; from B all; from C all; }", features=10)
    assert net.layer("B").shape == (10 - 3 - 2,)


def test_explicit_input_sizes_may_be_checked_against_features():
    net = compile_("input A [3];\ninput B [7];\noutput O [2] { from A all; from B all; }",
                   features=3 + 7)
    assert [layer.name for layer in net.inputs] == ["A", "B"]


# ---- constants --------------------------------------------------------------------------------

def _size_of(expression: str, consts: str = "") -> int:
    net = compile_(f"{consts}\ninput A [{expression}];\noutput O [2] from A all;")
    return net.layer("A").nodes


@pytest.mark.parametrize("expression, value", [
    ("10 + -7 / 2", 10 - 3),            # truncation toward zero, not floor (-4)
    ("10 + 7 / -2", 10 - 3),
    ("10 + -7 % 3", 10 - 1),            # the sign of the dividend (Python's % gives 2)
    ("10 + 7 % -3", 10 + 1),
    ("2 ^ 3 ^ 2", 2 ** 9),              # right-associative
    ("10 + -2 ^ 2", 10 - 4),            # ^ binds tighter than unary minus
    ("5 * 13^2", 845),                  # and tighter than *
    ("2 * 3 ^ 2", 18),
    ("(28 - 5) / 2 + 1", 12),
    ("1 + 2 * 3 - 4 / 2", 1 + 6 - 2),
    ("max(3, 7) + min(2, 4, 1) + abs(-5)", 7 + 1 + 5),
    ("Max(3, 7) + ABS(-1)", 7 + 1),
    ("+3", 3),
    ("17 % 5 * 2", 4),
])
def test_integer_expressions(expression, value):
    assert _size_of(expression) == value


def test_constants_single_and_block_forms_and_arrays():
    consts = """
const X = 28;
const { T = true; F = false; ImgW = 28; OutW = (ImgW - 5) / 2 + 1; }
const K = [5, 5];
const S = [2, K[0] - 3];
"""
    assert _size_of("OutW * X", consts) == 12 * 28
    assert _size_of("K[0] * K[1] + S[1]", consts) == 5 * 5 + 2


def test_booleans_and_arrays_as_attribute_values():
    net = compile_("""
const { T = true; F = false; Big = 3 > 2 && !(1 == 2) || false; K = [1, 3, 3]; }
input In [2, 6, 6];
hidden C [2, 4, 4] from In convolve {
  InputShape = [2, 6, 6]; KernelShape = K; Sharing = [F, T, Big];
}
output Y [2] from C all;""")
    conv = net.layer("C").bundles[0]
    assert conv.sharing == (False, True, True)
    assert conv.kernel_count == 2


@pytest.mark.parametrize("alpha, value", [
    ("7 / 2", 3.0), ("-7 / 2", -3.0), ("7.0 / 2", 3.5), ("-7.0 / 2", -3.5), (".5", 0.5),
    ("1E-07", 1e-07), ("1.5e+3", 1500.0),
    ("2 ^ -1", 0.5), ("-0.25", -0.25), ("7 % 2.5", 2.0),
])
def test_real_expressions(alpha, value):
    net = compile_(NORM.format(shape="5, 10, 10", extra="").replace("Alpha = 0.0001",
                                                                    f"Alpha = {alpha}"))
    assert net.layer("N").bundles[0].alpha == pytest.approx(value, rel=1e-12)


def test_response_norm_offset_and_avg_over_full_kernel():
    net = compile_(NORM.format(shape="5, 10, 10", extra="Offset = 2; AvgOverFullKernel = true;"))
    norm = net.layer("N").bundles[0]
    assert norm.offset == 2.0 and norm.avg_over_full_kernel is True


def test_constants_may_come_between_layers_and_feed_predicates():
    net = compile_("input M [100];\nconst Cut = 50;\nhidden H [4] from M where (s, d) => "
                   "s < Cut;\noutput O [2] from H all;")
    assert net.layer("H").bundles[0].weights == 50 * 4


# ---- lexical freedoms -------------------------------------------------------------------------

def test_keywords_and_attribute_names_are_case_insensitive():
    net = compile_("""
Const { ImgW = 28; T = True; }
INPUT Picture [ImgW, ImgW];
Hidden C1 [5, 12, 12] FROM Picture CONVOLVE {
  inputshape = [28, 28]; KERNELSHAPE = [5, 5]; stride = [2, 2]; mapcount = 5; SHARING = T;
}
Hidden P1 [5, 6, 6] from C1 MAX Pool { INPUTSHAPE = [5, 12, 12]; kernelShape = [1, 2, 2];
                                       Stride = [1, 2, 2]; padding = FALSE; }
OUTPUT Result [10] SoftMax From P1 ALL;
""")
    assert net.layer("C1").bundles[0].weights == 5 * (5 * 5 + 1)
    assert net.output.activation == "softmax"
    assert [layer.kind for layer in net.layers] == ["input", "hidden", "hidden", "output"]
    shared = compile_(SHARE_EXAMPLE + "SHARE { H1, H2 }")
    assert shared.total_weights == 2102


def test_stray_semicolons_after_braces():
    net = compile_("""
const { A = 3; };
input { X [A]; Y [2]; };
hidden H [4] { from X all; from Y all; };
hidden G [4] { from X all; };
output O [2] { from H all; from G all; };
;
share { 1 => H, 1 => G };
""")
    assert net.total_weights == (3 * 4 + 2 * 4 + 4) + (3 * 4) + (4 * 2 + 4 * 2 + 2)


def test_comments():
    net = compile_("""/* a block comment
   over several lines */
input X [3]; // a line comment
hidden /* inline */ H [4] from X all; /* trailing */
output O [2] /* between */ from H all; // last
// and a comment at the very end without a newline""")
    assert net.total_weights == 3 * 4 + 4 + 4 * 2 + 2


def test_whitespace_is_free():
    net = compile_("input X[3];hidden H[4]from X all;output O[2]from H all;")
    spread = compile_("input\n  X\n\t[\n3\n]\n;\nhidden H [4]\r\n  from X\r\n  all;\n"
                      "output O [2] from H all;")
    assert net.total_weights == spread.total_weights == 3 * 4 + 4 + 4 * 2 + 2


def test_group_forms():
    net = compile_("""
input { A [37]; B [37]; }
hidden {
  H1 [50] from A all;
  H2 [50] rlinear from B all;
}
output { O [2] { from H1 all; from H2 all; } }
""")
    assert [(layer.name, layer.kind) for layer in net.layers] == [
        ("A", "input"), ("B", "input"), ("H1", "hidden"), ("H2", "hidden"), ("O", "output")]
    assert net.layer("H2").activation == "rlinear"


def test_order_puts_sources_before_users():
    net = compile_("output O [2] from H all;\nhidden H [4] from X all;\ninput X [3];")
    assert net.layer_names == ("O", "H", "X")
    assert net.order.index("X") < net.order.index("H") < net.order.index("O")


def test_a_deep_chain_of_layers():
    lines = ["input X [2];", "hidden H0 [2] from X all;"]
    lines += [f"hidden H{i} [2] from H{i - 1} all;" for i in range(1, 1500)]
    lines.append("output O [2] from H1499 all;")
    net = compile_("\n".join(lines))
    assert net.total_weights == 1501 * (2 * 2 + 2)


# ---- the JSON document ------------------------------------------------------------------------

def test_json_document_has_the_required_keys():
    document = json.loads(json.dumps(compile_(SEED_000_TWO_BUNDLES).to_dict()))
    assert document["source"] == "check.ns"
    assert document["total_weights"] == (28 * 28 * 200 + 200) + 50200 + (200 * 10 + 10)
    assert document["total_macs"] == 28 * 28 * 200 + 200 * 200 + 50 * 200 + 200 * 10
    names = [layer["name"] for layer in document["layers"]]
    assert names == ["Picture", "Metadata", "H1", "H2", "Result"]
    for layer in document["layers"]:
        assert {"name", "kind", "shape", "nodes", "activation", "weights", "bundles"} <= set(layer)
        for bundle in layer["bundles"]:
            assert {"kind", "source", "output_shape", "connections", "weights"} <= set(bundle)
    h2 = document["layers"][3]
    assert h2["kind"] == "hidden" and h2["shape"] == [200] and h2["nodes"] == 200
    assert h2["activation"] == "sigmoid"
    assert [(b["kind"], b["source"]) for b in h2["bundles"]] == [("full", "H1"),
                                                                  ("filtered", "Metadata")]
    assert [b["weights"] for b in h2["bundles"]] == [200 * 200, 50 * 200]
    assert [b["connections"] for b in h2["bundles"]] == [200 * 200, 50 * 200]
    assert h2["bundles"][1]["output_shape"] == [200]
    assert h2["weights"] == 200 * 200 + 50 * 200 + 200
    picture = document["layers"][0]
    assert picture["kind"] == "input" and picture["shape"] == [28, 28]
    assert picture["activation"] is None and picture["bundles"] == []


def test_json_layer_weights_count_bundles_plus_bias_and_total_counts_distinct():
    document = compile_(SHARE_EXAMPLE + "share { H1, H2 }").to_dict()
    for layer in document["layers"]:
        bias = layer["nodes"] if any(b["kind"] in ("full", "filtered")
                                     for b in layer["bundles"]) else 0
        assert layer["weights"] == sum(b["weights"] for b in layer["bundles"]) + bias
    assert sum(layer["weights"] for layer in document["layers"]) == 4002
    assert document["total_weights"] == 2102


def test_json_convolution_bundle():
    document = compile_(SEED_000_BASIC).to_dict()
    c2 = document["layers"][2]["bundles"][0]
    assert c2["kind"] == "convolve" and c2["source"] == "C1"
    assert c2["output_shape"] == [10 * 5, 4, 4]
    assert c2["weights"] == 1300
    assert c2["connections"] == 10 * 5 * 4 * 4 * (1 * 5 * 5)
