"""A table of bad programs -> error class, message, line and column (LANGUAGE.md section 7).

Each row is one mistake in an otherwise small program. The test checks the class, a substring of
the message (or of a note), the 1-based line and column, and the rendering a user sees:
`path:line:col: error: message`, the offending source line, and a caret under the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import netsharp
from netsharp import NetsharpError, ParseError, ResourceError, SemanticError

PATH = "bad.ns"


def lines(*text: str) -> str:
    return "\n".join(text) + "\n"


@dataclass(frozen=True)
class Bad:
    id: str
    program: str
    error: type
    message: str           # a substring of err.message
    line: int
    col: int
    note: str | None = None  # a substring of one of err.notes
    options: dict = field(default_factory=dict)
    marks: tuple = ()


CONV_28 = ("input Picture [28, 28];", "hidden C [5, 12, 12] from Picture convolve {",
           "  InputShape = [28, 28];")
TAIL_C = ("}", "output O [10] from C all;")

TOO_MANY_PAIRS = lines("input A [20000];", "hidden H [20000] from A where (s, d) => s == d;",
                       "output O [1] from H all;")

CASES = [
    # ---- syntax --------------------------------------------------------------------------
    Bad("missing-semicolon", lines("input A [3];", "hidden H [2] from A all",
                                   "output O [1] from H all;"),
        ParseError, "expected ';' or '{', found 'output'", 3, 1),
    Bad("unexpected-token", lines("input A [3];", "hidden H [2] from A all;",
                                  "output O [1] from H all all;"),
        ParseError, "found 'all'", 3, 25),
    Bad("unexpected-token-in-shape", lines("input A [3];", "", "hidden H [2, ] from A all;",
                                           "output O [1] from H all;"),
        ParseError, "expected an expression, found ']'", 3, 14),
    Bad("hash-comment", lines("input A [3];", "# a comment", "output O [1] from A all;"),
        ParseError, "'#' does not start a comment", 2, 1, note="//"),
    Bad("hash-comment-after-code", lines("input A [3];  # features", "output O [1] from A all;"),
        ParseError, "'#' does not start a comment", 1, 15, note="/*"),
    Bad("unterminated-block-comment", lines("input A [3];", "hidden H [2] from A all;",
                                            "  /* never", "closed", "output O [1] from H all;"),
        ParseError, "unterminated /* comment", 3, 3, note="*/"),
    Bad("unexpected-end", "input A [3];\noutput O [1] from A all",
        ParseError, "unexpected end of program; expected ';'", 2, 24),
    Bad("unexpected-end-in-block", lines("input A [3];", "output O [1] {", "  from A all;"),
        ParseError, "unexpected end of program", 3, 14),
    Bad("unexpected-character", lines("input A [3];", "output O [1] from A all; @"),
        ParseError, "unexpected character '@'", 2, 26),
    Bad("keyword-as-name", lines("input A [3];", "hidden Output [2] from A all;",
                                 "output O [1] from Output all;"),
        ParseError, "found 'Output'", 2, 8, note="keyword"),
    Bad("missing-semicolon-in-const-block", lines("const { X = 1 }", "input A [X];",
                                                  "output O [1] from A all;"),
        ParseError, "found '}'", 1, 15),
    Bad("shared-bias-other-than-1", lines("input A [3];", "hidden H1 [2] from A all;",
                                          "hidden H2 [2] from A all;",
                                          "output O [1] { from H1 all; from H2 all; }",
                                          "share { 2 => H1, 1 => H2 }"),
        ParseError, "a shared bias is written '1 => H1'", 5, 9),

    # ---- unknown names, with "did you mean" ----------------------------------------------
    Bad("unknown-constant", lines("const Width = 3;", "", "input A [Widht];",
                                  "output O [1] from A all;"),
        SemanticError, "unknown name 'Widht'", 3, 10, note="did you mean 'Width'?"),
    Bad("constant-used-before-definition", lines("input A [N];", "const N = 3;",
                                                 "output O [1] from A all;"),
        SemanticError, "unknown name 'N'", 1, 10, note="defined before"),
    Bad("unknown-layer", lines("input Picture [28, 28];", "hidden H [10]",
                               "  from Pictur all;", "output O [1] from H all;"),
        SemanticError, "unknown layer 'Pictur'", 3, 8, note="did you mean 'Picture'?"),
    Bad("layer-names-are-case-sensitive", lines("input A [3];", "output O [1] from a all;"),
        SemanticError, "unknown layer 'a'", 2, 19, note="did you mean 'A'?"),
    Bad("constant-is-not-a-layer", lines("const K = 3;", "input A [3];",
                                         "output O [1] from K all;"),
        SemanticError, "unknown layer 'K'", 3, 19),
    Bad("unknown-attribute", lines("input P [8];", "hidden Q [4] from P max pool {",
                                   "  InputShape = [8];", "  KernalShape = [2];",
                                   "  Stride = [2];", "}", "output O [1] from Q all;"),
        SemanticError, "unknown attribute 'KernalShape'", 4, 3,
        note="did you mean 'KernelShape'?"),
    Bad("unknown-attribute-on-full", lines("input A [3];",
                                           "output O [1] from A all { Weigths = [1, 2, 3]; }"),
        SemanticError, "unknown attribute 'Weigths'", 2, 27, note="did you mean 'Weights'?"),
    Bad("misspelt-hidden", lines("input A [3];", "hiden H [2] from A all;",
                                 "output O [1] from H all;"),
        ParseError, "found name 'hiden'", 2, 1, note="did you mean 'hidden'?"),
    Bad("misspelt-input", lines("inpt A [3];", "output O [1] from A all;"),
        ParseError, "found name 'inpt'", 1, 1, note="did you mean 'input'?"),
    Bad("misspelt-share", lines("input A [3];", "hidden H [2] from A all;",
                                "output O [1] from H all;", "shar { H, O }"),
        ParseError, "found name 'shar'", 4, 1, note="did you mean 'share'?"),
    Bad("misspelt-sigmoid", lines("input A [3];", "hidden H [2] sigmod from A all;",
                                  "output O [1] from H all;"),
        ParseError, "found name 'sigmod'", 2, 14, note="did you mean 'sigmoid'?"),
    Bad("misspelt-convolve", lines("input A [3];",
                                   "hidden H [2] from A convolv { InputShape = [3]; }",
                                   "output O [1] from H all;"),
        ParseError, "found name 'convolv'", 2, 21, note="did you mean 'convolve'?"),
    Bad("misspelt-all", lines("input A [3];", "output O [1] from A alll;"),
        ParseError, "found name 'alll'", 2, 21, note="did you mean 'all'?"),
    Bad("misspelt-response", lines("input A [3];", "hidden H [2] from A respone norm { }",
                                   "output O [1] from H all;"),
        ParseError, "found name 'respone'", 2, 21, note="did you mean 'response'?"),
    Bad("misspelt-pool", lines("input A [4];", "hidden H [2] from A max pol { }",
                               "output O [1] from H all;"),
        ParseError, "expected 'pool', found name 'pol'", 2, 25, note="did you mean 'pool'?"),
    Bad("unknown-function", lines("const B = mx(1, 2);", "input A [B];",
                                  "output O [1] from A all;"),
        SemanticError, "unknown function 'mx'", 1, 11, note="did you mean 'max'?"),
    Bad("unknown-layer-in-share", lines("input A [3];", "hidden H1 [2] from A all;",
                                        "hidden H2 [2] from A all;",
                                        "output O [1] { from H1 all; from H2 all; }",
                                        "share { H1, Hidden2 }"),
        SemanticError, "unknown layer 'Hidden2'", 5, 13),

    # ---- duplicates ----------------------------------------------------------------------
    Bad("duplicate-layer", lines("input A [3];", "hidden H [2] from A all;",
                                 "hidden H [2] from A all;", "output O [1] from H all;"),
        SemanticError, "'H' is already defined", 3, 8, note="first defined at 2:8"),
    Bad("duplicate-constant", lines("const N = 3;", "const { M = 2; N = 4; }", "input A [N];",
                                    "output O [1] from A all;"),
        SemanticError, "'N' is already defined", 2, 16, note="first defined at 1:7"),
    Bad("constant-and-layer-share-a-name", lines("const A = 3;", "input A [A];",
                                                 "output O [1] from A all;"),
        SemanticError, "'A' is already defined", 2, 7),
    Bad("duplicate-attribute", lines("input P [8];", "hidden Q [4] from P max pool {",
                                     "  InputShape = [8];", "  KernelShape = [2];",
                                     "  Stride = [2];", "  kernelshape = [2];", "}",
                                     "output O [1] from Q all;"),
        SemanticError, "KernelShape is given twice", 6, 3),

    # ---- layer counts --------------------------------------------------------------------
    Bad("no-output-layer", lines("input A [3];", "hidden H [2] from A all;"),
        SemanticError, "no output layer", 1, 1),
    Bad("two-output-layers", lines("input A [3];", "output O1 [1] from A all;",
                                   "output O2 [1] from A all;"),
        SemanticError, "exactly one output layer", 3, 8, note="2:8"),
    Bad("no-input-layer", lines("const N = 2;", "hidden H [N] from H2 all;",
                                "hidden H2 [N] from H all;", "output O [1] from H all;"),
        SemanticError, "no input layer", 1, 1),

    # ---- graph ---------------------------------------------------------------------------
    Bad("cycle", lines("input A [3];", "hidden H1 [2] from H2 all;",
                       "hidden H2 [2] from H1 all;", "output O [1] from H2 all;"),
        SemanticError, "cycle", 3, 20),
    Bad("self-bundle", lines("input A [3];", "hidden H1 [2] {", "  from A all;",
                             "  from H1 all;", "}", "output O [1] from H1 all;"),
        SemanticError, "cannot take a bundle from itself", 4, 8),
    Bad("output-as-source", lines("input A [3];", "output O [1] from A all;",
                                  "hidden H [2] from O all;"),
        SemanticError, "output layer 'O' cannot be a bundle's source", 3, 19),
    Bad("hidden-not-reaching-output", lines("input A [3];", "hidden Lost [2] from A all;",
                                            "hidden H [2] from A all;",
                                            "output O [1] from H all;"),
        SemanticError, "hidden layer 'Lost' does not reach the output layer", 2, 8),
    Bad("input-with-bundles", lines("input B [3];", "input A [3] from B all;",
                                    "output O [1] from A all;"),
        SemanticError, "input layers take no bundles", 2, 13),
    Bad("input-with-output-function", lines("input A [3] sigmoid;", "output O [1] from A all;"),
        SemanticError, "input layers have no output function", 1, 13),
    Bad("hidden-without-bundles", lines("input A [3];", "hidden H [2];",
                                        "output O [1] from A all;"),
        SemanticError, "hidden layer 'H' has no bundles", 2, 8),
    Bad("hidden-with-empty-block", lines("input A [3];", "hidden H [2] {", "}",
                                         "output O [1] from A all;"),
        SemanticError, "hidden layer 'H' has no bundles", 2, 8),
    Bad("output-without-bundles", lines("input A [3];", "output O [1];"),
        SemanticError, "output layer 'O' has no bundles", 2, 8),

    # ---- attribute values ----------------------------------------------------------------
    Bad("tuple-of-wrong-length", lines(*CONV_28, "  KernelShape = [5, 5, 5];",
                                       "  MapCount = 5;", *TAIL_C),
        SemanticError, "KernelShape must be an array of 2 integers, not [5, 5, 5]", 4, 17),
    Bad("scalar-for-a-tuple", lines("input P [8];", "hidden Q [4] from P max pool {",
                                    "  InputShape = 8;", "  KernelShape = [2];",
                                    "  Stride = [2];", "}", "output O [1] from Q all;"),
        SemanticError, "InputShape must be an array of 1", 3, 16),
    Bad("real-in-integer-tuple", lines(*CONV_28, "  KernelShape = [5, 5];",
                                       "  Stride = [2, 2.5];", "  MapCount = 5;", *TAIL_C),
        SemanticError, "Stride must hold positive integers; 2.5 is not", 5, 12),
    Bad("padding-of-wrong-type", lines(*CONV_28, "  KernelShape = [5, 5];",
                                       "  Padding = [true, 1];", *TAIL_C),
        SemanticError, "Padding must be true, false or an array of 2 booleans", 5, 13),
    Bad("sharing-of-wrong-type", lines(*CONV_28, "  KernelShape = [5, 5];", "  Sharing = 1;",
                                       *TAIL_C),
        SemanticError, "Sharing must be true, false or an array of 2 booleans", 5, 13),
    Bad("map-count-of-wrong-length", lines(*CONV_28, "  KernelShape = [5, 5];",
                                           "  MapCount = [5, 1, 1];", *TAIL_C),
        SemanticError, "MapCount must be an array of 2 integers", 5, 14),
    Bad("alpha-not-a-number", lines("input P [8];", "hidden N [7] from P response norm {",
                                    "  InputShape = [8]; KernelShape = [2];",
                                    "  Alpha = true; Beta = 0.75;", "}",
                                    "output O [1] from N all;"),
        SemanticError, "Alpha must be a number, not true", 4, 11),
    Bad("weights-not-numbers", lines("input A [2];", "output O [1] from A all {",
                                     "  Weights = [0.5, true];", "}"),
        SemanticError, "Weights must be an array of numbers", 3, 13),

    # ---- missing and unwanted attributes -------------------------------------------------
    Bad("missing-input-shape", lines("input Picture [28, 28];",
                                     "hidden C [5, 12, 12] from Picture convolve {",
                                     "  KernelShape = [5, 5];", *TAIL_C),
        SemanticError, "convolve bundle needs InputShape", 2, 35, note="InputShape = [28, 28]"),
    Bad("missing-kernel-shape", lines(*CONV_28, "  MapCount = 5;", *TAIL_C),
        SemanticError, "convolve bundle needs KernelShape", 2, 35),
    Bad("missing-pool-kernel-shape", lines("input P [8];", "hidden Q [4]",
                                           "  from P mean pool { InputShape = [8]; }",
                                           "output O [1] from Q all;"),
        SemanticError, "mean pool bundle needs KernelShape", 3, 10),
    Bad("missing-alpha", lines("input P [8];", "hidden N [7] from P response norm {",
                               "  InputShape = [8]; KernelShape = [2]; Beta = 0.75;", "}",
                               "output O [1] from N all;"),
        SemanticError, "response norm bundle needs Alpha", 2, 21),
    Bad("missing-beta", lines("input P [8];", "hidden N [7] from P response norm {",
                              "  InputShape = [8]; KernelShape = [2]; Alpha = 0.0001;", "}",
                              "output O [1] from N all;"),
        SemanticError, "response norm bundle needs Beta", 2, 21),
    Bad("map-count-on-pool", lines("input P [24, 24];", "hidden Q [12, 12] from P max pool {",
                                   "  InputShape = [24, 24];", "  KernelShape = [2, 2];",
                                   "  MapCount = 2;", "}", "output O [1] from Q all;"),
        SemanticError, "max pool bundles do not take MapCount", 5, 3),
    Bad("weights-on-pool", lines("input P [24, 24];", "hidden Q [12, 12] from P mean pool {",
                                 "  InputShape = [24, 24]; KernelShape = [2, 2];",
                                 "  Stride = [2, 2]; Weights = [1, 2];", "}",
                                 "output O [1] from Q all;"),
        SemanticError, "mean pool bundles do not take Weights", 4, 20),
    Bad("sharing-on-norm", lines("input P [5, 12, 12];",
                                 "hidden N [5, 10, 10] from P response norm {",
                                 "  InputShape = [5, 12, 12];", "  KernelShape = [1, 3, 3];",
                                 "  Alpha = 0.0001;", "  Beta = 0.75;", "  Sharing = false;",
                                 "}", "output O [1] from N all;"),
        SemanticError, "response norm bundles do not take Sharing", 7, 3),
    Bad("stride-on-full", lines("input A [3];", "output O [1] from A all { Stride = [1]; }"),
        SemanticError, "bundles do not take Stride", 2, 27),

    # ---- geometry ------------------------------------------------------------------------
    Bad("kernel-larger-than-input", lines(*CONV_28, "  KernelShape = [5, 30];", *TAIL_C),
        SemanticError, "KernelShape[1] = 30 is larger than InputShape[1] = 28", 4, 17),
    Bad("stride-larger-than-kernel", lines(*CONV_28, "  KernelShape = [5, 5];",
                                           "  Stride = [2, 6];", *TAIL_C),
        SemanticError, "Stride[1] = 6 is larger than KernelShape[1] = 5", 5, 12),
    Bad("zero-layer-size", lines("input A [3, 0];", "output O [1] from A all;"),
        SemanticError, "a layer size must be a positive integer, not 0", 1, 13),
    Bad("negative-layer-size", lines("const N = 2 - 5;", "input A [N];",
                                     "output O [1] from A all;"),
        SemanticError, "a layer size must be a positive integer, not -3", 2, 10),
    Bad("real-layer-size", lines("input A [4.5];", "output O [1] from A all;"),
        SemanticError, "a layer size must be a positive integer, not 4.5", 1, 10),
    Bad("zero-kernel", lines(*CONV_28, "  KernelShape = [5, 0];", *TAIL_C),
        SemanticError, "KernelShape must hold positive integers; 0 is not", 4, 17),
    Bad("zero-stride", lines(*CONV_28, "  KernelShape = [5, 5];", "  Stride = [0, 2];", *TAIL_C),
        SemanticError, "Stride must hold positive integers; 0 is not", 5, 12),
    Bad("zero-map-count", lines(*CONV_28, "  KernelShape = [5, 5];", "  Stride = [2, 2];",
                                "  MapCount = 0;", *TAIL_C),
        SemanticError, "MapCount must be a positive integer", 6, 14),
    Bad("negative-pad", lines(*CONV_28, "  KernelShape = [5, 5];", "  LowerPad = [-1, 0];",
                              *TAIL_C),
        SemanticError, "LowerPad must hold non-negative integers; -1 is not", 5, 14),
    Bad("padding-with-pads", lines(*CONV_28, "  KernelShape = [5, 5];", "  Stride = [2, 2];",
                                   "  Padding = true;", "  UpperPad = [1, 1];", *TAIL_C),
        SemanticError, "Padding cannot be combined with LowerPad/UpperPad", 6, 3),
    Bad("lower-pad-too-large", lines(*CONV_28, "  KernelShape = [5, 5];", "  Stride = [2, 2];",
                                     "  LowerPad = [3, 0];", *TAIL_C),
        SemanticError, "LowerPad[0] = 3 is too large for KernelShape[0] = 5", 6, 14,
        note="at most (KernelShape - 1) / 2 = 2"),
    Bad("upper-pad-too-large", lines(*CONV_28, "  KernelShape = [5, 5];", "  Stride = [2, 2];",
                                     "  UpperPad = [1, 3];", *TAIL_C),
        SemanticError, "UpperPad[1] = 3 is too large for KernelShape[1] = 5", 6, 14,
        note="at most KernelShape / 2 = 2"),
    Bad("pads-not-tiling", lines(*CONV_28, "  KernelShape = [5, 5];", "  Stride = [2, 2];",
                                 "  LowerPad = [0, 0];", "  UpperPad = [2, 2];", *TAIL_C),
        SemanticError, "do not tile the padded input exactly", 7, 14,
        note="= 28 + 0 + 2 = 30"),
    Bad("input-shape-product", lines(*CONV_28[:2], "  InputShape = [28, 29];",
                                     "  KernelShape = [5, 5];", *TAIL_C),
        SemanticError, "InputShape [28, 29] has 812 cells, but the source layer 'Picture' "
                       "has 784 nodes", 3, 16),
    Bad("destination-count", lines("input P [29, 29];", "",
                                   "hidden C [5, 12, 12] from P convolve {",
                                   "  InputShape = [29, 29];", "  KernelShape = [5, 5];",
                                   "  Stride = [2, 2];", "  MapCount = 5;", *TAIL_C),
        SemanticError, "layer 'C' declares 720 nodes but its convolve bundle produces 845", 3, 10,
        note="(InputShape - KernelShape) / Stride + 1 = (29 - 5) / 2 + 1 = 13"),
    Bad("destination-count-padded-pool", lines("input P [24, 24];",
                                               "hidden Q [12, 11] from P max pool {",
                                               "  InputShape = [24, 24];",
                                               "  KernelShape = [3, 3];", "  Stride = [2, 2];",
                                               "  Padding = true;", "}",
                                               "output O [1] from Q all;"),
        SemanticError, "declares 132 nodes but its max pool bundle produces 144", 2, 10,
        note="(InputShape - 1) / Stride + 1 = (24 - 1) / 2 + 1 = 12"),
    Bad("destination-count-explicit-pads", lines(*CONV_28, "  KernelShape = [5, 5];",
                                                 "  Stride = [2, 2];", "  UpperPad = [1, 1];",
                                                 "  MapCount = 5;", *TAIL_C),
        SemanticError, "declares 720 nodes but its convolve bundle produces 845", 2, 10,
        note="(28 + 0 + 1 - 5) / 2 + 1 = 13"),
    Bad("destination-count-norm", lines("input P [5, 12, 12];",
                                        "hidden N [5, 12, 12] from P response norm {",
                                        "  InputShape = [5, 12, 12];",
                                        "  KernelShape = [1, 3, 3];",
                                        "  Alpha = 0.0001; Beta = 0.75;", "}",
                                        "output O [1] from N all;"),
        SemanticError, "declares 720 nodes but its response norm bundle produces 500", 2, 10,
        note="(12 - 3) / 1 + 1 = 10"),
    Bad("conv-weights-length", lines("input P [6];", "hidden C [4] from P convolve {",
                                     "  InputShape = [6];", "  KernelShape = [3];",
                                     "  Weights = [1, 2, 3];", "}", "output O [1] from C all;"),
        SemanticError, "Weights has 3 numbers, but this bundle has 4 weights", 5, 13,
        note="(3 + 1)"),
    Bad("full-weights-length", lines("input A [3];", "hidden H [2] from A all {",
                                     "  Weights = [1, 2, 3, 4, 5];", "}",
                                     "output O [1] from H all;"),
        SemanticError, "Weights has 5 numbers, but this bundle has 6 weights", 3, 13),
    Bad("filtered-weights-length", lines("const W = [1, 2, 3];", "input A [3];",
                                         "hidden H [2] from A where (s, d) => s != d {",
                                         "  Weights = W;", "}", "output O [1] from H all;"),
        SemanticError, "Weights has 3 numbers, but this bundle has 4 weights", 4, 13),

    # ---- auto ----------------------------------------------------------------------------
    Bad("auto-input-without-features", lines("input A auto;", "output O [1] from A all;"),
        SemanticError, "input layer 'A' is auto, but the number of features is not known", 1, 9),
    Bad("auto-output-without-classes", lines("input A [3];", "hidden H [4] from A all;",
                                             "output O auto from H all;"),
        SemanticError, "the output layer's size is auto", 3, 10, note="--classes",
        options={"features": 3}),
    Bad("auto-output-multiclass-without-classes", lines("input A [3];",
                                                        "output O auto from A all;"),
        SemanticError, "the number of classes is not known", 2, 10,
        options={"task": "multiclass"}),
    Bad("two-auto-inputs", lines("input A auto;", "input B auto;",
                                 "output O [1] { from A all; from B all; }"),
        SemanticError, "only one input layer can be auto", 2, 9, options={"features": 10}),
    Bad("auto-input-with-no-features-left", lines("input A [3];", "input B auto;",
                                                  "input C [7];",
                                                  "output O [1] { from A all; from B all; "
                                                  "from C all; }"),
        SemanticError, "already take 10 of the 10 features", 2, 9, options={"features": 10}),
    Bad("inputs-do-not-match-features", lines("input A [3];", "output O [1] from A all;"),
        SemanticError, "the input layers take 3 features, but the data has 10", 1, 9,
        options={"features": 10}),
    Bad("output-does-not-match-classes", lines("input A auto;", "output O [3] from A all;"),
        SemanticError, "the output layer has 3 nodes, but there are 4 classes", 2, 10,
        options={"features": 10, "classes": 4}),

    # ---- shares --------------------------------------------------------------------------
    Bad("share-unequal-structure", lines("input A [4];", "input B [3];",
                                         "hidden H1 [5] from A all;", "hidden H2 [5] from B all;",
                                         "output O [1] { from H1 all; from H2 all; }",
                                         "share { H1, H2 }"),
        SemanticError, "'H2' cannot share with 'H1': their structures differ", 6, 13,
        note="[5, 3]"),
    Bad("share-unequal-convolutions", lines("input P [8];",
                                            "hidden C1 [6] from P convolve { InputShape = [8]; "
                                            "KernelShape = [3]; }",
                                            "hidden C2 [4] from P convolve { InputShape = [8]; "
                                            "KernelShape = [5]; }",
                                            "output O [1] { from C1 all; from C2 all; }",
                                            "share { C1 , C2 }"),
        SemanticError, "structures differ", 5, 14),
    Bad("share-unequal-predicates", lines("input A [3];",
                                          "hidden H1 [4] from A where (s, d) => s != d;",
                                          "hidden H2 [4] from A where (s, d) => s == d;",
                                          "output O [1] { from H1 all; from H2 all; }",
                                          "share { A => H1, A => H2 }"),
        SemanticError, "structures differ", 5, 18),
    Bad("share-layer-with-two-bundles", lines("input A [4];", "hidden H1 [5] from A all;",
                                              "hidden H2 [5] {", "  from A all;",
                                              "  from H1 all;", "}", "output O [1] from H2 all;",
                                              "share { H1, H2 }"),
        SemanticError, "layer 'H2' has 2 bundles", 8, 13, note="Source => Layer"),
    Bad("share-one-item", lines("input A [4];", "hidden H1 [5] from A all;",
                                "output O [1] from H1 all;", "  share { H1 }"),
        SemanticError, "a share names at least two items", 4, 3),
    Bad("share-mixed-forms", lines("input A [4];", "input B [4];", "hidden H1 [5] from A all;",
                                   "hidden H2 [5] from B all;",
                                   "output O [1] { from H1 all; from H2 all; }",
                                   "share { H1, B => H2 }"),
        SemanticError, "mixes its three forms", 6, 1),
    Bad("share-bias-of-convolution", lines("input P [8];",
                                           "hidden C1 [6] from P convolve { InputShape = [8]; "
                                           "KernelShape = [3]; }",
                                           "hidden C2 [6] from P convolve { InputShape = [8]; "
                                           "KernelShape = [3]; }",
                                           "output O [1] { from C1 all; from C2 all; }",
                                           "share { 1 => C1, 1 => C2 }"),
        SemanticError, "layer 'C1' has no bias vector", 5, 9),
    Bad("share-pooling", lines("input P [8];",
                               "hidden Q1 [4] from P max pool { InputShape = [8]; "
                               "KernelShape = [2]; Stride = [2]; }",
                               "hidden Q2 [4] from P max pool { InputShape = [8]; "
                               "KernelShape = [2]; Stride = [2]; }",
                               "output O [1] { from Q1 all; from Q2 all; }",
                               "share { P => Q1, P => Q2 }"),
        SemanticError, "max pool bundles have no weights to share", 5, 9),
    Bad("share-input-layer", lines("input P [8];", "hidden H [6] from P all;",
                                   "output O [1] from H all;", "share { P, H }"),
        SemanticError, "input layer 'P' has no weights to share", 4, 9),
    Bad("share-missing-bundle", lines("input A [3];", "hidden H1 [2] from A all;",
                                      "hidden H2 [2] from A all;",
                                      "output O [1] { from H1 all; from H2 all; }",
                                      "share { X => H1, A => H2 }"),
        SemanticError, "layer 'H1' has no bundle from 'X'", 5, 9),

    # ---- constant expressions ------------------------------------------------------------
    Bad("division-by-zero", lines("const Z = 0;", "const X = 10 / Z;", "input A [X];",
                                  "output O [1] from A all;"),
        SemanticError, "division by zero", 2, 16),
    Bad("modulo-by-zero", lines("input A [3];", "const X = 10 % (3 - 3);",
                                "output O [1] from A all;"),
        SemanticError, "division by zero", 2, 17),
    Bad("real-division-by-zero", lines("input A [3];", "const X = 1.5 / 0;",
                                       "output O [1] from A all;"),
        SemanticError, "division by zero", 2, 17),
    Bad("power-too-large", lines("input A [3];", "", "const X = 2 ^ 70;",
                                 "output O [1] from A all;"),
        SemanticError, "too large", 3, 11),
    Bad("literal-too-large", lines("input A [99999999999999999999999];",
                                   "output O [1] from A all;"),
        SemanticError, "too large", 1, 10),
    Bad("product-too-large", lines("const X = 3037000500 * 3037000500;", "input A [3];",
                                   "output O [1] from A all;"),
        SemanticError, "too large", 1, 11),
    Bad("real-too-large", lines("input A [3];", "const X = 1e400;", "output O [1] from A all;"),
        SemanticError, "too large", 2, 11),
    Bad("boolean-arithmetic", lines("input A [3];", "const B = true + 1;",
                                    "output O [1] from A all;"),
        SemanticError, "'+' needs an integer or a real number, but this is a boolean", 2, 11),
    Bad("index-out-of-range", lines("const K = [5, 5];", "input A [K[2]];",
                                    "output O [1] from A all;"),
        SemanticError, "index 2 is out of range for an array of length 2", 2, 12),

    # ---- predicates ----------------------------------------------------------------------
    Bad("predicate-is-a-number", lines("input A [3];",
                                       "hidden H [2] from A where (s, d) => s + d;",
                                       "output O [1] from H all;"),
        SemanticError, "a predicate must be true or false", 2, 37),
    Bad("predicate-is-a-real", lines("input A [3];", "hidden H [2] from A where (s, d) => 1.5;",
                                     "output O [1] from H all;"),
        SemanticError, "a predicate must be true or false", 2, 37),
    Bad("predicate-is-an-array", lines("input A [3];",
                                       "hidden H [2] from A where (s, d) => [s, d];",
                                       "output O [1] from H all;"),
        SemanticError, "arrays", 2, 37),
    Bad("predicate-logic-on-integers", lines("input A [3];",
                                             "hidden H [2] from A where (s, d) => s < 2 && d;",
                                             "output O [1] from H all;"),
        SemanticError, "'&&' needs a boolean, but this is an integer", 2, 46),
    Bad("predicate-indexes-a-rank-1-layer", lines("input A [3];",
                                                  "hidden H [2] from A where (s, d) => "
                                                  "s[0] > 1;",
                                                  "output O [1] from H all;"),
        SemanticError, "only arrays can be indexed", 2, 37, note="write s, not s[0]"),
    Bad("predicate-index-out-of-range", lines("input A [2, 3];",
                                              "hidden H [2] from A where (s, d) => s[2] == 0;",
                                              "output O [1] from H all;"),
        SemanticError, "index 2 is out of range", 2, 39),
    Bad("predicate-compares-an-array", lines("input A [2, 3];",
                                             "hidden H [2] from A where (s, d) => s == 0;",
                                             "output O [1] from H all;"),
        SemanticError, "cannot compare an array with an integer", 2, 37),
    Bad("predicate-divides-by-zero", lines("input A [3];",
                                           "hidden H [2] from A where (s, d) => s / 0 == 1;",
                                           "output O [1] from H all;"),
        SemanticError, "division by zero", 2, 41),
    Bad("predicate-unknown-name", lines("input A [3];",
                                        "hidden H [2] from A where (s, d) => s < Cut;",
                                        "const Cut = 2;", "output O [1] from H all;"),
        SemanticError, "unknown name 'Cut'", 2, 41),
    Bad("predicate-same-parameter-names", lines("input A [3];",
                                                "hidden H [2] from A where (s, s) => s < 1;",
                                                "output O [1] from H all;"),
        SemanticError, "two parameters need different names", 2, 27),
    Bad("predicate-selects-nothing", lines("input A [3];",
                                           "hidden H [2] from A where (s, d) => s > 10;",
                                           "output O [1] from H all;"),
        SemanticError, "selects no connections", 2, 27),
    Bad("predicate-too-many-pairs", TOO_MANY_PAIRS, ResourceError, "pairs", 2, 31),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_program(case: Bad):
    with pytest.raises(NetsharpError) as info:
        netsharp.compile(case.program, path=PATH, **case.options)
    error = info.value
    assert isinstance(error, case.error), f"{type(error).__name__}: {error}"
    assert case.message in error.message, str(error)
    assert (error.line, error.col) == (case.line, case.col), str(error)
    if case.note is not None:
        assert any(case.note in note for note in error.notes), str(error)
    _check_rendering(error, case.program, case.line, case.col)


def _check_rendering(error: NetsharpError, program: str, line: int, col: int) -> None:
    text = str(error)
    assert text.startswith(f"{PATH}:{line}:{col}: error: {error.message}")
    assert "Traceback" not in text
    rendered = text.splitlines()
    source_line = program.split("\n")[line - 1]
    gutter = f"{line} | "
    assert rendered[1] == gutter + source_line
    caret_row = rendered[2]
    assert caret_row.startswith(" " * len(str(line)) + " | ")
    assert caret_row.index("^") - len(gutter) + 1 == col
    assert set(caret_row[len(gutter):].strip()) == {"^"}
    for note in error.notes:
        assert f"  = note: {note}" in rendered


def test_resource_error_points_at_the_predicate():
    with pytest.raises(ResourceError) as info:
        netsharp.compile(TOO_MANY_PAIRS, path=PATH)
    assert (info.value.line, info.value.col) == (2, 31)
    assert "400,000,000" in info.value.message
    assert str(info.value).startswith(f"{PATH}:2:31: error: ")


def test_every_error_kind_of_section_7_is_in_the_table():
    ids = {case.id for case in CASES}
    kinds = {
        "syntax": {"missing-semicolon", "unexpected-token", "hash-comment",
                   "unterminated-block-comment"},
        "unknown names": {"unknown-constant", "unknown-layer", "unknown-attribute",
                          "misspelt-hidden", "misspelt-sigmoid", "misspelt-convolve"},
        "duplicates": {"duplicate-layer", "duplicate-constant"},
        "one output": {"no-output-layer", "two-output-layers"},
        "an input": {"no-input-layer"},
        "graph": {"cycle", "self-bundle", "output-as-source", "hidden-not-reaching-output",
                  "input-with-bundles", "hidden-without-bundles"},
        "attribute types": {"tuple-of-wrong-length", "real-in-integer-tuple"},
        "missing attributes": {"missing-input-shape", "missing-kernel-shape", "missing-alpha",
                               "missing-beta"},
        "unwanted attributes": {"map-count-on-pool", "weights-on-pool", "sharing-on-norm"},
        "geometry": {"kernel-larger-than-input", "stride-larger-than-kernel", "zero-layer-size",
                     "padding-with-pads", "lower-pad-too-large", "pads-not-tiling",
                     "input-shape-product", "destination-count"},
        "weights": {"conv-weights-length", "full-weights-length", "filtered-weights-length"},
        "auto": {"auto-input-without-features", "auto-output-without-classes",
                 "two-auto-inputs"},
        "shares": {"share-unequal-structure", "share-layer-with-two-bundles", "share-one-item",
                   "share-mixed-forms"},
        "constants": {"division-by-zero", "power-too-large"},
        "predicates": {"predicate-is-a-number"},
    }
    for kind, wanted in kinds.items():
        assert wanted <= ids, f"{kind}: {wanted - ids}"
    assert len(ids) == len(CASES), "case ids must be unique"


def test_errors_carry_a_span_with_the_path():
    with pytest.raises(SemanticError) as info:
        netsharp.compile("input A [3];\noutput O [1] from B all;", path="dir/net.ns")
    span = info.value.span
    assert (span.path, span.line, span.col, span.end_line, span.end_col) == (
        "dir/net.ns", 2, 19, 2, 20)


def test_default_path_is_string_marker():
    with pytest.raises(ParseError) as info:
        netsharp.compile("input A [3]")
    assert str(info.value).startswith("<string>:1:")


def test_error_classes_form_a_hierarchy():
    for cls in (ParseError, SemanticError, ResourceError, netsharp.DataError):
        assert issubclass(cls, NetsharpError)
    assert issubclass(NetsharpError, Exception)


def test_two_digit_line_numbers_keep_the_caret_aligned():
    program = "\n" * 11 + "input A [3];\noutput O [1] from Nope all;\n"
    with pytest.raises(SemanticError) as info:
        netsharp.compile(program, path=PATH)
    assert (info.value.line, info.value.col) == (13, 19)
    _check_rendering(info.value, program, 13, 19)


def test_tabs_keep_the_caret_under_the_column():
    program = "input A [3];\n\toutput O [1] from Nope all;\n"
    with pytest.raises(SemanticError) as info:
        netsharp.compile(program, path=PATH)
    assert (info.value.line, info.value.col) == (2, 20)
    rendered = str(info.value).splitlines()
    assert rendered[2].index("^") - rendered[1].index("Nope") == 0


def test_crlf_line_endings_keep_positions():
    program = "input A [3];\r\n\r\noutput O [1] from Nope all;\r\n"
    with pytest.raises(SemanticError) as info:
        netsharp.compile(program, path=PATH)
    assert (info.value.line, info.value.col) == (3, 19)
    assert "3 | output O [1] from Nope all;" in str(info.value).splitlines()


@pytest.mark.parametrize("separator", ["\f", "\v", "\u2028", "\x85", "\r"])
def test_unusual_line_separators_show_the_right_line(separator):
    # \f is whitespace in the grammar; the others sit inside a comment
    program = f"// header{separator}comment\ninput A [3];\noutput O [1] from Nope all;\n"
    if separator == "\f":
        program = f"input A [3];{separator}\n\noutput O [1] from Nope all;\n"
    with pytest.raises(SemanticError) as info:
        netsharp.compile(program, path=PATH)
    assert (info.value.line, info.value.col) == (3, 19)
    assert str(info.value).splitlines()[1] == "3 | output O [1] from Nope all;"


@pytest.mark.parametrize("ending", ["\n\n\n", "\n// the end\n", "  \n\t\n"])
def test_unexpected_end_points_after_the_last_token(ending):
    program = "input A [3];\noutput O [1] from A all" + ending
    with pytest.raises(ParseError) as info:
        netsharp.compile(program, path=PATH)
    assert (info.value.line, info.value.col) == (2, 24)


def test_a_program_with_many_errors_reports_the_first_in_text_order():
    program = lines("input A [3];", "hidden H [2] from A all;", "const X = 1 / 0;",
                    "hidden G [0] from A all;", "output O [1] from H all;")
    with pytest.raises(SemanticError) as info:
        netsharp.compile(program, path=PATH)
    assert (info.value.line, info.value.col) == (3, 15)
