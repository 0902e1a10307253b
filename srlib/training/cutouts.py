r"""Training pairs and the cutouts drawn from them (paper, section 2.2.2).

Contract. A :class:`Pair` holds a network ``input`` of shape ``(C, n1, n2, n3)`` (channel 0
the binary low-resolution image, channels 1–2 the diffusion channels for
:math:`N^{diffu,\alpha}`) and its ``target``, the binary high-resolution image of shape
``(α n1, α n2, α n3)`` (True = solid), either in memory or as lazy array-likes
(:func:`is_lazy`: zarr arrays, memmaps, a :class:`ChannelStack` of them) of which each
cutout reads only its region, so that training never holds whole volumes. :func:`make_pair`
builds one from a high-resolution image by Eq. (3); :func:`pairs_from_database` builds the
(lazy, when the database can) pairs of one role ('train', 'val', 'test') and α from a
:class:`srlib.datasets.Database`. :func:`cutout_at` and
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
    "ChannelStack",
    "Pair",
    "cutout_at",
    "is_lazy",
    "make_pair",
    "pairs_from_database",
    "random_cutout",
    "validation_cutouts",
]


def is_lazy(array) -> bool:
    """True if ``array`` is read on demand: a NumPy memmap or a non-NumPy array-like.

    A lazy array-like has ``.shape``, a NumPy ``.dtype`` and NumPy-style basic slicing
    (e.g. a zarr array, an ``h5py`` dataset, ``np.load(..., mmap_mode="r")``); slicing it
    reads only the selected region.
    """
    if isinstance(array, np.memmap) or isinstance(array, ChannelStack):
        return True
    return (not isinstance(array, np.ndarray) and hasattr(array, "__getitem__")
            and isinstance(getattr(array, "dtype", None), np.dtype)
            and isinstance(getattr(array, "shape", None), tuple))


class ChannelStack:
    """Lazy concatenation of array-likes along a leading channel axis, read as float32.

    Parameters
    ----------
    parts : sequence of array-like
        Arrays of shape ``(n1, n2, n3)`` (one channel) or ``(k, n1, n2, n3)``, lazy or not,
        all with the same spatial shape.

    Notes
    -----
    Indexing takes a channel index or slice followed by up to three spatial slices (basic
    indexing); only the selected region of each part is read. The parts are not copied.
    """

    def __init__(self, parts):
        parts = list(parts)
        if not parts:
            raise ValueError("ChannelStack needs at least one part")
        spatial, counts = None, []
        for k, part in enumerate(parts):
            shape = tuple(int(n) for n in part.shape)
            if len(shape) not in (3, 4):
                raise ValueError(f"part {k} must be (n1, n2, n3) or (k, n1, n2, n3), "
                                 f"got shape {shape}")
            dtype = np.dtype(part.dtype)
            if not (dtype == np.bool_ or np.issubdtype(dtype, np.number)):
                raise ValueError(f"part {k} must be numeric, got dtype {dtype}")
            if spatial is not None and shape[-3:] != spatial:
                raise ValueError(f"part {k} has spatial shape {shape[-3:]}, expected {spatial}")
            spatial = shape[-3:]
            counts.append(1 if len(shape) == 3 else shape[0])
        self.parts = parts
        self.shape = (sum(counts), *spatial)
        self.dtype = np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        """Number of dimensions (4)."""
        return 4

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        channel, spatial = key[0], key[1:]
        blocks = []
        for part in self.parts:
            if len(part.shape) == 3:
                blocks.append(np.asarray(part[spatial], dtype=np.float32)[None])
            else:
                blocks.append(np.asarray(part[(slice(None), *spatial)], dtype=np.float32))
        return np.concatenate(blocks)[channel]

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


@dataclass(frozen=True, eq=False)
class Pair:
    """A training, validation or test pair (section 2.2.2).

    Parameters
    ----------
    input : array_like
        ``(C, n1, n2, n3)`` network input (channel 0: the binary low-resolution image, 0/1;
        further channels: e.g. the diffusion channels), or ``(n1, n2, n3)`` for one channel.
        An in-memory array is stored as float32 (not copied if it already is). A lazy
        array-like (:func:`is_lazy`: a memmap, a zarr array, a :class:`ChannelStack`) is kept
        as a :class:`ChannelStack` and read cutout by cutout, as float32.
    target : array_like
        Binary high-resolution image (True = solid) of shape ``(α n1, α n2, α n3)``. Stored
        as bool (not copied if it already is); a lazy array-like (bool or 0/1 integers) is
        kept as it is and read cutout by cutout.
    fields : array_like, optional
        High-resolution field targets ``(k, α n1, α n2, α n3)`` (e.g. the diffusion channels
        of the HR image, ``[pore, solid]``, the paper's future work, :mod:`srlib.fields`),
        float32 in memory or lazy. With them, a cutout's target is the float32 stack of
        the binary image and the fields (:func:`cutout_at`).

    Raises
    ------
    ValueError
        If the shapes do not match for an α in {2, 4, 8}, or (for arrays in memory) channel 0
        is not binary, the input is not finite or the target is not binary. Lazy arrays are
        checked by shape and dtype only: reading them whole is what they avoid.
    """

    input: np.ndarray
    target: np.ndarray
    fields: np.ndarray | None = None

    def __post_init__(self):
        if is_lazy(self.input):
            inp = self.input if isinstance(self.input, ChannelStack) else ChannelStack(
                [self.input])
        else:
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
                raise ValueError(
                    "pair input channel 0 must be the binary low-resolution image (0/1)")
        if is_lazy(self.target):
            tgt = self.target
            dtype = np.dtype(tgt.dtype)
            if len(tgt.shape) != 3 or not (dtype == np.bool_ or np.issubdtype(dtype, np.integer)):
                raise ValueError("pair target must be a 3D binary image (bool or 0/1 "
                                 f"integers), got shape {tgt.shape} and dtype {dtype}")
        else:
            tgt = as_binary(self.target, name="pair target")
        lr_shape = tuple(inp.shape[1:])
        tgt_shape = tuple(int(n) for n in tgt.shape)
        alpha = tgt_shape[0] // max(lr_shape[0], 1)
        if alpha not in (2, 4, 8) or tgt_shape != tuple(alpha * n for n in lr_shape):
            raise ValueError(
                f"pair target shape {tgt_shape} is not alpha × input shape {lr_shape} "
                "for an alpha in (2, 4, 8)"
            )
        object.__setattr__(self, "input", inp)
        object.__setattr__(self, "target", tgt)
        if self.fields is not None:
            object.__setattr__(self, "fields", _check_fields(self.fields, tgt_shape))

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
        return tuple(int(n) for n in self.input.shape[1:])

    @property
    def lazy(self) -> bool:
        """True if input, target or fields are read on demand, cutout by cutout."""
        return is_lazy(self.input) or is_lazy(self.target) or (
            self.fields is not None and is_lazy(self.fields))


def _check_fields(fields, hr_shape: tuple) -> np.ndarray:
    """Field targets as float32 ``(k, *hr_shape)`` (lazy ones kept, checked by shape)."""
    if is_lazy(fields):
        shape = tuple(int(n) for n in fields.shape)
    else:
        fields = np.asarray(fields, dtype=np.float32)
        shape = fields.shape
        if not np.isfinite(fields).all():
            raise ValueError("pair fields contain NaN or infinite values")
    if len(shape) != 4 or shape[1:] != hr_shape or shape[0] < 1:
        raise ValueError(f"pair fields must have shape (k, *{hr_shape}), got {shape}")
    return fields


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
        bool, ``(α cutout,) * 3``; for a pair with ``fields``, float32
        ``(1 + k, α cutout, α cutout, α cutout)``: the binary image (0/1), then the fields.

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
    if not isinstance(tgt, np.ndarray) or tgt.dtype != bool:  # read from a lazy target
        tgt = np.asarray(tgt).astype(bool, copy=False)
    inp = np.asarray(inp, dtype=np.float32)
    if pair.fields is not None:
        window = tuple(slice(lo, lo + a * cutout) for lo in lo_hr)
        fields = np.asarray(pair.fields[(slice(None), *window)], dtype=np.float32)
        tgt = np.concatenate([tgt[None].astype(np.float32), fields])
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
    corner, sym = draw_position(pair.lr_shape, cutout, rng, augment=augment,
                                align_mirrors=align_mirrors)
    return cutout_at(pair, corner, cutout, symmetry=sym, align_mirrors=align_mirrors)


def draw_position(lr_shape, cutout: int, rng: np.random.Generator, *, augment: bool = True,
                  align_mirrors: bool = True, symmetries=None
                  ) -> tuple[tuple[int, ...], Symmetry]:
    """Draw the corner and symmetry of a random cutout (what :func:`random_cutout` draws).

    Parameters
    ----------
    lr_shape : sequence of 3 int
        Spatial shape of the pair's input.
    cutout : int
        Edge length of the input cube.
    rng : numpy.random.Generator
        Source of randomness: first the symmetry (if ``augment``), then the corner, axis by
        axis.
    augment, align_mirrors : bool
        See :func:`random_cutout`.
    symmetries : sequence of Symmetry, optional
        Draw the augmentation uniformly from these (one draw) instead of from all 48
        (:func:`~srlib.training.symmetry.random_symmetry`): field targets allow only those
        that keep the transport axis and its direction (:mod:`srlib.training.targets`).

    Returns
    -------
    corner : tuple of int
        Low-resolution index of the cutout's first voxel.
    symmetry : Symmetry
        The transformation (``IDENTITY`` without ``augment``).
    """
    if not augment:
        sym = IDENTITY
    elif symmetries is None:
        sym = random_symmetry(rng)
    else:
        sym = check_symmetry(symmetries[int(rng.integers(len(symmetries)))])
    rev = reversed_axes(sym) if align_mirrors else (False, False, False)
    corner = []
    for n, r in zip(lr_shape, rev, strict=True):
        if n - cutout < int(r):
            raise ValueError(
                f"cutout={cutout} needs input extents of at least {cutout + int(r)} "
                f"(shape {tuple(lr_shape)}); with align_mirrors a mirrored cutout needs one "
                "spare voxel. Use a smaller cutout or align_mirrors=False"
            )
        corner.append(int(rng.integers(int(r), n - cutout + 1)))
    return tuple(corner), sym


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


#: Bytes of high-resolution voxels read at once when a lazy pair is checked against Eq. (3).
_CHECK_BYTES = 1 << 26


def _check_downsampled(lr, hr, alpha: int, where: str) -> None:
    """Raise unless ``lr == hr[::α, ::α, ::α]``, reading ``hr`` in slabs of bounded size."""
    if tuple(lr.shape) != tuple(n // alpha for n in hr.shape):
        raise ValueError(f"{where}: LR shape {tuple(lr.shape)} is not the Eq. (3) down-sampling "
                         f"of HR shape {tuple(hr.shape)} (alpha={alpha})")
    plane = int(np.prod(hr.shape[1:])) * max(np.dtype(hr.dtype).itemsize, 1)
    step = max(1, _CHECK_BYTES // (plane * alpha))  # LR planes per slab
    for z in range(0, lr.shape[0], step):
        z1 = min(z + step, lr.shape[0])
        slab = np.asarray(hr[alpha * z : alpha * z1])[::alpha, ::alpha, ::alpha] != 0
        if not np.array_equal(np.asarray(lr[z:z1]) != 0, slab):
            raise ValueError(f"{where} is not the Eq. (3) down-sampling of its HR image")


def _database_arrays(db, scenario: str, i: int, alpha: int, diffu: bool, checks: dict):
    """HR, LR and (with ``diffu``) channel arrays of one realization, lazy when possible.

    A database with an ``array(kind, scenario, i, alpha, **checks)`` method
    (:meth:`srlib.datasets.Database.array`; ``checks``: the channels' ``connectivity`` and
    ``axis``) hands out lazy array-likes; otherwise the arrays are loaded with ``hr``, ``lr``
    and ``channels``.
    """
    opener = getattr(db, "array", None)
    if opener is not None:
        hr = opener("hr", scenario, i)
        lr = opener("lr", scenario, i, alpha)
        ch = opener("channels", scenario, i, alpha, **checks) if diffu else None
    else:
        hr, lr = db.hr(scenario, i), db.lr(scenario, i, alpha)
        ch = db.channels(scenario, i, alpha, **checks) if diffu else None
    return hr, lr, ch


#: Pairs of one role whose arrays take at most this many bytes in memory are loaded whole by
#: :func:`pairs_from_database`: a cutout sliced from memory is a view, one read from the zarr
#: store decompresses a chunk, a large share of a small training step (engineering notes of
#: the book). Larger databases stream.
PRELOAD_BYTES = 64 * 2**20


def pairs_from_database(db, role: str, alpha: int, *, diffu: bool = False,
                        scenarios=None, connectivity: str | None = None,
                        preload_bytes: int = PRELOAD_BYTES) -> list[Pair]:
    r"""Build the pairs (input, HR target) of one role of a database (section 2.2.2).

    For every scenario and every realization ``i`` with the given role, the target is the
    high-resolution realization and the input its low-resolution version for ``alpha``
    (Eq. (11)); with ``diffu`` the two diffusion channels of the low-resolution image
    (``[pore, solid]``, Eqs. (7)-(8)) are appended (Eq. (13)).

    Streaming. When the database hands out lazy arrays (a method
    ``db.array(kind, scenario, i, alpha, **checks)``, as
    :meth:`srlib.datasets.Database.array`), the pairs hold them and every cutout reads only
    its region, so training never holds whole volumes; the Eq. (3) check below reads the
    images in bounded slabs. Unless they are small: when all the pairs' arrays fit in
    ``preload_bytes`` (inputs as float32), they are read into memory once, which makes a
    cutout much cheaper and memory still bounded. The values, hence the training, are the
    same either way.
    Otherwise the images are loaded (``db.hr``, ``db.lr``, ``db.channels``).

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
    connectivity : {"face", "vertex"}, optional
        When given, the stored diffusion channels must have been computed with it, along
        axis 0 (the database refuses others); callers that know their settings pass them.
    preload_bytes : int
        Load streamed pairs into memory when they take at most this many bytes in all
        (default :data:`PRELOAD_BYTES`; 0 always streams).

    Returns
    -------
    list of Pair
        In order of scenario, then realization.

    Raises
    ------
    ValueError
        If the role is unknown or has no realizations, ``alpha`` is not in the database, a
        scenario is unknown, a stored low-resolution image is not the Eq. (3)
        down-sampling of its high-resolution image, or the channels were computed with
        other settings.
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
    checks = {} if connectivity is None else {"connectivity": connectivity, "axis": 0}
    pairs = []
    for s in names:
        for i in indices:
            hr, lr, ch = _database_arrays(db, s, i, alpha, diffu, checks)
            where = f"database {db.root}: LR image {s}/{i} (alpha={alpha})"
            if is_lazy(hr) or is_lazy(lr):
                _check_downsampled(lr, hr, alpha, where)
                pairs.append(Pair(ChannelStack([lr] if ch is None else [lr, ch]), hr))
                continue
            if not np.array_equal(lr, downsample(hr, alpha)):
                raise ValueError(f"{where} is not the Eq. (3) down-sampling of its HR image")
            inp = lr[None].astype(np.float32)
            if diffu:
                inp = np.concatenate([inp, np.asarray(ch, np.float32)])
            pairs.append(Pair(inp, hr))
    size = sum(np.prod(p.input.shape) * 4 + np.prod(p.target.shape) for p in pairs if p.lazy)
    if 0 < size <= preload_bytes:
        pairs = [Pair(np.asarray(p.input), np.asarray(p.target)) if p.lazy else p
                 for p in pairs]
    return pairs
