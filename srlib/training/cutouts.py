r"""Training pairs and the cutouts drawn from them (paper, section 2.2.2).

Contract. A :class:`Pair` holds a network ``input`` of shape ``(C, n1, n2, n3)`` (channel 0
the binary low-resolution image, channels 1–2 the diffusion channels for
:math:`N^{diffu,\alpha}`) and its ``target``, the binary high-resolution image of shape
``(α n1, α n2, α n3)`` (True = solid). :func:`make_pair` builds one from a high-resolution
image by Eq. (3); :func:`pairs_from_database` builds the pairs of one role ('train', 'val',
'test') and α from a :class:`srlib.datasets.Database`. :func:`cutout_at` and
:func:`random_cutout` cut an input cube (Eq. (1) with ``m1 = m2 = m3 = cutout``; paper: 24)
and its α-times larger target, transformed by a symmetry of the cube
(:mod:`srlib.training.symmetry`); :func:`validation_cutouts` draws the fixed set of
validation cutouts of early stopping. Arrays passed in are never modified.

Alignment under augmentation. Low-resolution voxel ``j`` sits at high-resolution voxel
``α j`` (Eq. (3)), i.e. at the *first* voxel of its α-block. Mirroring a cutout pair naively
would move it to the *last* voxel of its block, shifting target against input by α − 1
high-resolution voxels along every mirrored axis (the down-sampled target would no longer
equal the input), so the network would be trained on two inconsistent alignments. By default
(``align_mirrors=True``) the high-resolution window is therefore shifted by α − 1 voxels
along each axis that the symmetry reverses; after the transformation, low-resolution voxel
``j`` again sits at high-resolution voxel ``α j`` exactly. This needs one spare
low-resolution voxel before the cutout along such axes, so images must be larger than the
cutout by at least one voxel. ``align_mirrors=False`` gives the naive augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srlib._checks import as_binary, check_alpha, check_divisible, positive_int
from srlib.resample import downsample
from srlib.training.symmetry import (
    IDENTITY,
    Symmetry,
    apply_symmetry,
    check_symmetry,
    random_symmetry,
    reversed_axes,
)

__all__ = [
    "Pair",
    "cutout_at",
    "make_pair",
    "pairs_from_database",
    "random_cutout",
    "validation_cutouts",
]


@dataclass(frozen=True, eq=False)
class Pair:
    """A training, validation or test pair (section 2.2.2).

    Parameters
    ----------
    input : array_like
        ``(C, n1, n2, n3)`` network input (channel 0: the binary low-resolution image, 0/1;
        further channels: e.g. the diffusion channels), or ``(n1, n2, n3)`` for one channel.
        Stored as float32 (not copied if it already is).
    target : array_like
        Binary high-resolution image (True = solid) of shape ``(α n1, α n2, α n3)``. Stored
        as bool (not copied if it already is).

    Raises
    ------
    ValueError
        If the shapes do not match for an α in {2, 4, 8}, channel 0 is not binary, the input
        is not finite or the target is not binary.
    """

    input: np.ndarray
    target: np.ndarray

    def __post_init__(self):
        inp = np.asarray(self.input)
        if inp.ndim == 3:
            inp = inp[None]
        if inp.ndim != 4 or inp.size == 0:
            raise ValueError(
                f"pair input must be (C, n1, n2, n3) or (n1, n2, n3), got shape {inp.shape}"
            )
        if not (inp.dtype == bool or np.issubdtype(inp.dtype, np.number)):
            raise ValueError(f"pair input must be numeric, got dtype {inp.dtype}")
        inp = np.asarray(inp, dtype=np.float32)
        if not np.all(np.isfinite(inp)):
            raise ValueError("pair input contains NaN or infinite values")
        if not np.all((inp[0] == 0) | (inp[0] == 1)):
            raise ValueError("pair input channel 0 must be the binary low-resolution image (0/1)")
        tgt = as_binary(self.target, name="pair target")
        lr_shape = inp.shape[1:]
        alpha = tgt.shape[0] // lr_shape[0]
        if alpha not in (2, 4, 8) or tgt.shape != tuple(alpha * n for n in lr_shape):
            raise ValueError(
                f"pair target shape {tgt.shape} is not alpha × input shape {lr_shape} "
                "for an alpha in (2, 4, 8)"
            )
        object.__setattr__(self, "input", inp)
        object.__setattr__(self, "target", tgt)

    @property
    def alpha(self) -> int:
        """Scaling factor between target and input."""
        return self.target.shape[0] // self.input.shape[1]

    @property
    def channels(self) -> int:
        """Number of input channels."""
        return self.input.shape[0]

    @property
    def lr_shape(self) -> tuple[int, int, int]:
        """Spatial shape of the input."""
        return tuple(self.input.shape[1:])


def make_pair(hr, alpha: int, *, channels=None) -> Pair:
    """Build a pair from a high-resolution image: input = down-sampled image (Eq. (3)).

    Parameters
    ----------
    hr : array_like
        Binary high-resolution image (True = solid), extents divisible by ``alpha``.
    alpha : int
        Scaling factor, 2, 4 or 8.
    channels : array_like, optional
        Extra input channels of shape ``(k, *lr_shape)``, e.g. the diffusion channels of the
        low-resolution image (Eq. (13)).

    Returns
    -------
    Pair
        Input ``(1 + k, *lr_shape)`` float32, target ``hr`` as bool.
    """
    alpha = check_alpha(alpha)
    hr = as_binary(hr, name="hr")
    check_divisible(hr.shape, alpha, name="hr")
    lr = downsample(hr, alpha).astype(np.float32)[None]
    if channels is not None:
        extra = np.asarray(channels, dtype=np.float32)
        if extra.ndim == 3:
            extra = extra[None]
        if extra.ndim != 4 or extra.shape[1:] != lr.shape[1:]:
            raise ValueError(
                f"channels must have shape (k, *{lr.shape[1:]}), got {np.shape(channels)}"
            )
        lr = np.concatenate([lr, extra])
    return Pair(lr, hr)


def as_pairs(pairs, name: str) -> list[Pair]:
    """Return ``pairs`` (a Pair, or a sequence of Pairs or ``(input, target)``) as a list."""
    if isinstance(pairs, Pair):
        pairs = [pairs]
    out = [p if isinstance(p, Pair) else Pair(*p) for p in pairs]
    if not out:
        raise ValueError(f"{name} is empty; at least one pair is needed")
    return out


def cutout_at(pair: Pair, corner, cutout: int, *, symmetry: Symmetry = IDENTITY,
              align_mirrors: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Cut an input cube and its target at a given position, then transform both.

    The input cutout covers low-resolution voxels ``corner[a] ... corner[a] + cutout - 1``
    along each axis ``a``; the target covers high-resolution voxels
    ``α corner[a] ... α (corner[a] + cutout) - 1`` (Eq. (3): LR voxel ``j`` ↔ HR voxel
    ``α j``), shifted by ``-(α - 1)`` along the axes the symmetry reverses when
    ``align_mirrors`` (see the module docstring), so that in the returned pair LR voxel
    ``j`` again corresponds to HR voxel ``α j``: ``target[::α, ::α, ::α] == input[0]``
    whenever the pair itself satisfies Eq. (3).

    Parameters
    ----------
    pair : Pair
        Source pair.
    corner : sequence of 3 int
        Low-resolution index of the cutout's first voxel.
    cutout : int
        Edge length of the input cube, in low-resolution voxels.
    symmetry : Symmetry
        Transformation applied to every input channel and to the target.
    align_mirrors : bool
        Keep the Eq. (3) alignment along reversed axes (needs ``corner[a] >= 1`` there).

    Returns
    -------
    input : numpy.ndarray
        float32, ``(C, cutout, cutout, cutout)``.
    target : numpy.ndarray
        bool, ``(α cutout,) * 3``.

    Raises
    ------
    ValueError
        If the cutout does not fit into the pair at ``corner``.
    """
    cutout = positive_int(cutout, "cutout")
    symmetry = check_symmetry(symmetry)
    a = pair.alpha
    corner = tuple(int(c) for c in corner)
    if len(corner) != 3:
        raise ValueError(f"corner must have 3 entries, got {corner}")
    rev = reversed_axes(symmetry) if align_mirrors else (False, False, False)
    lo_hr = []
    for ax, (c, n, r) in enumerate(zip(corner, pair.lr_shape, rev, strict=True)):
        if c < int(r) or c + cutout > n:
            need = "1" if r else "0"
            raise ValueError(
                f"cutout of {cutout} at corner {corner} does not fit the input of shape "
                f"{pair.lr_shape} along axis {ax} (corner must be in [{need}, {n - cutout}])"
            )
        lo_hr.append(a * c - (a - 1) * int(r))
    inp = pair.input[(slice(None), *(slice(c, c + cutout) for c in corner))]
    tgt = pair.target[tuple(slice(lo, lo + a * cutout) for lo in lo_hr)]
    return apply_symmetry(inp, symmetry), apply_symmetry(tgt, symmetry)


def random_cutout(pair: Pair, cutout: int, rng: np.random.Generator, *, augment: bool = True,
                  align_mirrors: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Draw a random cutout pair, augmented by a random symmetry (section 2.2.3).

    Parameters
    ----------
    pair : Pair
        Source pair.
    cutout : int
        Edge length of the input cube (paper: 24).
    rng : numpy.random.Generator
        Source of randomness.
    augment : bool
        Apply :func:`~srlib.training.symmetry.random_symmetry` (mirror with probability ½,
        then a random rotation).
    align_mirrors : bool
        See :func:`cutout_at`.

    Returns
    -------
    input, target : numpy.ndarray
        As for :func:`cutout_at`.
    """
    sym = random_symmetry(rng) if augment else IDENTITY
    rev = reversed_axes(sym) if align_mirrors else (False, False, False)
    corner = []
    for n, r in zip(pair.lr_shape, rev, strict=True):
        if n - cutout < int(r):
            raise ValueError(
                f"cutout={cutout} needs input extents of at least {cutout + int(r)} "
                f"(shape {pair.lr_shape}); with align_mirrors a mirrored cutout needs one "
                "spare voxel. Use a smaller cutout or align_mirrors=False"
            )
        corner.append(int(rng.integers(int(r), n - cutout + 1)))
    return cutout_at(pair, corner, cutout, symmetry=sym, align_mirrors=align_mirrors)


def validation_cutouts(pairs, n: int, cutout: int, *, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Draw a fixed set of ``n`` random (not augmented) cutouts from validation pairs.

    Each cutout picks a pair uniformly at random, then a uniformly random position.

    Parameters
    ----------
    pairs : sequence of Pair
        Validation pairs.
    n : int
        Number of cutouts (paper: 30).
    cutout : int
        Edge length of the input cubes.
    seed : int
        Seed; the same seed gives the same cutouts.

    Returns
    -------
    inputs : numpy.ndarray
        float32, ``(n, C, cutout, cutout, cutout)``.
    targets : numpy.ndarray
        bool, ``(n, α cutout, α cutout, α cutout)``.
    """
    pairs = as_pairs(pairs, "validation pairs")
    cutout = positive_int(cutout, "cutout")
    n = positive_int(n, "the number of validation cutouts")
    rng = np.random.default_rng([seed, 1])
    drawn = [
        random_cutout(pairs[int(rng.integers(len(pairs)))], cutout, rng, augment=False)
        for _ in range(n)
    ]
    return np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn])


def pairs_from_database(db, role: str, alpha: int, *, diffu: bool = False,
                        scenarios=None) -> list[Pair]:
    r"""Build the pairs (input, HR target) of one role of a database (section 2.2.2).

    For every scenario and every realization ``i`` with the given role, the target is the
    high-resolution realization and the input its low-resolution version for ``alpha``
    (Eq. (11)); with ``diffu`` the two diffusion channels of the low-resolution image
    (``[pore, solid]``, Eqs. (7)-(8)) are appended (Eq. (13)).

    Parameters
    ----------
    db : srlib.datasets.Database
        The database (diffusion channels must have been computed for ``diffu``, see
        :func:`srlib.datasets.build_diffusion_channels`).
    role : {"train", "val", "test"}
        Which realizations.
    alpha : int
        Scaling factor, 2, 4 or 8.
    diffu : bool
        Three-channel inputs for :math:`N^{diffu,\alpha}` instead of the binary image alone.
    scenarios : sequence of str, optional
        Restrict to these scenarios; default all, in database order.

    Returns
    -------
    list of Pair
        In order of scenario, then realization.

    Raises
    ------
    ValueError
        If the role is unknown or has no realizations, ``alpha`` is not in the database, a
        scenario is unknown, or a stored low-resolution image is not the Eq. (3)
        down-sampling of its high-resolution image.
    """
    alpha = check_alpha(alpha)
    if role not in ("train", "val", "test"):
        raise ValueError(f"role must be 'train', 'val' or 'test', got {role!r}")
    if alpha not in db.alphas:
        raise ValueError(f"alpha={alpha} is not among the database's alphas {db.alphas}")
    names = db.scenario_names if scenarios is None else list(scenarios)
    unknown = sorted(set(names) - set(db.scenario_names))
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; the database has {db.scenario_names}")
    indices = db.indices(role)
    if not indices or not names:
        raise ValueError(f"the database has no {role!r} realizations to build pairs from")
    pairs = []
    for s in names:
        for i in indices:
            hr = db.hr(s, i)
            lr = db.lr(s, i, alpha)
            if not np.array_equal(lr, downsample(hr, alpha)):
                raise ValueError(
                    f"database {db.root}: LR image {s}/{i} (alpha={alpha}) is not the Eq. (3) "
                    "down-sampling of its HR image"
                )
            inp = lr[None].astype(np.float32)
            if diffu:
                inp = np.concatenate([inp, np.asarray(db.channels(s, i, alpha), np.float32)])
            pairs.append(Pair(inp, hr))
    return pairs
