"""Tiny helper to write output-free notebooks from a list of (kind, source) cells.

Used by the maintainers to (re)generate notebooks/*.ipynb from readable Python; the notebooks
themselves are the source of truth once written.
"""

import nbformat


def write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, src, *tags in cells:
        src = src.strip("\n")
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell(src)
        if tags:
            cell.metadata["tags"] = list(tags[0])
        out.append(cell)
    nb.cells = out
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i:02d}"
    nbformat.write(nb, path)
