"""Figure builders: one function per figure of the book, each returning ``(fig, axes)``.

Contract. Builders take data (arrays, records) and return a Matplotlib figure without saving
or showing it; :func:`save` writes a figure as PNG and PDF under one figures folder, named by
its key (e.g. ``fig2_scenarios``), which is also the glue key and MyST label in the book.
Binary images are drawn with solid white and pore black, as in the paper. Nothing here changes
global Matplotlib state at import.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

__all__ = [
    "CLIP_SPANS",
    "ERROR_COLORS",
    "FIG6_METRICS",
    "FIGA2_METRICS",
    "METHOD_COLORS",
    "METHOD_LABELS",
    "box_counts",
    "box_summary",
    "error_map",
    "fig2_scenarios",
    "fig3_diffusion_3d",
    "fig4_network",
    "fig5_error_maps",
    "fig6_boxplots",
    "figA1_slices",
    "figA2_tortuosity",
    "fig_median_differences",
    "fig_refinement",
    "fig_training_curves",
    "fig_sample_slices",
    "fig_two_point",
    "metric_boxplots",
    "save",
    "volume_view",
]

BINARY = {"cmap": "gray", "vmin": 0, "vmax": 1, "interpolation": "nearest"}


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
    index = image.shape[axis] // 2 if index is None else index
    return np.take(image, index, axis=axis)


def fig_sample_slices(samples, *, views: int = 1):
    """Central slices of the tomographic samples (solid white, pore black).

    Parameters
    ----------
    samples : sequence of srlib.datasets.Sample
        The samples.
    views : int
        1: the central z slice; 3: central slices normal to z, y and x (one row each).

    Returns
    -------
    tuple
        ``(fig, axes)`` with ``axes`` of shape ``(views, len(samples))``.
    """
    n = len(samples)
    fig, axes = plt.subplots(views, n, figsize=(3.2 * n, 3.2 * views), squeeze=False)
    for j, s in enumerate(samples):
        for v in range(views):
            ax = axes[v, j]
            ax.imshow(_slice(s.image, axis=v), **BINARY)
            ax.set_xticks([])
            ax.set_yticks([])
            if v == 0:
                size = f", {s.voxel_size_um} µm/voxel" if s.voxel_size_um else ""
                ax.set_title(f"{s.name} {s.image.shape[0]}³{size}", fontsize=9)
            if j == 0 and views > 1:
                ax.set_ylabel(f"normal to {'zyx'[v]}")
    fig.tight_layout()
    return fig, axes


def volume_view(image, *, ax=None, size: int = 48, step: int = 1, color="0.8", title=None,
                values=None, cmap="viridis"):
    """3D view of the solid phase of a binary image (a corner crop), as a triangulated surface.

    The surface is the 0.5 iso-surface of the crop (marching cubes); the crop's own faces are
    closed so the solid looks like a block cut out of the material.

    Parameters
    ----------
    image : array_like
        Binary 3D image (True = solid).
    ax : mpl_toolkits.mplot3d.Axes3D, optional
        Axes to draw into; a new figure when None.
    size : int
        Edge of the crop taken from the corner (keeps the mesh small).
    step : int
        Marching-cubes step size (larger: coarser, faster).
    color : color
        Face colour when ``values`` is None.
    title : str, optional
        Axes title.
    values : array_like, optional
        A scalar field on the image grid (e.g. a diffusion channel) used to colour the faces.
    cmap : str
        Colour map for ``values``.

    Returns
    -------
    tuple
        ``(fig, ax)``.
    """
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage.measure import marching_cubes

    img = np.asarray(image)[:size, :size, :size].astype(np.float32)
    padded = np.pad(img, 1)
    verts, faces, _, _ = marching_cubes(padded, 0.5, step_size=step)
    verts -= 1
    if ax is None:
        fig = plt.figure(figsize=(4, 4))
        ax = fig.add_subplot(projection="3d")
    else:
        fig = ax.figure
    tris = verts[faces]
    coll = Poly3DCollection(tris, linewidths=0)
    if values is None:
        coll.set_facecolor(color)
        # simple shading by the face normal's angle to a light direction
        normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
        light = np.array([0.6, 0.3, 0.75])
        shade = 0.45 + 0.55 * np.abs(normals @ light / np.linalg.norm(light))
        base = np.array(matplotlib.colors.to_rgb(color))
        coll.set_facecolor(np.clip(shade[:, None] * base[None, :], 0, 1))
    else:
        vals = np.asarray(values)[:size, :size, :size]
        centres = np.clip(tris.mean(axis=1).round().astype(int), 0, np.array(vals.shape) - 1)
        face_vals = vals[centres[:, 0], centres[:, 1], centres[:, 2]]
        coll.set_facecolor(plt.get_cmap(cmap)(np.clip(face_vals, 0, 1)))
    ax.add_collection3d(coll)
    n = img.shape
    ax.set_xlim(0, n[0])
    ax.set_ylim(0, n[1])
    ax.set_zlim(0, n[2])
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("z")
    ax.set_ylabel("y")
    ax.set_zlabel("x")
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=9)
    return fig, ax


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


def fig2_scenarios(rows, *, channels: bool = False):
    """Fig. 2: per scenario, tomographic slice, HR and LR model realization (and diffusion).

    Parameters
    ----------
    rows : sequence of dict
        One per scenario with keys ``name``, ``tomographic`` (2D), ``hr`` (2D), ``lr`` (2D),
        ``alpha``; with ``channels=True`` also ``solid`` and ``pore`` (2D diffusion solutions
        on the LR slice, 0 outside the phase).
    channels : bool
        Add the paper's last two columns (LR diffusion in the solid and in the pore).

    Returns
    -------
    tuple
        ``(fig, axes)`` of shape ``(len(rows), 3 or 5)``.
    """
    titles = ["tomographic data", "HR model realization", "LR model realization"]
    if channels:
        titles += ["LR diffusion, solid", "LR diffusion, pore"]
    ncol = len(titles)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.6 * ncol, 2.7 * len(rows)),
                             squeeze=False)
    for i, row in enumerate(rows):
        panels = [row["tomographic"], row["hr"], row["lr"]]
        if channels:
            panels += [row["solid"], row["pore"]]
        for j, (ax, panel) in enumerate(zip(axes[i], panels, strict=True)):
            if j < 3:
                ax.imshow(panel, **BINARY)
            else:
                ax.imshow(panel, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                title = titles[j] + (f" (α = {row['alpha']})" if j == 2 else "")
                ax.set_title(title, fontsize=9)
        axes[i, 0].set_ylabel(row["name"])
    fig.tight_layout()
    return fig, axes


# ----------------------------------------------------------------------------- Fig. 3, transport


def _surface_values(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` extended from the voxels of ``mask`` to every voxel (nearest ``mask`` voxel).

    Faces of an iso-surface of ``mask`` then take the value of the phase voxel beside them,
    whichever side of the surface the face's centre rounds to. Voxels whose nearest ``mask``
    voxel has the value 0 (a cluster without a path, Eqs. (7)-(8)) become NaN.
    """
    index = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
    filled = values[tuple(index)].astype(np.float64)
    filled[filled == 0] = np.nan
    return filled


def fig3_diffusion_3d(image, channels, *, size: int = 48, step: int = 1, cmap: str = "viridis"):
    """Fig. 3: 3D views of the transport solution in (a) the pore and (b) the solid phase.

    Each panel is the surface of one phase of a corner crop (see :func:`volume_view`), every
    face coloured by the solution in the voxel of that phase beside it (channel 0 for the pore,
    1 for the solid, Eqs. (7)-(8)); one colour bar for both. Clusters without a path between the
    Dirichlet faces (value 0) are grey. Transport runs along the image's axis 0 (``z``).

    Parameters
    ----------
    image : array_like
        Binary 3D image (True = solid).
    channels : array_like
        Its diffusion channels, shape ``(2, *image.shape)``: pore, solid
        (:func:`srlib.transport.diffusion_channels`).
    size : int
        Edge of the corner crop drawn.
    step : int
        Marching-cubes step size.
    cmap : str
        Colour map of the solution (values in [0, 1]).

    Returns
    -------
    tuple
        ``(fig, axes)`` with the two 3D axes.
    """
    img = np.asarray(image).astype(bool)
    chans = np.asarray(channels)
    if chans.shape != (2, *img.shape):
        raise ValueError(f"channels must have shape {(2, *img.shape)}, got {chans.shape}")
    colours = plt.get_cmap(cmap).with_extremes(bad="0.7")
    fig = plt.figure(figsize=(9.0, 4.3))
    axes = []
    for k, (mask, label) in enumerate(((~img, "(a) pore phase"), (img, "(b) solid phase"))):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        if mask.any():
            volume_view(mask, ax=ax, size=size, step=step, title=label, cmap=colours,
                        values=_surface_values(mask, chans[k]))
            ax.collections[-1].set_rasterized(True)  # tens of thousands of faces: keep PDFs small
        else:
            ax.set_title(f"{label} (absent)", fontsize=9)
        axes.append(ax)
    mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, 1), colours)
    fig.colorbar(mappable, ax=axes, shrink=0.65, pad=0.08, label="solution u, Eqs. (7)-(8)")
    return fig, np.array(axes)


_METHOD_STYLES = {
    "FEM face": {"color": "tab:blue", "marker": "o", "ls": "-"},
    "FEM vertex": {"color": "tab:green", "marker": "s", "ls": "--"},
}


def fig_refinement(estimates):
    """Effective tortuosity against refinement, one panel per phase, one line per method.

    Parameters
    ----------
    estimates : sequence of srlib.transport.TortuosityEstimate or pandas.DataFrame
        Rows with ``phase``, ``method``, ``refinement`` and ``tau_eff`` (e.g. from
        :func:`srlib.transport.refinement_study`). Infinite values (no path) are not drawn; the
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


# ----------------------------------------------------------------------------- Fig. 4

_STAGE_COLORS = {
    "input": "#eeeeee", "conv": "#cfe2f3", "res": "#d9ead3", "up": "#e4d7f5",
    "act": "#fce5cd", "bn": "#fff2cc", "output": "#eeeeee",
}


def _fmt_shape(shape) -> str:
    """``(N, C, D, H, W)`` or ``(C, D, H, W)`` as ``C × D³`` (cubes) or ``C × D×H×W``."""
    c, *spatial = shape[-4:]
    if len(set(spatial)) == 1:
        return f"{c} × {spatial[0]}³"
    return f"{c} × " + "×".join(str(s) for s in spatial)


def _fmt_count(n: int) -> str:
    return f"{n:,}".replace(",", "\u2009")  # thin space as thousands separator


def _box(ax, x, y, w, h, text, color, *, fontsize=8, stack=0, dashed=False):
    from matplotlib.patches import FancyBboxPatch

    for k in range(stack, 0, -1):  # a stack of boxes behind (repeated blocks)
        ax.add_patch(FancyBboxPatch((x + 0.07 * k, y + 0.07 * k), w, h,
                                    boxstyle="round,pad=0.02,rounding_size=0.08",
                                    fc=color, ec="0.35", lw=0.8))
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="0.2", lw=1.0, ls="--" if dashed else "-"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, x0, y0, x1, y1, **kw):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>", "lw": 1.0, "color": "0.2",
                            "shrinkA": 0, "shrinkB": 0, **kw})


def _plus(ax, x, y, r=0.2):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, fc="white", ec="0.2", lw=1.0))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11)


def fig4_network(layers, input_shape, *, kernels=(9, 3, 3), title=None):
    """Fig. 4: schematic of the network, annotated with tensor shapes and parameter counts.

    Draws the stages of :class:`srlib.network.SRResNet3d` as listed by
    :func:`srlib.network.describe` (``leaves=False``): head (conv + PReLU), the residual
    blocks (drawn as one stack), trunk (conv + BatchNorm) with the long skip connection,
    the upsampling stages (conv → PixelShuffle3d → ReLU), the output conv and the sigmoid.
    Below it, the inside of one residual block and of one upsampling stage.

    Parameters
    ----------
    layers : sequence of srlib.network.LayerInfo
        Stage rows of :func:`srlib.network.describe` for one network (shapes as
        ``(N, C, D, H, W)``).
    input_shape : tuple of int
        ``(C, D, H, W)`` of the input described.
    kernels : tuple of int
        Kernel sizes of the head, the inner and the output convolutions (for the labels).
    title : str, optional
        Figure title.

    Returns
    -------
    tuple
        ``(fig, ax)``.
    """
    rows = {r.name: r for r in layers}
    if "head" not in rows or "tail" not in rows or "trunk" not in rows:
        raise ValueError("layers must be the stage rows of srlib.network.describe(model, shape)")
    body = [r for r in layers if r.name.startswith("body.")]
    ups = [r for r in layers if r.name.startswith("upsample.")]
    kh, kb, kt = kernels
    f = rows["head"].output_shape[1]
    c_in = input_shape[0]
    per_block = body[0].parameters if body else 0

    # main row: (label, shape text, parameter text, colour, width, stack, note)
    what = "binary\nLR image" if c_in == 1 else "binary LR\nimage +\ndiffusion" if c_in == 3 else ""
    main = [(f"input\n{what}".strip(), _fmt_shape(input_shape), "", "input", 1.25, 0, "")]
    main.append((f"Conv {kh}³\n{c_in}→{f}\nPReLU", _fmt_shape(rows["head"].output_shape),
                 _fmt_count(rows["head"].parameters), "conv", 1.25, 0, "head"))
    if body:
        main.append((f"residual\nblock\n× {len(body)}", _fmt_shape(body[-1].output_shape),
                     f"{len(body)} × {_fmt_count(per_block)}", "res", 1.35,
                     min(len(body) - 1, 3), "body"))
    main.append((f"Conv {kb}³\nBN", _fmt_shape(rows["trunk"].output_shape),
                 _fmt_count(rows["trunk"].parameters), "conv", 1.1, 0, "trunk"))
    main.append(("+", "", "", "plus", 0.4, 0, ""))
    for k, r in enumerate(ups):
        used = ("all α", "α ≥ 4", "α = 8")[k]
        main.append((f"Conv {kb}³\n{f}→{8 * f}\nPixelShuffle\n3d(2), ReLU",
                     _fmt_shape(r.output_shape), _fmt_count(r.parameters), "up", 1.45, 0,
                     f"upsampling {k + 1} ({used})"))
    main.append((f"Conv {kt}³\n{f}→1", _fmt_shape(rows["tail"].output_shape),
                 _fmt_count(rows["tail"].parameters), "conv", 1.1, 0, "output conv"))
    main.append(("sigmoid", _fmt_shape(rows["output"].output_shape), "", "act", 1.1, 0,
                 "P(solid)"))

    gap, h, y = 0.42, 1.5, 3.2
    xs, x = [], 0.0
    for item in main:
        xs.append(x)
        x += item[4] + gap
    width = x - gap
    fig, ax = plt.subplots(figsize=(max(10.0, 1.02 * width), 6.4))
    centre_y = y + h / 2
    for k, ((label, shape, params, color, w, stack, note), x0) in enumerate(
            zip(main, xs, strict=True)):
        if color == "plus":
            _plus(ax, x0 + w / 2, centre_y)
        else:
            _box(ax, x0, y, w, h, label, _STAGE_COLORS[color], stack=stack)
            if note:
                ax.text(x0 + w / 2, y + h + 0.12 + 0.07 * stack, note, ha="center",
                        va="bottom", fontsize=7.5, style="italic", color="0.25")
            ax.text(x0 + w / 2, y - 0.12, shape, ha="center", va="top", fontsize=7.5)
            if params:
                ax.text(x0 + w / 2, y - 0.42, params, ha="center", va="top", fontsize=7,
                        color="0.4")
        if k + 1 < len(main):
            _arrow(ax, x0 + w, centre_y, xs[k + 1] - 0.02, centre_y)
    # long skip connection: from the head's output over the body and trunk into the sum
    i_head = 1
    i_plus = [m[3] for m in main].index("plus")
    x_from = xs[i_head] + main[i_head][4] + gap / 2
    x_plus = xs[i_plus] + main[i_plus][4] / 2
    top = y + h + 0.75
    ax.plot([x_from, x_from, x_plus], [centre_y, top, top], color="0.2", lw=1.0)
    _arrow(ax, x_plus, top, x_plus, centre_y + 0.2)
    ax.text((x_from + x_plus) / 2, top + 0.08, "long skip connection", ha="center",
            va="bottom", fontsize=7.5)
    ax.text(-0.05, y - 0.42, "parameters:", ha="right", va="top", fontsize=7, color="0.4")
    ax.text(-0.05, y - 0.12, "shape (C × D³):", ha="right", va="top", fontsize=7.5)

    # details: one residual block and one upsampling stage
    yd, hd = 0.35, 0.9
    cd = yd + hd / 2

    def detail(x0, items, caption):
        xk = x0
        starts = []
        for text, color, w in items:
            starts.append(xk)
            if color == "plus":
                _plus(ax, xk + w / 2, cd, r=0.17)
            else:
                _box(ax, xk, yd, w, hd, text, _STAGE_COLORS[color], fontsize=7)
            xk += w + 0.28
        for k in range(len(items) - 1):
            _arrow(ax, starts[k] + items[k][2], cd, starts[k + 1] - 0.01, cd)
        ax.text(x0 - 0.15, yd + hd + 0.55, caption, ha="left", va="bottom", fontsize=8,
                weight="bold")
        from matplotlib.patches import FancyBboxPatch

        ax.add_patch(FancyBboxPatch((x0 - 0.2, yd - 0.25), xk - 0.28 - x0 + 0.4, hd + 0.95,
                                    boxstyle="round,pad=0.02", fc="none", ec="0.5",
                                    ls=":", lw=1.0))
        return starts, xk - 0.28

    if body:
        items = [(f"Conv {kb}³", "conv", 0.75), ("BN", "bn", 0.5), ("PReLU", "act", 0.7),
                 (f"Conv {kb}³", "conv", 0.75), ("BN", "bn", 0.5), ("+", "plus", 0.34)]
        x_res = xs[2] - 0.6
        starts, _ = detail(x_res, items, f"residual block ({_fmt_count(per_block)} "
                                         "parameters, shape kept)")
        xp = starts[-1] + 0.17
        x_in = starts[0] - 0.14
        ax.plot([x_in, x_in, xp], [cd, yd + hd + 0.28, yd + hd + 0.28], color="0.2", lw=1.0)
        _arrow(ax, xp, yd + hd + 0.28, xp, cd + 0.17)
        _arrow(ax, x_in - 0.25, cd, starts[0] - 0.01, cd)
        ax.plot([xs[2] + 0.65] * 2, [y - 0.7, yd + hd + 0.85], color="0.6", lw=0.8, ls=":")
    if ups:
        r0 = ups[0]
        n, c, d, hh, ww = r0.output_shape
        conv_shape = (n, 8 * c, d // 2, hh // 2, ww // 2)
        items = [(f"Conv {kb}³\n{f}→{8 * f}", "conv", 0.95),
                 ("PixelShuffle3d(2)\n8 channels →\n2×2×2 voxels", "up", 1.55),
                 ("ReLU", "act", 0.6)]
        x_up = max(xs[main.index(next(m for m in main if m[3] == "up"))] - 0.3,
                   (x_res + 6.4) if body else 0)
        starts, _ = detail(x_up, items, "upsampling stage (×2 per axis)")
        ax.text(starts[0] + 0.95 + 0.14, cd - hd / 2 - 0.08, _fmt_shape(conv_shape),
                ha="center", va="top", fontsize=6.5)
        ax.text(starts[1] + 1.55 + 0.14, cd - hd / 2 - 0.08, _fmt_shape(r0.output_shape),
                ha="center", va="top", fontsize=6.5)
    ax.set_xlim(-1.6, width + 0.2)
    ax.set_ylim(-0.2, y + h + 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig, ax


# ----------------------------------------------------------------------------- training

_KIND_COLORS = {"bin": "tab:blue", "diffu": "tab:orange"}


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


# ----------------------------------------------------------------------------- section 3

#: The paper's error colours (Fig. 5): correct solid, correct pore, false solid, false pore.
ERROR_COLORS = {
    "correct solid": (1.0, 1.0, 1.0),
    "correct pore": (0.0, 0.0, 0.0),
    "false solid": (1.0, 0.0, 1.0),
    "false pore": (0.0, 0.0, 1.0),
}

#: Method names of the results table and how figures label them.
METHOD_LABELS = {
    "bin": r"$N^{\mathrm{bin},\alpha}$",
    "diffu": r"$N^{\mathrm{diffu},\alpha}$",
    "interpolation": "tri-quadratic interpolation",
}
METHOD_COLORS = {"bin": "tab:blue", "diffu": "tab:orange", "interpolation": "tab:gray"}

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


def _binary_any(image, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isin(arr, (0, 1))):
        raise ValueError(f"{name} must be binary (bool or 0/1)")
    return arr.astype(bool)


def error_map(sr, hr) -> np.ndarray:
    """Colour every voxel by how the super-resolution classified it (Fig. 5).

    Parameters
    ----------
    sr : array_like
        Super-resolved binary image (any dimension; True = solid).
    hr : array_like
        Ground truth of the same shape.

    Returns
    -------
    numpy.ndarray
        Float RGB image of shape ``(*hr.shape, 3)`` in [0, 1]: correct solid white, correct
        pore black, false solid (``sr`` solid, ``hr`` pore) magenta, false pore blue
        (:data:`ERROR_COLORS`).

    Raises
    ------
    ValueError
        If an image is not binary or the shapes differ.
    """
    sr = _binary_any(sr, "sr")
    hr = _binary_any(hr, "hr")
    if sr.shape != hr.shape:
        raise ValueError(f"sr shape {sr.shape} and hr shape {hr.shape} differ; they must match")
    rgb = np.empty(hr.shape + (3,), dtype=float)
    masks = (sr & hr, ~sr & ~hr, sr & ~hr, ~sr & hr)  # the order of ERROR_COLORS
    for colour, mask in zip(ERROR_COLORS.values(), masks, strict=True):
        rgb[mask] = colour
    return rgb


def _error_legend(fig, *, ncol: int = 4):
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c, edgecolor="0.4", label=name)
               for name, c in ERROR_COLORS.items()]
    return fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)


def fig5_error_maps(rows, *, alpha: int, methods=("bin", "diffu", "interpolation")):
    """Fig. 5: error maps of one slice per data set (rows) and method (columns).

    Parameters
    ----------
    rows : sequence of dict
        One per data set with keys ``label`` (row title), ``hr`` (2D ground-truth slice),
        ``sr`` (method -> 2D super-resolved slice) and optionally ``accuracy`` (method -> the
        accuracy of the whole sub-image, shown in the panel title).
    alpha : int
        Scaling factor (for the titles).
    methods : sequence of str
        Columns, keys of each row's ``sr``.

    Returns
    -------
    tuple
        ``(fig, axes)`` with ``axes`` of shape ``(len(rows), len(methods))``.
    """
    n, m = len(rows), len(methods)
    fig, axes = plt.subplots(n, m, figsize=(3.1 * m, 3.6 * n + 0.5), squeeze=False)
    for i, row in enumerate(rows):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            ax.imshow(error_map(row["sr"][method], row["hr"]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"({'abc'[j] if j < 3 else j}) " + METHOD_LABELS.get(method, method)
            title = title.replace(r"\alpha", str(alpha))
            if "accuracy" in row and method in row["accuracy"]:
                title += f"\nsub-image accuracy {row['accuracy'][method]:.3f}"
            ax.set_title(title, fontsize=9)
        axes[i, 0].set_ylabel(row["label"], fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _error_legend(fig)
    return fig, axes


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
        ``whislo``/``whishi`` (minimum and maximum: the whiskers span all finite values) and
        ``fliers`` (values farther than ``1.5 IQR`` beyond the quartiles, Tukey's rule; they
        also lie on the whiskers, which end at the most extreme of them).
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
        out.update(mean=float(finite.mean()), med=float(med), q1=float(q1), q3=float(q3),
                   whislo=float(finite.min()), whishi=float(finite.max()),
                   fliers=finite[(finite < lo) | (finite > hi)])
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
    import pandas as pd

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


#: A panel's y axis is cut below the lowest non-outlier value when the lowest value lies more
#: than this many panel spans (non-outlier range) below it; the values below are counted.
CLIP_SPANS = 0.6


def _panel_limits(summaries) -> tuple[float, float, float | None]:
    """The y range of a box panel: (low, high, clip), clip None when nothing is cut."""
    drawn = [s for s in summaries if s["n_finite"]]
    if not drawn:
        return 0.0, 1.0, None
    hi = max(s["whishi"] for s in drawn)
    lo_all = min(s["whislo"] for s in drawn)
    # lowest value of each box that is not a low outlier
    cores = []
    for s in drawn:
        lower_fence = s["q1"] - OUTLIER_IQR * (s["q3"] - s["q1"])
        low_fliers = s["fliers"][s["fliers"] < lower_fence]
        cores.append(s["whislo"] if not len(low_fliers) else
                     min(s["q1"], *(v for v in s["values"] if v >= lower_fence)))
    lo_core = min(cores)
    span = max(hi - lo_core, 1e-9)
    if lo_all < lo_core - CLIP_SPANS * span:
        clip = lo_core - 0.25 * span
        return clip, hi, clip
    return lo_all, hi, None


def _box_panel(ax, boxes, *, width: float) -> dict:
    """Draw the boxes of one panel; returns counts of lost (-inf), cut and nan values.

    ``boxes`` is a list of ``(position, colour, values)``.
    """
    from matplotlib.transforms import blended_transform_factory

    summaries = []
    for _, _, values in boxes:
        v = np.asarray(values, dtype=float)
        s = box_summary(v)
        s["values"] = v[np.isfinite(v)]
        s["n_cut"] = 0
        summaries.append(s)
    lo, hi, clip = _panel_limits(summaries)
    span = max(hi - lo, 1e-9)
    line = lo - 0.04 * span  # the dashed line under the data range
    for (pos, colour, _), s in zip(boxes, summaries, strict=True):
        if not s["n_finite"]:
            continue
        stats = {k: s[k] for k in ("mean", "med", "q1", "q3", "whislo", "whishi")}
        stats["fliers"] = []
        if clip is not None:
            s["n_cut"] = int(np.count_nonzero(s["values"] < clip))
            stats["whislo"] = max(stats["whislo"], line)
        bp = ax.bxp([stats], positions=[pos], widths=0.85 * width, showmeans=True,
                    showfliers=False, patch_artist=True,
                    meanprops={"marker": "D", "markerfacecolor": "white",
                               "markeredgecolor": "black", "markersize": 3.5},
                    medianprops={"color": "black", "lw": 1.0}, whiskerprops={"lw": 0.9},
                    capprops={"lw": 0.9})
        for patch in bp["boxes"]:
            patch.set_facecolor(colour)
            patch.set_alpha(0.75)
        if s["n_cut"]:
            bp["caps"][0].set_visible(False)  # the whisker runs on below the axis
        fliers = s["fliers"] if clip is None else s["fliers"][s["fliers"] >= clip]
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
    bottom = lo - 0.04 * span
    if strip_rows:
        ax.axhline(line, color="0.5", lw=0.6, ls="--")
        left = blended_transform_factory(ax.transAxes, ax.transData)
        for r, (key, label, colour) in enumerate(strip_rows):
            y = line - (0.07 + 0.08 * r) * span
            ax.text(-0.01, y, label, transform=left, ha="right", va="center", fontsize=7,
                    color=colour)
            for (pos, _, _), s in zip(boxes, summaries, strict=True):
                if s[key]:
                    ax.text(pos, y, str(s[key]), ha="center", va="center", fontsize=6.5,
                            color=colour)
        bottom = line - (0.07 + 0.08 * len(strip_rows)) * span
    ax.set_ylim(bottom, hi + 0.04 * span)
    if strip_rows:  # no value ticks in the strip
        ax.set_yticks([t for t in ax.get_yticks() if line <= t <= hi + 0.04 * span])
    return counts


def metric_boxplots(table, metrics: dict, *, datasets=("simulated", "tomographic"),
                    methods=("bin", "diffu", "interpolation"), alphas=None,
                    row_labels=None, note: str | None = None):
    """Box plots of metrics by α and method, one panel per data set (rows) and metric (columns).

    Each box: quartiles, median (line), mean (white diamond), whiskers from the minimum to
    the maximum, and outliers by Tukey's rule (beyond 1.5 IQR from the quartiles) as open
    circles on top of the whiskers (:func:`box_summary`). Values that cannot be drawn are
    never dropped silently: under a dashed line at the bottom of a panel, each box states how
    many of its values are ``-inf`` (lost paths, ``−∞×k`` in red) and, when a few values lie
    so far below the others that the panel's axis is cut (:data:`CLIP_SPANS`), how many lie
    below the axis (``↓k``; the whisker then runs off the axis). Each panel's x label states how
    many values were left out as ``nan`` (no path in the ground truth, or not computed).

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol`.
    metrics : dict
        Column -> panel title (e.g. :data:`FIG6_METRICS`).
    datasets : sequence of str
        Rows (values of the ``dataset`` column); missing ones are skipped.
    methods : sequence of str
        Boxes side by side at each α.
    alphas : sequence of int, optional
        x positions; default the α in the table.
    row_labels : dict, optional
        Dataset -> row label.
    note : str, optional
        Text appended to the figure's footnote (e.g. how many sub-images had effective
        tortuosities).

    Returns
    -------
    tuple
        ``(fig, axes)`` with ``axes`` of shape ``(rows, len(metrics))``.
    """
    import pandas as pd
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    datasets = [d for d in datasets if (table["dataset"] == d).any()]
    if not datasets:
        raise ValueError("the table holds none of the requested datasets")
    methods = [m for m in methods if (table["method"] == m).any()]
    alphas = sorted(int(a) for a in table["alpha"].unique()) if alphas is None else list(alphas)
    row_labels = row_labels or {}
    cols = list(metrics)
    fig, axes = plt.subplots(len(datasets), len(cols),
                             figsize=(3.4 * len(cols), 3.3 * len(datasets) + 0.9),
                             squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for i, dataset in enumerate(datasets):
        sub = table[table["dataset"] == dataset]
        for j, metric in enumerate(cols):
            ax = axes[i, j]
            boxes = []
            for a_pos, alpha in enumerate(alphas):
                for k, method in enumerate(methods):
                    pos = a_pos + (k - (len(methods) - 1) / 2) * width
                    rows = (sub["alpha"] == alpha) & (sub["method"] == method)
                    values = pd.to_numeric(sub.loc[rows, metric], errors="coerce")
                    boxes.append((pos, METHOD_COLORS.get(method, "C0"), values))
            counts = _box_panel(ax, boxes, width=width)
            ax.set_xticks(range(len(alphas)), [f"α = {a}" for a in alphas])
            ax.set_xlim(-0.5, len(alphas) - 0.5)
            ax.grid(axis="y", alpha=0.3)
            if i == 0:
                ax.set_title(metrics[metric], fontsize=9)
            per_box = sub.groupby(["alpha", "method"]).size()
            n_text = (f"n = {per_box.min()}/box" if per_box.min() == per_box.max()
                      else f"n = {per_box.min()}–{per_box.max()}/box")
            parts = [n_text, f"−∞: {counts['neg_inf']}", f"nan (left out): {counts['nan']}"]
            if counts["cut"]:
                parts.append(f"↓: {counts['cut']}")
            ax.set_xlabel("; ".join(parts), fontsize=7, color="0.25")
        axes[i, 0].set_ylabel(row_labels.get(dataset, f"{dataset} data"))
    handles = [Patch(facecolor=METHOD_COLORS.get(m, "C0"), alpha=0.75, edgecolor="black",
                     label=METHOD_LABELS.get(m, m)) for m in methods]
    handles += [Line2D([], [], color="black", lw=1.0, label="median"),
                Line2D([], [], marker="D", ls="none", mfc="white", mec="black", ms=4,
                       label="mean"),
                Line2D([], [], marker="o", ls="none", mfc="none", mec="black", ms=4,
                       label=f"outlier (> {OUTLIER_IQR:g} IQR beyond the quartiles)")]
    lines = ["Boxes: quartiles; whiskers: minimum to maximum (statistics of the finite values). "
             "Under a dashed line, per box: the number of values below the axis (↓, the "
             "whisker runs on)",
             "and of −∞ values (red: the super-resolution has no path through a phase that "
             "the ground truth crosses)."]
    if note:
        lines.append(note)
    height = fig.get_figheight()
    foot = (0.12 + 0.14 * len(lines)) / height  # footnote lines, 7.5 pt each
    legend = foot + 0.22 / height
    fig.tight_layout(rect=(0, legend + 0.2 / height, 1, 1))
    fig.legend(handles=handles, loc="center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, legend))
    fig.text(0.5, 0.06 / height, "\n".join(lines), ha="center", va="bottom", fontsize=7.5,
             color="0.25")
    return fig, axes


def fig6_boxplots(table, **options):
    """Fig. 6: accuracy, surface accuracy, geodesic and effective tortuosity accuracy.

    :func:`metric_boxplots` with the columns of :data:`FIG6_METRICS` (the tortuosity
    accuracies averaged over the two phases).

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


def figA1_slices(rows, *, methods=("bin", "diffu", "interpolation"), input_column: bool = True,
                 title: str | None = None):
    """Fig. A1: slices of super-resolved data, one row per α, columns methods and ground truth.

    Parameters
    ----------
    rows : sequence of dict
        One per α with keys ``alpha``, ``hr`` (2D ground-truth slice), ``sr`` (method -> 2D
        super-resolved slice of the same plane) and, for ``input_column``, ``lr`` (the LR slice
        of that plane, drawn stretched to the HR extent: LR voxel ``j`` covers HR voxels
        ``αj .. αj + α - 1``).
    methods : sequence of str
        Method columns.
    input_column : bool
        Show the LR input as the first column.
    title : str, optional
        Figure title.

    Returns
    -------
    tuple
        ``(fig, axes)`` of shape ``(len(rows), columns)``.
    """
    cols = (["input"] if input_column else []) + list(methods) + ["ground truth"]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.5 * len(cols), 2.6 * len(rows)),
                             squeeze=False)
    for i, row in enumerate(rows):
        alpha = int(row["alpha"])
        n0, n1 = np.asarray(row["hr"]).shape
        for j, col in enumerate(cols):
            ax = axes[i, j]
            if col == "input":
                ax.imshow(row["lr"], extent=(0, n1, n0, 0), **BINARY)
                label = f"LR input (α = {alpha})"
            elif col == "ground truth":
                ax.imshow(row["hr"], **BINARY)
                label = "ground truth"
            else:
                ax.imshow(row["sr"][col], **BINARY)
                label = METHOD_LABELS.get(col, col).replace(r"\alpha", str(alpha))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 or col != "ground truth":
                ax.set_title(label, fontsize=8.5)
        axes[i, 0].set_ylabel(f"α = {alpha}")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, axes


def fig_median_differences(comparisons, metrics: dict):
    """Differences of medians between methods per α: one panel per metric.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        Rows of :func:`srlib.evaluation.compare_methods` (columns ``dataset``, ``alpha``,
        ``metric``, ``difference``, ``p_sign``) with an added column ``comparison`` naming the
        pair (e.g. ``"N^bin − interpolation"``); one line per comparison and data set.
    metrics : dict
        Metric column -> panel title.

    Returns
    -------
    tuple
        ``(fig, axes)``; filled markers where the paired sign test gives p < 0.05, open
        markers otherwise; a dashed line at zero (no difference).
    """
    from matplotlib.lines import Line2D

    cols = list(metrics)
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.6), squeeze=False)
    axes = axes[0]
    styles = {"simulated": "-", "tomographic": "--"}
    names = list(dict.fromkeys(comparisons["comparison"]))
    colours = {name: f"C{k}" for k, name in enumerate(names)}
    for ax, metric in zip(axes, cols, strict=True):
        sub = comparisons[comparisons["metric"] == metric]
        for (name, dataset), line in sub.groupby(["comparison", "dataset"], sort=False):
            line = line.sort_values("alpha")
            x, y = line["alpha"].to_numpy(), line["difference"].to_numpy(float)
            ax.plot(x, y, ls=styles.get(dataset, ":"), color=colours[name], lw=1.2)
            sig = line["p_sign"].to_numpy(float) < 0.05
            ax.plot(x[sig], y[sig], "o", color=colours[name], ms=5)
            ax.plot(x[~sig], y[~sig], "o", mfc="white", mec=colours[name], ms=5)
        ax.axhline(0, color="0.3", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        alphas = sorted(int(a) for a in sub["alpha"].unique())
        ax.set_xticks(alphas, [f"α = {a}" for a in alphas])
        ax.minorticks_off()
        ax.set_title(metrics[metric], fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("difference of medians")
    handles = [Line2D([], [], color=colours[n], lw=1.2, label=n) for n in names]
    handles += [Line2D([], [], color="0.3", ls=s, label=d) for d, s in styles.items()]
    handles += [Line2D([], [], color="0.3", marker="o", ls="none", label="sign test p < 0.05"),
                Line2D([], [], color="0.3", marker="o", mfc="white", ls="none",
                       label="p ≥ 0.05")]
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    return fig, axes
