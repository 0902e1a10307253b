"""Clear the outputs and execution counts of notebooks, in place, before committing them.

The notebooks in ``notebooks/`` are the study's only source and are committed without outputs
(``tests/test_notebooks.py`` refuses any that has some). Cell sources, tags and ids stay as
they are. Usage, from the repository root::

    python -m tools.clear_outputs notebooks/*.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def clear_outputs(path) -> bool:
    """Remove the outputs and execution counts of one notebook file.

    Parameters
    ----------
    path : path
        The ``.ipynb`` file, rewritten in place when it changes.

    Returns
    -------
    bool
        Whether the file changed.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count = [], None
            changed = True
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv=None) -> int:
    """Command line: clear every notebook named on it."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__)
        return 2
    for p in paths:
        if clear_outputs(p):
            print(f"cleared {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
