"""What every figure shares: saving, colours, and the labels of the methods.

:func:`save` writes a figure; :data:`BINARY` draws binary images, :data:`ERROR_COLORS` error
maps; one table gives each super-resolution method a label, a description and a colour. The
method colours are the Okabe-Ito palette, which stays distinguishable under the common
colour-vision deficiencies; each method keeps its colour in every figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srlib.methods import FIELD_METHODS, METHODS, PAPER

#: ``imshow`` options of a binary image: solid white, pore black, as in the paper.
BINARY = {"cmap": "gray", "vmin": 0, "vmax": 1, "interpolation": "nearest"}

#: The paper's error colours (Fig. 5): correct solid, correct pore, false solid, false pore.
ERROR_COLORS = {
    "correct solid": (1.0, 1.0, 1.0),
    "correct pore": (0.0, 0.0, 0.0),
    "false solid": (1.0, 0.0, 1.0),
    "false pore": (0.0, 0.0, 1.0),
}

#: Method key -> label for figures, from :mod:`srlib.methods` (``\alpha`` is replaced by the
#: scaling factor where one is known).
METHOD_LABELS = {key: m.tex for key, m in {**METHODS, **FIELD_METHODS}.items()}
#: Method key -> what the method is (legends).
METHOD_DESCRIPTIONS = {key: m.description for key, m in {**METHODS, **FIELD_METHODS}.items()}
#: Method key -> colour (colour-blind-safe: the Okabe-Ito palette for the study's methods,
#: Paul Tol's muted palette for the routes to the field, :data:`srlib.methods.FIELD_METHODS`).
METHOD_COLORS = {key: m.colour for key, m in {**METHODS, **FIELD_METHODS}.items()}
#: The paper's three methods (Fig. 6).
PAPER_METHODS = PAPER

# colours for methods missing from the table (seaborn's colour-blind palette, not in use above)
_SPARE_COLORS = ("#56B4E9", "#000000", "#8C564B", "#7F7F7F")


def method_colors(methods) -> dict:
    """Colour of each method: :data:`METHOD_COLORS`, spare colours for unknown methods.

    Parameters
    ----------
    methods : sequence of str
        Method keys.

    Returns
    -------
    dict
        Method -> colour, distinct for up to four unknown methods.
    """
    spare = iter(_SPARE_COLORS * (1 + len(methods) // len(_SPARE_COLORS)))
    return {m: METHOD_COLORS[m] if m in METHOD_COLORS else next(spare) for m in methods}


def method_legend_label(method: str) -> str:
    """A method's legend entry: its label and, where known, what it is (``label: text``)."""
    label = METHOD_LABELS.get(method, method)
    text = METHOD_DESCRIPTIONS.get(method)
    return f"{label}: {text}" if text else label


def save(fig, key: str, folder) -> list[Path]:
    """Write ``fig`` as ``<folder>/<key>.png`` (150 dpi) and ``<folder>/<key>.pdf``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    key : str
        File name without suffix; also the figure's label in the book.
    folder : path
        Figures folder (created when missing), e.g. ``results/<profile>/figures``.

    Returns
    -------
    list of pathlib.Path
        The two files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{key}.png", folder / f"{key}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


def middle_slice(image: np.ndarray, index: int | None = None, axis: int = 0) -> np.ndarray:
    """The slice ``index`` (default: the central one) of ``image`` normal to ``axis``."""
    index = image.shape[axis] // 2 if index is None else index
    return np.take(image, index, axis=axis)
