r"""Methods that are not networks: the interpolation baselines and the local headroom reference.

Contract. Every method maps a binary low-resolution image to a binary image ``α`` times larger
per axis, True = solid; inputs are never modified.

* Tri-quadratic interpolation with Dodgson's kernel (ref. [21]) on two grid conventions:
  *aligned* to Eq. (3) (LR voxel ``j`` at HR voxel ``α j``,
  :func:`srlib.resample.interpolate_quadratic`, the paper's baseline) and *pixel-centre*
  (:func:`interpolate_quadratic_centred`: LR voxel ``j`` is the block of HR voxels
  ``α j .. α j + α - 1`` and both grids sample voxel centres, what
  ``scipy.ndimage.zoom(..., grid_mode=True)`` and ``torch.nn.functional.interpolate(...,
  align_corners=False)`` do). Each is thresholded either at 0.5 (the paper) or at a threshold
  fitted by Eq. (18) on the validation realizations exactly as μ* is fitted for the networks
  (:func:`fit_interpolation_threshold`).
* :class:`LocalBayes`: the majority vote per (2×2×2 LR corner pattern, HR offset inside the LR
  cell), counted on training realizations, a table of ``256 α³`` cells. It is the best
  classifier that sees only the 8 LR voxels around an HR voxel: the *local headroom* a method
  can gain over the interpolation from that neighbourhood alone.

:func:`fit_baselines` computes the fitted thresholds and the tables of a database once per α,
for the evaluation protocol (:mod:`srlib.evaluation`).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

import numpy as np

from srlib._checks import as_binary, as_volume, check_alpha, positive_int
from srlib.methods import GRIDS
from srlib.resample import interpolate_quadratic, upsample_axis

__all__ = [
    "Baselines",
    "LocalBayes",
    "corner_patterns",
    "fit_baselines",
    "fit_interpolation_threshold",
    "interpolate",
    "interpolate_quadratic_centred",
    "interpolation_cutouts",
]

#: Number of 2×2×2 binary corner patterns.
N_PATTERNS = 256


def interpolate_quadratic_centred(lr, alpha: int, *, dtype=None) -> np.ndarray:
    r"""Up-sample a 3D image by tri-quadratic interpolation on the pixel-centre grid.

    The same Dodgson kernel as :func:`srlib.resample.interpolate_quadratic`, applied
    separably, but with the convention of ``scipy.ndimage.zoom(..., grid_mode=True)`` and
    ``torch.nn.functional.interpolate(..., align_corners=False)``: LR voxel ``j`` covers the HR
    voxels ``α j .. α j + α - 1`` and its value sits at their centre, so HR voxel ``i`` lies at
    LR coordinate ``(i + 1/2) / α - 1/2``. This does *not* match Eq. (3), which samples
    ``hr[::α]`` (LR voxel ``j`` *is* HR voxel ``α j``): the result is shifted by
    ``(α - 1) / 2`` HR voxels against the aligned interpolation. It is the convention a
    generic image library uses, and the baseline study of :mod:`srlib.evaluation` scores both.

    Notes
    -----
    * Defining property: for an LR image that is linear in the coordinates (away from the
      borders), the mean of every ``α³`` block of the result equals the LR voxel of the block
      (the kernel reproduces linear functions and the block's centre is the LR voxel's).
    * Unlike the aligned convention it commutes with mirroring the image.
    * Edges: the image is extended by replicating its border voxels (two on each side), as
      the aligned interpolation does; the outer half-voxel of each border block is thus
      extrapolated.

    Parameters
    ----------
    lr : array_like
        3D low-resolution image, ``bool``, integer or float.
    alpha : int
        Scaling factor, one of 2, 4, 8.
    dtype : numpy dtype, optional
        Floating-point type of the result; default ``float64`` for ``float64`` input,
        ``float32`` otherwise.

    Returns
    -------
    numpy.ndarray
        Floating-point image of shape ``alpha * lr.shape``.

    Raises
    ------
    ValueError
        If ``lr`` is not a non-empty 3D real image or ``alpha`` is not 2, 4 or 8.
    """
    arr = as_volume(lr, name="lr")
    alpha = check_alpha(alpha)
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)) or np.iscomplexobj(arr):
        raise ValueError(f"lr must be a real numeric or bool image, got dtype {arr.dtype}")
    if dtype is None:
        dtype = np.float64 if arr.dtype == np.float64 else np.float32
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be a floating-point type, got {dtype!r}") from exc
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")
    out = arr
    for axis in range(3):
        out = upsample_axis(out, alpha, axis, dtype, centred=True)
    return out


def _check_convention(convention) -> str:
    if convention not in GRIDS:
        raise ValueError(f"convention must be one of {GRIDS}, got {convention!r}")
    return convention


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def interpolate(lr, alpha: int, *, convention: str = "aligned",
                threshold: float | None = 0.5) -> np.ndarray:
    """Binary (or grey) interpolation baseline in either grid convention.

    Parameters
    ----------
    lr : array_like
        Binary 3D low-resolution image (True = solid).
    alpha : int
        Scaling factor, one of 2, 4, 8.
    convention : {"aligned", "centred"}
        Eq. (3)-aligned (:func:`srlib.resample.interpolate_quadratic`) or pixel-centre
        (:func:`interpolate_quadratic_centred`).
    threshold : float or None
        A voxel is solid where the interpolated value is ``>= threshold`` (0.5: the paper's
        baseline; a fitted one from :func:`fit_interpolation_threshold`). None returns the
        grey values.

    Returns
    -------
    numpy.ndarray
        ``bool`` image (float32 grey values when ``threshold`` is None) of shape
        ``alpha * lr.shape``.
    """
    lr = as_binary(lr, name="lr")
    convention = _check_convention(convention)
    func = interpolate_quadratic if convention == "aligned" else interpolate_quadratic_centred
    grey = func(lr, alpha)
    if threshold is None:
        return grey
    return grey >= _check_threshold(threshold)


# ----------------------------------------------------------------------------- fitted threshold


def interpolation_cutouts(pairs, *, convention: str = "aligned", cutout: int = 24,
                          stride: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Interpolated grey values and targets on the cutouts μ* is fitted on for the networks.

    The positions are those of :func:`srlib.training.predict_cutouts` (every ``stride``-th
    LR voxel, default ``stride = cutout``: all non-overlapping cutouts), cut with
    :func:`srlib.training.cutout_at`, and each LR cutout is interpolated on its own, as a
    network sees it. The grey values are clipped to [0, 1] (the kernel overshoots slightly);
    clipping changes no thresholding at a threshold in (0, 1).

    Parameters
    ----------
    pairs : sequence of srlib.training.Pair
        Validation pairs (channel 0 of the input is the binary LR image).
    convention : {"aligned", "centred"}
        Grid convention of the interpolation.
    cutout : int
        Edge of the LR cutouts (the profile's ``cutout``).
    stride : int, optional
        Distance between cutout positions; default ``cutout``.

    Returns
    -------
    probabilities : list of numpy.ndarray
        float32 ``(α cutout,) * 3`` grey values in [0, 1].
    targets : list of numpy.ndarray
        Matching bool HR cutouts.
    """
    from srlib.training import cutout_at

    convention = _check_convention(convention)
    cutout = positive_int(cutout, "cutout")
    stride = cutout if stride is None else positive_int(stride, "stride")
    if not pairs:
        raise ValueError("pairs is empty; at least one validation pair is needed")
    probs, targets = [], []
    for k, pair in enumerate(pairs):
        if min(pair.lr_shape) < cutout:
            raise ValueError(f"pairs[{k}] input shape {pair.lr_shape} is smaller than the "
                             f"cutout {cutout}")
        starts = [range(0, n - cutout + 1, stride) for n in pair.lr_shape]
        for corner in itertools.product(*starts):
            inp, tgt = cutout_at(pair, corner, cutout)
            grey = interpolate(inp[0] > 0.5, pair.alpha, convention=convention, threshold=None)
            probs.append(np.clip(grey, 0.0, 1.0).astype(np.float32, copy=False))
            targets.append(tgt)
    return probs, targets


def fit_interpolation_threshold(pairs, *, convention: str = "aligned", cutout: int = 24,
                                stride: int | None = None) -> float:
    """Threshold of the interpolation fitted by Eq. (18), exactly as μ* for the networks.

    :func:`interpolation_cutouts` followed by :func:`srlib.training.fit_threshold` (the
    function that fits μ* of the networks, on the same cutouts): the threshold that best
    matches the porosity of the HR cutouts of the validation realizations.

    Parameters
    ----------
    pairs : sequence of srlib.training.Pair
        Validation pairs.
    convention : {"aligned", "centred"}
        Grid convention of the interpolation.
    cutout, stride : int
        See :func:`interpolation_cutouts`.

    Returns
    -------
    float
        The threshold in (0, 1).
    """
    from srlib.training import fit_threshold

    probs, targets = interpolation_cutouts(pairs, convention=convention, cutout=cutout,
                                           stride=stride)
    return fit_threshold(probs, targets)


# ----------------------------------------------------------------------------- local Bayes


def _upper_neighbour(n: int) -> np.ndarray:
    """Index ``j + 1`` of each LR voxel ``j < n``, the last one replicated (edge replication)."""
    return np.minimum(np.arange(n) + 1, n - 1)


def corner_patterns(lr) -> np.ndarray:
    """Index of the 2×2×2 LR corner pattern of every LR cell, in 0..255.

    Cell ``(j, k, l)`` spans the HR voxels ``α j .. α j + α - 1`` (and likewise along the
    other axes), between the LR voxels ``j`` and ``j + 1`` (Eq. (3): LR voxel ``j`` is HR voxel
    ``α j``). Its corners are the 8 LR voxels ``(j + dz, k + dy, l + dx)`` with ``d`` in
    {0, 1}; corner ``c = 4 dz + 2 dy + dx`` contributes ``2**c`` if solid. The last LR plane
    along each axis has no upper neighbour: its value is replicated (the interpolation's
    border handling), so there the pattern sees the plane twice.

    Parameters
    ----------
    lr : array_like
        Binary 3D LR image.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of ``lr``'s shape.
    """
    lr = as_binary(lr, name="lr")
    up = [_upper_neighbour(n) for n in lr.shape]
    index = np.zeros(lr.shape, dtype=np.uint8)
    for dz, dy, dx in itertools.product((0, 1), repeat=3):
        iz = up[0] if dz else np.arange(lr.shape[0])
        iy = up[1] if dy else np.arange(lr.shape[1])
        ix = up[2] if dx else np.arange(lr.shape[2])
        corner = lr[np.ix_(iz, iy, ix)]
        index |= (corner.astype(np.uint8) << np.uint8(4 * dz + 2 * dy + dx))
    return index


def _blocks(hr: np.ndarray, alpha: int) -> np.ndarray:
    """HR image as ``(nz, ny, nx, α³)``: the α³ voxels of each LR cell, offsets in C order."""
    nz, ny, nx = (n // alpha for n in hr.shape)
    b = hr.reshape(nz, alpha, ny, alpha, nx, alpha).transpose(0, 2, 4, 1, 3, 5)
    return b.reshape(nz, ny, nx, alpha ** 3)


@dataclass(frozen=True, eq=False)
class LocalBayes:
    r"""Majority vote per (2×2×2 LR corner pattern, HR offset in the LR cell): the local headroom.

    For scaling factor ``α`` the table has ``256 α³`` cells: one per corner pattern
    (:func:`corner_patterns`) and offset ``(pz, py, px)`` in ``0..α-1`` of an HR voxel inside
    its LR cell (HR voxel ``α j + p``). Each cell holds the phase most often seen there in the
    training realizations (:meth:`count`). It is the Bayes-optimal classifier (for accuracy)
    that sees only those 8 LR voxels. Cells with a tie or never seen fall back to the aligned
    tri-quadratic interpolation thresholded at 0.5 at that voxel.

    Counting uses only cells with a genuine upper neighbour along every axis (the last LR
    plane of a training image, whose upper corners would be replicated, is left out);
    prediction on a test image replicates the last plane (:func:`corner_patterns`), as the
    interpolation does at its border.

    Attributes
    ----------
    alpha : int
        Scaling factor.
    solid : numpy.ndarray
        ``(256, α³)`` int64: solid HR voxels counted per cell.
    total : numpy.ndarray
        ``(256,)`` int64: LR cells counted per pattern (every offset of a cell is counted once).
    """

    alpha: int
    solid: np.ndarray = field(repr=False)
    total: np.ndarray = field(repr=False)

    def __post_init__(self):
        alpha = check_alpha(self.alpha)
        solid = np.asarray(self.solid, dtype=np.int64)
        total = np.asarray(self.total, dtype=np.int64)
        if solid.shape != (N_PATTERNS, alpha ** 3) or total.shape != (N_PATTERNS,):
            raise ValueError(f"solid must be (256, {alpha ** 3}) and total (256,), got "
                             f"{solid.shape} and {total.shape}")
        if np.any(solid < 0) or np.any(solid > total[:, None]):
            raise ValueError("solid counts must lie in [0, total] for every cell")
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "solid", solid)
        object.__setattr__(self, "total", total)

    @classmethod
    def count(cls, images, alpha: int) -> LocalBayes:
        """Count the table on high-resolution training images.

        Parameters
        ----------
        images : iterable of array_like
            Binary HR images (True = solid), extents divisible by ``alpha``; each is
            down-sampled by Eq. (3).
        alpha : int
            Scaling factor.

        Returns
        -------
        LocalBayes
            The counted table.
        """
        alpha = check_alpha(alpha)
        solid = np.zeros((N_PATTERNS, alpha ** 3), dtype=np.int64)
        total = np.zeros(N_PATTERNS, dtype=np.int64)
        seen = 0
        for k, image in enumerate(images):
            hr = as_binary(image, name=f"images[{k}]")
            if any(n % alpha for n in hr.shape):
                raise ValueError(f"images[{k}] shape {hr.shape} is not divisible by "
                                 f"alpha={alpha}")
            lr = hr[::alpha, ::alpha, ::alpha]
            inner = tuple(slice(0, n - 1) for n in lr.shape)  # cells with an upper neighbour
            pattern = corner_patterns(lr)[inner].ravel().astype(np.int64)
            blocks = _blocks(hr, alpha)[inner].reshape(-1, alpha ** 3)
            offsets = np.arange(alpha ** 3, dtype=np.int64)
            cell = (pattern[:, None] * alpha ** 3 + offsets[None, :]).ravel()
            solid += np.bincount(cell, weights=blocks.ravel(),
                                 minlength=solid.size).astype(np.int64).reshape(solid.shape)
            total += np.bincount(pattern, minlength=N_PATTERNS)
            seen += 1
        if not seen:
            raise ValueError("images is empty; at least one training image is needed")
        return cls(alpha=alpha, solid=solid, total=total)

    @classmethod
    def from_database(cls, db, alpha: int, *, role: str = "train",
                      scenarios=None) -> LocalBayes:
        """Count the table on the HR realizations of one role of a database.

        Parameters
        ----------
        db : srlib.datasets.Database
            The database.
        alpha : int
            Scaling factor.
        role : str
            Realizations counted (default the training ones, as for the networks).
        scenarios : sequence of str, optional
            Restrict to these scenarios; default all.

        Returns
        -------
        LocalBayes
            The counted table.
        """
        names = db.scenario_names if scenarios is None else list(scenarios)
        indices = db.indices(role)
        if not names or not indices:
            raise ValueError(f"the database has no {role!r} realizations to count on")
        return cls.count((db.hr(s, i) for s in names for i in indices), alpha)

    @property
    def table(self) -> np.ndarray:
        """``(256, α³)`` int8: 1 solid, 0 pore, -1 fall back to the interpolation."""
        out = np.full(self.solid.shape, -1, dtype=np.int8)
        pore = self.total[:, None] - self.solid
        out[self.solid > pore] = 1
        out[pore > self.solid] = 0
        return out

    @property
    def coverage(self) -> float:
        """Fraction of the table's cells with a majority (not falling back)."""
        return float(np.mean(self.table >= 0))

    @property
    def digest(self) -> str:
        """SHA-256 prefix of the counts: identifies the table in stored results."""
        h = hashlib.sha256(f"local_bayes:{self.alpha}".encode())
        h.update(self.solid.tobytes())
        h.update(self.total.tobytes())
        return h.hexdigest()[:16]

    def predict(self, lr) -> np.ndarray:
        """Super-resolve a binary LR image by the table (fallback: aligned interpolation).

        Parameters
        ----------
        lr : array_like
            Binary 3D LR image.

        Returns
        -------
        numpy.ndarray
            ``bool`` image of shape ``alpha * lr.shape``.
        """
        lr = as_binary(lr, name="lr")
        a = self.alpha
        votes = self.table[corner_patterns(lr)]  # (nz, ny, nx, α³)
        nz, ny, nx = lr.shape
        votes = votes.reshape(nz, ny, nx, a, a, a).transpose(0, 3, 1, 4, 2, 5)
        votes = votes.reshape(a * nz, a * ny, a * nx)
        out = votes == 1
        undecided = votes < 0
        if np.any(undecided):
            out[undecided] = interpolate_quadratic(lr, a)[undecided] >= 0.5
        return out

    __call__ = predict


# ----------------------------------------------------------------------------- per database


@dataclass(frozen=True, eq=False)
class Baselines:
    """The fitted parts of the non-network methods at one scaling factor.

    Attributes
    ----------
    alpha : int
        Scaling factor.
    thresholds : dict
        ``{"aligned": μ, "centred": μ}``: interpolation thresholds fitted by Eq. (18)
        (:func:`fit_interpolation_threshold`).
    local_bayes : LocalBayes
        The table counted on the training realizations.
    """

    alpha: int
    thresholds: dict
    local_bayes: LocalBayes = field(repr=False)


def fit_baselines(db, alphas=None, *, cutout: int = 24, stride: int | None = None,
                  scenarios=None) -> dict[int, Baselines]:
    """Fit the interpolation thresholds and count the local-Bayes tables of a database, per α.

    Thresholds are fitted on the non-overlapping ``cutout``-cutouts of the realizations with
    role 'val' (as μ* for the networks), tables counted on those with role 'train'.

    Parameters
    ----------
    db : srlib.datasets.Database
        The database.
    alphas : sequence of int, optional
        Scaling factors; default the database's.
    cutout : int
        LR cutout edge of the threshold fit (the profile's ``cutout``).
    stride : int, optional
        See :func:`interpolation_cutouts`.
    scenarios : sequence of str, optional
        Restrict to these scenarios; default all.

    Returns
    -------
    dict
        ``{alpha: Baselines}``.
    """
    from srlib.training import pairs_from_database

    alphas = db.alphas if alphas is None else tuple(alphas)
    fitted = {}
    for alpha in alphas:
        alpha = check_alpha(alpha)
        val = pairs_from_database(db, "val", alpha, scenarios=scenarios)
        thresholds = {c: fit_interpolation_threshold(val, convention=c, cutout=cutout,
                                                     stride=stride) for c in GRIDS}
        fitted[alpha] = Baselines(alpha=alpha, thresholds=thresholds,
                                  local_bayes=LocalBayes.from_database(db, alpha,
                                                                       scenarios=scenarios))
    return fitted
