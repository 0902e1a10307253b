"""Statistical figures: box plots (Fig. 6, Fig. A2) drawn with seaborn, median differences.

Conventions of every box plot (the paper's caption of Fig. 6): boxes span the quartiles, a
line marks the median and a white diamond the mean; whiskers run from the minimum to the
maximum; outliers by Tukey's rule (beyond :data:`OUTLIER_IQR` inter-quartile ranges from the
quartiles) are open circles. Values that cannot be drawn are counted, never dropped silently:
``-inf`` (a super-resolution that lost every path of a phase, see :mod:`srlib.metrics`) and
values below a cut axis (:data:`CLIP_SPANS`) are counted under each box, ``nan`` (undefined)
per panel. :func:`box_summary` and :func:`box_counts` compute what the figures state.
"""

from __future__ import annotations

import textwrap
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from ._style import METHOD_LABELS, PAPER_METHODS, method_colors, method_legend_label

__all__ = [
    "CLIP_SPANS",
    "FIG6_METRICS",
    "FIGA2_METRICS",
    "OUTLIER_IQR",
    "box_counts",
    "box_summary",
    "fig6_boxplots",
    "fig6_companion",
    "figA2_tortuosity",
    "fig_paired_intervals",
    "metric_boxplots",
]

#: Columns of the results table in Fig. 6 and Fig. A2, with their panel titles.
FIG6_METRICS = {
    "accuracy": "(a) accuracy",
    "surface_accuracy": "(b) surface accuracy",
    "tau_geod_acc_mean": "(c) rel. accuracy, mean geodesic\ntortuosity (mean over phases)",
    "tau_eff_acc_mean": "(d) rel. accuracy, effective\ntortuosity (mean over phases)",
}
FIGA2_METRICS = {
    "tau_geod_acc_solid": "(a) rel. accuracy, mean geodesic\ntortuosity, solid phase",
    "tau_geod_acc_pore": "(b) rel. accuracy, mean geodesic\ntortuosity, pore phase",
    "tau_eff_acc_solid": "(c) rel. accuracy, effective\ntortuosity, solid phase",
    "tau_eff_acc_pore": "(d) rel. accuracy, effective\ntortuosity, pore phase",
}

#: Multiple of the inter-quartile range beyond which a value counts as an outlier (Tukey).
OUTLIER_IQR = 1.5

#: A panel's y axis is cut below the lowest non-outlier value when the lowest value lies more
#: than this many panel spans (non-outlier range) below it; the values below are counted.
CLIP_SPANS = 0.6

#: Whisker conventions of :func:`metric_boxplots`: seaborn's ``whis`` for each.
_WHISKERS = {"range": (0, 100), "tukey": OUTLIER_IQR}


def box_summary(values) -> dict:
    """Statistics of one box of Fig. 6: quartiles, mean, min-max whiskers, IQR outliers.

    ``-inf`` (a super-resolution that lost every path of a phase, see :mod:`srlib.metrics`)
    cannot be drawn; it is counted in ``n_neg_inf`` and left out of the statistics, as are
    ``nan`` (undefined: no path in the ground truth, or not computed), counted in ``n_nan``.

    Parameters
    ----------
    values : array_like
        The values of one box.

    Returns
    -------
    dict
        ``n`` (all values), ``n_finite``, ``n_neg_inf``, ``n_pos_inf``, ``n_nan``; and, when
        ``n_finite > 0``, ``mean``, ``med``, ``q1``, ``q3`` (linear-interpolation quartiles),
        ``whislo``/``whishi`` (minimum and maximum: the whiskers span all finite values),
        ``fliers`` (values farther than ``1.5 IQR`` beyond the quartiles, Tukey's rule; they
        also lie on the whiskers, which end at the most extreme of them) and
        ``inner_lo``/``inner_hi`` (the most extreme values that are not outliers: where
        Tukey's whiskers end).
    """
    v = np.asarray(values, dtype=float).ravel()
    finite = v[np.isfinite(v)]
    out = {"n": int(v.size), "n_finite": int(finite.size),
           "n_neg_inf": int(np.count_nonzero(v == -np.inf)),
           "n_pos_inf": int(np.count_nonzero(v == np.inf)),
           "n_nan": int(np.count_nonzero(np.isnan(v)))}
    if finite.size:
        q1, med, q3 = np.percentile(finite, [25, 50, 75])
        iqr = q3 - q1
        lo, hi = q1 - OUTLIER_IQR * iqr, q3 + OUTLIER_IQR * iqr
        inner = finite[(finite >= lo) & (finite <= hi)]
        inner = inner if inner.size else np.array([q1, q3])
        out.update(mean=float(finite.mean()), med=float(med), q1=float(q1), q3=float(q3),
                   whislo=float(finite.min()), whishi=float(finite.max()),
                   fliers=finite[(finite < lo) | (finite > hi)],
                   inner_lo=float(inner.min()), inner_hi=float(inner.max()))
    return out


def box_counts(table, metrics, *, by=("dataset", "alpha", "method")):
    """How many values of each box are drawn, lost (``-inf``) or left out (``nan``).

    Parameters
    ----------
    table : pandas.DataFrame
        The results table of :func:`srlib.evaluation.run_protocol`.
    metrics : sequence of str
        Columns to count.
    by : sequence of str
        Grouping columns (one box per group).

    Returns
    -------
    pandas.DataFrame
        One row per group and metric with ``n``, ``n_finite``, ``n_neg_inf``, ``n_nan`` and,
        where the table has ``effective_computed``, ``n_not_computed`` (effective
        tortuosities skipped by ``effective_sub_images``; part of ``n_nan``).
    """
    rows = []
    for keys, group in table.groupby(list(by), sort=True):
        for metric in metrics:
            s = box_summary(pd.to_numeric(group[metric], errors="coerce"))
            row = dict(zip(by, keys, strict=True), metric=metric,
                       **{k: s[k] for k in ("n", "n_finite", "n_neg_inf", "n_nan")})
            if metric.startswith("tau_eff") and "effective_computed" in group:
                row["n_not_computed"] = int((~group["effective_computed"].astype(bool)).sum())
            rows.append(row)
    return pd.DataFrame(rows)


def _panel_limits(summaries) -> tuple[float, float, float | None]:
    """The y range of a box panel: (low, high, clip), clip None when nothing is cut."""
    drawn = [s for s in summaries if s["n_finite"]]
    if not drawn:
        return 0.0, 1.0, None
    hi = max(s["whishi"] for s in drawn)
    lo_all = min(s["whislo"] for s in drawn)
    lo_core = min(min(s["q1"], s["inner_lo"]) for s in drawn)  # lowest non-outlier
    span = max(hi - lo_core, 1e-9)
    if lo_all < lo_core - CLIP_SPANS * span:
        clip = lo_core - 0.25 * span
        return clip, hi, clip
    return lo_all, hi, None


def _box_panel(ax, frame, metric: str, *, alphas, methods, colours, whiskers: str) -> dict:
    """Draw the boxes of one panel with seaborn; returns counts of lost, nan and cut values.

    One box per α (x) and method (hue, in the order of ``methods``); the outliers, the
    values below a cut axis and the ``-inf`` counts are drawn here from :func:`box_summary`.
    """
    width = 0.8 / len(methods)
    ticks = [f"α = {a}" for a in alphas]
    boxes, finite = [], []
    for a_pos, (alpha, tick) in enumerate(zip(alphas, ticks, strict=True)):
        for k, method in enumerate(methods):
            rows = (frame["alpha"] == alpha) & (frame["method"] == method)
            v = pd.to_numeric(frame.loc[rows, metric], errors="coerce").to_numpy(float)
            s = box_summary(v)
            s["values"], s["n_cut"] = v[np.isfinite(v)], 0
            boxes.append((a_pos + (k - (len(methods) - 1) / 2) * width, s))  # seaborn's dodge
            finite.append(pd.DataFrame({"alpha": tick, "method": method,
                                        "value": s["values"]}))
    finite = pd.concat(finite, ignore_index=True)
    summaries = [s for _, s in boxes]
    lo, hi, clip = _panel_limits(summaries)
    span = max(hi - lo, 1e-9)
    line = lo - 0.04 * span  # the dashed line under the data range
    if len(finite):
        with warnings.catch_warnings():  # seaborn 0.13 passes bxp's deprecated ``vert``
            warnings.filterwarnings("ignore", category=matplotlib.MatplotlibDeprecationWarning)
            sns.boxplot(finite, x="alpha", y="value", hue="method", order=ticks,
                        hue_order=list(methods), palette=colours, saturation=1.0, width=0.8,
                        gap=0.12, whis=_WHISKERS[whiskers], showfliers=False, showmeans=True,
                        meanprops={"marker": "D", "markerfacecolor": "white",
                                   "markeredgecolor": "black", "markersize": 3.5},
                        medianprops={"color": "black", "lw": 1.0}, linecolor="0.15",
                        linewidth=0.8, legend=False, ax=ax)
    if clip is not None:  # whiskers stop at the dashed line; caps below it are hidden
        for container in ax.containers:
            for whisker in container.whiskers:
                whisker.set_ydata(np.maximum(whisker.get_ydata(), line))
            for cap in container.caps:
                cap.set_visible(bool(np.max(cap.get_ydata()) >= line))
    for pos, s in boxes:
        if not s["n_finite"]:
            continue
        fliers = s["fliers"]
        if clip is not None:
            s["n_cut"] = int(np.count_nonzero(s["values"] < clip))
            fliers = fliers[fliers >= clip]
        if len(fliers):
            ax.plot(np.full(len(fliers), pos), fliers, "o", ms=3.5, mfc="none", mec="black",
                    mew=0.7, zorder=3)
    counts = {"neg_inf": sum(s["n_neg_inf"] for s in summaries),
              "nan": sum(s["n_nan"] for s in summaries),
              "cut": sum(s["n_cut"] for s in summaries)}
    # a strip under the dashed line: per box, values below the axis and lost paths (-inf)
    strip_rows = [(key, label, colour) for key, label, colour in
                  (("n_cut", "↓", "0.2"), ("n_neg_inf", "−∞", "red"))
                  if any(s[key] for s in summaries)]
    bottom = line
    if strip_rows:
        ax.axhline(line, color="0.5", lw=0.6, ls="--")
        left = blended_transform_factory(ax.transAxes, ax.transData)
        for r, (key, label, colour) in enumerate(strip_rows):
            y = line - (0.07 + 0.08 * r) * span
            ax.text(-0.01, y, label, transform=left, ha="right", va="center", fontsize=7,
                    color=colour)
            for pos, s in boxes:
                if s[key]:
                    ax.text(pos, y, str(s[key]), ha="center", va="center",
                            fontsize=6.5 if len(methods) <= 4 else 5.5, color=colour)
        bottom = line - (0.07 + 0.08 * len(strip_rows)) * span
    ax.set_ylim(bottom, hi + 0.04 * span)
    if strip_rows:  # no value ticks in the strip
        ax.set_yticks([t for t in ax.get_yticks() if line <= t <= hi + 0.04 * span])
    ax.set_xticks(range(len(alphas)), ticks)
    ax.set_xlim(-0.5, len(alphas) - 0.5)
    ax.set_ylabel("")
    return counts


def _ordered_methods(table, methods) -> list[str]:
    """The methods to draw: those of ``methods`` in the table, or all (None) in table order."""
    present = list(dict.fromkeys(table["method"]))
    if methods is None:
        known = [m for m in METHOD_LABELS if m in present]
        return known + [m for m in present if m not in known]
    if isinstance(methods, str):
        raise ValueError("methods must be a sequence of method names, not one string")
    return [m for m in methods if m in present]


def metric_boxplots(table, metrics: dict, *, datasets=("simulated", "tomographic"),
                    methods=PAPER_METHODS, alphas=None, row_labels=None,
                    note: str | None = None, whiskers: str = "range"):
    """Box plots of metrics by α and method, one panel per data set (rows) and metric (columns).

    Drawn with :func:`seaborn.boxplot`. Each box: quartiles, median (line), mean (white
    diamond), whiskers from the minimum to the maximum (``whiskers="range"``, the paper's
    caption) or to the most extreme non-outliers (``"tukey"``), and outliers by Tukey's rule
    (beyond 1.5 IQR from the quartiles) as open circles (:func:`box_summary`). Values that
    cannot be drawn are never dropped silently: under a dashed line at the bottom of a panel,
    each box states how many of its values are ``-inf`` (lost paths, ``−∞`` row in red) and,
    when a few values lie so far below the others that the panel's axis is cut
    (:data:`CLIP_SPANS`), how many lie below the axis (``↓`` row; a whisker then runs off the
    axis). Each panel's x label states the number of values per box and how many were ``-inf``
    and left out as ``nan`` (no path in the ground truth, or not computed).

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol`.
    metrics : dict
        Column -> panel title (e.g. :data:`FIG6_METRICS`).
    datasets : sequence of str
        Rows (values of the ``dataset`` column); missing ones are skipped.
    methods : sequence of str or None
        Boxes side by side at each α, in this order (the paper's three by default); methods
        missing from the table are skipped. None: every method of the table, in the order of
        :data:`srlib.plotting.METHOD_LABELS`, then the others. Labels and colours come from
        :data:`~srlib.plotting.METHOD_LABELS`, :data:`~srlib.plotting.METHOD_DESCRIPTIONS`
        and :data:`~srlib.plotting.METHOD_COLORS`.
    alphas : sequence of int, optional
        x positions; default the α in the table.
    row_labels : dict, optional
        Dataset -> row label.
    note : str, optional
        Text appended to the figure's footnote (e.g. how many sub-images had effective
        tortuosities).
    whiskers : {"range", "tukey"}
        Whisker convention (see above).

    Returns
    -------
    tuple
        ``(fig, axes)`` with ``axes`` of shape ``(rows, len(metrics))``.

    Raises
    ------
    ValueError
        If the table holds none of the datasets or none of the methods, a metric is not a
        column, or ``whiskers`` is unknown.
    """
    if whiskers not in _WHISKERS:
        raise ValueError(f"whiskers must be one of {sorted(_WHISKERS)}, got {whiskers!r}")
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise ValueError(f"metrics names columns missing from the table: {missing}")
    datasets = [d for d in datasets if (table["dataset"] == d).any()]
    if not datasets:
        raise ValueError("the table holds none of the requested datasets")
    methods = _ordered_methods(table, methods)
    if not methods:
        raise ValueError("the table holds none of the requested methods")
    alphas = sorted(int(a) for a in table["alpha"].unique()) if alphas is None else list(alphas)
    colours = method_colors(methods)
    row_labels = row_labels or {}
    cols = list(metrics)
    panel_width = 3.4 + 0.3 * max(len(methods) - 3, 0) * len(alphas) / 3
    fig, axes = plt.subplots(len(datasets), len(cols),
                             figsize=(panel_width * len(cols), 3.3 * len(datasets) + 0.9),
                             squeeze=False)
    for i, dataset in enumerate(datasets):
        sub = table[table["dataset"] == dataset]
        per_box = sub[sub["method"].isin(methods)].groupby(["alpha", "method"]).size()
        n_text = (f"n = {per_box.min()}/box" if per_box.min() == per_box.max()
                  else f"n = {per_box.min()}–{per_box.max()}/box")
        for j, metric in enumerate(cols):
            ax = axes[i, j]
            counts = _box_panel(ax, sub, metric, alphas=alphas, methods=methods,
                                colours=colours, whiskers=whiskers)
            ax.grid(axis="y", alpha=0.3)
            if i == 0:
                ax.set_title(metrics[metric], fontsize=9)
            parts = [n_text, f"−∞: {counts['neg_inf']}", f"nan (left out): {counts['nan']}"]
            if counts["cut"]:
                parts.append(f"↓: {counts['cut']}")
            ax.set_xlabel("; ".join(parts), fontsize=7, color="0.25")
        axes[i, 0].set_ylabel(row_labels.get(dataset, f"{dataset} data"))
    _boxplot_legend(fig, methods, colours, whiskers=whiskers, note=note)
    return fig, axes


# Width of a legend character at 8 pt (inches; the mathtext of a label is counted as typed).
_INCH_PER_CHAR = 0.065


def _boxplot_legend(fig, methods, colours, *, whiskers: str, note: str | None) -> None:
    """The legend of the methods, of the glyphs and the footnote, below the panels."""
    method_handles = [Patch(facecolor=colours[m], edgecolor="0.15",
                            label=method_legend_label(m)) for m in methods]
    glyph_handles = [
        Line2D([], [], color="black", lw=1.0, label="median"),
        Line2D([], [], marker="D", ls="none", mfc="white", mec="black", ms=4, label="mean"),
        Line2D([], [], marker="o", ls="none", mfc="none", mec="black", ms=4,
               label=f"outlier (> {OUTLIER_IQR:g} IQR beyond the quartiles)")]
    if whiskers == "range":
        whisker_text, below = "minimum to maximum", "↓, the whisker runs on"
    else:
        whisker_text = f"most extreme values within {OUTLIER_IQR:g} IQR of the quartiles"
        below = "↓, outliers not drawn"
    lines = [f"Boxes: quartiles; whiskers: {whisker_text} (statistics of the finite "
             "values). Under a dashed line, per box: the number of values below the axis",
             f"({below}) and of −∞ values (red: the super-resolution has no path through a "
             "phase that the ground truth crosses)."]
    if note:
        lines.append(note)
    # the footnote wrapped to the figure's width (7.5 pt characters)
    width = max(int(fig.get_figwidth() / 0.058), 40)
    lines = [w for line in " ".join(lines[:2]).split("\n") + lines[2:]
             for w in textwrap.wrap(line, width)] if fig.get_figwidth() < 12 else lines
    height = fig.get_figheight()
    ncol = min(len(methods), 3 if len(methods) > 4 else len(methods))
    longest = max(len(h.get_label()) for h in method_handles)
    while ncol > 1 and ncol * longest * _INCH_PER_CHAR > fig.get_figwidth():
        ncol -= 1  # long labels: fewer columns than would run off the figure
    method_rows = -(-len(methods) // ncol)
    foot = 0.12 + 0.14 * len(lines)  # inches: footnote lines, 7.5 pt each
    glyphs = foot + 0.05
    top = glyphs + 0.22 + 0.2 * method_rows
    fig.tight_layout(rect=(0, (top + 0.1) / height, 1, 1))
    fig.legend(handles=method_handles, loc="lower center", ncol=ncol, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, (glyphs + 0.22) / height),
               handlelength=1.5, columnspacing=1.5)
    fig.legend(handles=glyph_handles, loc="lower center", ncol=len(glyph_handles),
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, glyphs / height))
    fig.text(0.5, 0.06 / height, "\n".join(lines), ha="center", va="bottom", fontsize=7.5,
             color="0.25")


def fig6_boxplots(table, **options):
    """Fig. 6: accuracy, surface accuracy, geodesic and effective tortuosity accuracy.

    :func:`metric_boxplots` with the columns of :data:`FIG6_METRICS` (the tortuosity
    accuracies averaged over the two phases). By default the paper's three methods; pass
    ``methods=None`` for every method of the table (the companion figure).

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol`.
    **options
        Passed to :func:`metric_boxplots`.

    Returns
    -------
    tuple
        ``(fig, axes)``.
    """
    return metric_boxplots(table, FIG6_METRICS, **options)


#: Marker of the whole-image variant's medians in :func:`fig6_companion`.
WHOLE_IMAGE_MARKER = {"marker": "*", "ms": 7, "mfc": "black", "mec": "white", "mew": 0.5,
                      "ls": "none", "zorder": 4}


def fig6_companion(table, *, whole_image=None, metrics=None, methods=None, note=None,
                   **options):
    """The companion of Fig. 6: every method of the table, with the whole-image variant marked.

    :func:`metric_boxplots` with every method of the results table by default (the networks,
    both interpolation conventions with the threshold 0.5 and fitted, and ``local_bayes``).
    Where ``whole_image`` (the table of ``run_protocol(..., variant="whole_image")``) holds a
    (dataset, α, method), a star marks its median over the same HR sub-images beside the box of
    the paper's protocol: the distance between star and median line is the border effect of
    super-resolving each small LR sub-image on its own.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol` (the paper's variant).
    whole_image : pandas.DataFrame, optional
        Results of the whole-image variant (any subset of α and methods).
    metrics : dict, optional
        Column -> panel title; default :data:`FIG6_METRICS`.
    methods : sequence of str, optional
        Methods drawn; default every method of ``table``.
    note : str, optional
        Text appended to the footnote.
    **options
        Passed to :func:`metric_boxplots`.

    Returns
    -------
    tuple
        ``(fig, axes)``.
    """
    metrics = dict(FIG6_METRICS if metrics is None else metrics)
    lines = [] if note is None else [note]
    if whole_image is not None and len(whole_image):
        lines.insert(0, "★: median of the same HR sub-images cut from the super-resolution "
                        "of the whole LR image (whole-image variant).")
    fig, axes = metric_boxplots(table, metrics, methods=methods,
                                note="\n".join(lines) or None, **options)
    if whole_image is None or not len(whole_image):
        return fig, axes
    drawn = _ordered_methods(table, methods)
    datasets = [d for d in options.get("datasets", ("simulated", "tomographic"))
                if (table["dataset"] == d).any()]
    alphas = options.get("alphas")
    alphas = sorted(int(a) for a in table["alpha"].unique()) if alphas is None else list(alphas)
    width = 0.8 / len(drawn)
    for i, dataset in enumerate(datasets):
        sub = whole_image[whole_image["dataset"] == dataset]
        for j, metric in enumerate(metrics):
            if metric not in sub.columns:
                continue
            ax = axes[i, j]
            for a_pos, alpha in enumerate(alphas):
                for k, method in enumerate(drawn):
                    rows = (sub["alpha"] == alpha) & (sub["method"] == method)
                    v = pd.to_numeric(sub.loc[rows, metric], errors="coerce").to_numpy(float)
                    v = v[~np.isnan(v)]
                    if not v.size or not np.isfinite(np.median(v)):
                        continue
                    pos = a_pos + (k - (len(drawn) - 1) / 2) * width
                    ax.plot([pos], [np.median(v)], **WHOLE_IMAGE_MARKER)
    return fig, axes


def figA2_tortuosity(table, **options):
    """Fig. A2: relative accuracies of both tortuosities, separately per phase.

    :func:`metric_boxplots` with the columns of :data:`FIGA2_METRICS`.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol`.
    **options
        Passed to :func:`metric_boxplots`.

    Returns
    -------
    tuple
        ``(fig, axes)``.
    """
    return metric_boxplots(table, FIGA2_METRICS, **options)


def fig_paired_intervals(comparisons, metrics: dict):
    """Forest plot of paired differences between methods, with their confidence intervals.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        Rows of :func:`srlib.intervals.compare_methods` (columns ``dataset``, ``alpha``,
        ``metric``, ``difference``, ``lo``, ``hi``) with an added column ``comparison`` naming
        the pair (e.g. ``"N^bin − interpolation"``).
    metrics : dict
        Metric column -> panel title; one panel per metric.

    Returns
    -------
    tuple
        ``(fig, axes)``. One row per comparison and α, one marker per data set: the median of
        the paired differences over the sub-images with its interval as a bar; filled where the
        interval excludes zero, open where it covers zero (a tie). Infinite values (lost paths)
        cannot be drawn; their number is written in the panel.
    """
    cols = list(metrics)
    names = list(dict.fromkeys(comparisons["comparison"]))
    alphas = sorted(int(a) for a in comparisons["alpha"].unique())
    rows = [(n, a) for n in names for a in alphas]
    datasets = list(dict.fromkeys(comparisons["dataset"]))
    palette = dict(zip(datasets, sns.color_palette("colorblind", max(len(datasets), 1)),
                       strict=False))
    offsets = dict(zip(datasets, np.linspace(-0.15, 0.15, len(datasets)), strict=True))
    fig, axes = plt.subplots(1, len(cols), figsize=(3.3 * len(cols) + 1.6, 0.34 * len(rows) + 1.6),
                             sharey=True, squeeze=False)
    axes = axes[0]
    for ax, metric in zip(axes, cols, strict=True):
        sub = comparisons[comparisons["metric"] == metric]
        hidden = 0
        for r in sub.itertuples():
            y = rows.index((r.comparison, int(r.alpha))) + offsets[r.dataset]
            values = np.array([r.difference, r.lo, r.hi], dtype=float)
            if not np.isfinite(values).all():
                hidden += 1
                continue
            tie = r.lo <= 0 <= r.hi
            ax.errorbar(r.difference, y, xerr=[[r.difference - r.lo], [r.hi - r.difference]],
                        fmt="o", ms=4.5, color=palette[r.dataset], capsize=2, lw=1.1,
                        mfc="white" if tie else palette[r.dataset])
        ax.axvline(0, color="0.3", lw=0.8, ls=":")
        for k in range(1, len(names)):
            ax.axhline(k * len(alphas) - 0.5, color="0.85", lw=0.8)
        ax.set_title(metrics[metric], fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        if hidden:
            ax.text(0.98, 0.02, f"{hidden} not drawn (infinite)", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="#C0392B")
    axes[0].set_yticks(range(len(rows)), [f"{n}, α = {a}" for n, a in rows], fontsize=8)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)
    handles = [Line2D([], [], color=palette[d], marker="o", ls="none", label=d)
               for d in datasets]
    handles += [Line2D([], [], color="0.3", marker="o", ls="none", label="interval excludes 0"),
                Line2D([], [], color="0.3", marker="o", mfc="white", ls="none",
                       label="interval covers 0 (tie)")]
    bottom = 0.9 / fig.get_figheight()
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.text(0.5, bottom * 0.75, "median paired difference over sub-images, with its 95 % "
             "bootstrap interval", ha="center", va="top", fontsize=9)
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    return fig, axes
