r"""The 48 symmetries of the cube, used to augment training cutouts (paper, section 2.2.3).

Contract. A :class:`Symmetry` ``(perm, flips)`` acts on the last three (spatial) axes of a
NumPy array or torch tensor: :func:`apply_symmetry` first transposes the spatial axes, then
reverses some of them; leading axes (channels) are untouched, so every channel gets the same
transform. :func:`cube_symmetries` lists all 48 elements (24 rotations, each with or without a
mirroring), :func:`random_symmetry` draws one as the paper augments (a mirroring with
probability ½, then a random rotation), and :func:`reversed_axes` says which input axes an
element reverses, which :mod:`srlib.training.cutouts` needs to keep low- and high-resolution
voxels aligned under mirroring (Eq. (3)). Inputs are never modified.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "axis_symmetries",
    "IDENTITY",
    "Symmetry",
    "apply_symmetry",
    "compose_symmetries",
    "cube_symmetries",
    "is_rotation",
    "random_symmetry",
    "reversed_axes",
]


class Symmetry(NamedTuple):
    """An element of the cube's symmetry group, acting on the last three (spatial) axes.

    Applying it (:func:`apply_symmetry`) first transposes the spatial axes so that output
    axis ``i`` is input axis ``perm[i]``, then reverses output axis ``i`` where
    ``flips[i]`` is True. 6 permutations × 8 flip patterns give all 48 elements; those with
    determinant +1 (:func:`is_rotation`) are the 24 rotations.
    """

    perm: tuple[int, int, int]
    flips: tuple[bool, bool, bool]


#: The identity transformation.
IDENTITY = Symmetry((0, 1, 2), (False, False, False))
#: The mirror used for augmentation: reversal of the first spatial axis.
_MIRROR = Symmetry((0, 1, 2), (True, False, False))


def cube_symmetries() -> list[Symmetry]:
    """Return the 48 elements of the cube's symmetry group (24 rotations, each ± mirror).

    Returns
    -------
    list of Symmetry
        All ``(perm, flips)`` pairs, identity first, in a fixed order.
    """
    return [
        Symmetry(tuple(p), tuple(f))
        for p in itertools.permutations(range(3))
        for f in itertools.product((False, True), repeat=3)
    ]


def _matrix(sym: Symmetry) -> np.ndarray:
    # Signed permutation matrix M with out(c) = in(M c) in centred voxel coordinates c.
    m = np.zeros((3, 3), dtype=int)
    for i, (p, f) in enumerate(zip(sym.perm, sym.flips, strict=True)):
        m[p, i] = -1 if f else 1
    return m


def _from_matrix(m: np.ndarray) -> Symmetry:
    perm = tuple(int(np.flatnonzero(m[:, i])[0]) for i in range(3))
    flips = tuple(bool(m[perm[i], i] < 0) for i in range(3))
    return Symmetry(perm, flips)


def check_symmetry(sym) -> Symmetry:
    """Return ``sym`` as a :class:`Symmetry`; raise ValueError unless it is a valid one."""
    try:
        perm, flips = sym
        perm = tuple(int(p) for p in perm)
        flips = tuple(bool(f) for f in flips)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"symmetry must be a (perm, flips) pair, got {sym!r}") from exc
    if sorted(perm) != [0, 1, 2] or len(flips) != 3:
        raise ValueError(
            f"symmetry must have a permutation of (0, 1, 2) and three flips, got {sym!r}"
        )
    return Symmetry(perm, flips)


def is_rotation(sym: Symmetry) -> bool:
    """Return True if ``sym`` is a proper rotation (determinant +1), False for a mirroring."""
    return round(np.linalg.det(_matrix(check_symmetry(sym)))) == 1


def compose_symmetries(first: Symmetry, second: Symmetry) -> Symmetry:
    """Return the symmetry that applies ``first``, then ``second``.

    ``apply_symmetry(apply_symmetry(x, first), second)`` equals
    ``apply_symmetry(x, compose_symmetries(first, second))``.
    """
    return _from_matrix(_matrix(check_symmetry(first)) @ _matrix(check_symmetry(second)))


def reversed_axes(sym: Symmetry) -> tuple[bool, bool, bool]:
    """Which spatial axes of the *input* ``sym`` reverses (whatever axis they move to)."""
    sym = check_symmetry(sym)
    inverse = np.argsort(sym.perm)
    return tuple(bool(sym.flips[inverse[a]]) for a in range(3))


def apply_symmetry(array, sym: Symmetry):
    """Transform the last three axes of an array or tensor by an element of the cube's group.

    Leading axes (e.g. channels) are untouched, so every channel gets the same transform.

    Parameters
    ----------
    array : numpy.ndarray or torch.Tensor
        At least 3D; the spatial axes are the last three. Not modified.
    sym : Symmetry
        ``(perm, flips)``, see :class:`Symmetry`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        A new contiguous array (or tensor) of the same type.

    Raises
    ------
    ValueError
        If ``array`` has fewer than 3 axes or ``sym`` is not a valid symmetry.
    """
    sym = check_symmetry(sym)
    ndim = array.ndim
    if ndim < 3:
        raise ValueError(f"array must have at least 3 axes (spatial last), got {ndim}")
    lead = ndim - 3
    axes = [*range(lead), *(lead + p for p in sym.perm)]
    flip = [lead + i for i, f in enumerate(sym.flips) if f]
    if isinstance(array, torch.Tensor):
        out = array.permute(*axes)
        if flip:
            out = torch.flip(out, flip)
        return out.contiguous()
    out = np.transpose(np.asarray(array), axes)
    if flip:
        out = np.flip(out, flip)
    return np.ascontiguousarray(out)


_ROTATIONS = [s for s in cube_symmetries() if is_rotation(s)]


def axis_symmetries(axis: int = 0, *, keep_direction: bool = False) -> list[Symmetry]:
    """The symmetries that map ``axis`` onto itself: 16 of the 48, 8 with ``keep_direction``.

    A solution of transport along ``axis`` stays one under these (reversed along ``axis``
    it swaps inlet and outlet); under the others it becomes transport along another axis.
    ``keep_direction`` leaves out those that reverse ``axis``.
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    return [s for s in cube_symmetries()
            if s.perm[axis] == axis and not (keep_direction and s.flips[axis])]


def random_symmetry(rng: np.random.Generator) -> Symmetry:
    """Draw an augmentation as in section 2.2.3: mirror with probability ½, then a random rotation.

    The rotation is uniform over the 24 rotations (the identity included); the result is
    uniform over all 48 symmetries.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (two draws per call).

    Returns
    -------
    Symmetry
        The drawn element.
    """
    mirror = bool(rng.random() < 0.5)
    rotation = _ROTATIONS[int(rng.integers(len(_ROTATIONS)))]
    return compose_symmetries(_MIRROR, rotation) if mirror else rotation
