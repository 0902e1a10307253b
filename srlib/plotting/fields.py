"""Figures of the paper's future work: predicted diffusion fields and their errors.

:func:`fig_field_slices` draws a slice of the FEM solution on the true HR image beside every
route's field (:data:`srlib.methods.FIELD_METHODS`) and its error, in the manner of Fig. 5;
:func:`fig_field_errors` the box plots of the fields' RMS errors per α and route
(:func:`~srlib.plotting.statistics.metric_boxplots`, Fig. 6's style).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from srlib.methods import FIELD_METHODS

from .statistics import metric_boxplots

__all__ = ["FIELD_ERROR_METRICS", "fig_field_errors", "fig_field_slices"]

#: Columns of :func:`srlib.fieldnets.field_table` -> panel titles.
FIELD_ERROR_METRICS = {"rms_pore": "RMS error of u, pore",
                       "rms_solid": "RMS error of u, solid"}

_PHASE_NAMES = ("pore", "solid")


def fig_field_slices(slices, *, methods=tuple(FIELD_METHODS), error_range: float = 0.3):
    """Slices of the fields: the FEM on the true HR image, each route, and their errors.

    Parameters
    ----------
    slices : dict
        :func:`srlib.fieldnets.field_slices` of one image: ``"hr"`` (the binary slice),
        ``"fem"`` and one entry per route, each ``(2, n0, n2)`` ``[pore, solid]``.
    methods : sequence of str
        Routes drawn, one row each below the FEM's.
    error_range : float
        The error colour scale spans ``±error_range``.

    Returns
    -------
    tuple
        ``(fig, axes)``: rows the FEM then the routes; columns u in the pore, u in the solid,
        the error (route − FEM) in each. Voxels of the other phase are grey; transport runs
        top to bottom (axis 0).
    """
    methods = [m for m in methods if m in slices]
    hr = np.asarray(slices["hr"], dtype=bool)
    masks = (~hr, hr)
    rows = ["fem", *methods]
    fig, axes = plt.subplots(len(rows), 4, figsize=(8.4, 1.9 * len(rows) + 0.4), squeeze=False,
                             layout="constrained")
    field_cmap = plt.get_cmap("viridis").with_extremes(bad="0.75")
    error_cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.75")
    images = {}
    for i, key in enumerate(rows):
        values = np.asarray(slices[key], dtype=float)
        for c in range(2):
            field = np.ma.masked_where(~masks[c], values[c])
            images["u"] = axes[i, c].imshow(field, cmap=field_cmap, vmin=0, vmax=1,
                                            interpolation="nearest")
            ax = axes[i, 2 + c]
            if key == "fem":
                ax.axis("off")
                if c == 0:
                    ax.text(1.05, 0.5, "errors: route − FEM,\non the phase's voxels",
                            transform=ax.transAxes, ha="center", va="center", fontsize=8)
                continue
            error = np.ma.masked_where(~masks[c], values[c] - slices["fem"][c])
            images["e"] = ax.imshow(error, cmap=error_cmap, vmin=-error_range,
                                    vmax=error_range, interpolation="nearest")
        label = "FEM on the HR image" if key == "fem" else FIELD_METHODS[key].label
        axes[i, 0].set_ylabel(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for c, name in enumerate(_PHASE_NAMES):
        axes[0, c].set_title(f"u, {name}", fontsize=9)
        axes[min(1, len(rows) - 1), 2 + c].set_title(f"error, {name}", fontsize=9)
    fig.colorbar(images["u"], ax=axes[:, 1], shrink=0.4, label="u")
    if "e" in images:
        fig.colorbar(images["e"], ax=axes[:, 3], shrink=0.4, label="route − FEM")
    return fig, axes


def fig_field_errors(table, **options):
    """Box plots of the fields' RMS errors per sub-image region, α and route (lower is better).

    :func:`~srlib.plotting.statistics.metric_boxplots` of :func:`srlib.fieldnets.field_table`
    with :data:`FIELD_ERROR_METRICS`, the routes of :data:`srlib.methods.FIELD_METHODS`.
    """
    options.setdefault("methods", tuple(FIELD_METHODS))
    options.setdefault("whiskers", "tukey")
    return metric_boxplots(table, FIELD_ERROR_METRICS, **options)
