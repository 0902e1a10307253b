r"""Training the super-resolution networks (paper, sections 2.2.2 and 2.2.3).

Contract. Training data are in-memory lists of :class:`Pair` records: ``input`` of shape
``(C, n1, n2, n3)`` (channel 0 the binary low-resolution image, channels 1–2 the diffusion
channels for :math:`N^{diffu,\alpha}`) and ``target``, the binary high-resolution image of shape
``(α n1, α n2, α n3)`` (True = solid). :func:`train` draws random cutouts (Eq. (1) with
``m1 = m2 = m3 = cutout``; paper: 24) and their α-times larger targets, augments them with the
48 symmetries of the cube (:func:`cube_symmetries`), minimises the binary cross-entropy
(Eqs. (14)–(16)) with Adam, and stops early on the loss of a fixed set of validation cutouts.
It writes an atomic checkpoint every epoch and resumes from it. :func:`fit_threshold` finds the
threshold μ* of Eq. (18). :func:`transfer_model` builds the α network from the trained α/2
network (transfer learning). Arrays passed in are never modified; :func:`train` trains the
model it is given in place (the PyTorch convention).

The study's networks. :func:`pairs_from_database` builds the pairs of one role ('train',
'val', 'test') and α from a :class:`srlib.datasets.Database`, with or without the diffusion
channels. :func:`train_networks` trains the networks :math:`N^{bin,\alpha}` and
:math:`N^{diffu,\alpha}` of a profile along α = 2 → 4 → 8 and fits μ* for each, saving the
weights and metadata under one folder (``results/<profile>/networks``); a network whose
weights are there is loaded, not retrained, and files written under other settings or
another profile are refused. :func:`load_networks` reads them back.

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

import dataclasses
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize
from tqdm import tqdm

from srlib._checks import as_binary, check_alpha
from srlib.config import LR_SCHEDULES
from srlib.io import atomic_path
from srlib.network import (
    SRResNet3d,
    atomic_torch_save,
    load_model,
    resolve_device,
    save_model,
    transfer_weights,
)

__all__ = [
    "IDENTITY",
    "LR_SCHEDULES",
    "KINDS",
    "Pair",
    "Symmetry",
    "TrainResult",
    "TrainedNetwork",
    "apply_symmetry",
    "compose_symmetries",
    "cube_symmetries",
    "cutout_at",
    "fit_model_threshold",
    "fit_threshold",
    "invert_symmetry",
    "is_rotation",
    "load_networks",
    "make_model",
    "make_pair",
    "mean_loss",
    "network_name",
    "pairs_from_database",
    "porosity_error",
    "predict_cutouts",
    "random_cutout",
    "random_symmetry",
    "reversed_axes",
    "scheduled_rate",
    "train",
    "train_networks",
    "training_settings",
    "transfer_model",
    "validation_cutouts",
]

logger = logging.getLogger(__name__)

_CHECKPOINT_FORMAT = 1


# --------------------------------------------------------------------------------------
# The symmetry group of the cube
# --------------------------------------------------------------------------------------


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


def _check_symmetry(sym) -> Symmetry:
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
    return round(np.linalg.det(_matrix(_check_symmetry(sym)))) == 1


def compose_symmetries(first: Symmetry, second: Symmetry) -> Symmetry:
    """Return the symmetry that applies ``first``, then ``second``.

    ``apply_symmetry(apply_symmetry(x, first), second)`` equals
    ``apply_symmetry(x, compose_symmetries(first, second))``.
    """
    return _from_matrix(_matrix(_check_symmetry(first)) @ _matrix(_check_symmetry(second)))


def invert_symmetry(sym: Symmetry) -> Symmetry:
    """Return the inverse of ``sym`` (undoes :func:`apply_symmetry` with ``sym``)."""
    return _from_matrix(_matrix(_check_symmetry(sym)).T)


def reversed_axes(sym: Symmetry) -> tuple[bool, bool, bool]:
    """Which spatial axes of the *input* ``sym`` reverses (whatever axis they move to)."""
    sym = _check_symmetry(sym)
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
    sym = _check_symmetry(sym)
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


def random_symmetry(rng: np.random.Generator) -> Symmetry:
    """Draw an augmentation as in section 2.2.3: mirror with probability ½, then a random rotation.

    The rotation is uniform over the 24 rotations (the identity included); the result is
    uniform over all 48 symmetries.
    """
    mirror = bool(rng.random() < 0.5)
    rotation = _ROTATIONS[int(rng.integers(len(_ROTATIONS)))]
    return compose_symmetries(_MIRROR, rotation) if mirror else rotation


_ROTATIONS = [s for s in cube_symmetries() if is_rotation(s)]


# --------------------------------------------------------------------------------------
# Training pairs and cutouts
# --------------------------------------------------------------------------------------


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
    if any(n % alpha for n in hr.shape):
        raise ValueError(f"hr shape {hr.shape} is not divisible by alpha={alpha}")
    lr = hr[::alpha, ::alpha, ::alpha].astype(np.float32)[None]
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


def _as_pairs(pairs, name: str) -> list[Pair]:
    if isinstance(pairs, Pair):
        pairs = [pairs]
    out = [p if isinstance(p, Pair) else Pair(*p) for p in pairs]
    if not out:
        raise ValueError(f"{name} is empty; at least one pair is needed")
    return out


def _check_cutout(cutout) -> int:
    if isinstance(cutout, bool) or not isinstance(cutout, (int, np.integer)) or cutout < 1:
        raise ValueError(f"cutout must be a positive integer, got {cutout!r}")
    return int(cutout)


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
    cutout = _check_cutout(cutout)
    symmetry = _check_symmetry(symmetry)
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
        Apply :func:`random_symmetry` (mirror with probability ½, then a random rotation).
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
    pairs = _as_pairs(pairs, "validation pairs")
    cutout = _check_cutout(cutout)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"the number of validation cutouts must be positive, got {n!r}")
    rng = np.random.default_rng([seed, 1])
    drawn = [
        random_cutout(pairs[int(rng.integers(len(pairs)))], cutout, rng, augment=False)
        for _ in range(n)
    ]
    return np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn])


# --------------------------------------------------------------------------------------
# Models and transfer learning
# --------------------------------------------------------------------------------------


def make_model(in_channels: int, alpha: int, *, seed: int = 0, **kwargs) -> SRResNet3d:
    """Build an :class:`~srlib.network.SRResNet3d` with weights initialised from ``seed``.

    Torch's global random state is left as it was.

    Parameters
    ----------
    in_channels : int
        1 (binary input) or 3 (binary and diffusion channels).
    alpha : int
        Scaling factor, 2, 4 or 8.
    seed : int
        Seed of the initialisation.
    **kwargs
        Further arguments of :class:`~srlib.network.SRResNet3d` (``features``, ``blocks``,
        kernel sizes).

    Returns
    -------
    SRResNet3d
        The network, on the CPU.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SRResNet3d(in_channels, alpha, **kwargs)


def transfer_model(src: SRResNet3d, alpha: int | None = None, *, seed: int = 0) -> SRResNet3d:
    """Build the network for ``alpha`` initialised from the trained network ``src``.

    Transfer learning of section 2.2.3: the new network has the architecture of ``src``
    except for the scaling factor, and every layer that coincides (same name and shape) is
    copied from ``src`` by :func:`~srlib.network.transfer_weights`; the additional upsampling
    stage keeps its random initialisation (from ``seed``). ``src`` is not modified.

    Parameters
    ----------
    src : SRResNet3d
        Trained network, usually with scaling factor ``alpha / 2``.
    alpha : int, optional
        Scaling factor of the new network; default ``2 * src.alpha``.
    seed : int
        Seed of the initialisation of the layers that are not copied.

    Returns
    -------
    SRResNet3d
        The new network, on the CPU.
    """
    if not isinstance(src, SRResNet3d):
        raise ValueError(f"src must be an SRResNet3d, got {type(src).__name__}")
    config = dict(src.config)
    config["alpha"] = check_alpha(2 * src.alpha if alpha is None else alpha)
    dst = make_model(config.pop("in_channels"), config.pop("alpha"), seed=seed, **config)
    transfer_weights(src, dst)
    return dst


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainResult:
    """Summary of a training run returned by :func:`train`.

    Attributes
    ----------
    train_loss : tuple of float
        Mean training loss of each epoch.
    val_loss : tuple of float
        Validation loss after each epoch.
    best_epoch : int
        Epoch (1-based) with the lowest validation loss; the model holds its weights.
    best_val_loss : float
        That loss.
    stopped_epoch : int
        Number of epochs run.
    stop_reason : str
        "early_stopping", "max_epochs" or "time_budget".
    steps : int
        Training steps run.
    seconds : float
        Wall time spent training, summed over resumed sessions.
    """

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    best_epoch: int
    best_val_loss: float
    stopped_epoch: int
    stop_reason: str
    steps: int
    seconds: float

    @property
    def history(self) -> dict[str, list[float]]:
        """Loss per epoch as ``{"train_loss": [...], "val_loss": [...]}``."""
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss)}


def _bce(model: SRResNet3d, inputs: torch.Tensor, targets: torch.Tensor, amp: bool):
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
        logits = model.logits(inputs)
    return F.binary_cross_entropy_with_logits(logits.float(), targets)


def _to_device(inputs: np.ndarray, targets: np.ndarray, dev: torch.device):
    x = torch.from_numpy(np.ascontiguousarray(inputs)).to(dev)
    y = torch.from_numpy(np.ascontiguousarray(targets)).to(dev).float().unsqueeze(1)
    return x, y


def mean_loss(model: SRResNet3d, inputs, targets, *, batch_size: int = 4, device=None,
              mixed_precision: bool = False) -> float:
    """Mean binary cross-entropy of ``model`` on given cutouts, in eval mode.

    Parameters
    ----------
    model : SRResNet3d
        Network (its mode is restored afterwards).
    inputs : numpy.ndarray
        ``(n, C, m, m, m)`` inputs.
    targets : numpy.ndarray
        ``(n, α m, α m, α m)`` binary targets.
    batch_size : int
        Cutouts per forward pass.
    device : str, torch.device or None
        See :func:`~srlib.network.resolve_device`; the model must already be there.
    mixed_precision : bool
        bfloat16 autocast (CUDA only).

    Returns
    -------
    float
        Eq. (15) averaged over voxels and cutouts (the sum over voxels divided by their
        number).
    """
    dev = resolve_device(device)
    amp = bool(mixed_precision and dev.type == "cuda")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), batch_size):
                x, y = _to_device(inputs[i : i + batch_size], targets[i : i + batch_size], dev)
                total += float(_bce(model, x, y, amp)) * len(x)
                count += len(x)
    finally:
        model.train(was_training)
    return total / count


def _run_config(model, train_pairs, val_pairs, **settings) -> dict:
    return {
        "model": model.config,
        "n_train_pairs": len(train_pairs),
        "n_val_pairs": len(val_pairs),
        **settings,
    }


def _state_to_cpu(state: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def train(
    model: SRResNet3d,
    train_pairs: Sequence[Pair],
    val_pairs: Sequence[Pair],
    *,
    cutout: int = 24,
    batch_size: int = 8,
    steps_per_epoch: int = 400,
    max_epochs: int = 1000,
    patience: int = 10,
    min_delta: float = 0.0,
    val_cutouts: int = 30,
    learning_rate: float = 1e-4,
    lr_schedule: str | None = None,
    seed: int = 0,
    augment: bool = True,
    align_mirrors: bool = True,
    checkpoint=None,
    resume: bool = True,
    time_budget_s: float | None = None,
    device=None,
    mixed_precision: bool = False,
    num_threads: int | None = None,
    progress: bool = True,
    callback: Callable[[int, float, float], None] | None = None,
) -> TrainResult:
    """Train a network on random cutouts with Adam and early stopping (section 2.2.3).

    Each step draws ``batch_size`` cutout pairs (a training pair chosen uniformly at random,
    a uniformly random position, a random symmetry of the cube) and takes one Adam step on
    their mean binary cross-entropy (Eqs. (14)–(16); we average over voxels instead of
    summing, which divides the loss by a constant and leaves its minimiser unchanged). After
    each epoch of ``steps_per_epoch`` steps the loss on ``val_cutouts`` fixed validation
    cutouts (drawn once from ``seed``, not augmented) is computed; training stops when it has
    not improved by more than ``min_delta`` for ``patience`` epochs, after ``max_epochs``, or
    after the epoch in which ``time_budget_s`` runs out. The model is trained in place and
    holds the weights of the best epoch on return, in eval mode.

    With ``checkpoint``, the state (model, optimizer, random state, history, best weights) is
    written atomically after every epoch, and a later call with the same path and settings
    resumes the run where it stopped: an interrupted run continues exactly as the
    uninterrupted one would (bit for bit on the CPU). ``max_epochs``, ``patience``,
    ``min_delta`` and ``time_budget_s`` may change between calls, e.g. to extend a run.

    Parameters
    ----------
    model : SRResNet3d
        Network to train (e.g. from :func:`make_model` or :func:`transfer_model`).
    train_pairs, val_pairs : sequence of Pair
        Training and validation pairs; their α and channel count must match the model.
    cutout : int
        Edge of the low-resolution cutouts (paper: 24).
    batch_size : int
        Cutouts per step (paper: 8 for α = 2, 4 and 1 for α = 8).
    steps_per_epoch : int
        Steps per epoch (paper: 400).
    max_epochs : int
        Maximum number of epochs (paper: 1000).
    patience : int
        Epochs without improvement before stopping (paper: 10).
    min_delta : float
        Minimum decrease of the validation loss that counts as an improvement.
    val_cutouts : int
        Number of validation cutouts (paper: 30).
    learning_rate : float
        Adam learning rate (not stated in the paper).
    lr_schedule : {None, "cosine"}
        None: a constant learning rate (the paper states no schedule). "cosine": step ``t`` of
        ``T = max_epochs * steps_per_epoch`` uses ``learning_rate * (f + (1 - f) (1 + cos(π t /
        T)) / 2)`` with ``f = 0.01``, which settles a short run with small batches; extending
        ``max_epochs`` on resume stretches the rest of the schedule.
    seed : int
        Seed of the cutouts and augmentations. (The initial weights come from the model.)
    augment : bool
        Apply the random symmetries.
    align_mirrors : bool
        Keep the Eq. (3) alignment under mirroring (module docstring); needs images at
        least ``cutout + 1`` voxels wide.
    checkpoint : str or os.PathLike, optional
        Checkpoint file, written every epoch.
    resume : bool
        Resume from ``checkpoint`` if it exists (otherwise it is overwritten).
    time_budget_s : float, optional
        Stop after the epoch in which this much wall time (summed over sessions) is spent.
    device : str, torch.device or None
        See :func:`~srlib.network.resolve_device` (CUDA when available).
    mixed_precision : bool
        bfloat16 autocast, on CUDA only (ignored with a warning on the CPU).
    num_threads : int, optional
        Torch CPU threads during training (restored afterwards).
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        Called as ``callback(epoch, train_loss, val_loss)`` after each epoch, after the
        checkpoint is written.

    Returns
    -------
    TrainResult
        Loss history, best epoch, stopping epoch and reason, steps and time.

    Raises
    ------
    ValueError
        On inconsistent pairs, settings, or a checkpoint written with other settings.
    """
    if not isinstance(model, SRResNet3d):
        raise ValueError(f"model must be an SRResNet3d, got {type(model).__name__}")
    train_pairs = _as_pairs(train_pairs, "train_pairs")
    val_pairs = _as_pairs(val_pairs, "val_pairs")
    cutout = _check_cutout(cutout)
    for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                        ("max_epochs", max_epochs), ("patience", patience),
                        ("val_cutouts", val_cutouts)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if time_budget_s is not None and not time_budget_s >= 0:
        raise ValueError(f"time_budget_s must be None or non-negative, got {time_budget_s!r}")
    spare = int(augment and align_mirrors)
    for name, pairs, extra in (("train_pairs", train_pairs, spare), ("val_pairs", val_pairs, 0)):
        for i, p in enumerate(pairs):
            if p.alpha != model.alpha:
                raise ValueError(f"{name}[{i}] has alpha={p.alpha}, the model alpha={model.alpha}")
            if p.channels != model.in_channels:
                raise ValueError(
                    f"{name}[{i}] has {p.channels} input channels, the model expects "
                    f"in_channels={model.in_channels}"
                )
            if min(p.lr_shape) < cutout + extra:
                hint = (" (one spare voxel for mirroring with align_mirrors=True; "
                        "use a smaller cutout or align_mirrors=False)") if extra else ""
                raise ValueError(
                    f"{name}[{i}] input shape {p.lr_shape} is too small for cutout={cutout}: "
                    f"each extent must be at least {cutout + extra}{hint}"
                )

    dev = resolve_device(device)
    amp = bool(mixed_precision and dev.type == "cuda")
    if mixed_precision and not amp:
        logger.warning("mixed precision is only used on CUDA; training in float32 on %s", dev)
    config = _run_config(
        model, train_pairs, val_pairs, cutout=cutout, batch_size=int(batch_size),
        steps_per_epoch=int(steps_per_epoch), val_cutouts=int(val_cutouts),
        learning_rate=float(learning_rate), seed=int(seed), augment=bool(augment),
        align_mirrors=bool(align_mirrors),
    )
    if lr_schedule is not None:  # checkpoints of constant-rate runs keep their old config
        config["lr_schedule"] = lr_schedule
    val_x, val_y = validation_cutouts(val_pairs, int(val_cutouts), cutout, seed=seed)

    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    cuda_devices = [dev.index or 0] if dev.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            return _train_loop(
                model, train_pairs, val_x, val_y, config=config, dev=dev, amp=amp,
                cutout=cutout, batch_size=int(batch_size), steps_per_epoch=int(steps_per_epoch),
                max_epochs=int(max_epochs), patience=int(patience), min_delta=float(min_delta),
                learning_rate=float(learning_rate), lr_schedule=lr_schedule, seed=int(seed),
                augment=augment,
                align_mirrors=align_mirrors, checkpoint=checkpoint, resume=resume,
                time_budget_s=time_budget_s, progress=progress, callback=callback,
            )
    finally:
        torch.set_num_threads(old_threads)


_COSINE_FLOOR = 0.01


def scheduled_rate(learning_rate: float, schedule: str | None, step: int, total: int) -> float:
    """Learning rate of training step ``step`` (0-based) of ``total`` under ``schedule``.

    Parameters
    ----------
    learning_rate : float
        Base (initial) learning rate.
    schedule : {None, "cosine"}
        See :func:`train`.
    step, total : int
        Steps done so far and the planned number of steps.

    Returns
    -------
    float
        The learning rate; constant without a schedule, cosine-annealed from
        ``learning_rate`` to ``0.01 * learning_rate`` with "cosine".
    """
    if schedule is None:
        return learning_rate
    if schedule != "cosine":
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    t = min(step / max(total, 1), 1.0)
    return learning_rate * (_COSINE_FLOOR + (1 - _COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * t)))


def _stop_reason(state: dict, *, max_epochs: int, patience: int, time_budget_s) -> str | None:
    if state["epoch"] > 0 and state["bad_epochs"] >= patience:
        return "early_stopping"
    if state["epoch"] >= max_epochs:
        return "max_epochs"
    if time_budget_s is not None and state["epoch"] > 0 and state["seconds"] >= time_budget_s:
        return "time_budget"
    return None


def _train_loop(model, train_pairs, val_x, val_y, *, config, dev, amp, cutout, batch_size,
                steps_per_epoch, max_epochs, patience, min_delta, learning_rate, lr_schedule,
                seed, augment, align_mirrors, checkpoint, resume, time_budget_s, progress,
                callback):
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    rng = np.random.default_rng([seed, 0])
    state = {
        "epoch": 0, "train_loss": [], "val_loss": [], "best_val": math.inf, "best_epoch": 0,
        "bad_epochs": 0, "seconds": 0.0, "steps": 0,
    }
    best_state = None
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists() and resume:
        ck = torch.load(path, map_location=dev, weights_only=True)
        if ck.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint {path} has an unknown format")
        if ck["config"] != config:
            diff = sorted(k for k in set(config) | set(ck["config"])
                          if config.get(k) != ck["config"].get(k))
            raise ValueError(
                f"checkpoint {path} was written with other settings ({', '.join(diff)}); "
                "delete it or pass resume=False to start afresh"
            )
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        rng.bit_generator.state = ck["numpy_rng"]
        torch.set_rng_state(ck["torch_rng"].cpu())
        state = ck["state"]
        best_state = ck["best_model"]
        logger.info("resumed from %s after epoch %d", path, state["epoch"])
    elif path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    reason = _stop_reason(state, max_epochs=max_epochs, patience=patience,
                          time_budget_s=time_budget_s)
    while reason is None:
        start = time.perf_counter()
        epoch = state["epoch"] + 1
        model.train()
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", leave=False,
                   disable=not progress, unit="step")
        for i in bar:
            rate = scheduled_rate(learning_rate, lr_schedule, state["steps"] + i,
                                  max_epochs * steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = rate
            drawn = [
                random_cutout(train_pairs[int(rng.integers(len(train_pairs)))], cutout, rng,
                              augment=augment, align_mirrors=align_mirrors)
                for _ in range(batch_size)
            ]
            x, y = _to_device(np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn]),
                              dev)
            optimizer.zero_grad(set_to_none=True)
            loss = _bce(model, x, y, amp)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        val = mean_loss(model, val_x, val_y, batch_size=batch_size, device=dev,
                        mixed_precision=amp)
        state["epoch"] = epoch
        state["steps"] += steps_per_epoch
        state["train_loss"].append(float(np.mean(losses)))
        state["val_loss"].append(val)
        if val < state["best_val"] - min_delta:
            state["best_val"], state["best_epoch"], state["bad_epochs"] = val, epoch, 0
            best_state = _state_to_cpu(model.state_dict())
        else:
            state["bad_epochs"] += 1
        state["seconds"] += time.perf_counter() - start
        reason = _stop_reason(state, max_epochs=max_epochs, patience=patience,
                              time_budget_s=time_budget_s)
        logger.info("epoch %d: train loss %.5f, validation loss %.5f%s", epoch,
                    state["train_loss"][-1], val, " (best)" if state["best_epoch"] == epoch else "")
        if path is not None:
            atomic_torch_save(
                {
                    "format": _CHECKPOINT_FORMAT,
                    "config": config,
                    "model": _state_to_cpu(model.state_dict()),
                    "optimizer": optimizer.state_dict(),
                    "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "state": state,
                    "best_model": best_state,
                    "stop_reason": reason,
                },
                path,
            )
        if callback is not None:
            callback(epoch, state["train_loss"][-1], val)

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    logger.info("training stopped after epoch %d (%s); best epoch %d, validation loss %.5f",
                state["epoch"], reason, state["best_epoch"], state["best_val"])
    return TrainResult(
        train_loss=tuple(state["train_loss"]),
        val_loss=tuple(state["val_loss"]),
        best_epoch=int(state["best_epoch"]),
        best_val_loss=float(state["best_val"]),
        stopped_epoch=int(state["epoch"]),
        stop_reason=reason,
        steps=int(state["steps"]),
        seconds=float(state["seconds"]),
    )


# --------------------------------------------------------------------------------------
# The threshold μ* (Eq. 18)
# --------------------------------------------------------------------------------------


def _prepare_threshold_data(probabilities, targets):
    if isinstance(probabilities, np.ndarray) and probabilities.ndim == 0:
        raise ValueError("probabilities must be a sequence of arrays")
    if len(probabilities) != len(targets):
        raise ValueError(
            f"got {len(probabilities)} probability arrays but {len(targets)} targets"
        )
    if len(probabilities) == 0:
        raise ValueError("probabilities is empty; at least one cutout is needed")
    sorted_probs, pore_fractions = [], []
    for k, (p, t) in enumerate(zip(probabilities, targets, strict=True)):
        p = np.asarray(p)
        t = np.asarray(t)
        if p.shape != t.shape or p.size == 0:
            raise ValueError(
                f"probabilities[{k}] has shape {p.shape} but targets[{k}] has {t.shape}"
            )
        if not np.issubdtype(p.dtype, np.floating):
            raise ValueError(f"probabilities[{k}] must be floating point, got {p.dtype}")
        if not (np.all(p >= 0) and np.all(p <= 1)):
            raise ValueError(f"probabilities[{k}] has values outside [0, 1]")
        if t.dtype != bool and not np.all((t == 0) | (t == 1)):
            raise ValueError(f"targets[{k}] must be binary (True = solid)")
        sorted_probs.append(np.sort(p, axis=None))
        pore_fractions.append(1.0 - np.count_nonzero(t) / t.size)
    return sorted_probs, np.asarray(pore_fractions)


def _porosity_objective(sorted_probs, pore_fractions, mu: float) -> float:
    # ε(P ≥ μ) = fraction of voxels with P < μ (pore = below the threshold).
    eps = np.array([np.searchsorted(s, mu, side="left") / s.size for s in sorted_probs])
    return float(np.mean(np.abs(eps - pore_fractions)))


def porosity_error(probabilities, targets, mu: float) -> float:
    """Mean absolute porosity error of thresholding at ``mu``: the objective of Eq. (18).

    Parameters
    ----------
    probabilities : sequence of numpy.ndarray
        Network outputs in [0, 1] (one array per cutout, or one array whose first axis
        indexes cutouts).
    targets : sequence of numpy.ndarray
        Matching binary high-resolution images (True = solid).
    mu : float
        Threshold; a voxel is solid if its probability is ≥ ``mu`` (Eq. (17)).

    Returns
    -------
    float
        Mean over cutouts of ``|ε(P ≥ μ) − ε(HR)|``, ε the pore fraction.
    """
    sorted_probs, pore_fractions = _prepare_threshold_data(probabilities, targets)
    return _porosity_objective(sorted_probs, pore_fractions, float(mu))


def fit_threshold(probabilities, targets, *, grid: int = 999) -> float:
    """Find the threshold μ* of Eq. (18) by the Nelder–Mead method.

    μ* minimises the mean over cutouts of ``|ε(P ≥ μ) − ε(HR)|`` (ε the pore fraction) for
    μ in (0, 1). The objective is piecewise constant in μ (it changes only where μ passes a
    probability value), so a Nelder–Mead search started at an arbitrary point can stall on a
    flat plateau far from the optimum. We therefore evaluate it first on a grid of ``grid``
    equally spaced values in (0, 1) and start Nelder–Mead (with bounds (0, 1) and a first
    step of one grid spacing) from the best grid point; the better of the two is returned.

    Parameters
    ----------
    probabilities : sequence of numpy.ndarray
        Network outputs in [0, 1], one array per cutout (any shape), or one array whose first
        axis indexes cutouts.
    targets : sequence of numpy.ndarray
        Matching binary high-resolution images (True = solid).
    grid : int
        Number of grid points of the initial search.

    Returns
    -------
    float
        μ* in (0, 1).

    Raises
    ------
    ValueError
        If the inputs do not match or are not probabilities and binary images.
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"grid must be a positive integer, got {grid!r}")
    sorted_probs, pore_fractions = _prepare_threshold_data(probabilities, targets)

    def objective(mu):
        return _porosity_objective(sorted_probs, pore_fractions, float(np.ravel(mu)[0]))

    mus = np.linspace(0.0, 1.0, grid + 2)[1:-1]
    values = np.array([objective(m) for m in mus])
    best = int(np.argmin(values))
    mu0, f0 = float(mus[best]), float(values[best])
    step = 1.0 / (grid + 1)
    lo, hi = 1e-9, 1.0 - 1e-9
    second = mu0 + step if mu0 + step < hi else mu0 - step
    res = minimize(
        objective, x0=[mu0], method="Nelder-Mead", bounds=[(lo, hi)],
        options={"initial_simplex": [[mu0], [second]], "xatol": 1e-7, "fatol": 0.0,
                 "maxiter": 400},
    )
    mu = float(res.x[0])
    if objective(mu) > f0:
        mu = mu0
    logger.info("fit_threshold: mu* = %.6f (objective %.3g; best grid point %.4f: %.3g)",
                mu, objective(mu), mu0, f0)
    return mu


def predict_cutouts(model: SRResNet3d, pairs, *, cutout: int = 24, stride: int | None = None,
                    batch_size: int = 4, device=None, progress: bool = True
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the network on every cutout of a grid of positions of the given pairs.

    The paper fits μ* (Eq. (18)) on "all possible 24³ cutouts of low-resolution images in the
    validation set"; ``stride=1`` gives literally all positions. The default
    ``stride=cutout`` gives all non-overlapping cutouts, which costs (cutout)³ times less
    and covers every voxel once (except a remainder narrower than the cutout at the far
    ends). Each cutout is super-resolved on its own, as during training.

    Memory: the result holds ``(α cutout)³`` float32 values per cutout (28 MB at α = 8,
    cutout = 24).

    Parameters
    ----------
    model : SRResNet3d
        Trained network (its mode is restored afterwards).
    pairs : sequence of Pair
        Validation pairs.
    cutout : int
        Edge of the low-resolution cutouts.
    stride : int, optional
        Distance between cutout positions; default ``cutout``.
    batch_size : int
        Cutouts per forward pass.
    device : str, torch.device or None
        See :func:`~srlib.network.resolve_device`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    probabilities : list of numpy.ndarray
        float32 ``(α cutout,) * 3`` network outputs.
    targets : list of numpy.ndarray
        Matching bool targets.
    """
    pairs = _as_pairs(pairs, "pairs")
    cutout = _check_cutout(cutout)
    stride = cutout if stride is None else _check_cutout(stride)
    jobs = []
    for k, p in enumerate(pairs):
        if p.alpha != model.alpha or p.channels != model.in_channels:
            raise ValueError(
                f"pairs[{k}] (alpha={p.alpha}, {p.channels} channels) does not match the model "
                f"(alpha={model.alpha}, in_channels={model.in_channels})"
            )
        if min(p.lr_shape) < cutout:
            raise ValueError(f"pairs[{k}] input shape {p.lr_shape} is smaller than the cutout")
        starts = [range(0, n - cutout + 1, stride) for n in p.lr_shape]
        jobs += [(p, c) for c in itertools.product(*starts)]
    dev = resolve_device(device)
    device_before = next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    probs, targets = [], []
    try:
        with torch.no_grad():
            for i in tqdm(range(0, len(jobs), batch_size), desc="cutouts", disable=not progress):
                batch = [cutout_at(p, c, cutout) for p, c in jobs[i : i + batch_size]]
                x = torch.from_numpy(np.stack([b[0] for b in batch])).to(dev)
                out = model(x)[:, 0].float().cpu().numpy()
                probs += list(out)
                targets += [b[1] for b in batch]
    finally:
        model.to(device_before).train(was_training)
    return probs, targets


def fit_model_threshold(model: SRResNet3d, pairs, *, cutout: int = 24,
                        stride: int | None = None, device=None, progress: bool = True) -> float:
    """Fit μ* (Eq. (18)) for a trained network on the cutouts of validation pairs.

    Shorthand for :func:`predict_cutouts` followed by :func:`fit_threshold`.

    Parameters
    ----------
    model : SRResNet3d
        Trained network.
    pairs : sequence of Pair
        Validation pairs.
    cutout, stride : int
        See :func:`predict_cutouts`.
    device : str, torch.device or None
        See :func:`~srlib.network.resolve_device`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    float
        μ* in (0, 1).
    """
    probs, targets = predict_cutouts(model, pairs, cutout=cutout, stride=stride, device=device,
                                     progress=progress)
    return fit_threshold(probs, targets)


# --------------------------------------------------------------------------------------
# The six networks of the study (sections 2.2.2-2.2.3)
# --------------------------------------------------------------------------------------

#: The two input types: ``"bin"`` (Eq. (11), 1 channel) and ``"diffu"`` (Eq. (13), 3 channels).
KINDS = ("bin", "diffu")
_IN_CHANNELS = {"bin": 1, "diffu": 3}
_NETWORK_FORMAT = 1


def _check_kind(kind) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


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
            if not np.array_equal(lr, hr[::alpha, ::alpha, ::alpha]):
                raise ValueError(
                    f"database {db.root}: LR image {s}/{i} (alpha={alpha}) is not the Eq. (3) "
                    "down-sampling of its HR image"
                )
            inp = lr[None].astype(np.float32)
            if diffu:
                inp = np.concatenate([inp, np.asarray(db.channels(s, i, alpha), np.float32)])
            pairs.append(Pair(inp, hr))
    return pairs


@dataclass(frozen=True)
class TrainedNetwork:
    r"""One trained network of the study, :math:`N^{kind,\alpha}`, and how it was trained.

    Attributes
    ----------
    kind : str
        "bin" or "diffu".
    alpha : int
        Scaling factor.
    model : SRResNet3d
        The network (weights of the best validation epoch), in eval mode on the CPU.
    threshold : float
        μ* of Eq. (18), fitted on the validation pairs.
    result : TrainResult
        Loss history, stopping epoch and reason, steps and training time.
    path : pathlib.Path
        File of the weights (:func:`srlib.network.save_model`); the metadata lie beside it
        in a ``.json`` file of the same stem.
    trained_now : bool
        True if trained (or finished) by this call, False if loaded from disk.
    """

    kind: str
    alpha: int
    model: SRResNet3d = field(repr=False)
    threshold: float
    result: TrainResult = field(repr=False)
    path: Path
    trained_now: bool

    @property
    def name(self) -> str:
        """Short name, e.g. ``N_bin_4``."""
        return network_name(self.kind, self.alpha)

    def summary(self) -> dict:
        """One row of the training table: μ*, stopping epoch and reason, steps, time, loss."""
        r = self.result
        return {
            "network": self.name, "kind": self.kind, "alpha": self.alpha,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "mu_star": self.threshold, "best_epoch": r.best_epoch,
            "stopped_epoch": r.stopped_epoch, "stop_reason": r.stop_reason, "steps": r.steps,
            "wall_time_s": r.seconds, "best_val_loss": r.best_val_loss,
            "final_train_loss": r.train_loss[-1] if r.train_loss else math.nan,
        }


def network_name(kind: str, alpha: int) -> str:
    """File stem of a network of the study: ``N_<kind>_<alpha>``."""
    return f"N_{_check_kind(kind)}_{check_alpha(alpha)}"


def training_settings(profile) -> dict:
    """The profile fields that determine a trained network (stored with its weights).

    Parameters
    ----------
    profile : srlib.config.Profile
        The profile.

    Returns
    -------
    dict
        JSON-normalised field values: database content (name, sizes, split, seed) and the
        architecture and training hyper-parameters.
    """
    keys = ("name", "samples", "hr_size", "n_realizations", "split", "alphas", "features",
            "blocks", "cutout", "batch_sizes", "max_epochs", "steps_per_epoch", "patience",
            "val_cutouts", "learning_rate", "train_budget_s", "seed", "epochs_per_alpha")
    settings = {k: getattr(profile, k) for k in keys}
    if profile.lr_schedule is not None:  # absent for constant rates: older networks still load
        settings["lr_schedule"] = profile.lr_schedule
    return json.loads(json.dumps(settings))


def _network_seed(profile, alpha: int) -> int:
    # bin and diffu networks of the same alpha share the seed: the same initial body
    # weights, cutouts, augmentations and validation cutouts, so their curves compare directly.
    return int(profile.seed) * 1000 + alpha


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def _load_network(out_dir: Path, kind: str, alpha: int, settings: dict) -> TrainedNetwork | None:
    stem = network_name(kind, alpha)
    weights, meta = out_dir / f"{stem}.pt", out_dir / f"{stem}.json"
    if not weights.exists():
        return None
    if not meta.exists():
        raise ValueError(f"{weights} has no metadata file {meta.name}; delete it to retrain")
    info = json.loads(meta.read_text())
    if info.get("format") != _NETWORK_FORMAT:
        raise ValueError(f"{meta} has an unknown format; delete {weights} to retrain")
    if info["settings"].get("name") != settings["name"]:
        raise ValueError(
            f"{weights} belongs to profile {info['settings'].get('name')!r}, not "
            f"{settings['name']!r}; never reused across profiles - use that profile's folder"
        )
    if info["settings"] != settings:
        diff = sorted(k for k in set(settings) | set(info["settings"])
                      if settings.get(k) != info["settings"].get(k))
        raise ValueError(
            f"{weights} was trained with other settings ({', '.join(diff)}); delete "
            f"{out_dir} (or that network's files) to retrain"
        )
    result = TrainResult(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in info["result"].items()})
    return TrainedNetwork(kind=kind, alpha=alpha, model=load_model(weights, device="cpu"),
                          threshold=float(info["threshold"]), result=result, path=weights,
                          trained_now=False)


def load_networks(profile, out_dir, *, kinds=KINDS) -> dict[tuple[str, int], TrainedNetwork]:
    """Load the trained networks of a profile written by :func:`train_networks`.

    Parameters
    ----------
    profile : srlib.config.Profile
        The profile; networks trained under other settings are refused.
    out_dir : path
        Networks folder, ``<results>/<profile>/networks``.
    kinds : sequence of str
        Input types to load ("bin", "diffu").

    Returns
    -------
    dict
        ``{(kind, alpha): TrainedNetwork}`` for every kind and every α of the profile.

    Raises
    ------
    ValueError
        If a network is missing or was trained under other settings.
    """
    out_dir = Path(out_dir)
    settings = training_settings(profile)
    found = {}
    for kind in kinds:
        for alpha in sorted(profile.alphas):
            net = _load_network(out_dir, _check_kind(kind), alpha, settings)
            if net is None:
                raise ValueError(f"{out_dir / network_name(kind, alpha)}.pt is missing; "
                                 "train it with srlib.training.train_networks (or `srlib train`)")
            found[kind, alpha] = net
    return found


def train_networks(db, profile, out_dir, *, kinds=KINDS, device=None, progress: bool = True,
                   num_threads: int | None = None) -> dict[tuple[str, int], TrainedNetwork]:
    r"""Train (or load) the networks :math:`N^{kind,\alpha}` of a profile, then fit μ*.

    For each input type, the networks are handled in increasing α. A network whose weights
    file ``<out_dir>/N_<kind>_<alpha>.pt`` exists is loaded, not retrained (its metadata must
    record the same profile and settings). Otherwise it is built from scratch for the
    smallest α, and by transfer learning from the trained α/2 network for the others
    (:func:`transfer_model`), trained with :func:`train` on the profile's hyper-parameters
    (training pairs from the realizations with role 'train', early stopping on cutouts of
    those with role 'val', of every scenario), with a checkpoint under ``out_dir`` after
    every epoch so that an interrupted call resumes; then μ* (Eq. (18)) is fitted on the
    non-overlapping cutouts of the validation pairs (:func:`fit_model_threshold`), and the
    weights and metadata are written.

    Parameters
    ----------
    db : srlib.datasets.Database
        The profile's database (with diffusion channels for "diffu").
    profile : srlib.config.Profile
        Sizes and hyper-parameters; must be the profile the database was built for.
    out_dir : path
        Networks folder, conventionally ``<results>/<profile>/networks``.
    kinds : sequence of str
        Input types to train ("bin", "diffu").
    device : str, torch.device or None
        Where to train; default ``profile.device``.
    progress : bool
        Show progress bars.
    num_threads : int, optional
        Torch CPU threads while training and fitting μ* (restored afterwards).

    Returns
    -------
    dict
        ``{(kind, alpha): TrainedNetwork}`` in training order.

    Raises
    ------
    ValueError
        If the database belongs to another profile, or stored networks or checkpoints were
        made with other settings.
    """
    if db.profile != profile.name:
        raise ValueError(f"database {db.root} belongs to profile {db.profile!r}, not "
                         f"{profile.name!r}")
    missing = sorted(set(profile.alphas) - set(db.alphas))
    if missing:
        raise ValueError(f"the database has no low-resolution images for alpha {missing}")
    out_dir = Path(out_dir)
    settings = training_settings(profile)
    device = profile.device if device is None else device
    networks = {}
    pairs_cache: dict = {}

    def pairs(role, alpha, kind):
        key = (role, alpha, kind)
        if key not in pairs_cache:
            pairs_cache[key] = pairs_from_database(db, role, alpha, diffu=kind == "diffu")
        return pairs_cache[key]

    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        for kind in kinds:
            previous = None
            for alpha in sorted(profile.alphas):
                net = _load_network(out_dir, _check_kind(kind), alpha, settings)
                if net is None:
                    net = _train_one(kind, alpha, previous, pairs, profile, settings, out_dir,
                                     device=device, progress=progress)
                else:
                    logger.info("loaded %s (mu* = %.4f) from %s", net.name, net.threshold,
                                net.path)
                networks[kind, alpha] = net
                previous = net.model
            pairs_cache.clear()
    finally:
        torch.set_num_threads(old_threads)
    return networks


def _train_one(kind, alpha, previous, pairs, profile, settings, out_dir, *, device,
               progress) -> TrainedNetwork:
    seed = _network_seed(profile, alpha)
    if previous is None:
        model = make_model(_IN_CHANNELS[kind], alpha, seed=seed, features=profile.features,
                           blocks=profile.blocks)
    else:
        model = transfer_model(previous, alpha, seed=seed)
    stem = network_name(kind, alpha)
    logger.info("training %s", stem)
    train_pairs, val_pairs = pairs("train", alpha, kind), pairs("val", alpha, kind)
    result = train(
        model, train_pairs, val_pairs, cutout=profile.cutout,
        batch_size=profile.batch_size(alpha), steps_per_epoch=profile.steps_per_epoch,
        max_epochs=profile.max_epochs_for(alpha), patience=profile.patience,
        val_cutouts=profile.val_cutouts, learning_rate=profile.learning_rate,
        lr_schedule=profile.lr_schedule, seed=seed,
        checkpoint=out_dir / f"{stem}.ckpt", time_budget_s=profile.train_budget_s,
        device=device, mixed_precision=profile.mixed_precision, progress=progress,
    )
    # μ* on the non-overlapping cutouts of the validation pairs (fit_model_threshold), in
    # batches of about 2M output voxels: tiny cutouts pass through the network together.
    batch = max(1, (1 << 21) // (alpha * profile.cutout) ** 3)
    probs, targets = predict_cutouts(model, val_pairs, cutout=profile.cutout, batch_size=batch,
                                     device=device, progress=progress)
    mu = fit_threshold(probs, targets)
    del probs, targets
    model = model.cpu().eval()
    weights = out_dir / f"{stem}.pt"
    _write_json(out_dir / f"{stem}.json", {
        "format": _NETWORK_FORMAT, "kind": kind, "alpha": alpha, "threshold": mu,
        "settings": settings, "model": model.config, "result": dataclasses.asdict(result),
    })
    save_model(model, weights)  # written last: its presence marks the network as complete
    return TrainedNetwork(kind=kind, alpha=alpha, model=model, threshold=mu, result=result,
                          path=weights, trained_now=True)
