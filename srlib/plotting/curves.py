"""Curves: two-point probabilities, the refinement study, training and the capacity study.

Every builder returns ``(fig, axes)`` without saving it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from srlib.methods import BIN, INTERPOLATION, NETWORKS

from ._style import METHOD_COLORS, METHOD_LABELS

__all__ = ["fig_capacity", "fig_refinement", "fig_training_curves", "fig_two_point"]


def fig_two_point(curves, *, max_lag: int | None = None):
    """Empirical two-point probabilities of samples beside the fitted model's curve.

    Parameters
    ----------
    curves : sequence of dict
        One per sample with keys ``name``, ``lags`` (1D), ``empirical`` (3 x len(lags), one row
        per axis), ``model_lags`` and ``model`` (the fitted model's curve), ``params`` (text).
    max_lag : int, optional
        Right limit of the x axis.

    Returns
    -------
    tuple
        ``(fig, axes)``, one panel per sample.
    """
    n = len(curves)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False, sharey=False)
    axes = axes[0]
    for ax, c in zip(axes, curves, strict=True):
        for k, marker in enumerate("o^s"):
            ax.plot(c["lags"], c["empirical"][k], marker, ms=3, ls="none", alpha=0.7,
                    label=f"sample, along {'zyx'[k]}")
        ax.plot(c["model_lags"], c["model"], "k-", lw=1.5, label="fitted model")
        ax.set_title(f"{c['name']}  ({c['params']})", fontsize=9)
        ax.set_xlabel("lag h [voxels]")
        if max_lag:
            ax.set_xlim(0, max_lag)
    axes[0].set_ylabel("P(x ∈ Ξ, x + h ∈ Ξ)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig, axes



_METHOD_STYLES = {
    "FEM face": {"color": "tab:blue", "marker": "o", "ls": "-"},
    "FEM vertex": {"color": "tab:green", "marker": "s", "ls": "--"},
}


def fig_refinement(estimates):
    """Effective tortuosity against refinement, one panel per phase, one line per method.

    Parameters
    ----------
    estimates : sequence of srlib.comparison.TortuosityEstimate or pandas.DataFrame
        Rows with ``phase``, ``method``, ``refinement`` and ``tau_eff`` (e.g. from
        :func:`srlib.comparison.refinement_study`). Infinite values (no path) are not drawn; the
        panel says which methods found none.

    Returns
    -------
    tuple
        ``(fig, axes)``, one panel per phase in order of first appearance.
    """
    import pandas as pd

    table = pd.DataFrame(estimates)
    if table.empty:
        raise ValueError("estimates is empty")
    phases = list(dict.fromkeys(table["phase"]))
    fig, axes = plt.subplots(1, len(phases), figsize=(4.2 * len(phases), 3.6), squeeze=False)
    axes = axes[0]
    factors = sorted(table["refinement"].unique())
    for ax, phase in zip(axes, phases, strict=True):
        rows = table[table["phase"] == phase]
        no_path = []
        for method in dict.fromkeys(rows["method"]):
            line = rows[rows["method"] == method].sort_values("refinement")
            tau = line["tau_eff"].to_numpy(dtype=float)
            if not np.isfinite(tau).any():
                no_path.append(method)
                continue
            style = _METHOD_STYLES.get(method, {"color": "tab:red", "marker": "^", "ls": ":"})
            ax.plot(line["refinement"], np.where(np.isfinite(tau), tau, np.nan), label=method,
                    lw=1.5, ms=6, **style)
        if no_path:
            ax.text(0.97, 0.03, "no path (τ = ∞):\n" + "\n".join(no_path), ha="right",
                    va="bottom", transform=ax.transAxes, fontsize=8, color="0.3",
                    bbox={"fc": "white", "ec": "0.7", "alpha": 0.9})
        fraction = rows["volume_fraction"].iloc[0] if "volume_fraction" in rows else None
        ax.set_title(f"{phase} phase" + (f" (ε = {fraction:.2f})" if fraction else ""),
                     fontsize=10)
        ax.set_xticks(factors)
        ax.set_xticklabels([f"{r} ({r ** 3} per voxel)" for r in factors], fontsize=8)
        ax.set_xlabel("refinement r (elements per voxel)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(r"effective tortuosity $\tau_\mathrm{eff}$, Eq. (9)")
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    order = list(dict.fromkeys(table["method"]))  # the order of the rows, not of the drawing
    labels = [m for m in order if m in handles]
    handles = [handles[m] for m in labels]
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=8,
                   frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig, axes



# ----------------------------------------------------------------------------- training

_KIND_COLORS = {kind: METHOD_COLORS[kind] for kind in NETWORKS}


def fig_training_curves(histories, *, steps_per_epoch: int | None = None, log: bool = False):
    r"""Training and validation loss per epoch: one panel per α, both input types in each.

    Parameters
    ----------
    histories : sequence of dict
        One per network with keys ``kind`` ("bin" or "diffu"), ``alpha``, ``train_loss`` and
        ``val_loss`` (one value per epoch) and ``best_epoch`` (1-based; marked by a star).
    steps_per_epoch : int, optional
        If given, the x axis counts training steps instead of epochs.
    log : bool
        Logarithmic loss axis.

    Returns
    -------
    tuple
        ``(fig, axes)``, one panel per α in increasing order; one legend below them.
    """
    from matplotlib.lines import Line2D

    alphas = sorted({int(h["alpha"]) for h in histories})
    if not alphas:
        raise ValueError("histories is empty")
    fig, axes = plt.subplots(1, len(alphas), figsize=(3.9 * len(alphas), 3.5), squeeze=False)
    axes = axes[0]
    scale = steps_per_epoch or 1
    kinds = []
    for ax, alpha in zip(axes, alphas, strict=True):
        for h in histories:
            if int(h["alpha"]) != alpha:
                continue
            if h["kind"] not in kinds:
                kinds.append(h["kind"])
            color = _KIND_COLORS.get(h["kind"], None)
            epochs = scale * np.arange(1, len(h["val_loss"]) + 1)
            ax.plot(epochs, h["train_loss"], ls="--", lw=1.0, color=color, alpha=0.8)
            ax.plot(epochs, h["val_loss"], ls="-", lw=1.5, color=color, marker="o", ms=2.5)
            best = int(h["best_epoch"])
            if best >= 1:
                ax.plot(scale * best, h["val_loss"][best - 1], marker="*", ms=11, color=color,
                        mec="k", mew=0.6, ls="none")
        ax.set_title(f"α = {alpha}", fontsize=10)
        ax.set_xlabel("training step" if steps_per_epoch else "epoch")
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("binary cross-entropy per voxel")
    handles = []
    for kind in kinds:
        color = _KIND_COLORS.get(kind, None)
        name = f"$N^{{\\mathrm{{{kind}}},\\alpha}}$"
        handles += [Line2D([], [], color=color, ls="--", lw=1.0, label=f"{name} training"),
                    Line2D([], [], color=color, ls="-", marker="o", ms=2.5, lw=1.5,
                           label=f"{name} validation")]
    handles.append(Line2D([], [], color="0.6", marker="*", ms=11, mec="k", mew=0.6, ls="none",
                          label="best epoch (weights kept)"))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    return fig, axes



# ----------------------------------------------------------------------------- capacity

_WIDTH_MARKERS = ("o", "s", "^", "D", "v")


def fig_capacity(table):
    """The capacity study: N^bin's accuracy gain over the aligned interpolation against steps.

    One line per width and start (scratch or transfer) over the step budgets (log axis), and
    one horizontal line per reference method (the aligned interpolation at zero, the
    pixel-centre interpolation and ``local_bayes``) in its colour of
    :data:`~srlib.plotting.METHOD_COLORS`.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`srlib.capacity.capacity_study`: runs (``method`` "bin", ``features``,
        ``steps``, ``gain``, optionally ``start``) and references (other methods, ``gain``).

    Returns
    -------
    tuple
        ``(fig, axes)`` with one panel.

    Raises
    ------
    ValueError
        If the table has no run or lacks the columns ``method`` and ``gain``.
    """
    missing = {"method", "gain", "features", "steps"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the column(s) {sorted(missing)}")
    runs = table[table["method"] == BIN]
    if not len(runs):
        raise ValueError("table holds no run (method 'bin')")
    refs = table[table["method"] != BIN]
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    starts = runs["start"] if "start" in runs.columns else None
    groups = runs.assign(start=starts if starts is not None else "").groupby(
        ["features", "start"], sort=True)
    for k, ((features, start), line) in enumerate(groups):
        line = line.sort_values("steps")
        label = f"$N^{{\\mathrm{{bin}}}}$, {int(features)} features" + (
            f" ({start})" if start else "")
        ax.plot(line["steps"], line["gain"], marker=_WIDTH_MARKERS[k % len(_WIDTH_MARKERS)],
                ms=5, lw=1.4, color=METHOD_COLORS[BIN], alpha=1.0 - 0.35 * (k % 2),
                ls="-" if k % 2 == 0 else "--", label=label)
    for row in refs.itertuples():
        colour = METHOD_COLORS.get(row.method, "0.4")
        ax.axhline(row.gain, color=colour, lw=1.2, ls=":" if row.method != INTERPOLATION
                   else "-", label=METHOD_LABELS.get(row.method, row.method)
                   + (" (Eq. 3-aligned)" if row.method == INTERPOLATION else ""))
    ax.set_xscale("log")
    steps = sorted(int(s) for s in runs["steps"].unique())
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.minorticks_off()
    ax.set_xlabel("training steps")
    ax.set_ylabel("median accuracy − aligned interpolation's")
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0.18, 1, 1))
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8,
               frameon=False)
    return fig, np.array([ax])
