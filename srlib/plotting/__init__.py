"""Figure builders: one function per figure of the book, each returning ``(fig, axes)``.

Contract. Builders take data (arrays, records) and return a Matplotlib figure without saving
or showing it; :func:`save` writes a figure as PNG and PDF under one figures folder, named by
its key (e.g. ``fig2_scenarios``), which is also the glue key and MyST label in the book.
Binary images are drawn with solid white and pore black, as in the paper; every method keeps
one colour-blind-safe colour and one label (:data:`METHOD_COLORS`, :data:`METHOD_LABELS`).
Nothing here changes global Matplotlib state at import (no backend switching, no style).

Modules, by figure family:

- :mod:`~srlib.plotting.volumes`: slices, 3D views and error maps (Figs. 2, 3, 5, A1);
- :mod:`~srlib.plotting.curves`: two-point probabilities, refinement, training curves, the
  capacity study;
- :mod:`~srlib.plotting.diagram`: the network schematic (Fig. 4);
- :mod:`~srlib.plotting.fields`: the predicted diffusion fields of the paper's future work,
  their error maps and box plots;
- :mod:`~srlib.plotting.statistics`: box plots drawn with seaborn (Figs. 6, A2, the
  companion of Fig. 6) and the differences of medians.
"""

from ._style import (
    ERROR_COLORS,
    METHOD_COLORS,
    METHOD_DESCRIPTIONS,
    METHOD_LABELS,
    PAPER_METHODS,
    method_colors,
    method_legend_label,
    save,
)
from .curves import fig_capacity, fig_refinement, fig_training_curves, fig_two_point
from .diagram import fig4_network
from .fields import FIELD_ERROR_METRICS, fig_field_errors, fig_field_slices
from .statistics import (
    CLIP_SPANS,
    FIG6_METRICS,
    FIGA2_METRICS,
    OUTLIER_IQR,
    box_counts,
    box_summary,
    fig6_boxplots,
    fig6_companion,
    fig_paired_intervals,
    figA2_tortuosity,
    metric_boxplots,
)
from .volumes import (
    error_map,
    fig2_scenarios,
    fig3_diffusion_3d,
    fig5_error_maps,
    fig_sample_slices,
    figA1_slices,
    volume_view,
)

__all__ = [
    "CLIP_SPANS",
    "ERROR_COLORS",
    "FIELD_ERROR_METRICS",
    "FIG6_METRICS",
    "FIGA2_METRICS",
    "METHOD_COLORS",
    "METHOD_DESCRIPTIONS",
    "METHOD_LABELS",
    "OUTLIER_IQR",
    "PAPER_METHODS",
    "box_counts",
    "box_summary",
    "error_map",
    "fig2_scenarios",
    "fig3_diffusion_3d",
    "fig4_network",
    "fig5_error_maps",
    "fig6_boxplots",
    "fig_capacity",
    "fig_field_errors",
    "fig_field_slices",
    "fig6_companion",
    "figA1_slices",
    "figA2_tortuosity",
    "fig_paired_intervals",
    "fig_refinement",
    "fig_sample_slices",
    "fig_training_curves",
    "fig_two_point",
    "method_colors",
    "method_legend_label",
    "metric_boxplots",
    "save",
    "volume_view",
]
