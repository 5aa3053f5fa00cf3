"""Properties over generated programs (strategies in netsharp_strategies.py).

(a) valid programs compile to exactly the layers and weight counts LANGUAGE.md gives them;
(b) damaged programs and (c) random text either compile or raise a NetsharpError that points
inside the text: no other exception ever escapes `netsharp.compile`.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from netsharp_strategies import (
    GeneratedProgram,
    corrupted_programs,
    printable_text,
    programs_with_weights,
    token_soup,
    valid_programs,
)

import netsharp

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compile_or_error(text: str):
    """Compile; return the Network or the NetsharpError. Any other exception fails the test."""
    try:
        return netsharp.compile(text)
    except netsharp.NetsharpError as error:
        return error


def assert_points_inside(error: netsharp.NetsharpError, text: str) -> None:
    """line/col are 1-based and name a place in the text (the end of a line included)."""
    lines = text.split("\n")
    assert isinstance(error.line, int) and isinstance(error.col, int), \
        f"error without a location: {error!r}"
    assert 1 <= error.line <= len(lines), f"line {error.line} of {len(lines)}: {error}"
    assert 1 <= error.col <= len(lines[error.line - 1]) + 1, \
        f"col {error.col} on a line of {len(lines[error.line - 1])} characters: {error}"
    str(error)   # the rendered message with its caret never fails


def check_robust(text: str) -> None:
    result = compile_or_error(text)
    if isinstance(result, netsharp.NetsharpError):
        assert_points_inside(result, text)
    else:
        assert result.total_weights >= 0


# ---- (a) valid programs -----------------------------------------------------------------------

@settings(FAST, max_examples=400)
@given(valid_programs())
def test_valid_programs_compile_to_the_expected_counts(program: GeneratedProgram):
    result = compile_or_error(program.text)
    assert not isinstance(result, netsharp.NetsharpError), f"valid program rejected:\n{result}"
    net = result
    assert {layer.name: layer.nodes for layer in net.layers} == program.layer_nodes
    assert {layer.name: layer.weights for layer in net.layers} == program.layer_weights
    assert net.total_weights == program.total_weights
    json.dumps(net.to_dict())


@settings(FAST, max_examples=40)
@given(programs_with_weights())
@example(("input Picture [28, 28];\n"
          "hidden C1 [5, 12, 12] from Picture convolve {\n"
          "  InputShape = [28, 28]; KernelShape = [5, 5]; Stride = [2, 2]; MapCount = 5; }\n"
          "output Y [1] from C1 all;", 130 + 720 + 1))
def test_total_weights_pairs(pair: tuple[str, int]):
    text, expected = pair
    assert netsharp.compile(text).total_weights == expected


# ---- (b) damaged programs and (c) random text --------------------------------------------------

@settings(FAST, max_examples=800)
@given(corrupted_programs())
@example("input X [2]; output Y [99999999999999999999] from X all;")
@example("input X [2]; output Y [1] from X all; #")
@example("input X [2]; output Y [1] from X where (s, d) => s[0] < 1;")
@example("const A = 2 ^ 2 ^ 2 ^ 2 ^ 2 ^ 2; input X [A]; output Y [1] from X all;")
@example("input X [2]; output Y [1] from X convolve { InputShape = [2]; KernelShape = [3]; }")
@example("input X [2]; output Y [1] from X all { Weights = [1, 2]; }")
@example("input X [2];\n\noutput Y [1] from X all")
@example("input X [2]; output Y [1] from X all; /* never closed")
@example("Input\x0c\n ")    # end of program after a form feed
def test_damaged_programs_raise_only_located_netsharp_errors(text: str):
    check_robust(text)


@settings(FAST, max_examples=300)
@given(printable_text())
@example("")
@example("\n\n\n")
@example("@")
@example("\x00")
def test_random_text_raises_only_located_netsharp_errors(text: str):
    check_robust(text)


@settings(FAST, max_examples=300)
@given(token_soup())
def test_token_soup_raises_only_located_netsharp_errors(text: str):
    check_robust(text)


@settings(FAST, max_examples=200)
@given(corrupted_programs())
@example("input X [2];\f\noutput Y [1] from X #;")
@example("input X [2];\x0b output Y [1] from X #;")
@example("input X [2];\r\noutput Y [1] from X #;")
def test_error_message_quotes_the_reported_line(text: str):
    """The caret rendering shows the line that `line` names (lines end at '\\n' only)."""
    result = compile_or_error(text)
    if isinstance(result, netsharp.NetsharpError):
        line = text.split("\n")[result.line - 1].rstrip("\r").expandtabs(1)
        assert f"{result.line} | {line}" in str(result), str(result)
