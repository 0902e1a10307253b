r"""Training one network: Adam on random cutouts, early stopping, checkpoints (section 2.2.3).

Contract. :func:`train` trains an :class:`~srlib.network.SRResNet3d` in place (the PyTorch
convention) on random cutouts of training :class:`~srlib.training.cutouts.Pair` records,
augmented by the 48 symmetries of the cube, minimising the binary cross-entropy
(Eqs. (14)–(16)) with Adam, and stops early on the loss of a fixed set of validation cutouts.
Its hyper-parameters form one frozen :class:`TrainConfig`, validated once;
:func:`run_training` takes that object directly. The run writes an atomic checkpoint every
epoch and resumes from it bit for bit. A run whose loss becomes NaN or infinite stops with
:class:`TrainingDiverged`, naming the network and the epoch. :func:`make_model` builds a
seeded network and :func:`transfer_model` the α network from the trained α/2 one (transfer
learning; both live in :mod:`srlib.training.models` and are re-exported here). Pairs passed
in are never modified.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srlib._checks import positive_int
from srlib._heap import keep_freed_memory
from srlib._progress import progress_bar
from srlib.config import LR_SCHEDULES
from srlib.devices import native_bfloat16, resolve_device, torch_threads
from srlib.network import SRResNet3d
from srlib.training import distributed
from srlib.training.checkpoint import load_checkpoint, save_checkpoint, state_to_cpu
from srlib.training.cutouts import Pair, as_pairs, validation_cutouts
from srlib.training.data import (
    CutoutDataset,
    EpochSampler,
    batch_sources,
    draw_plan,
    make_loader,
    rank_share,
)
from srlib.training.models import make_model, transfer_model
from srlib.training.settings import TrainConfig, TrainingDiverged, TrainResult
from srlib.training.symmetry import axis_symmetries

__all__ = [
    "make_model",
    "mean_loss",
    "run_training",
    "scheduled_rate",
    "train",
    "training_autocast",
    "transfer_model",
]

logger = logging.getLogger(__name__)

_COSINE_FLOOR = 0.01


# --------------------------------------------------------------------------------------
# Losses and the learning-rate schedule
# --------------------------------------------------------------------------------------


def training_autocast(model, config, dev) -> bool:
    """Whether the training of ``model`` autocasts to bfloat16 on ``dev``; warns where it cannot.

    ``config`` is a :class:`TrainConfig` (its ``mixed_precision`` and ``cutout`` decide).

    Where the device has no native bfloat16, and on CPUs where a cutout is narrower than the
    network's widest kernel (the 9³ head): there oneDNN's bfloat16 weight gradient of that
    convolution came back NaN (torch 2.13 on an AMD EPYC with AVX512-BF16 and no AMX: an 8³
    input under a 9³ kernel, batch 8, in 12 of 20 trials; none in 300 trials with inputs of
    9³ to 12³), which the loop would report as a diverged training.
    """
    if not config.mixed_precision:
        return False
    if not native_bfloat16(dev):
        logger.warning("%s has no native bfloat16 (see srlib.devices.native_bfloat16); "
                       "training in float32", dev)
        return False
    widest = max((max(m.kernel_size) for m in model.modules()
                  if isinstance(m, torch.nn.Conv3d)), default=1)
    if dev.type == "cpu" and config.cutout < widest:
        logger.warning("cutout=%d is narrower than the network's %d-voxel kernel: bfloat16 "
                       "weight gradients of such convolutions are unreliable on the CPU; "
                       "training in float32", config.cutout, widest)
        return False
    return True


def _loss(logits_fn, inputs: torch.Tensor, targets: torch.Tensor, amp: bool,
          field_weight: float | None = None):
    """Eq. (15) averaged over voxels; with field targets plus the weighted field error.

    ``targets`` is ``(b, 1, ...)`` (the binary image) or ``(b, 1 + k, ...)`` (the binary
    image, then fields whose channel ``j`` lives in phase ``j``: 0 pore, 1 solid, as the
    diffusion channels). The field term is the squared error of output channels ``1 ..``
    against the fields on the voxels of their phase, averaged over all voxels of the field
    channels, times ``field_weight`` (:mod:`srlib.training.targets`).
    """
    with torch.autocast(device_type=inputs.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = logits_fn(inputs)
    logits = logits.float()
    if targets.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits, targets)
    image = targets[:, :1]
    bce = F.binary_cross_entropy_with_logits(logits[:, :1], image)
    phases = torch.cat([1.0 - image, image], dim=1)[:, : targets.shape[1] - 1]
    error = ((logits[:, 1:] - targets[:, 1:]) ** 2 * phases).mean()
    return bce + field_weight * error


def _target_tensor(targets, dev: torch.device) -> torch.Tensor:
    """Targets as float ``(b, channels, ...)``: a binary image gains its channel axis."""
    y = torch.as_tensor(targets).to(dev).float()
    return y.unsqueeze(1) if y.ndim == 4 else y


class _Logits(torch.nn.Module):
    """The network's logits as ``forward`` (what DistributedDataParallel wraps)."""

    def __init__(self, model: SRResNet3d):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.logits(x)


def _to_device(inputs: np.ndarray, targets: np.ndarray, dev: torch.device):
    x = torch.from_numpy(np.ascontiguousarray(inputs)).to(dev)
    return x, _target_tensor(np.ascontiguousarray(targets), dev)


def mean_loss(model: SRResNet3d, inputs, targets, *, batch_size: int = 4, device=None,
              mixed_precision: bool = False, field_weight: float | None = None) -> float:
    """Mean binary cross-entropy of ``model`` on given cutouts, in eval mode.

    With field targets (``(n, 1 + k, ...)`` float32, :func:`cutout_at` of pairs with fields)
    the loss adds ``field_weight`` times the fields' masked squared error (:func:`train`).

    Parameters
    ----------
    model : SRResNet3d
        Network (its mode is restored afterwards).
    inputs : numpy.ndarray
        ``(n, C, m, m, m)`` inputs.
    targets : numpy.ndarray
        ``(n, α m, α m, α m)`` binary targets, or ``(n, 1 + k, α m, α m, α m)`` with fields.
    batch_size : int
        Cutouts per forward pass.
    device : str, torch.device or None
        See :func:`~srlib.devices.resolve_device`; the model must already be there.
    mixed_precision : bool
        bfloat16 autocast where the device has it natively
        (:func:`~srlib.devices.native_bfloat16`).

    Returns
    -------
    float
        Eq. (15) averaged over voxels and cutouts (the sum over voxels divided by their
        number). A batch whose cutouts equal an earlier batch's is not run again
        (:func:`~srlib.training.data.batch_sources`): a validation set drawn from few small
        images repeats cutouts.
    """
    batch_size = positive_int(batch_size, "batch_size")
    dev = resolve_device(device)
    amp = bool(mixed_precision and native_bfloat16(dev))
    was_training = model.training
    model.eval()
    total, count, losses = 0.0, 0, {}
    try:
        with torch.no_grad():
            # a batch equal to an earlier one takes its loss: the same numbers, summed alike
            for i, source in batch_sources(inputs, targets, batch_size):
                if source not in losses:
                    x, y = _to_device(inputs[i : i + batch_size], targets[i : i + batch_size],
                                      dev)
                    losses[source] = float(_loss(model.logits, x, y, amp, field_weight))
                n = len(inputs[i : i + batch_size])
                total += losses[source] * n
                count += n
    finally:
        model.train(was_training)
    return total / count


def scheduled_rate(learning_rate: float, schedule: str | None, step: int, total: int) -> float:
    """Learning rate of training step ``step`` (0-based) of ``total`` under ``schedule``.

    Parameters
    ----------
    learning_rate : float
        Base (initial) learning rate.
    schedule : {None, "cosine"}
        None: constant (the paper states no schedule). "cosine": step ``t`` of ``T`` uses
        ``learning_rate * (f + (1 - f) (1 + cos(π t / T)) / 2)`` with ``f = 0.01``.
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


# --------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------


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
    num_workers: int = 0,
    progress: bool = True,
    callback: Callable[[int, float, float], None] | None = None,
    field_weight: float | None = None,
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
    holds the weights of the best epoch on return, in eval mode. A NaN training loss or a
    NaN or infinite validation loss raises :class:`TrainingDiverged`.

    With ``checkpoint``, the state (model, optimizer, random state, history, best weights) is
    written atomically after every epoch, and a later call with the same path and settings
    resumes the run where it stopped: an interrupted run continues exactly as the
    uninterrupted one would (bit for bit on the CPU). ``max_epochs``, ``patience``,
    ``min_delta`` and ``time_budget_s`` may change between calls, e.g. to extend a run.

    The hyper-parameters are the fields of a :class:`TrainConfig` (:func:`run_training`).

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
        None: a constant learning rate (the paper states no schedule). "cosine": see
        :func:`scheduled_rate`, over ``T = max_epochs * steps_per_epoch`` steps, which settles
        a short run with small batches; extending ``max_epochs`` on resume stretches the rest
        of the schedule.
    seed : int
        Seed of the cutouts and augmentations. (The initial weights come from the model.)
    augment : bool
        Apply the random symmetries.
    align_mirrors : bool
        Keep the Eq. (3) alignment under mirroring (:mod:`srlib.training.cutouts`); needs
        images at least ``cutout + 1`` voxels wide.
    checkpoint : str or os.PathLike, optional
        Checkpoint file, written every epoch.
    resume : bool
        Resume from ``checkpoint`` if it exists (otherwise it is overwritten).
    time_budget_s : float, optional
        Stop after the epoch in which this much wall time (summed over sessions) is spent.
    device : str, torch.device or None
        See :func:`~srlib.devices.resolve_device` (CUDA when available).
    mixed_precision : bool
        bfloat16 autocast of the forward passes (training and validation), where the device
        computes in bfloat16 natively (:func:`~srlib.devices.native_bfloat16`: Ampere or newer
        GPUs, CPUs with AVX512-BF16 or AMX); elsewhere ignored with a warning. Weights,
        optimizer state and the loss stay float32.
    num_threads : int, optional
        Torch CPU threads during training (restored afterwards).
    num_workers : int
        DataLoader worker processes that read and augment the cutouts ahead of the training
        step (:mod:`srlib.training.data`); 0 reads them in this process. The batches do not
        depend on it.
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        Called as ``callback(epoch, train_loss, val_loss)`` after each epoch, after the
        checkpoint is written.
    field_weight : float, optional
        For pairs with field targets (the paper's future work): the loss is the binary
        cross-entropy of output channel 0 plus ``field_weight`` times the squared error of
        the other output channels against the fields on their phase's voxels, and the
        cutouts are augmented only by the 8 symmetries that keep axis 0 (the fields'
        transport axis) and its direction. Needed exactly when the pairs have fields.

    Returns
    -------
    TrainResult
        Loss history, best epoch, stopping epoch and reason, steps and time.

    Raises
    ------
    ValueError
        On inconsistent pairs, settings, or a checkpoint written with other settings.
    TrainingDiverged
        If the loss becomes NaN or infinite.
    """
    config = TrainConfig(
        cutout=cutout, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
        max_epochs=max_epochs, patience=patience, min_delta=min_delta, val_cutouts=val_cutouts,
        learning_rate=learning_rate, lr_schedule=lr_schedule, seed=seed, augment=augment,
        align_mirrors=align_mirrors, time_budget_s=time_budget_s,
        mixed_precision=mixed_precision, field_weight=field_weight,
    )
    return run_training(model, train_pairs, val_pairs, config, checkpoint=checkpoint,
                        resume=resume, device=device, num_threads=num_threads,
                        num_workers=num_workers, progress=progress, callback=callback)


def run_training(model: SRResNet3d, train_pairs: Sequence[Pair], val_pairs: Sequence[Pair],
                 config: TrainConfig, *, checkpoint=None, resume: bool = True, device=None,
                 num_threads: int | None = None, num_workers: int = 0, progress: bool = True,
                 callback: Callable[[int, float, float], None] | None = None,
                 label: str | None = None) -> TrainResult:
    """Train a network with the hyper-parameters of a :class:`TrainConfig`.

    The same run as :func:`train`, whose keyword arguments are documented there; ``config``
    replaces the hyper-parameters.

    Data parallel. Inside a process group (ranks started by ``torchrun``, see
    :mod:`srlib.training.distributed`) the model is wrapped in DistributedDataParallel and
    each rank reads its share of every step's batch of ``config.batch_size`` cutouts (which
    the number of ranks must divide); rank 0 computes the validation loss, decides when to
    stop and writes the checkpoint. Every rank returns the same result and weights.

    Parameters
    ----------
    model : SRResNet3d
        Network to train, in place.
    train_pairs, val_pairs : sequence of Pair
        Training and validation pairs.
    config : TrainConfig
        Hyper-parameters.
    checkpoint, resume, device, num_threads, num_workers, progress, callback
        See :func:`train`.
    label : str, optional
        Name of the run on its progress bar (default "training α=<alpha>").

    Returns
    -------
    TrainResult
        Loss history, best epoch, stopping epoch and reason, steps and time.
    """
    if not isinstance(model, SRResNet3d):
        raise ValueError(f"model must be an SRResNet3d, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    if num_threads is not None:
        num_threads = positive_int(num_threads, "num_threads")
    train_pairs = as_pairs(train_pairs, "train_pairs")
    val_pairs = as_pairs(val_pairs, "val_pairs")
    _check_pairs(model, train_pairs, val_pairs, config)
    dev = resolve_device(device)
    amp = training_autocast(model, config, dev)
    val_x, val_y = validation_cutouts(val_pairs, config.val_cutouts, config.cutout,
                                      seed=config.seed)
    identity = config.identity(model, len(train_pairs), len(val_pairs))
    keep_freed_memory()  # steps reuse the heap's pages (srlib._heap): speed only
    with torch_threads(num_threads):
        return _train_loop(model, train_pairs, val_x, val_y, config, amp=amp,
                           identity=identity, dev=dev, checkpoint=checkpoint, resume=resume,
                           progress=progress, callback=callback, num_workers=num_workers,
                           label=label or f"training α={model.alpha}")


def _check_pairs(model: SRResNet3d, train_pairs, val_pairs, config: TrainConfig) -> None:
    cutout = config.cutout
    spare = int(config.augment and config.align_mirrors)
    for name, pairs, extra in (("train_pairs", train_pairs, spare), ("val_pairs", val_pairs, 0)):
        for i, p in enumerate(pairs):
            if p.alpha != model.alpha:
                raise ValueError(f"{name}[{i}] has alpha={p.alpha}, the model alpha={model.alpha}")
            outputs = 1 + (0 if p.fields is None else p.fields.shape[0])
            if outputs != model.out_channels:
                raise ValueError(f"{name}[{i}] has {outputs} target channel(s) (the image"
                                 f"{' and fields' if outputs > 1 else ''}), the model "
                                 f"out_channels={model.out_channels}")
            if outputs > 3:
                raise ValueError(f"{name}[{i}] has {outputs - 1} fields; at most 2 (pore, "
                                 "solid) are supported")
            if (outputs > 1) != (config.field_weight is not None):
                raise ValueError("field targets need a TrainConfig field_weight, and a "
                                 "field_weight needs pairs with fields")
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


def _stop_reason(state: dict, config: TrainConfig) -> str | None:
    if state["epoch"] > 0 and state["bad_epochs"] >= config.patience:
        return "early_stopping"
    if state["epoch"] >= config.max_epochs:
        return "max_epochs"
    budget = config.time_budget_s
    if budget is not None and state["epoch"] > 0 and state["seconds"] >= budget:
        return "time_budget"
    return None


def _resume(path: Path, identity: dict, model, optimizer, rng, dev):
    ck = load_checkpoint(path, identity, device=dev)
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    rng.bit_generator.state = ck["numpy_rng"]
    logger.info("resumed from %s after epoch %d", path, ck["state"]["epoch"])
    return ck["state"], ck["best_model"]


def _train_loop(model: SRResNet3d, train_pairs: list[Pair], val_x: np.ndarray,
                val_y: np.ndarray, config: TrainConfig, *, amp: bool, identity: dict,
                dev: torch.device, checkpoint, resume: bool, progress: bool, callback,
                num_workers: int, label: str) -> TrainResult:
    # Nothing here draws from torch's random state (cutouts and augmentations come from the
    # NumPy generator below), so a run is reproducible from the config's seed alone.
    ranks, main = distributed.world_size(), distributed.is_main()
    share = rank_share(config.batch_size, distributed.rank(), ranks)
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng([config.seed, 0])
    state = {
        "epoch": 0, "train_loss": [], "val_loss": [], "best_val": math.inf, "best_epoch": 0,
        "bad_epochs": 0, "seconds": 0.0, "steps": 0,
    }
    best_state = None
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists() and resume:
        state, best_state = _resume(path, identity, model, optimizer, rng, dev)
    elif path is not None and main:
        path.parent.mkdir(parents=True, exist_ok=True)
    net = _Logits(model)
    if ranks > 1:  # construction syncs the ranks: every rank has read the checkpoint
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[dev.index] if dev.type == "cuda" else None)
    # One bar for the whole run (all epochs): a book build shows it in the terminal.
    bar = progress_bar(total=config.max_epochs * config.steps_per_epoch, initial=state["steps"],
                       desc=label, unit="step", disable=not (progress and distributed.is_main()))
    with bar, distributed.synced_batchnorm(model):  # statistics of the global batch
        return _epochs(model, net, train_pairs, val_x, val_y, config, amp=amp,
                       identity=identity, dev=dev, path=path, state=state, best_state=best_state,
                       optimizer=optimizer, rng=rng, callback=callback, num_workers=num_workers,
                       share=share, bar=bar)


def _augmentations(pairs):
    """The symmetries a plan may draw (None: all 48).

    For field targets (solutions along axis 0), the 8 that keep that axis and its direction
    (:mod:`srlib.training.targets`).
    """
    return axis_symmetries(0, keep_direction=True) if pairs[0].fields is not None else None


def _epochs(model, net, train_pairs, val_x, val_y, config, *, amp, identity, dev, path, state,
            best_state, optimizer, rng, callback, num_workers, share, bar):
    ranks, main = distributed.world_size(), distributed.is_main()
    sampler = EpochSampler(share)
    symmetries = _augmentations(train_pairs)
    loader = make_loader(CutoutDataset(train_pairs, config.cutout,
                                       align_mirrors=config.align_mirrors),
                         sampler, num_workers=num_workers)

    total_steps = config.max_epochs * config.steps_per_epoch
    reason = _stop_reason(state, config)
    while reason is None:
        start = time.perf_counter()
        epoch = state["epoch"] + 1
        model.train()
        losses = []
        sampler.plan = draw_plan(rng, train_pairs, config.steps_per_epoch, config.batch_size,
                                 cutout=config.cutout, augment=config.augment,
                                 align_mirrors=config.align_mirrors, symmetries=symmetries)
        for i, (x, y) in enumerate(loader):
            rate = scheduled_rate(config.learning_rate, config.lr_schedule, state["steps"] + i,
                                  total_steps)
            for group in optimizer.param_groups:
                group["lr"] = rate
            x, y = x.to(dev), _target_tensor(y, dev)
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(net, x, y, amp, config.field_weight)
            loss.backward()
            optimizer.step()
            value = loss.detach()
            if ranks > 1:  # the loss of the global batch: the mean over the equal shares
                torch.distributed.all_reduce(value)
                value = value / ranks
            losses.append(float(value))
            if math.isnan(losses[-1]):
                raise TrainingDiverged(epoch=epoch, which="training", value=losses[-1],
                                       alpha=model.alpha)
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4f}", refresh=False)
        val = (mean_loss(model, val_x, val_y, batch_size=config.batch_size, device=dev,
                         mixed_precision=amp, field_weight=config.field_weight)
               if main else None)
        # rank 0 decides: its validation loss and clock reach every rank
        val, seconds = distributed.broadcast((val, time.perf_counter() - start))
        if not math.isfinite(val):
            raise TrainingDiverged(epoch=epoch, which="validation", value=val, alpha=model.alpha)
        state["epoch"] = epoch
        state["steps"] += config.steps_per_epoch
        state["train_loss"].append(float(np.mean(losses)))
        state["val_loss"].append(val)
        if val < state["best_val"] - config.min_delta:
            state["best_val"], state["best_epoch"], state["bad_epochs"] = val, epoch, 0
            best_state = state_to_cpu(model.state_dict())
        else:
            state["bad_epochs"] += 1
        state["seconds"] += seconds
        reason = _stop_reason(state, config)
        bar.set_postfix(epoch=epoch, val_loss=f"{val:.4f}", best=state["best_epoch"])
        logger.info("epoch %d: train loss %.5f, validation loss %.5f%s", epoch,
                    state["train_loss"][-1], val, " (best)" if state["best_epoch"] == epoch else "")
        if path is not None and main:
            save_checkpoint(path, identity=identity, model=model, optimizer=optimizer, rng=rng,
                            state=state, best_model=best_state, stop_reason=reason)
        distributed.barrier()  # no rank runs ahead of the checkpoint
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
        bfloat16=bool(amp),
    )
