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

__all__ = [
    "fig2_scenarios",
    "fig4_network",
    "fig_training_curves",
    "fig_sample_slices",
    "fig_two_point",
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
