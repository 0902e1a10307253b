"""Images of volumes: slices, 3D views and error maps (Figs. 2, 3, 5, A1, the samples).

Binary images are drawn with solid white and pore black, as in the paper; every builder
returns ``(fig, axes)`` without saving it.
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

from srlib.methods import PAPER

from ._style import BINARY, ERROR_COLORS, METHOD_LABELS, middle_slice

__all__ = [
    "error_map",
    "fig2_scenarios",
    "fig3_diffusion_3d",
    "fig5_error_maps",
    "figA1_slices",
    "fig_sample_slices",
    "volume_view",
]


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
            ax.imshow(middle_slice(s.image, axis=v), **BINARY)
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


def fig5_error_maps(rows, *, alpha: int, methods=PAPER):
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



def figA1_slices(rows, *, methods=PAPER, input_column: bool = True,
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

