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
