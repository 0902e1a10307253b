"""Profiles: one study, three sizes (paper, section 2.2.3).

Contract. A :class:`Profile` is a frozen record of every size, count and step budget of the study;
every profile runs the *whole* study (same stages, same splits, same networks, same metrics).
``paper`` holds every number the paper states (sizes, splits, cutouts, batch sizes, epochs,
patience, residual blocks) and fills what it leaves open with the choices in
:data:`PAPER_CHOICES`; ``quick`` (the default) fits the book's budget on two CPU cores, and
``tiny`` runs in seconds for the tests. :func:`get_profile` returns one by name,
with keyword overrides that are checked against the fields. Results of a profile live under
``results/<name>/`` (see :func:`results_dir`), so profiles never mix.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlib._checks import ALPHAS, positive_float, positive_int
from srlib.methods import check_connectivity

__all__ = ["LR_SCHEDULES", "PAPER_CHOICES", "PROFILES", "Profile", "get_profile", "results_dir"]

#: Fields of the ``paper`` profile that the paper does not state, and why they are set so.
PAPER_CHOICES = {
    "features": "64 feature channels: SRResNet's width (Ledig et al. 2017); the paper gives none",
    "learning_rate": "1e-4: Adam's customary rate for SRResNet; the paper states Adam, no rate",
    "mixed_precision": "bfloat16 autocast where the device computes it natively; the paper "
                       "states no arithmetic",
    "samples": "the three public sandstone micro-CT volumes of PoreSpy; the paper's five "
               "FIB-SEM images of NMC particles are not public",
    "tomo_size": "the largest centred cube divisible by 2 * max(alpha): the sandstones are not "
                 "(the paper's 416³ images are)",
}

#: Learning-rate schedules (see :func:`srlib.training.train`); None is the paper's constant rate.
LR_SCHEDULES = (None, "cosine")

#: Environment variable naming the default profile (used by ``make book PROFILE=...``).
PROFILE_ENV = "SRLIB_PROFILE"
#: Environment variable overriding the results root (default ``results`` in the working dir).
RESULTS_ENV = "SRLIB_RESULTS"


@dataclass(frozen=True)
class Profile:
    """Sizes, counts and budgets of one run of the study.

    Attributes
    ----------
    name : str
        Profile name; also the results sub-folder.
    samples : tuple of str or None
        Tomographic samples used as scenarios (one scenario per sample); None means all.
    hr_size : int
        Edge length of a high-resolution model realization, in voxels (paper: 800).
    n_realizations : int
        Realizations per scenario (paper: 10).
    split : tuple of int
        Numbers of (training, validation, test) realizations per scenario (paper: 7, 2, 1).
    alphas : tuple of int
        Scaling factors (paper: 2, 4, 8).
    features : int
        Feature channels of the networks (the paper gives none; ``paper``: 64, SRResNet's).
    blocks : int
        Residual blocks of the networks (paper: 8).
    cutout : int
        Edge of the low-resolution training cutout (paper: 24).
    batch_sizes : tuple of int
        Batch size for each entry of ``alphas`` (paper: 8, 8, 1).
    max_epochs : int
        Maximum number of epochs (paper: 1000).
    steps_per_epoch : int
        Training steps per epoch (paper: 400).
    patience : int
        Epochs without improvement of the validation loss before stopping (paper: 10).
    val_cutouts : int
        Random validation cutouts for the early-stopping loss (paper: 30).
    learning_rate : float
        Adam learning rate (not stated in the paper).
    lr_schedule : str or None
        None: constant learning rate (paper); "cosine": annealed to 1 % over each network's
        maximum number of steps (see :func:`srlib.training.train`).
    train_budget_s : float or None
        Wall-time budget per network in seconds; training stops after the epoch in which it
        runs out. None: no budget (paper).
    tomo_size : int or None
        Edge of the centred crop of each tomographic sample used for evaluation; must be
        divisible by ``2 * max(alphas)``. None (``paper``): the largest such edge that fits
        the sample (:meth:`tomo_edge`; the paper's whole 416³ images qualify).
    connectivity : str
        FEM mesh convention for transport ("face" or "vertex"); see :mod:`srlib.transport`.
    device : str
        "auto" (CUDA when available), "cpu" or "cuda".
    mixed_precision : bool
        bfloat16 autocast in training where the device has it natively (see
        :func:`srlib.devices.native_bfloat16`); float32 elsewhere.
    seed : int
        Root seed of the whole study.
    epochs_per_alpha : tuple of (int, int) or None
        ``(alpha, max_epochs)`` pairs replacing ``max_epochs`` for those α (a step budget that,
        unlike ``train_budget_s``, gives the same networks on every machine); α not listed use
        ``max_epochs``.
    seed_alphas : tuple of int
        α at which both networks are trained a second time from another initialisation (the
        seed ``seed + 1``, :meth:`replica`), the paper's check at α = 8 that the random
        initialisation does not decide the comparison; the smallest α of ``alphas`` in
        order (each replica starts from the replica at α/2), empty for none.
    field_alphas : tuple of int
        α at which the field networks of the paper's future work are trained (chapter "The
        paper's future work", :mod:`srlib.fieldnets`), each fine-tuned from the study's
        network at that α; empty for none.
    field_epochs : int or None
        Epochs of each field network (None: those of the α's network,
        :meth:`max_epochs_for`, with the same early stopping).
    field_weight : float
        Weight of the fields' squared error against the morphology's cross-entropy in the
        field networks' loss (:func:`srlib.training.train`).
    """

    name: str
    samples: tuple[str, ...] | None
    hr_size: int
    n_realizations: int
    split: tuple[int, int, int]
    alphas: tuple[int, ...]
    features: int
    blocks: int
    cutout: int
    batch_sizes: tuple[int, ...]
    max_epochs: int
    steps_per_epoch: int
    patience: int
    val_cutouts: int
    learning_rate: float
    train_budget_s: float | None
    tomo_size: int | None
    connectivity: str = "face"
    device: str = "auto"
    mixed_precision: bool = False
    seed: int = 0
    epochs_per_alpha: tuple[tuple[int, int], ...] | None = None
    lr_schedule: str | None = None
    seed_alphas: tuple[int, ...] = ()
    field_alphas: tuple[int, ...] = ()
    field_epochs: int | None = None
    field_weight: float = 1.0

    def __post_init__(self):
        self._check_types()
        if any(a not in self.alphas for a in self.field_alphas):
            raise ValueError(f"field_alphas {self.field_alphas!r} must be among the alphas "
                             f"{self.alphas!r} (the field networks start from their networks)")
        if self.field_epochs is not None:
            object.__setattr__(self, "field_epochs", positive_int(self.field_epochs,
                                                                  "field_epochs"))
        object.__setattr__(self, "field_weight", positive_float(self.field_weight,
                                                                "field_weight"))
        if self.seed_alphas != tuple(sorted(self.alphas))[:len(self.seed_alphas)]:
            raise ValueError(f"seed_alphas {self.seed_alphas!r} must be the smallest alphas of "
                             f"{tuple(sorted(self.alphas))!r} in order (each replica starts "
                             "from the one at alpha / 2)")
        if sum(self.split) != self.n_realizations or min(self.split) < 1:
            raise ValueError(
                f"split {self.split} must have three positive counts summing to "
                f"n_realizations={self.n_realizations}"
            )
        if not self.alphas or any(a not in ALPHAS for a in self.alphas):
            raise ValueError(f"alphas must be a non-empty subset of {ALPHAS}, got {self.alphas!r}")
        if len(self.batch_sizes) != len(self.alphas):
            raise ValueError(
                f"batch_sizes {self.batch_sizes!r} needs one entry per alpha in {self.alphas!r}"
            )
        if self.epochs_per_alpha is not None:
            pairs = tuple(tuple(p) for p in self.epochs_per_alpha)
            if any(len(p) != 2 or p[0] not in ALPHAS or isinstance(p[1], bool)
                   or not isinstance(p[1], (int, np.integer)) or p[1] < 1 for p in pairs):
                raise ValueError(f"epochs_per_alpha {self.epochs_per_alpha!r} must be "
                                 "(alpha, epochs) pairs with alpha in (2, 4, 8), epochs >= 1")
            object.__setattr__(self, "epochs_per_alpha", pairs)
        step = 2 * max(self.alphas)
        if self.hr_size % step:
            raise ValueError(
                f"hr_size={self.hr_size} must be divisible by 2 * max(alphas) = {step} "
                "(down-sampling, then 8 sub-images for evaluation)"
            )
        if self.tomo_size is not None and self.tomo_size % step:
            raise ValueError(f"tomo_size={self.tomo_size} must be divisible by {step}")
        smallest = self.hr_size // max(self.alphas)
        if not 1 <= self.cutout < smallest:
            raise ValueError(
                f"cutout={self.cutout} must be smaller than the smallest low-resolution image "
                f"({smallest} voxels at alpha={max(self.alphas)}): aligned mirror augmentation "
                "needs one spare low-resolution voxel (srlib.training.cutout_at)"
            )
        check_connectivity(self.connectivity)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, "
                             f"got {self.lr_schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")

    def _check_types(self) -> None:
        """Types and ranges of every field, checked before anything is computed or written.

        Integers must be integers (not ``32.0``, not ``"32"``), sizes and counts positive,
        booleans booleans (``"False"`` is refused, not read as true), α distinct.
        """
        def put(name, value):
            object.__setattr__(self, name, value)

        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if self.samples is not None:
            samples = (self.samples,) if isinstance(self.samples, str) else self.samples
            if not samples or not all(isinstance(x, str) and x for x in samples):
                raise ValueError("samples must be None or sample names (strings), "
                                 f"got {self.samples!r}")
            put("samples", tuple(samples))
        for name in ("hr_size", "n_realizations", "features", "cutout", "max_epochs",
                     "steps_per_epoch", "patience", "val_cutouts"):
            put(name, positive_int(getattr(self, name), name))
        blocks = self.blocks
        if isinstance(blocks, bool) or not isinstance(blocks, (int, np.integer)) or blocks < 0:
            raise ValueError(f"blocks must be a non-negative integer, got {blocks!r}")
        for name in ("split", "alphas", "batch_sizes", "seed_alphas", "field_alphas"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)):
                raise ValueError(f"{name} must be a tuple of positive integers, got {value!r}")
            put(name, tuple(positive_int(v, f"{name} entry") for v in value))
        if len(self.split) != 3:
            raise ValueError(f"split must have three counts (train, val, test), got {self.split}")
        if len(set(self.alphas)) != len(self.alphas):
            raise ValueError(f"alphas must be distinct, got {self.alphas!r}")
        put("learning_rate", positive_float(self.learning_rate, "learning_rate"))
        if self.train_budget_s is not None:
            put("train_budget_s", positive_float(self.train_budget_s, "train_budget_s"))
        if self.tomo_size is not None:
            put("tomo_size", positive_int(self.tomo_size, "tomo_size"))
        if not isinstance(self.mixed_precision, (bool, np.bool_)):
            raise ValueError("mixed_precision must be True or False, got "
                             f"{self.mixed_precision!r}")
        put("mixed_precision", bool(self.mixed_precision))
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        put("seed", int(seed))

    def replica(self) -> Profile:
        """The profile of the second training (:attr:`seed_alphas`): seed + 1, those α only."""
        if not self.seed_alphas:
            raise ValueError(f"profile {self.name!r} has no seed_alphas: no second training")
        return dataclasses.replace(
            self, seed=self.seed + 1, alphas=self.seed_alphas,
            batch_sizes=tuple(self.batch_size(a) for a in self.seed_alphas), seed_alphas=(),
            field_alphas=())

    def batch_size(self, alpha: int) -> int:
        """Batch size used for scaling factor ``alpha``."""
        if alpha not in self.alphas:
            raise ValueError(f"alpha={alpha} is not among this profile's alphas {self.alphas}")
        return self.batch_sizes[self.alphas.index(alpha)]

    def tomo_edge(self, shape) -> int:
        """Edge of the centred cubic crop of a tomographic sample of ``shape`` (section 3).

        ``tomo_size`` when the profile sets one; otherwise (``paper``) the largest edge that
        fits the sample and is divisible by ``2 * max(alphas)``, as the protocol's eight
        sub-images at every α need (the paper's own 416³ images are; the public sandstones,
        200³, 500³ and 100³, give 192, 496 and 96).

        Raises
        ------
        ValueError
            If the sample is smaller than ``tomo_size``, or than ``2 * max(alphas)``.
        """
        smallest = min(int(n) for n in shape)
        step = 2 * max(self.alphas)
        edge = self.tomo_size if self.tomo_size is not None else smallest // step * step
        if edge < step or edge > smallest:
            raise ValueError(f"a tomographic sample of shape {tuple(shape)} cannot give a "
                             f"centred crop of edge {edge}: it needs at least "
                             f"{max(step, edge)} voxels along every axis")
        return edge

    def max_epochs_for(self, alpha: int) -> int:
        """Maximum number of epochs for scaling factor ``alpha``."""
        if alpha not in self.alphas:
            raise ValueError(f"alpha={alpha} is not among this profile's alphas {self.alphas}")
        return dict(self.epochs_per_alpha or ()).get(alpha, self.max_epochs)

    def field_epochs_for(self, alpha: int) -> int:
        """Maximum number of epochs of the field networks at ``alpha`` (chapter 9).

        ``field_epochs``, else those of the α's network (:meth:`max_epochs_for`).
        """
        return self.field_epochs or self.max_epochs_for(alpha)

    @property
    def roles(self) -> tuple[str, ...]:
        """Role of each realization index: 'train', 'val' or 'test' (paper, section 2.2.2)."""
        n_train, n_val, n_test = self.split
        return ("train",) * n_train + ("val",) * n_val + ("test",) * n_test

    def as_dict(self) -> dict:
        """The profile as a plain dict (for JSON, tables and papermill parameters)."""
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "paper": Profile(
        name="paper",
        samples=None,
        hr_size=800,
        n_realizations=10,
        split=(7, 2, 1),
        alphas=(2, 4, 8),
        features=64,
        blocks=8,
        cutout=24,
        batch_sizes=(8, 8, 1),
        max_epochs=1000,
        steps_per_epoch=400,
        patience=10,
        val_cutouts=30,
        learning_rate=1e-4,
        train_budget_s=None,
        tomo_size=None,
        device="auto",
        mixed_precision=True,
        seed_alphas=(2, 4, 8),
        field_alphas=(2, 4, 8),
    ),
    "quick": Profile(
        name="quick",
        samples=None,
        hr_size=96,
        n_realizations=10,
        split=(7, 2, 1),
        alphas=(2, 4, 8),
        features=16,
        blocks=8,
        cutout=11,
        batch_sizes=(8, 4, 1),
        max_epochs=30,
        # Epochs of 50 steps: the validation loss (30 cutouts, a third of a step's work
        # each at alpha = 8) is computed every 50 steps, not every 25; the steps, their
        # batches and the learning rate of every step are those of 25-step epochs.
        steps_per_epoch=50,
        # The cosine schedule does its work in its last epochs, so the patience is no
        # shorter than any epoch cap and the caps decide (a shorter one stopped a run on a
        # noisy validation estimate before the annealing).
        patience=16,
        val_cutouts=30,
        learning_rate=1e-3,
        train_budget_s=None,
        tomo_size=96,
        device="cpu",
        # Epoch caps for the 30-minute cold book on 2 cores in float32 on an AVX2-only CPU;
        # fewer steps at alpha = 4 and 8 cost the networks their lead (measurements on the
        # Reproducing page). The cosine schedule is stretched over each cap.
        epochs_per_alpha=((2, 15), (4, 16), (8, 16)),
        lr_schedule="cosine",
        # A second training at alpha = 2 only: the alpha = 8 pair does not fit the 2-core
        # float32 build's budget (Reproducing page).
        seed_alphas=(2,),
        # The field networks of the future-work chapter at alpha = 2 only, fine-tuned for
        # 8 epochs (400 steps): what the chapter's share of the float32 2-core build allows
        # (its measured time is on the Reproducing page).
        field_alphas=(2,),
        field_epochs=8,
        # bfloat16 forward passes where the CPU has them natively (AVX512-BF16 or AMX);
        # float32 elsewhere, and everywhere with SRLIB_BFLOAT16=off.
        mixed_precision=True,
    ),
    "tiny": Profile(
        name="tiny",
        samples=("berea", "leopard"),
        hr_size=32,
        n_realizations=3,
        split=(1, 1, 1),
        alphas=(2, 4, 8),
        features=4,
        blocks=8,
        cutout=3,
        batch_sizes=(2, 2, 1),
        max_epochs=3,
        steps_per_epoch=2,
        patience=2,
        val_cutouts=4,
        learning_rate=1e-3,
        train_budget_s=None,
        tomo_size=32,
        device="cpu",
        seed_alphas=(2,),
        field_alphas=(2,),
        field_epochs=2,
    ),
}


def get_profile(name: str | None = None, **overrides) -> Profile:
    """Return the named profile, with optional field overrides.

    Parameters
    ----------
    name : str, optional
        "paper", "quick" or "tiny"; default: the ``SRLIB_PROFILE`` environment variable, else
        "quick".
    **overrides
        Field values replacing the profile's (e.g. ``alphas=(2, 4)``, ``batch_sizes=(8, 8)``).
        Lists are converted to tuples. New ``alphas`` without new ``seed_alphas`` keep the
        second training at as many of the smallest new α as the profile had; likewise the
        field networks (``field_alphas``).

    Returns
    -------
    Profile
        The (possibly modified) profile.

    Raises
    ------
    ValueError
        If the name is unknown, an override names no field, or the result is inconsistent.
    """
    if name is None:
        name = os.environ.get(PROFILE_ENV, "quick")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    fields = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown profile field(s) {unknown}; valid fields are {sorted(fields)}")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    base = PROFILES[name]
    if "alphas" in overrides and "seed_alphas" not in overrides \
            and isinstance(overrides["alphas"], tuple):
        ordered = sorted(a for a in overrides["alphas"] if isinstance(a, int))
        overrides["seed_alphas"] = tuple(ordered[:len(base.seed_alphas)])
    if "alphas" in overrides and "field_alphas" not in overrides \
            and isinstance(overrides["alphas"], tuple):
        ordered = sorted(a for a in overrides["alphas"] if isinstance(a, int))
        overrides["field_alphas"] = tuple(ordered[:len(base.field_alphas)])
    return dataclasses.replace(base, **overrides)


def results_dir(profile: Profile | str, *, root: str | os.PathLike | None = None) -> Path:
    """Folder holding every output of a profile: ``<root>/<profile name>``.

    Parameters
    ----------
    profile : Profile or str
        The profile or its name.
    root : path, optional
        Results root; default the ``SRLIB_RESULTS`` environment variable, else ``results``.

    Returns
    -------
    pathlib.Path
        The folder (not created).
    """
    name = profile.name if isinstance(profile, Profile) else str(profile)
    if root is None:
        root = os.environ.get(RESULTS_ENV, "results")
    return Path(root) / name
