"""Change of resolution: down-sampling (Eq. 3), sub-division, and the interpolation baseline.

Contract: images are 3D arrays indexed ``[z, y, x]``. :func:`downsample` keeps every α-th
voxel starting with the first, so low-resolution voxel ``j`` sits at high-resolution voxel
``α j`` (Eq. (3) with 0-based indices); every function that maps between the two grids uses
this alignment. Inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from srlib._checks import as_binary, as_dtype, as_volume, check_alpha, check_divisible


def downsample(image, alpha: int) -> np.ndarray:
    """Down-sample a 3D image by deleting slices, Eq. (3).

    ``I_LR(j, k, l) = I_HR(α j, α k, α l)`` with 0-based indices, i.e. ``image[::α, ::α, ::α]``.
    No blurring is applied, so a binary image stays binary.

    Parameters
    ----------
    image : array_like
        3D image whose extents are divisible by ``alpha``.
    alpha : int
        Scaling factor, one of 2, 4, 8.

    Returns
    -------
    numpy.ndarray
        The low-resolution image, a contiguous copy of shape ``image.shape // alpha``.

    Raises
    ------
    ValueError
        If ``image`` is not 3D, ``alpha`` is not 2, 4 or 8, or a shape is not divisible by it.
    """
    arr = as_volume(image)
    alpha = check_alpha(alpha)
    check_divisible(arr.shape, alpha)
    return np.ascontiguousarray(arr[::alpha, ::alpha, ::alpha])


def subdivide(image) -> list[np.ndarray]:
    """Split a 3D image into 8 equally sized, non-overlapping sub-images (2 x 2 x 2).

    The order is lexicographic in the block index ``(bz, by, bx)``, each in {0, 1}.

    Parameters
    ----------
    image : array_like
        3D image with even extents.

    Returns
    -------
    list of numpy.ndarray
        Eight contiguous copies of shape ``image.shape // 2``.

    Raises
    ------
    ValueError
        If ``image`` is not 3D or an extent is odd.
    """
    arr = as_volume(image)
    if any(n % 2 for n in arr.shape):
        raise ValueError(f"image shape {arr.shape} must be even along every axis to subdivide")
    hz, hy, hx = (n // 2 for n in arr.shape)
    blocks = []
    for bz in range(2):
        for by in range(2):
            for bx in range(2):
                window = (slice(bz * hz, (bz + 1) * hz), slice(by * hy, (by + 1) * hy),
                          slice(bx * hx, (bx + 1) * hx))
                blocks.append(np.ascontiguousarray(arr[window]))
    return blocks


def _dodgson_kernel(s: np.ndarray) -> np.ndarray:
    """Evaluate Dodgson's interpolating quadratic kernel (r = 1 in his family, ref. [21]).

    ``h(s) = 1 - 2 s^2`` for ``|s| <= 1/2``, ``s^2 - 5/2 |s| + 3/2`` for ``1/2 < |s| <= 3/2``,
    ``0`` otherwise. It is continuous, ``h(0) = 1`` and ``h(+-1) = 0`` (so it interpolates),
    and it reproduces constant and linear functions, but not quadratic ones.
    """
    s = np.abs(np.asarray(s, dtype=np.float64))
    inner = 1.0 - 2.0 * s**2
    outer = s**2 - 2.5 * s + 1.5
    return np.where(s <= 0.5, inner, np.where(s <= 1.5, outer, 0.0))


#: Offsets ``k`` of the low-resolution samples ``j + k`` that can contribute to a point
#: ``j + t`` with ``0 <= t < 1`` (the kernel's support is ``|s| <= 3/2``).
#: Offsets ``k`` of the LR samples ``j + k`` that can contribute to a point ``j + t`` with
#: ``-1/2 <= t < 1`` (the kernel's support is ``|s| <= 3/2``); zero weights are skipped.
_TAPS = (-2, -1, 0, 1, 2)


def upsample_axis(arr: np.ndarray, alpha: int, axis: int, dtype, *,
                   centred: bool = False) -> np.ndarray:
    """Interpolate ``arr`` along one axis onto a grid ``alpha`` times finer.

    Output sample ``alpha j + p`` lies at low-resolution coordinate ``j + t_p``, with
    ``t_p = p / alpha`` on the Eq. (3)-aligned grid, or ``t_p = (p + 1/2) / alpha - 1/2`` on the
    pixel-centre grid (``centred``, used by :mod:`srlib.baselines`); it is the sum over the taps
    ``k`` of ``h(t_p - k) * arr[j + k]``, with ``arr`` extended by replicating its first and
    last sample (two samples on each side). The result is a new C-contiguous array.
    """
    n = arr.shape[axis]

    def along(index) -> tuple:
        key = [slice(None)] * arr.ndim
        key[axis] = index
        return tuple(key)

    first, last = arr[along(slice(0, 1))], arr[along(slice(n - 1, n))]
    padded = np.concatenate([first, first, arr, last, last], axis=axis).astype(dtype, copy=False)
    shape = list(arr.shape)
    shape[axis] = alpha * n
    out = np.empty(shape, dtype=dtype)
    for p in range(alpha):
        t = (p + 0.5) / alpha - 0.5 if centred else p / alpha
        weights = _dodgson_kernel(t - np.asarray(_TAPS, dtype=np.float64))
        phase = out[along(slice(p, None, alpha))]
        phase[...] = 0
        for k, w in zip(_TAPS, weights, strict=True):
            if w == 0.0:
                continue
            # arr[j + k] for j = 0 .. n-1 is padded[j + k + 2]
            shifted = padded[along(slice(k + 2, k + 2 + n))]
            if w == 1.0:
                phase += shifted
            else:
                phase += dtype.type(w) * shifted
    return out


def interpolate_quadratic(lr, alpha: int, *, dtype=None) -> np.ndarray:
    r"""Up-sample a 3D image by tri-quadratic interpolation, the paper's baseline (section 3).

    Dodgson's interpolating quadratic kernel (ref. [21], the member ``r = 1`` of his family)

    .. math::

        h(s) = \begin{cases} 1 - 2 s^2 & |s| \le 1/2 \\
                             s^2 - \tfrac52 |s| + \tfrac32 & 1/2 < |s| \le 3/2 \\
                             0 & \text{otherwise} \end{cases}

    is applied separably along the three axes. The grids are aligned as in Eq. (3):
    high-resolution voxel ``i`` sits at low-resolution coordinate ``i / alpha``, so
    ``out[::alpha, ::alpha, ::alpha] == lr`` (the kernel interpolates: ``h(0) = 1``,
    ``h(+-1) = 0``). Each output voxel is a weighted sum of the 3 nearest low-resolution
    samples per axis (27 in 3D).

    Notes
    -----
    * The kernel reproduces constant and linear functions exactly, but not quadratic ones: for
      ``f(x) = x^2`` sampled on the low-resolution grid the result at ``j + t`` is
      ``f(j + t) + min(t, 1 - t)^2``. At ``t = 1/2`` the weights are ``(1/2, 1/2)``, so for
      ``alpha = 2`` the method coincides with trilinear interpolation.
    * Edges: the image is extended by replicating its border voxels. The last ``alpha - 1``
      high-resolution voxels along each axis lie past the last low-resolution sample (at
      coordinates ``n - 1 + p / alpha``); they are extrapolated with the same kernel and the
      same border replication.
    * Values may overshoot ``[min(lr), max(lr)]`` slightly (the outer lobe is negative);
      :func:`interpolate_quadratic_binary` thresholds the result for binary input.

    Parameters
    ----------
    lr : array_like
        3D low-resolution image, ``bool``, integer or float (a binary image as 0/1).
    alpha : int
        Scaling factor, one of 2, 4, 8.
    dtype : numpy dtype, optional
        Floating-point type of the result. Default: ``float64`` for ``float64`` input,
        ``float32`` otherwise (saves half the memory at the paper's 800^3).

    Returns
    -------
    numpy.ndarray
        Floating-point image of shape ``alpha * lr.shape``.

    Raises
    ------
    ValueError
        If ``lr`` is not a non-empty 3D numeric array, or ``alpha`` is not 2, 4 or 8.
    """
    arr = as_volume(lr, name="lr")
    alpha = check_alpha(alpha)
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)) or np.iscomplexobj(arr):
        raise ValueError(f"lr must be a real numeric or bool image, got dtype {arr.dtype}")
    if dtype is None:
        dtype = np.float64 if arr.dtype == np.float64 else np.float32
    dtype = as_dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")
    out = arr
    for axis in range(3):
        out = upsample_axis(out, alpha, axis, dtype)
    return out


def interpolate_quadratic_binary(lr, alpha: int, *, threshold: float = 0.5) -> np.ndarray:
    """Binary tri-quadratic baseline: :func:`interpolate_quadratic` thresholded at ``threshold``.

    A voxel is solid (True) where the interpolated value is ``>= threshold``. With the
    default 0.5 this is the binary baseline the paper compares the networks with.

    Parameters
    ----------
    lr : array_like
        3D low-resolution binary image, ``bool`` or numeric with values 0 and 1 (True/1 =
        solid); grayscale input (e.g. 0/255) is refused, binarise it first.
    alpha : int
        Scaling factor, one of 2, 4, 8.
    threshold : float
        Threshold applied to the interpolated grey values.

    Returns
    -------
    numpy.ndarray
        ``bool`` image of shape ``alpha * lr.shape``, True = solid.

    Raises
    ------
    ValueError
        As :func:`interpolate_quadratic`, if ``lr`` is not binary, or if ``threshold`` is not
        a finite number.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return interpolate_quadratic(as_binary(lr, name="lr"), alpha) >= threshold
