"""Change of resolution: down-sampling (Eq. 3), sub-division, and the interpolation baseline.

Contract: images are 3D arrays indexed ``[z, y, x]``. :func:`downsample` keeps every α-th
voxel starting with the first, so low-resolution voxel ``j`` sits at high-resolution voxel
``α j`` (Eq. (3) with 0-based indices); every function that maps between the two grids uses
this alignment. Inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from srlib._checks import as_volume, check_alpha, check_divisible


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
    return [
        np.ascontiguousarray(arr[bz * hz : (bz + 1) * hz, by * hy : (by + 1) * hy, bx * hx : (bx + 1) * hx])
        for bz in range(2)
        for by in range(2)
        for bx in range(2)
    ]
