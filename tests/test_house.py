"""The package's layout: imports that run one way, sizes a reader can take in, one owner per
method name, and comments that stay true (no timings of one machine)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "srlib"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules) -> set[str]:
    """The srlib modules ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found |= {target, *(f"{target}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    # a module's own package (srlib, srlib.training) is not an edge: it re-exports its parts
    return {t for t in found if t in modules and t != name and not name.startswith(t + ".")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _sources():
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])


def _code_lines(node, lines) -> int:
    span = set(range(node.lineno, node.end_lineno + 1))
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        span -= set(range(first.lineno, first.end_lineno + 1))
    return sum(1 for k in span if lines[k - 1].strip() and not lines[k - 1].strip().startswith("#"))


def test_files_and_functions_are_short_enough_to_read():
    long_files = {str(p.relative_to(ROOT)): n for p in _sources()
                  if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    long_functions = {}
    for path in _sources():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if (n := _code_lines(node, lines)) > MAX_FUNCTION_LINES:
                    long_functions[f"{path.relative_to(ROOT)}:{node.name}"] = n
    assert long_files == {}
    assert long_functions == {}


METHOD_KEYS = ("local_bayes", "interpolation_centred", "interpolation_fitted",
               "interpolation_centred_fitted")


@pytest.mark.parametrize("key", METHOD_KEYS)
def test_a_method_key_is_written_in_one_module(key):
    owners = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                    if re.search(rf"[\"']{key}[\"']", p.read_text()))
    assert owners == ["srlib/methods.py"]


# a number with a unit of time (not "2 s^2", a polynomial in s)
_TIMING = re.compile(r"\b\d+(\.\d+)?\s*(s|ms|seconds?|milliseconds?|minutes?|min)\b(?!\^)")
_HISTORY = re.compile(r"\b(was|were) (called|named)\b|\bbefore this\b|\bused to be\b"
                      r"|\bnamed \S+ before\b", re.I)


def _comments_and_docstrings(path: Path):
    text = path.read_text()
    for tok in tokenize.generate_tokens(iter(text.splitlines(True)).__next__):
        if tok.type == tokenize.COMMENT:
            yield tok.start[0], tok.string
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), doc


def test_comments_state_no_timings_and_no_history():
    found = []
    for path in PACKAGE.rglob("*.py"):
        for line, text in _comments_and_docstrings(path):
            for pattern in (_TIMING, _HISTORY):
                if m := pattern.search(text):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {m.group(0)!r}")
    assert found == []


def test_every_module_of_the_package_is_listed_as_a_submodule():
    import srlib

    top = {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    top |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert top - {"__main__"} == set(srlib._SUBMODULES)


def test_every_submodule_is_an_attribute_and_baselines_need_no_torch():
    code = ("import sys, srlib; srlib.findings, srlib.baselines, srlib.parallel, "
            "srlib.intervals, srlib.methods; import srlib.baselines; "
            "print('torch' in sys.modules)")
    # a fresh interpreter: this test process has torch loaded already
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
