"""Every notebook runs end to end at the tiny profile (papermill), then the book is checked.

Later notebooks read what earlier ones wrote (database, trained networks, results), so one test
executes them in file order into one run folder (one xdist worker, no ordering assumptions),
then builds the book from the executed notebooks (execution off, as ``python -m srlib.book
rerun`` does) and opens every page in headless Chromium: no image may fail to load and no page
may show an error traceback.
"""

from pathlib import Path

import pytest

from srlib import book

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.notebook
def test_notebooks_run_at_tiny_profile_and_book_renders(tmp_path):
    import papermill

    results = tmp_path / "results"
    figures = results / "tiny" / "figures"
    (tmp_path / "notebooks").mkdir()
    for notebook in NOTEBOOKS:
        before = set(figures.glob("*.png")) if figures.exists() else set()
        papermill.execute_notebook(
            str(notebook), str(tmp_path / "notebooks" / notebook.name),
            parameters={"profile": "tiny", "results_root": str(results)},
            cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
        )
        new = set(figures.glob("*.png")) - before
        assert new, f"{notebook.name} wrote no new figure"
    html = book.build_book(tmp_path, name="tiny")
    page = html / "notebooks" / f"{NOTEBOOKS[0].stem}.html"
    assert page.exists()
    # MathJax is served from the book itself (srlib._mathjax), not from a CDN
    assert 'src="../_static/mathjax/tex-mml-chtml.js"' in page.read_text()
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    problems = book.check_book(html)
    assert problems == [], "\n".join(problems)
