"""What one training run is given and what it returns (paper, section 2.2.3).

Contract. :class:`TrainConfig` holds the hyper-parameters of one run, validated once, and
:meth:`TrainConfig.from_profile` makes them from a profile for one network (the one mapping
from a profile to a run); :class:`TrainResult` is the summary a run returns and
:class:`TrainingDiverged` the error of a run whose loss became NaN or infinite.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from srlib._checks import positive_float, positive_int
from srlib.config import LR_SCHEDULES

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged"]


@dataclass(frozen=True)
class TrainConfig:
    """The hyper-parameters of one training run, validated once.

    Every field but ``context`` is the keyword argument of :func:`train` with the same name
    and meaning (paper values: cutout 24, batch size 8, 8, 1 for α = 2, 4, 8, 400 steps per
    epoch, at most 1000 epochs, patience 10, 30 validation cutouts). ``min_delta`` must be
    non-negative, ``seed`` a non-negative integer, ``time_budget_s`` None or non-negative.

    ``context`` (a mapping, or ``(name, value)`` pairs; stored sorted) holds further settings
    that identify the run without entering the loop, e.g. the connectivity of the diffusion
    channels the inputs were computed with: it is stored in the checkpoint and compared on
    resume, so a run never resumes from a checkpoint made under another context.
    ``field_weight`` (None, or a non-negative number) is the weight of the field term of the
    loss for networks that also output fields (:mod:`srlib.training.targets`); None trains
    the morphology alone, as the paper does; 0 trains the morphology of a field network
    alone, on the same cutouts (a control).

    Raises
    ------
    ValueError
        Naming the first field that is out of range.
    """

    cutout: int = 24
    batch_size: int = 8
    steps_per_epoch: int = 400
    max_epochs: int = 1000
    patience: int = 10
    min_delta: float = 0.0
    val_cutouts: int = 30
    learning_rate: float = 1e-4
    lr_schedule: str | None = None
    seed: int = 0
    augment: bool = True
    align_mirrors: bool = True
    time_budget_s: float | None = None
    mixed_precision: bool = False
    context: tuple = ()
    field_weight: float | None = None

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        for name in ("cutout", "batch_size", "steps_per_epoch", "max_epochs", "patience",
                     "val_cutouts"):
            put(name, positive_int(getattr(self, name), name))
        put("learning_rate", positive_float(self.learning_rate, "learning_rate"))
        delta = self.min_delta
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.number)) \
                or not 0 <= delta < math.inf:
            raise ValueError(f"min_delta must be a non-negative finite number, got {delta!r}")
        put("min_delta", float(delta))
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, "
                             f"got {self.lr_schedule!r}")
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        put("seed", int(seed))
        budget = self.time_budget_s
        if budget is not None:
            if isinstance(budget, bool) or not isinstance(budget, (int, float, np.number)) \
                    or not budget >= 0:
                raise ValueError(f"time_budget_s must be None or non-negative, got {budget!r}")
            put("time_budget_s", float(budget))
        weight = self.field_weight
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) \
                    or not 0 <= weight < math.inf:
                raise ValueError(f"field_weight must be None or a non-negative finite number, "
                                 f"got {weight!r}")
            put("field_weight", float(weight))
        for name in ("augment", "align_mirrors", "mixed_precision"):
            put(name, bool(getattr(self, name)))
        context = self.context.items() if isinstance(self.context, Mapping) else self.context
        put("context", tuple(sorted((str(k), v) for k, v in context)))

    @classmethod
    def from_profile(cls, profile, alpha: int, *, seed: int, context=()) -> TrainConfig:
        """The run of the network at ``alpha`` under ``profile`` (sizes, budget, schedule)."""
        return cls(
            cutout=profile.cutout, batch_size=profile.batch_size(alpha),
            steps_per_epoch=profile.steps_per_epoch, max_epochs=profile.max_epochs_for(alpha),
            patience=profile.patience, val_cutouts=profile.val_cutouts,
            learning_rate=profile.learning_rate, lr_schedule=profile.lr_schedule, seed=seed,
            time_budget_s=profile.train_budget_s, mixed_precision=profile.mixed_precision,
            context=context,
        )

    def identity(self, model, n_train: int, n_val: int) -> dict:
        """What a checkpoint must agree on to be resumed: the model and the fixed settings.

        ``max_epochs``, ``patience``, ``min_delta``, ``time_budget_s`` and
        ``mixed_precision`` may change between sessions (e.g. to extend a run).
        """
        ident = {"model": model.config, "n_train_pairs": n_train, "n_val_pairs": n_val}
        ident.update({k: getattr(self, k) for k in (
            "cutout", "batch_size", "steps_per_epoch", "val_cutouts", "learning_rate", "seed",
            "augment", "align_mirrors")})
        if self.lr_schedule is not None:  # checkpoints of constant-rate runs keep their config
            ident["lr_schedule"] = self.lr_schedule
        if self.context:
            ident["context"] = dict(self.context)
        if self.field_weight is not None:  # morphology-only runs keep their identity
            ident["field_weight"] = self.field_weight
        return ident


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
    bfloat16 : bool
        Whether the forward passes autocast to bfloat16 (:func:`training_autocast`; the
        last session's arithmetic when the run was resumed), else float32.
    """

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    best_epoch: int
    best_val_loss: float
    stopped_epoch: int
    stop_reason: str
    steps: int
    seconds: float
    bfloat16: bool = False

    @property
    def history(self) -> dict[str, list[float]]:
        """Loss per epoch as ``{"train_loss": [...], "val_loss": [...]}``."""
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss)}


class TrainingDiverged(RuntimeError):
    """A training run whose loss became NaN or infinite; nothing after it is trustworthy.

    Parameters
    ----------
    epoch : int
        Epoch (1-based) in which it happened.
    which : str
        "training" or "validation".
    value : float
        The loss.
    alpha : int, optional
        Scaling factor of the network.
    kind : str, optional
        Input type of the network ("bin" or "diffu"), when known.
    """

    def __init__(self, *, epoch: int, which: str, value: float, alpha: int | None = None,
                 kind: str | None = None):
        self.epoch, self.which, self.value, self.alpha, self.kind = epoch, which, value, alpha, kind
        who = (f"network N_{kind}_{alpha}" if kind is not None and alpha is not None
               else f"the alpha={alpha} network" if alpha is not None else "the network")
        super().__init__(
            f"training of {who} diverged in epoch {epoch}: the {which} loss is {value}; "
            "lower the learning rate (the last checkpoint holds the epoch before)"
        )

    def __reduce__(self):  # picklable (e.g. raised in a worker process)
        return functools.partial(type(self), epoch=self.epoch, which=self.which,
                                 value=self.value, alpha=self.alpha, kind=self.kind), ()
