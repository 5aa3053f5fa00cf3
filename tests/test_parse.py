"""Parsing: every example of the spec parses; AST spans are right; no input crashes the parser.

Spans are 1-based and end-exclusive: `Span(path, line, col, end_line, end_col)`.
"""

from __future__ import annotations

from pathlib import Path

import lark
import pytest

import netsharp
from netsharp import ast, parser_tables
from netsharp import parse as parse_module
from netsharp.parse import parse
from netsharp.source import Source, Span

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PATH = "p.ns"


def parsed(text: str) -> ast.Program:
    return parse(Source(text, PATH))


def at(line: int, col: int, end_line: int, end_col: int) -> Span:
    return Span(PATH, line, col, end_line, end_col)


def statements(text: str, kind: type) -> list:
    return [s for s in parsed(text).statements if isinstance(s, kind)]


# ---- the examples of LANGUAGE.md and of seed 000 ----------------------------------------------

SPEC_CONSTANTS = """
const X = 28;
const { T = true; F = false; ImgW = 28; OutW = (ImgW - 5) / 2 + 1; }
const Weights_1 = [0.0188, 0.1305, -0.02];      // arrays: used as `Weights = Weights_1;`
"""

SPEC_STRUCTURE = """
input Picture [28, 28];
input Meta auto;                                   // size from the data
hidden H1 [200] from Picture all;
hidden H2 [200] rlinear {                          // several bundles: contributions are summed
  from H1 all;
  from Meta where (s, d) => s < 50;
}
output Result [10] softmax from H2 all;
input { A [37]; B [37]; }                          // group form: keyword once, several layers
share { H1, H2 }                                   // weight sharing (§6)
"""

SPEC_SHARES = """
share { H1, H2 }                    // layers with a single bundle: weights and biases
share { Data1 => H1, Data2 => H2 }  // the weights of bundle Data1->H1 and Data2->H2
share { 1 => H1, 1 => H2 }          // the bias vectors of H1 and H2
"""

SPEC_FRAGMENTS = {"constants": SPEC_CONSTANTS, "structure": SPEC_STRUCTURE,
                  "shares": SPEC_SHARES}

# Seed 000's programs, with the closing braces its blog formatting lost restored.
SEED_PROGRAMS = {
    "two-inputs": """
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
""",
    "basic-convolution": """
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
""",
    "flat-picture": """
input Picture[784];
hidden C1 [5, 12, 12]
  from Picture convolve {
    InputShape  = [28, 28];
    KernelShape = [ 5,  5];
    Stride      = [ 2,  2];
    MapCount    = 5;
  }
output Result [10] softmax from C1 all;
""",
    "parameterized-pooling": """
const { C1Maps = 5; C1OutH = 24; C1OutW = 24; P1KernH = 2; P1KernW = 2;
        P1StrideH = 2; P1StrideW = 2;
        P1OutH = (C1OutH - P1KernH) / P1StrideH + 1; P1OutW = (C1OutW - P1KernW) / P1StrideW + 1; }
input C1 [C1Maps, C1OutH, C1OutW];
hidden P1 [C1Maps, P1OutH, P1OutW]
  from C1 max pool {
    InputShape  = [C1Maps, C1OutH, C1OutW];
    KernelShape = [1, P1KernH, P1KernW];
    Stride      = [1, P1StrideH, P1StrideW];
  }
output Result [10] softmax from P1 all;
""",
    "automatic-padding": """
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
output Result [10] softmax from P1 all;
""",
    "filtered-doc-examples": """
input S [10, 20];
hidden A [10, 12] from S where (s, d) => s[0] == d[0];
hidden B [5, 20] from S where (s, d) => abs(s[1] - d[1]) <= 1;
output Result [2] { from A all; from B all; }
""",
    "response-norm": """
input C [5, 12, 12];
hidden N [5, 12, 12] from C response norm {
  InputShape = [5, 12, 12]; KernelShape = [1, 3, 3]; Padding = [false, true, true];
  Alpha = 0.0001; Beta = 0.75; Offset = 1; AvgOverFullKernel = true;
}
output Result [10] softmax from N all;
""",
    "explicit-pads": """
input Picture [28, 28];
hidden C [13, 13] from Picture convolve {
  InputShape = [28, 28]; KernelShape = [5, 5]; Stride = [2, 2];
  LowerPad = [0, 0]; UpperPad = [1, 1];
}
output Result [16] from C mean pool { InputShape = [13, 13]; KernelShape = [4, 4];
                                      Stride = [3, 3]; }
""",
    "share-example": """
input {Data1 [37]; Data2 [37];}
hidden { H1 [50] from Data1 all; H2 [50] from Data2 all; }
output Result [2] { from H1 all; from H2 all; }
share { H1, H2 }
""",
}


@pytest.mark.parametrize("name", SPEC_FRAGMENTS)
def test_spec_fragments_parse(name):
    program = parsed(SPEC_FRAGMENTS[name])
    assert program.statements


def test_spec_constants_fragment_contents():
    consts = statements(SPEC_CONSTANTS, ast.ConstDef)
    assert [c.name for c in consts] == ["X", "T", "F", "ImgW", "OutW", "Weights_1"]
    weights = consts[-1].value
    assert isinstance(weights, ast.Array) and len(weights.items) == 3
    assert isinstance(weights.items[2], ast.Unary) and weights.items[2].op == "-"


def test_spec_structure_fragment_contents():
    layers = statements(SPEC_STRUCTURE, ast.LayerDecl)
    assert [(d.kind, d.name) for d in layers] == [
        ("input", "Picture"), ("input", "Meta"), ("hidden", "H1"), ("hidden", "H2"),
        ("output", "Result"), ("input", "A"), ("input", "B")]
    assert layers[1].shape is None                       # auto
    assert [b.kind for b in layers[3].bundles] == ["full", "filtered"]
    assert layers[3].activation == "rlinear"
    (share,) = statements(SPEC_STRUCTURE, ast.Share)
    assert [item.layer for item in share.items] == ["H1", "H2"]


def test_spec_share_forms():
    forms = [[(i.form, i.source, i.layer) for i in s.items]
             for s in statements(SPEC_SHARES, ast.Share)]
    assert forms == [[("layer", None, "H1"), ("layer", None, "H2")],
                     [("bundle", "Data1", "H1"), ("bundle", "Data2", "H2")],
                     [("bias", None, "H1"), ("bias", None, "H2")]]


@pytest.mark.parametrize("name", SEED_PROGRAMS)
def test_seed_and_spec_programs_parse_and_compile(name):
    assert parsed(SEED_PROGRAMS[name]).statements
    net = netsharp.compile(SEED_PROGRAMS[name], path=PATH)
    assert net.total_weights > 0


def test_samples_parse():
    paths = sorted(SAMPLES.glob("*.ns"))
    assert paths, "samples/ has no .ns files"
    for path in paths:
        program = parse(Source(path.read_text(encoding="utf-8"), str(path)))
        assert any(isinstance(s, ast.LayerDecl) for s in program.statements), path


# ---- spans ------------------------------------------------------------------------------------

SPANNED = """const { T = true; F = false; }
input Picture [28, 28];
hidden C1 [5, 12, 12]
  from Picture convolve {
    InputShape  = [28, 28];
    KernelShape = [ 5,  5];
  }
hidden { H1 [10] from C1 all; H2 [10] sigmoid from C1 where (s, d) => s < 5; }
output Result [10] softmax {
  from H1 all;
  from H2 all;
}
share { H1, H2 }
share { C1 => H1, C1 => H2 }
share { 1 => H1, 1 => H2 }
"""


def _layers() -> dict[str, ast.LayerDecl]:
    return {d.name: d for d in statements(SPANNED, ast.LayerDecl)}


def test_constant_spans():
    t, f = statements(SPANNED, ast.ConstDef)
    assert t.name_span == at(1, 9, 1, 10)
    assert t.value.span == at(1, 13, 1, 17)
    assert t.span == at(1, 9, 1, 18)                     # `T = true;`
    assert f.name_span == at(1, 19, 1, 20)
    assert f.value.span == at(1, 23, 1, 28)


def test_layer_spans():
    layers = _layers()
    picture = layers["Picture"]
    assert picture.span == at(2, 1, 2, 24)
    assert picture.name_span == at(2, 7, 2, 14)
    assert picture.shape_span == at(2, 15, 2, 23)
    assert [e.span for e in picture.shape] == [at(2, 16, 2, 18), at(2, 20, 2, 22)]
    c1 = layers["C1"]
    assert c1.name_span == at(3, 8, 3, 10)
    assert c1.shape_span == at(3, 11, 3, 22)
    assert c1.span == at(3, 1, 7, 4)                     # to the bundle's closing brace
    result = layers["Result"]
    assert result.name_span == at(9, 8, 9, 14)
    assert result.activation == "softmax"
    assert result.activation_span == at(9, 20, 9, 27)
    assert result.span == at(9, 1, 12, 2)


def test_group_form_layer_spans():
    layers = _layers()
    h1, h2 = layers["H1"], layers["H2"]
    assert h1.kind == h2.kind == "hidden"
    assert h1.name_span == at(8, 10, 8, 12)
    assert h1.span == at(8, 10, 8, 30)
    assert h2.name_span == at(8, 31, 8, 33)
    assert h2.activation_span == at(8, 39, 8, 46)


def test_bundle_spans():
    layers = _layers()
    (conv,) = layers["C1"].bundles
    assert conv.kind == "convolve" and conv.source == "Picture"
    assert conv.span == at(4, 3, 7, 4)
    assert conv.source_span == at(4, 8, 4, 15)
    assert conv.kind_span == at(4, 16, 4, 24)
    first, second = layers["Result"].bundles
    assert first.source_span == at(10, 8, 10, 10)
    assert second.source_span == at(11, 8, 11, 10)
    assert first.span == at(10, 3, 10, 15)
    (filtered,) = layers["H2"].bundles
    assert filtered.kind == "filtered"
    assert filtered.source_span == at(8, 52, 8, 54)
    assert filtered.kind_span == at(8, 55, 8, 60)
    assert filtered.predicate.span == at(8, 61, 8, 76)
    assert filtered.predicate.body.span == at(8, 71, 8, 76)
    assert (filtered.predicate.source_param, filtered.predicate.dest_param) == ("s", "d")


def test_attribute_spans():
    (conv,) = _layers()["C1"].bundles
    input_shape, kernel_shape = conv.attributes
    assert input_shape.name == "InputShape"
    assert input_shape.name_span == at(5, 5, 5, 15)
    assert input_shape.value.span == at(5, 19, 5, 27)
    assert [e.span for e in input_shape.value.items] == [at(5, 20, 5, 22), at(5, 24, 5, 26)]
    assert input_shape.span == at(5, 5, 5, 28)
    assert kernel_shape.value.span == at(6, 19, 6, 27)
    assert [e.span for e in kernel_shape.value.items] == [at(6, 21, 6, 22), at(6, 25, 6, 26)]


def test_share_spans():
    layers, bundles, biases = statements(SPANNED, ast.Share)
    assert layers.span == at(13, 1, 13, 17)
    assert [i.layer_span for i in layers.items] == [at(13, 9, 13, 11), at(13, 13, 13, 15)]
    assert [i.span for i in bundles.items] == [at(14, 9, 14, 17), at(14, 19, 14, 27)]
    assert [i.layer_span for i in bundles.items] == [at(14, 15, 14, 17), at(14, 25, 14, 27)]
    assert [i.span for i in biases.items] == [at(15, 9, 15, 16), at(15, 18, 15, 25)]


def test_expression_spans():
    (const,) = statements("const X = max(1, -2) + (3 * 4)^2;", ast.ConstDef)
    total = const.value
    assert isinstance(total, ast.Binary) and total.op == "+"
    assert total.span == at(1, 11, 1, 33)
    call, power = total.left, total.right
    assert isinstance(call, ast.Call) and call.function == "max"
    assert call.span == at(1, 11, 1, 21)
    assert call.function_span == at(1, 11, 1, 14)
    assert call.args[1].span == at(1, 18, 1, 20)         # `-2`
    assert isinstance(power, ast.Binary) and power.op == "^"
    assert power.left.span == at(1, 25, 1, 30)           # `3 * 4` inside the parentheses


def test_multiline_spans_and_crlf():
    text = "input A\r\n  [3];\r\noutput O [1]\r\n  from A all;\r\n"
    a, o = statements(text, ast.LayerDecl)
    assert a.shape_span == at(2, 3, 2, 6)
    assert o.bundles[0].source_span == at(4, 8, 4, 9)


def test_spans_after_comments():
    text = "/* one\n   two */ input A [3]; // x\n// y\noutput O [1] from A all;"
    a, o = statements(text, ast.LayerDecl)
    assert a.name_span == at(2, 17, 2, 18)
    assert o.bundles[0].source_span == at(4, 19, 4, 20)


# ---- the shape of the tree --------------------------------------------------------------------

def _expr(text: str) -> ast.Expr:
    (const,) = statements(f"const X = {text};", ast.ConstDef)
    return const.value


def _show(expr: ast.Expr) -> str:
    if isinstance(expr, (ast.IntLit, ast.RealLit)):
        return str(expr.value)
    if isinstance(expr, ast.BoolLit):
        return "true" if expr.value else "false"
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Unary):
        return f"({expr.op}{_show(expr.operand)})"
    if isinstance(expr, ast.Binary):
        return f"({_show(expr.left)} {expr.op} {_show(expr.right)})"
    if isinstance(expr, ast.Index):
        return f"{_show(expr.base)}[{_show(expr.index)}]"
    if isinstance(expr, ast.Call):
        return f"{expr.function}({', '.join(_show(a) for a in expr.args)})"
    return "[" + ", ".join(_show(i) for i in expr.items) + "]"


@pytest.mark.parametrize("text, tree", [
    ("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"),
    ("-2 ^ 2", "(-(2 ^ 2))"),
    ("5 * 13^2", "(5 * (13 ^ 2))"),
    ("1 - 2 - 3", "((1 - 2) - 3)"),
    ("8 / 4 / 2", "((8 / 4) / 2)"),
    ("1 + 2 * 3 % 4", "(1 + ((2 * 3) % 4))"),
    ("a || b && c", "(a || (b && c))"),
    ("!a == b", "((!a) == b)"),
    ("1 + 2 < 3 * 4 && x != y", "(((1 + 2) < (3 * 4)) && (x != y))"),
    ("s[0] == d[1]", "(s[0] == d[1])"),
    ("K[0] ^ 2", "(K[0] ^ 2)"),
    ("2 ^ -1", "(2 ^ (-1))"),
    ("MAX(1, 2, 3) + Abs(-1) + min(4, 5)", "((max(1, 2, 3) + abs((-1))) + min(4, 5))"),
    ("[1, [2, 3]][1][0]", "[1, [2, 3]][1][0]"),
    ("TRUE && False", "(true && false)"),
])
def test_precedence_and_associativity(text, tree):
    assert _show(_expr(text)) == tree


@pytest.mark.parametrize("text, kind, value", [
    ("28", ast.IntLit, 28), ("0.001", ast.RealLit, 0.001), (".5", ast.RealLit, 0.5),
    ("1E-07", ast.RealLit, 1e-07), ("1.5e+3", ast.RealLit, 1500.0), ("2e3", ast.RealLit, 2000.0),
    ("true", ast.BoolLit, True), ("False", ast.BoolLit, False),
])
def test_number_and_boolean_literals(text, kind, value):
    literal = _expr(text)
    assert isinstance(literal, kind) and literal.value == value


def test_keywords_are_case_insensitive_and_normalized():
    layers = statements("INPUT A [3];\nHidden H [2] SIGMOID FROM A ALL;\n"
                        "Output O [2] SoftMax from H Max POOL { inputshape = [2]; "
                        "KernelShape = [1]; }", ast.LayerDecl)
    assert [(d.kind, d.activation) for d in layers] == [
        ("input", None), ("hidden", "sigmoid"), ("output", "softmax")]
    assert layers[2].bundles[0].kind == "max_pool"
    assert layers[2].bundles[0].attributes[0].name.lower() == "inputshape"


def test_identifiers_that_start_with_keywords_are_names():
    layers = statements("input inputs [3];\nhidden allx [2] from inputs all;\n"
                        "output Constant [2] from allx all;", ast.LayerDecl)
    assert [d.name for d in layers] == ["inputs", "allx", "Constant"]


def test_stray_semicolons_and_empty_blocks():
    program = parsed(";;const { ; X = 1; ; };\ninput A [X];;\n"
                     "output O [2] { ; from A all; ; };\n;")
    assert [type(s).__name__ for s in program.statements] == ["ConstDef", "LayerDecl",
                                                              "LayerDecl"]


def test_layer_without_bundles_is_marked():
    a, h = statements("input A [3];\nhidden H [2] { }", ast.LayerDecl)
    assert (a.has_body, a.bundles) == (False, ())
    assert (h.has_body, h.bundles) == (True, ())


def test_program_keeps_its_source():
    source = Source("input A [3];", "x.ns")
    assert parse(source).source is source


def test_syntax_errors_are_parse_errors_with_positions():
    with pytest.raises(netsharp.ParseError) as info:
        parsed("input A [3];\ninput B [3]")
    assert (info.value.line, info.value.col) == (2, 12)


# ---- robustness: depth and length -------------------------------------------------------------

DEPTH = 5000
DEEP_EXPRESSIONS = {
    "parentheses": "(" * DEPTH + "1" + ")" * DEPTH,
    "unary-minus": "- " * DEPTH + "1",
    "negation": "!" * DEPTH + "true",
    "arrays": "[" * DEPTH + "1" + "]" * DEPTH,
    "sum": "+".join(["1"] * DEPTH),
    "power": "^".join(["1"] * DEPTH),
}
# Kinds known to crash (none now): the syntax-tree transformer is non-recursive and compile()
# raises the recursion limit for evaluating long chains.
PARSE_CRASHES: set = set()
COMPILE_CRASHES: set = set()


def _program(expression: str) -> str:
    return f"const X = {expression};\ninput A [3];\noutput O [2] from A all;\n"


def _crash_mark(kind: str, crashes: set, what: str):
    if kind not in crashes:
        return ()
    return pytest.mark.xfail(strict=True, reason=f"{what} raises RecursionError/VisitError for "
                             f"{DEPTH} levels of {kind}")


@pytest.mark.parametrize("kind", [
    pytest.param(k, marks=_crash_mark(k, COMPILE_CRASHES, "compile()")) for k in DEEP_EXPRESSIONS])
def test_deep_expressions_compile_or_give_a_netsharp_error(kind):
    result = _without_crash(lambda: netsharp.compile(_program(DEEP_EXPRESSIONS[kind]), path=PATH))
    if isinstance(result, netsharp.NetsharpError):
        assert result.line is not None and str(result).startswith(f"{PATH}:")
    else:
        assert result.layer("A").nodes == 3


@pytest.mark.parametrize("kind", [
    pytest.param(k, marks=_crash_mark(k, PARSE_CRASHES, "netsharp.parse.parse()"))
    for k in DEEP_EXPRESSIONS])
def test_deep_expressions_parse_or_give_a_netsharp_error(kind):
    result = _without_crash(lambda: parsed(_program(DEEP_EXPRESSIONS[kind])))
    if not isinstance(result, netsharp.NetsharpError):
        assert len(result.statements) == 3


def _without_crash(function):
    """The function's result or NetsharpError; any other exception fails the test (reported
    outside the `except` block, so pytest does not render a thousand-frame traceback)."""
    try:
        return function()
    except netsharp.NetsharpError as error:
        return error
    except Exception as error:  # noqa: BLE001 - exactly what this test looks for
        crash = f"{type(error).__name__}: {str(error)[:200]}"
    pytest.fail(f"crashed instead of raising a NetsharpError: {crash}")


def test_deep_parentheses_compile():
    text = f"const X = {'(' * DEPTH}3{')' * DEPTH};\ninput A [X];\noutput O [2] from A all;"
    assert netsharp.compile(text).layer("A").nodes == 3


def test_deep_parentheses_in_a_shape_and_a_predicate():
    text = (f"input A [{'(' * DEPTH}3{')' * DEPTH}];\n"
            f"output O [2] from A where (s, d) => {'(' * DEPTH}s < 2{')' * DEPTH};")
    assert netsharp.compile(text).output.bundles[0].weights == 2 * 2


def test_unclosed_deep_parentheses_are_a_syntax_error():
    with pytest.raises(netsharp.ParseError) as info:
        netsharp.compile(f"const X = {'(' * DEPTH}3;\ninput A [3];\noutput O [2] from A all;")
    assert (info.value.line, info.value.col) == (1, 11 + DEPTH + 1)


def test_a_sum_of_200_terms_compiles():
    text = f"input A [{' + '.join(['1'] * 200)}];\noutput O [2] from A all;"
    assert netsharp.compile(text).layer("A").nodes == 200


def test_a_long_program_compiles():
    lines = [f"const C{i} = {i};" for i in range(3000)]
    lines += ["input X [2];", "hidden H0 [2] from X all;"]
    lines += [f"hidden H{i} [2] from H{i - 1} all;" for i in range(1, 1000)]
    lines.append("output O [2] from H999 all;")
    net = netsharp.compile("\n".join(lines))
    assert len(net.layers) == 1 + 1000 + 1
    assert net.order[0] == "X" and net.order[-1] == "O"


def test_a_long_weights_array_compiles():
    count = 200 * 100
    weights = ", ".join(["0.25"] * count)
    net = netsharp.compile(f"input A [200];\nhidden H [100] from A all {{ Weights = [{weights}]; }}"
                           f"\noutput O [2] from H all;")
    initial = net.parameter(net.layer("H").bundles[0].param).initial
    assert len(initial) == count and set(initial) == {0.25}


def test_an_error_at_the_end_of_a_long_program_has_the_right_line():
    lines = [f"const C{i} = {i};" for i in range(2000)] + ["input A [C1999 + Nope];"]
    with pytest.raises(netsharp.SemanticError) as info:
        netsharp.compile("\n".join(lines), path=PATH)
    assert (info.value.line, info.value.col) == (2001, 18)


# ---- the prebuilt LALR tables (netsharp/parser_tables.py) -------------------------------------

def _grammar() -> str:
    return parse_module.grammar_path().read_text(encoding="utf-8")


def test_parser_tables_were_built_from_this_grammar():
    # Fails after a grammar change until `python scripts/parser_tables.py` is run again.
    assert parser_tables.GRAMMAR_SHA256 == parse_module.grammar_digest(_grammar())


@pytest.mark.parametrize("program", [path.read_text(encoding="utf-8")
                                     for path in sorted(SAMPLES.glob("*.ns"))]
                         + [SPEC_CONSTANTS, "input A [3];\ninput B [3]", "const X = (1 +;",
                            "hidden H [2] from A where (i, j) => i == j && ;"])
def test_prebuilt_tables_parse_like_the_grammar(program):
    built = lark.Lark(_grammar(), **parse_module.PARSER_OPTIONS)
    loaded = lark.Lark.load({"data": parser_tables.DATA, "memo": parser_tables.MEMO})
    outcomes = []
    for parser in (built, loaded):
        try:
            tree = parser.parse(program)
            outcomes.append((tree, [(n.meta.line, n.meta.column, n.meta.end_line,
                                     n.meta.end_column) for n in tree.iter_subtrees()]))
        except lark.exceptions.UnexpectedInput as error:
            outcomes.append((type(error), error.line, error.column,
                             sorted(error.interactive_parser.accepts())))
    assert outcomes[0] == outcomes[1]


def test_prebuilt_tables_are_used_only_for_their_grammar_and_lark_version(monkeypatch):
    monkeypatch.setattr(lark, "__version__", parser_tables.LARK_VERSION)
    assert parse_module._prebuilt_tables(_grammar())["data"] is parser_tables.DATA
    assert parse_module._prebuilt_tables(_grammar() + "\n// changed\n") is None
    monkeypatch.setattr(lark, "__version__", parser_tables.LARK_VERSION + ".post1")
    assert parse_module._prebuilt_tables(_grammar()) is None
