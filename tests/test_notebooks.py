"""Every notebook runs end to end at the tiny profile (papermill), in order.

Later notebooks read what earlier ones wrote (database, trained networks, results), so they share
one results folder and run on one xdist worker (``--dist loadgroup``) in file order.
"""

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def notebook_results(tmp_path_factory):
    return tmp_path_factory.mktemp("notebook-results")


@pytest.mark.notebook
@pytest.mark.xdist_group("notebooks")
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_at_tiny_profile(notebook, notebook_results):
    import papermill

    out = notebook_results / notebook.name
    figures = notebook_results / "tiny" / "figures"
    before = set(figures.glob("*.png")) if figures.exists() else set()
    papermill.execute_notebook(
        str(notebook), str(out),
        parameters={"profile": "tiny", "results_root": str(notebook_results)},
        cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
    )
    assert out.exists()
    new = set(figures.glob("*.png")) - before
    assert new, f"{notebook.name} wrote no new figure"
