"""Net#'s own evaluator for constants, attribute values and `where` predicates (never eval).

Values are Python ints, floats, bools and tuples. Predicates are evaluated once over every
(source, destination) pair at a time: the same operations then act on numpy arrays.
"""

from __future__ import annotations

import math
import operator
from typing import Any
from collections.abc import Mapping

from . import ast
from .errors import SemanticError, did_you_mean

MAX_INT_BITS = 62  # larger integers are refused: no network needs them and big powers would hang

_COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
                "==": operator.eq, "!=": operator.ne}
_TYPE_NAMES = {"bool": "a boolean", "int": "an integer", "real": "a real number",
               "tuple": "an array"}


def kind_of(value: Any) -> str:
    """'bool', 'int', 'real' or 'tuple', for scalars and numpy arrays alike."""
    if isinstance(value, tuple):
        return "tuple"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "real"
    return {"b": "bool", "i": "int", "u": "int", "f": "real"}[value.dtype.kind]


def describe(value: Any) -> str:
    """A value as a user would write it, for error messages."""
    if isinstance(value, tuple):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, (int, float)) else f"<{kind_of(value)} values>"


class Evaluator:
    """Evaluates expressions over named values; `vectorized` accepts numpy arrays as values."""

    def __init__(self, names: Mapping[str, Any], vectorized: bool = False):
        self.names = names
        self.vectorized = vectorized

    def eval(self, expr: ast.Expr) -> Any:
        method = getattr(self, "_" + type(expr).__name__.lower())
        return method(expr)

    # leaves
    def _intlit(self, expr: ast.IntLit) -> int:
        return self._checked_int(expr.value, expr)

    def _reallit(self, expr: ast.RealLit) -> float:
        if not math.isfinite(expr.value):
            raise SemanticError("this number is too large", expr.span)
        return expr.value

    def _boollit(self, expr: ast.BoolLit) -> bool:
        return expr.value

    def _name(self, expr: ast.Name) -> Any:
        if expr.id in self.names:
            return self.names[expr.id]
        raise SemanticError(f"unknown name '{expr.id}'", expr.span,
                            did_you_mean(expr.id, self.names)
                            or ("constants must be defined before they are used",))

    def _array(self, expr: ast.Array) -> tuple:
        items = tuple(self.eval(item) for item in expr.items)
        if self.vectorized and any(not isinstance(v, (int, float, bool, tuple)) for v in items):
            raise SemanticError("arrays of per-connection values are not supported in predicates",
                                expr.span)
        return items

    def _index(self, expr: ast.Index) -> Any:
        base, position = self.eval(expr.base), self.eval(expr.index)
        if kind_of(base) != "tuple":
            raise SemanticError(f"only arrays can be indexed; this is {_TYPE_NAMES[kind_of(base)]}",
                                expr.base.span, ("a rank-1 layer's index is a plain integer: "
                                                 "write s, not s[0]",))
        if not isinstance(position, int) or isinstance(position, bool):
            raise SemanticError("an index must be a constant integer", expr.index.span)
        if not 0 <= position < len(base):
            raise SemanticError(f"index {position} is out of range for an array of length "
                                f"{len(base)}", expr.index.span)
        return base[position]

    # operators
    def _unary(self, expr: ast.Unary) -> Any:
        value = self.eval(expr.operand)
        if expr.op == "!":
            self._require(value, ("bool",), expr.operand, "'!'")
            return (not value) if isinstance(value, bool) else ~value
        self._require(value, ("int", "real"), expr.operand, f"unary '{expr.op}'")
        return -value if expr.op == "-" else value

    def _binary(self, expr: ast.Binary) -> Any:
        if expr.op in ("&&", "||"):
            return self._logical(expr)
        left, right = self.eval(expr.left), self.eval(expr.right)
        if expr.op in _COMPARISONS:
            return self._compare(expr, left, right)
        self._require(left, ("int", "real"), expr.left, f"'{expr.op}'")
        self._require(right, ("int", "real"), expr.right, f"'{expr.op}'")
        return self._arithmetic(expr, left, right)

    def _logical(self, expr: ast.Binary) -> Any:
        left = self.eval(expr.left)
        self._require(left, ("bool",), expr.left, f"'{expr.op}'")
        if isinstance(left, bool) and left == (expr.op == "||"):
            return left  # short-circuit, as C# does
        right = self.eval(expr.right)
        self._require(right, ("bool",), expr.right, f"'{expr.op}'")
        return (left & right) if expr.op == "&&" else (left | right)

    def _compare(self, expr: ast.Binary, left: Any, right: Any) -> Any:
        kinds = {kind_of(left), kind_of(right)}
        numeric = kinds <= {"int", "real"}
        if not numeric and not (kinds == {"bool"} and expr.op in ("==", "!=")):
            raise SemanticError(f"cannot compare {_TYPE_NAMES[kind_of(left)]} with "
                                f"{_TYPE_NAMES[kind_of(right)]} using '{expr.op}'", expr.span)
        return _COMPARISONS[expr.op](left, right)

    def _arithmetic(self, expr: ast.Binary, left: Any, right: Any) -> Any:
        integral = kind_of(left) == "int" and kind_of(right) == "int"
        if expr.op == "^":
            return self._power(expr, left, right, integral)
        if expr.op in ("/", "%"):
            self._no_zero_divisor(expr, right)
            if integral:
                return self._checked_int(_int_divide(left, right, expr.op), expr)
            return (left / right) if expr.op == "/" else _fmod(left, right)
        result = {"+": operator.add, "-": operator.sub, "*": operator.mul}[expr.op](left, right)
        return self._checked_int(result, expr) if integral else self._finite(result, expr)

    def _power(self, expr: ast.Binary, base: Any, exponent: Any, integral: bool) -> Any:
        if integral and not _any_negative(exponent):
            if _power_bits(base, exponent) >= MAX_INT_BITS:
                raise SemanticError(f"this integer is too large (the limit is 2^{MAX_INT_BITS})",
                                    expr.span)
            return base ** exponent
        try:
            return self._finite(_real(base) ** _real(exponent), expr)
        except (OverflowError, ZeroDivisionError):
            raise SemanticError("this power has no finite real value", expr.span) from None

    def _call(self, expr: ast.Call) -> Any:
        arity = {"abs": (1, 1), "min": (2, None), "max": (2, None)}.get(expr.function)
        if arity is None:
            raise SemanticError(f"unknown function '{expr.function}'", expr.function_span,
                                did_you_mean(expr.function, ["abs", "min", "max"]))
        low, high = arity
        if len(expr.args) < low or (high is not None and len(expr.args) > high):
            wanted = "1 argument" if high == 1 else f"at least {low} arguments"
            raise SemanticError(f"'{expr.function}' takes {wanted}, not {len(expr.args)}",
                                expr.span)
        args = [self.eval(arg) for arg in expr.args]
        for arg, node in zip(args, expr.args):
            self._require(arg, ("int", "real"), node, f"'{expr.function}'")
        return _apply_function(expr.function, args, self.vectorized)

    # checks
    def _require(self, value: Any, kinds: tuple[str, ...], node: ast.Expr, what: str) -> None:
        kind = kind_of(value)
        if kind not in kinds:
            wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
            raise SemanticError(f"{what} needs {wanted}, but this is {_TYPE_NAMES[kind]}",
                                node.span)

    def _checked_int(self, value: Any, expr: ast.Expr) -> Any:
        limit = 1 << MAX_INT_BITS
        too_big = abs(value) >= limit if isinstance(value, int) else (abs(value) >= limit).any()
        if too_big:
            raise SemanticError(f"this integer is too large (the limit is 2^{MAX_INT_BITS})",
                                expr.span)
        return value

    def _finite(self, value: Any, expr: ast.Expr) -> Any:
        finite = math.isfinite(value) if isinstance(value, float) else _all_finite(value)
        if not finite:
            raise SemanticError("this expression has no finite value", expr.span)
        return value

    def _no_zero_divisor(self, expr: ast.Binary, divisor: Any) -> None:
        zero = divisor == 0 if isinstance(divisor, (int, float)) else (divisor == 0).any()
        if zero:
            raise SemanticError("division by zero", expr.right.span)


# ---- helpers shared by scalars and arrays -----------------------------------------------------

def _int_divide(left: Any, right: Any, op: str) -> Any:
    """C#'s integer `/` (truncating toward zero) and `%` (sign of the dividend)."""
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right) * (1 if (left >= 0) == (right >= 0) else -1)
        return quotient if op == "/" else left - right * quotient
    import numpy as np

    quotient = np.abs(left) // np.abs(right) * np.where((left >= 0) == (right >= 0), 1, -1)
    return quotient if op == "/" else left - right * quotient


def _fmod(left: Any, right: Any) -> Any:
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return math.fmod(left, right)
    import numpy as np

    return np.fmod(left, right)


def _real(value: Any) -> Any:
    return float(value) if isinstance(value, (int, float)) else value.astype("float64")


def _any_negative(value: Any) -> bool:
    return value < 0 if isinstance(value, (int, float)) else bool((value < 0).any())


def _all_finite(values: Any) -> bool:
    import numpy as np

    return bool(np.isfinite(values).all())


def _power_bits(base: Any, exponent: Any) -> float:
    """log2 of the largest |base ^ exponent|, computed without forming the power."""
    if isinstance(base, int) and isinstance(exponent, int):
        return exponent * math.log2(abs(base)) if abs(base) > 1 else 0.0
    import numpy as np

    return float(np.max(exponent * np.log2(np.maximum(np.abs(_real(base)), 1.0))))


def _apply_function(name: str, args: list, vectorized: bool) -> Any:
    if not vectorized:
        return {"abs": lambda a: abs(a[0]), "min": min, "max": max}[name](args)
    import numpy as np

    if name == "abs":
        return np.abs(args[0])
    combine = np.minimum if name == "min" else np.maximum
    result = args[0]
    for arg in args[1:]:
        result = combine(result, arg)
    return result
