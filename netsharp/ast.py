"""The syntax tree: frozen records, each with the span of the text it came from."""

from __future__ import annotations

from dataclasses import dataclass

from .source import Source, Span


# ---- expressions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class IntLit:
    value: int
    span: Span


@dataclass(frozen=True)
class RealLit:
    value: float
    span: Span


@dataclass(frozen=True)
class BoolLit:
    value: bool
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Index:
    base: Expr
    index: Expr
    span: Span


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Expr, ...]
    span: Span
    function_span: Span


@dataclass(frozen=True)
class Array:
    items: tuple[Expr, ...]
    span: Span


Expr = IntLit | RealLit | BoolLit | Name | Index | Unary | Binary | Call | Array


# ---- statements -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConstDef:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Attribute:
    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Predicate:
    source_param: str
    dest_param: str
    body: Expr
    span: Span


@dataclass(frozen=True)
class Bundle:
    """`from SOURCE kind ...`; kind is one of ir.BUNDLE_KINDS."""

    kind: str
    source: str
    attributes: tuple[Attribute, ...]
    predicate: Predicate | None
    span: Span
    source_span: Span
    kind_span: Span


@dataclass(frozen=True)
class LayerDecl:
    kind: str  # 'input' | 'hidden' | 'output'
    name: str
    shape: tuple[Expr, ...] | None  # None means `auto`
    activation: str | None
    bundles: tuple[Bundle, ...]
    has_body: bool  # False for `;` (no bundles), True for one bundle or a `{ }` block
    span: Span
    name_span: Span
    shape_span: Span
    activation_span: Span | None


@dataclass(frozen=True)
class ShareItem:
    form: str  # 'layer' | 'bundle' | 'bias'
    layer: str
    source: str | None  # the bundle's source for form 'bundle'
    span: Span
    layer_span: Span


@dataclass(frozen=True)
class Share:
    items: tuple[ShareItem, ...]
    span: Span


Statement = ConstDef | LayerDecl | Share


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    source: Source
