"""What every figure shares: saving, colours, and the labels of the methods.

:func:`save` writes a figure; :data:`BINARY` draws binary images, :data:`ERROR_COLORS` error
maps; one table gives each super-resolution method a label, a description and a colour. The
method colours are the Okabe-Ito palette, which stays distinguishable under the common
colour-vision deficiencies; each method keeps its colour in every figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: ``imshow`` options of a binary image: solid white, pore black, as in the paper.
BINARY = {"cmap": "gray", "vmin": 0, "vmax": 1, "interpolation": "nearest"}

#: The paper's error colours (Fig. 5): correct solid, correct pore, false solid, false pore.
ERROR_COLORS = {
    "correct solid": (1.0, 1.0, 1.0),
    "correct pore": (0.0, 0.0, 0.0),
    "false solid": (1.0, 0.0, 1.0),
    "false pore": (0.0, 0.0, 1.0),
}

#: The methods of the results table (column ``method``): key, short label (panel titles;
#: ``\alpha`` is replaced by the scaling factor where one is known), what the method is
#: (legends) and colour (Okabe-Ito). The first three are the paper's (Fig. 6).
_METHODS = (
    ("bin", r"$N^{\mathrm{bin},\alpha}$", "network, binary LR input", "#0072B2"),
    ("diffu", r"$N^{\mathrm{diffu},\alpha}$", "network, LR input + diffusion channels",
     "#E69F00"),
    ("interpolation", "tri-quadratic interpolation", "grid aligned with Eq. (3), threshold 0.5",
     "#999999"),
    ("interpolation_centred", "interpolation, pixel centres",
     "tri-quadratic on the pixel-centre grid, threshold 0.5", "#CC79A7"),
    ("interpolation_fitted", "interpolation, fitted threshold",
     "tri-quadratic, aligned grid, threshold by Eq. (18)", "#009E73"),
    ("interpolation_centred_fitted", "interpolation, pixel centres, fitted threshold",
     "tri-quadratic, threshold by Eq. (18)", "#F0E442"),
    ("local_bayes", "local Bayes lookup",
     "majority vote per 2³ LR pattern and HR offset (no network)", "#D55E00"),
)

#: Method key -> short label (panel titles).
METHOD_LABELS = {key: label for key, label, _, _ in _METHODS}
#: Method key -> what the method is (legends).
METHOD_DESCRIPTIONS = {key: text for key, _, text, _ in _METHODS}
#: Method key -> colour (colour-blind-safe Okabe-Ito palette).
METHOD_COLORS = {key: colour for key, _, _, colour in _METHODS}
#: The paper's three methods, drawn in Fig. 6 and Fig. A2.
PAPER_METHODS = ("bin", "diffu", "interpolation")
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


def _slice(image: np.ndarray, index: int | None = None, axis: int = 0) -> np.ndarray:
    """The slice ``index`` (default: the central one) of ``image`` normal to ``axis``."""
    index = image.shape[axis] // 2 if index is None else index
    return np.take(image, index, axis=axis)
