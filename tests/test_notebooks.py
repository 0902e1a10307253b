"""The notebooks: committed as their only source, runnable at the tiny profile, rendered.

The output-free ``.ipynb`` files in ``notebooks/`` are the single source of the study (ruff
lints their code). The fast tests here check that none is committed with outputs or execution
counts and that each has a papermill ``parameters`` cell of literals.

Later notebooks read what earlier ones wrote (database, trained networks, results), so one
module fixture executes them in file order into one run folder, then builds the book from the
executed notebooks (execution off, as ``python -m tools.book rerun`` does). One test checks
the run and the book; another opens every page in headless Chromium (no image may fail to
load, no page may show an error traceback) and is skipped, with the reason, where Chromium or
its driver is missing. Both share the fixture, so they run on one xdist worker.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from tools import book

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BROWSER_MISSING = book.browser_missing()


def test_notebooks_found():
    assert [nb.name[:2] for nb in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {i} has outputs: clear them"
        assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name} carries widget state"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_anatomy(path):
    """One H1, then the parameters cell (literals only) as the first code cell."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    headings = [line for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("# ")]
    assert len(headings) == 1, f"{path.name}: {len(headings)} H1 headings"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "hide-input" not in code[0].metadata.get("tags", [])
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    for statement in ast.parse(code[0].source).body:
        assert isinstance(statement, ast.Assign), ast.unparse(statement)
        ast.literal_eval(statement.value)  # raises unless a literal
    names = {t.id for s in ast.parse(code[0].source).body for t in s.targets}
    assert {"profile", "results_root"} <= names


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory):
    """Every notebook executed at the tiny profile, and the book built from them."""
    import papermill

    run = tmp_path_factory.mktemp("tiny_run")
    results = run / "results"
    figures = results / "tiny" / "figures"
    (run / "notebooks").mkdir()
    new_figures = {}
    for notebook in NOTEBOOKS:
        before = set(figures.glob("*.png")) if figures.exists() else set()
        papermill.execute_notebook(
            str(notebook), str(run / "notebooks" / notebook.name),
            parameters={"profile": "tiny", "results_root": str(results)},
            cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
        )
        new_figures[notebook.name] = set(figures.glob("*.png")) - before
    html = book.build_book(run, name="tiny", root=ROOT)
    return new_figures, html


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.network  # notebook 01 downloads the public samples unless they are cached
@pytest.mark.xdist_group("tiny_book")
def test_notebooks_run_at_tiny_profile_and_book_builds(tiny_book):
    new_figures, html = tiny_book
    for name, new in new_figures.items():
        if name.startswith("08_"):  # the conclusions show chapter 5's interval figure
            continue
        assert new, f"{name} wrote no new figure"
    page = html / "notebooks" / f"{NOTEBOOKS[0].stem}.html"
    assert page.exists()
    # MathJax is served from the book itself (book/_ext/mathjax_offline.py), not from a CDN
    assert 'src="../_static/mathjax/tex-mml-chtml.js"' in page.read_text()
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    # cells tagged hide-input are collapsed: their code sits in a toggle
    assert "tag_hide-input" in page.read_text()
    # the intro opens with the answer, glued across pages: Fig. 6 from notebook 05 and one
    # verdict per finding from the conclusions notebook
    intro = (html / "book" / "intro.html").read_text()
    answer = intro[intro.index('id="the-answer"'):intro.index('id="the-paper"')]
    assert "<img" in answer
    verdicts = re.findall(r"\((i|ii|iii|iv)\) [^<]*?: (holds|fails|tie|undecided|not measured)",
                          answer)
    assert [key for key, _ in verdicts] == ["i", "ii", "iii", "iv"], verdicts
    assert "Local headroom" in answer and "**" not in answer


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.network
@pytest.mark.xdist_group("tiny_book")
@pytest.mark.skipif(BROWSER_MISSING is not None, reason=str(BROWSER_MISSING))
def test_tiny_book_renders_in_chromium(tiny_book):
    _, html = tiny_book
    problems = book.check_book(html)
    assert problems == [], "\n".join(problems)
