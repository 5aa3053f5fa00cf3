"""Text -> syntax tree: Lark's LALR parser, then a transformer that keeps a span on every node."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import lark
from lark import v_args
from lark.visitors import Transformer_NonRecursive

from . import ast
from .errors import ParseError, did_you_mean
from .source import Source, Span

GRAMMAR_NAME = "netsharp.lark"

# Expectation sets are summarised for people: these terminals all start an expression.
_EXPRESSION_STARTS = {"INT", "REAL", "NAME", "TRUE", "FALSE", "LPAR", "LSQB", "ADDOP", "UNOP",
                      "ABS", "MAX"}
_OPERATORS = {"ADDOP", "MULOP", "CMP", "AND", "OR", "POW"}
_ACTIVATIONS = {"SIGMOID", "LINEAR", "SOFTMAX", "RLINEAR", "SQUARE", "SQRT", "SRLINEAR", "ABS",
                "TANH", "BRLINEAR"}
_STATEMENT_STARTS = {"CONST", "INPUT", "HIDDEN", "OUTPUT", "SHARE"}
_SHOWN_EXPECTATIONS = 6


def grammar_path() -> Path:
    """The grammar inside the installed package, else the source tree's top-level copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / GRAMMAR_NAME, here.parent / "grammar" / GRAMMAR_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"netsharp's grammar {GRAMMAR_NAME} is missing from the installation")


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    return lark.Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic",
                     propagate_positions=True, maybe_placeholders=True)


def parse(source: Source) -> ast.Program:
    """Parse a whole program; raises ParseError pointing at the first problem."""
    try:
        tree = _parser().parse(source.text)
    except lark.exceptions.UnexpectedInput as error:
        raise _parse_error(error, source).with_source(source) from None
    except RecursionError:
        raise ParseError("the program is nested too deeply to parse", _start_span(source),
                         source=source) from None
    try:
        return _ToAst(source).transform(tree)
    except lark.exceptions.VisitError as error:
        if isinstance(error.orig_exc, ParseError):
            raise error.orig_exc.with_source(source) from None
        raise


# ---- syntax errors for people -----------------------------------------------------------------

def _start_span(source: Source) -> Span:
    return Span(source.path, 1, 1, 1, 2)


def _parse_error(error: lark.exceptions.UnexpectedInput, source: Source) -> ParseError:
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        return _character_error(error, source)
    if isinstance(error, lark.exceptions.UnexpectedToken):
        return _token_error(error, source)
    return _end_error(set(getattr(error, "expected", ()) or ()), source)


def _character_error(error, source: Source) -> ParseError:
    line, col = error.line, error.column
    span = Span(source.path, line, col, line, col + 1)
    char = source.text[error.pos_in_stream]
    if char == "#":
        return ParseError("'#' does not start a comment in Net#", span,
                          ("comments are written // to the end of the line, or /* ... */",))
    if source.text.startswith("/*", error.pos_in_stream):
        return ParseError("unterminated /* comment", span.to(Span(source.path, line, col, line,
                                                                   col + 2)),
                          ("close it with */",))
    return ParseError(f"unexpected character {char!r}", span)


def _token_error(error, source: Source) -> ParseError:
    token = error.token
    expected_terminals = _accepted(error)
    if token.type == "$END":
        return _end_error(expected_terminals, source)
    span = Span(source.path, token.line, token.column, token.end_line, token.end_column)
    if source.text.startswith("/*", token.start_pos):
        return ParseError("unterminated /* comment", span.to(Span(source.path, token.line,
                                                                   token.column, token.line,
                                                                   token.column + 2)),
                          ("close it with */",))
    expected = _describe_expected(expected_terminals)
    notes = _keyword_hint(str(token), expected_terminals)
    if "NAME" in expected_terminals and str(token).isidentifier():
        notes += (f"'{token}' is a keyword (keywords ignore case) and cannot be used as a name",)
    return ParseError(f"expected {expected}, found {_describe_token(token)}", span, notes)


def _accepted(error) -> set[str]:
    """The terminals that could really come next (LALR's expected set can be too wide)."""
    try:
        return set(error.interactive_parser.accepts()) or set(error.expected)
    except Exception:  # accepts() replays the parser; fall back to the table's set if it can't
        return set(error.expected)


def _end_error(expected: set[str], source: Source) -> ParseError:
    line, col = _end_of_last_token(source)
    span = Span(source.path, line, col, line, col + 1)
    return ParseError(f"unexpected end of program; expected {_describe_expected(expected)}", span)


def _end_of_last_token(source: Source) -> tuple[int, int]:
    """Where the program's last token ends: the place something is missing."""
    last = None
    try:
        for token in _parser().lex(source.text):
            last = token
    except lark.exceptions.UnexpectedInput:
        pass
    return (last.end_line, last.end_column) if last is not None else (1, 1)


def _describe_token(token) -> str:
    if token.type == "NAME":
        return f"name '{token}'"
    return f"'{token}'"


def _describe_expected(expected: set[str]) -> str:
    names: list[str] = []
    if _STATEMENT_STARTS <= expected:
        names.append("a statement (const, input, hidden, output or share)")
        expected = expected - _STATEMENT_STARTS - {"SEMICOLON", "$END"}
    if _EXPRESSION_STARTS & expected and {"INT", "NAME"} <= expected:
        names.append("an expression")
        expected = expected - _EXPRESSION_STARTS
    if len(_OPERATORS & expected) > 2:
        names.append("an operator")
        expected = expected - _OPERATORS
    if len(_ACTIVATIONS & expected) > 2:
        names.append("an output function")
        expected = expected - _ACTIVATIONS
    names.extend(sorted(_terminal_name(t) for t in expected))
    if len(names) > _SHOWN_EXPECTATIONS:
        names = names[:_SHOWN_EXPECTATIONS] + ["..."]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _terminal_name(terminal: str) -> str:
    special = {"NAME": "a name", "INT": "an integer", "REAL": "a number", "$END": "end of program"}
    if terminal in special:
        return special[terminal]
    pattern = _parser().get_terminal(terminal).pattern
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return f"'{terminal.lower()}'"


def _keyword_hint(word: str, expected: set[str]) -> tuple[str, ...]:
    keywords = [t.lower() for t in expected if t.isalpha() and t not in ("NAME", "INT", "REAL")]
    return did_you_mean(word, keywords) if word.isidentifier() else ()


# ---- parse tree -> syntax tree ----------------------------------------------------------------

def _token_span(path: str, token) -> Span:
    return Span(path, token.line, token.column, token.end_line, token.end_column)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Builds ast records; every method receives Lark's position metadata first."""

    def __init__(self, source: Source):
        super().__init__()
        self.source = source

    def _span(self, meta) -> Span:
        return Span(self.source.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, token) -> Span:
        return _token_span(self.source.path, token)

    # program and constants
    def start(self, meta, items):
        statements = []
        for item in items:
            statements.extend(item if isinstance(item, list) else [item])
        return ast.Program(tuple(statements), self.source)

    def const_stmt(self, meta, children):
        return list(children[1:])

    def const_assign(self, meta, children):
        name, value = children
        return ast.ConstDef(str(name), value, self._span(meta), self._tok(name))

    # layers
    def layer_stmt(self, meta, children):
        kind, decl = children
        return decl(kind, self._span(meta))

    def layer_group(self, meta, children):
        kind = children[0]
        return [decl(kind, None) for decl in children[1:]]

    def layer_kind(self, meta, children):
        return str(children[0]).lower()

    def layer_decl(self, meta, children):
        name, (shape, shape_span), activation, (has_body, bundles) = children
        decl_span = self._span(meta)

        def build(kind: str, statement_span: Span | None) -> ast.LayerDecl:
            act, act_span = activation if activation else (None, None)
            return ast.LayerDecl(kind, str(name), shape, act, bundles, has_body,
                                 statement_span or decl_span, self._tok(name), shape_span,
                                 act_span)
        return build

    def shape_list(self, meta, children):
        return tuple(children), self._span(meta)

    def shape_auto(self, meta, children):
        return None, self._tok(children[0])

    def activation(self, meta, children):
        return str(children[0]).lower(), self._tok(children[0])

    def no_bundles(self, meta, children):
        return False, ()

    def one_bundle(self, meta, children):
        return True, tuple(children)

    def bundle_block(self, meta, children):
        return True, tuple(children)

    # bundles
    def bundle(self, meta, children):
        _, source, (kind, attributes, predicate, kind_span) = children
        return ast.Bundle(kind, str(source), attributes, predicate, self._span(meta),
                          self._tok(source), kind_span)

    def full(self, meta, children):
        attributes = children[1] if len(children) > 1 else ()
        return "full", attributes, None, self._tok(children[0])

    def filtered(self, meta, children):
        attributes = children[2] if len(children) > 2 else ()
        return "filtered", attributes, children[1], self._tok(children[0])

    def convolve(self, meta, children):
        return "convolve", children[1], None, self._tok(children[0])

    def max_pool(self, meta, children):
        return "max_pool", children[2], None, self._tok(children[0]).to(self._tok(children[1]))

    def mean_pool(self, meta, children):
        return "mean_pool", children[2], None, self._tok(children[0]).to(self._tok(children[1]))

    def response_norm(self, meta, children):
        return ("response_norm", children[2], None,
                self._tok(children[0]).to(self._tok(children[1])))

    def predicate(self, meta, children):
        source_param, dest_param, body = children
        return ast.Predicate(str(source_param), str(dest_param), body, self._span(meta))

    def attr_block(self, meta, children):
        return tuple(children)

    def attribute(self, meta, children):
        name, value = children
        return ast.Attribute(str(name), value, self._span(meta), self._tok(name))

    # sharing
    def share_stmt(self, meta, children):
        return ast.Share(tuple(children[1:]), self._span(meta))

    def share_layer(self, meta, children):
        (layer,) = children
        return ast.ShareItem("layer", str(layer), None, self._span(meta), self._tok(layer))

    def share_bundle(self, meta, children):
        source, layer = children
        return ast.ShareItem("bundle", str(layer), str(source), self._span(meta), self._tok(layer))

    def share_bias(self, meta, children):
        number, layer = children
        if int(number) != 1:
            raise ParseError(f"a shared bias is written '1 => {layer}', not '{number} => {layer}'",
                             self._tok(number))
        return ast.ShareItem("bias", str(layer), None, self._span(meta), self._tok(layer))

    # expressions
    def binary(self, meta, children):
        left, op, right = children
        return ast.Binary(str(op), left, right, self._span(meta))

    def unary(self, meta, children):
        op, operand = children
        return ast.Unary(str(op), operand, self._span(meta))

    def index(self, meta, children):
        base, position = children
        return ast.Index(base, position, self._span(meta))

    def int_lit(self, meta, children):
        return ast.IntLit(int(children[0]), self._tok(children[0]))

    def real_lit(self, meta, children):
        return ast.RealLit(float(children[0]), self._tok(children[0]))

    def true_lit(self, meta, children):
        return ast.BoolLit(True, self._tok(children[0]))

    def false_lit(self, meta, children):
        return ast.BoolLit(False, self._tok(children[0]))

    def name(self, meta, children):
        return ast.Name(str(children[0]), self._tok(children[0]))

    def call(self, meta, children):
        function, *args = children
        return ast.Call(str(function).lower(), tuple(args), self._span(meta), self._tok(function))

    def array(self, meta, children):
        return ast.Array(tuple(children), self._span(meta))
