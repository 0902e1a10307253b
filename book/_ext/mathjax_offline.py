"""Local Sphinx extension of the book: serve MathJax from the built book instead of a CDN.

The book's equations are typeset by MathJax 3, which Sphinx loads from a CDN by default, so a
book opened without network access (a copied ``_build/html``, a cluster node, a classroom)
shows raw LaTeX. The ``sphinx-mathjax-offline`` package (part of the ``book`` extra) carries the
files of MathJax 3.2.2, the release the CDN serves; when it is installed, this extension copies
them to ``_static/mathjax`` of the HTML output and points ``mathjax_path`` at the same
``tex-mml-chtml.js`` component that Sphinx loads from the CDN, so the pages render as before,
offline too. Without the package the CDN stays. Loaded through ``sphinx.local_extensions`` in
``_config.yml`` (this folder, ``book/_ext``, goes on Sphinx's path); it is book tooling, not part
of ``srlib``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

_PACKAGE = "sphinx-mathjax-offline"  # a package directory with a hyphen: found, not imported
_TARGET = "mathjax"
_COMPONENT = "tex-mml-chtml.js"  # what sphinx.ext.mathjax loads from the CDN


def _source() -> Path | None:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    return static if (static / _COMPONENT).is_file() else None


def _configure(app, config) -> None:
    if _source() is not None:
        config.mathjax_path = f"{_TARGET}/{_COMPONENT}"


def _copy(app, exception) -> None:
    source = _source()
    if exception is not None or source is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / _TARGET
    if not (target / _COMPONENT).is_file():
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=_unused(source))


def _unused(source: Path):
    """Skip the other combined components and the SVG output (~14 of the 24 MB)."""
    keep = {_COMPONENT, "loader.js", "startup.js", "core.js"}

    def ignore(folder, names):
        here = Path(folder)
        if here == source:
            return [n for n in names if n.endswith(".js") and n not in keep]
        if here == source / "output":
            return [n for n in names if n != "chtml"]
        return []

    return ignore


def setup(app):
    """Register the extension (Sphinx entry point)."""
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
