r"""Training the super-resolution networks (paper, sections 2.2.2 and 2.2.3).

One concept per module, every public name re-exported here:

:mod:`srlib.training.symmetry`
    The 48 symmetries of the cube that augment the training cutouts.
:mod:`srlib.training.cutouts`
    Training pairs (:class:`Pair`: the network input, the binary high-resolution target, in
    memory or lazy array-likes read cutout by cutout), the random and the validation
    cutouts, kept aligned by Eq. (3) under mirroring; the pairs of a database.
:mod:`srlib.training.data`
    The batches: cutouts planned from the seed (:func:`draw_plan`), read and augmented in
    ``torch.utils.data.DataLoader`` workers (:func:`make_loader`); each data-parallel rank
    reads its share (:func:`rank_share`).
:mod:`srlib.training.distributed`
    DistributedDataParallel under ``torchrun``: launching ranks, rank 0's decisions
    broadcast.
:mod:`srlib.training.checkpoint`
    Atomic checkpoints; truncated or foreign ones refused with a ValueError naming the file.
:mod:`srlib.training.models`
    :func:`make_model` and :func:`transfer_model`, re-exported by ``loop``.
:mod:`srlib.training.settings`
    :class:`TrainConfig` (one run's hyper-parameters, :meth:`TrainConfig.from_profile`),
    :class:`TrainResult` and :class:`TrainingDiverged`.
:mod:`srlib.training.loop`
    One network: :func:`train` (Adam on the binary cross-entropy, Eqs. (14)–(16), early
    stopping, an atomic checkpoint every epoch, bit-exact resume) with its hyper-parameters in
    a :class:`TrainConfig`; :func:`make_model` and :func:`transfer_model` (transfer learning
    α/2 → α); :class:`TrainingDiverged` when the loss becomes NaN or infinite.
:mod:`srlib.training.threshold`
    The threshold μ* of Eq. (18).
:mod:`srlib.training.study`
    The study's networks :math:`N^{bin,\alpha}` and :math:`N^{diffu,\alpha}` along
    α = 2 → 4 → 8, trained once and stored with the settings that made them.

Arrays passed in are never modified; :func:`train` trains the model it is given in place
(the PyTorch convention).
"""

from srlib.config import LR_SCHEDULES
from srlib.training.cutouts import (
    ChannelStack,
    Pair,
    cutout_at,
    draw_position,
    is_lazy,
    make_pair,
    pairs_from_database,
    random_cutout,
    validation_cutouts,
)
from srlib.training.data import CutoutDataset, draw_plan, make_loader, rank_share
from srlib.training.loop import (
    make_model,
    mean_loss,
    run_training,
    scheduled_rate,
    train,
    transfer_model,
)
from srlib.training.settings import TrainConfig, TrainingDiverged, TrainResult
from srlib.training.study import (
    KINDS,
    TrainedNetwork,
    load_networks,
    network_name,
    train_networks,
    training_scale_text,
    training_settings,
)
from srlib.training.symmetry import (
    IDENTITY,
    Symmetry,
    apply_symmetry,
    compose_symmetries,
    cube_symmetries,
    is_rotation,
    random_symmetry,
    reversed_axes,
)
from srlib.training.threshold import (
    fit_model_threshold,
    fit_threshold,
    porosity_error,
    predict_cutouts,
)

__all__ = [
    "IDENTITY",
    "ChannelStack",
    "CutoutDataset",
    "KINDS",
    "LR_SCHEDULES",
    "Pair",
    "Symmetry",
    "TrainConfig",
    "TrainResult",
    "TrainedNetwork",
    "TrainingDiverged",
    "apply_symmetry",
    "compose_symmetries",
    "cube_symmetries",
    "cutout_at",
    "draw_plan",
    "draw_position",
    "fit_model_threshold",
    "fit_threshold",
    "is_lazy",
    "is_rotation",
    "load_networks",
    "make_loader",
    "make_model",
    "make_pair",
    "mean_loss",
    "network_name",
    "pairs_from_database",
    "porosity_error",
    "predict_cutouts",
    "random_cutout",
    "random_symmetry",
    "rank_share",
    "reversed_axes",
    "run_training",
    "scheduled_rate",
    "train",
    "train_networks",
    "training_scale_text",
    "training_settings",
    "transfer_model",
    "validation_cutouts",
]
