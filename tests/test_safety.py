"""No code path in netsharp runs text or data as code.

netsharp reads programs and model files that may come from anyone, so its own source must never
call eval/exec/the compile builtin/__import__, never import a pickle-like loader (pickle,
cPickle, _pickle, cloudpickle, dill, joblib, marshal, shelve), never call np.load without
allow_pickle=False, and never call torch.load. The scan reads the source with `ast`, so
comments, strings and methods that merely share a name (Evaluator.eval) do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "netsharp"
CODE_BUILTINS = frozenset({"eval", "exec", "compile", "__import__"})
PICKLE_MODULES = frozenset({"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib",
                            "marshal", "shelve"})
NUMPY_NAMES = frozenset({"np", "numpy"})


def bound_names(tree: ast.Module) -> set[str]:
    """Names a module defines or imports anywhere: a call to one of these is not a builtin
    (netsharp.compiler defines its own `compile`, and other modules import it)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _dotted(node: ast.expr) -> str:
    """`a.b.c` for an attribute chain on a name, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _pickle_import(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] in PICKLE_MODULES:
                return f"import {alias.name}"
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        root = node.module.split(".")[0]
        if root in PICKLE_MODULES:
            return f"from {node.module} import ..."
        if root in ("numpy", "torch") and any(a.name == "load" for a in node.names):
            return f"from {node.module} import load"
    return None


def _allows_no_pickle(call: ast.Call) -> bool:
    return any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant)
               and k.value.value is False for k in call.keywords)


def _bad_call(call: ast.Call, bound: set[str]) -> str | None:
    name = _dotted(call.func)
    if name in CODE_BUILTINS and name not in bound:
        return f"{name}(...)"
    if name.startswith("builtins.") and name.split(".", 1)[1] in CODE_BUILTINS:
        return f"{name}(...)"
    if name.split(".")[0] in NUMPY_NAMES and name.endswith(".load") and name.count(".") == 1 \
            and not _allows_no_pickle(call):
        return f"{name}(...) without allow_pickle=False"
    if name == "torch.load":
        return "torch.load(...)"
    return None


def scan(source: str, filename: str = "<source>") -> list[str]:
    """'file:line: what' for every unsafe construct in one module's source."""
    tree = ast.parse(source, filename)
    bound = bound_names(tree)
    findings = []
    for node in ast.walk(tree):
        what = _pickle_import(node)
        if what is None and isinstance(node, ast.Call):
            what = _bad_call(node, bound)
        if what:
            findings.append(f"{filename}:{node.lineno}: {what}")
    return findings


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_package_has_modules_to_scan():
    names = {p.name for p in package_files()}
    assert {"compiler.py", "model.py", "parse.py", "consts.py"} <= names


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_code_execution_or_unpickling(path: Path):
    assert scan(path.read_text(encoding="utf-8"), str(path)) == []


# ---- the scanner can fail ----------------------------------------------------------------------

UNSAFE = '''
import pickle
import numpy as np
from dill import loads
import builtins

def f(text, path):
    eval(text)
    exec(text)
    __import__("os")
    compile(text, "x", "exec")
    builtins.compile(text, "x", "exec")
    np.load(path)
    np.load(path, allow_pickle=True)
    torch.load(path)
'''

SAFE = '''
import numpy as np
from .compiler import compile
from .consts import Evaluator

def f(text, path):
    compile(text)                            # netsharp's own compile, imported
    Evaluator({}).eval(text)                 # a method named eval
    np.load(path, allow_pickle=False)
    "eval(x)"                                # a string
    # exec(x)
'''


def test_scanner_flags_each_unsafe_construct():
    findings = scan(UNSAFE)
    for what in ("import pickle", "from dill import", "eval(", "exec(", "__import__(",
                 ":11: compile(", "builtins.compile(", "np.load(...) without",
                 "torch.load("):
        assert any(what in finding for finding in findings), (what, findings)
    assert len(findings) == 10, findings


def test_scanner_passes_lookalikes():
    assert scan(SAFE) == []


def test_scanner_knows_a_local_compile_from_the_builtin():
    assert scan("def compile(text):\n    return text\ncompile('x')\n") == []
    assert scan("compile('x', 'f', 'exec')\n") != []
