r"""Training the super-resolution networks (paper, sections 2.2.2 and 2.2.3).

One concept per module, every public name re-exported here:

:mod:`srlib.training.symmetry`
    The 48 symmetries of the cube that augment the training cutouts.
:mod:`srlib.training.cutouts`
    Training pairs (:class:`Pair`: the network input, the binary high-resolution target), the
    random and the validation cutouts, kept aligned by Eq. (3) under mirroring; the pairs of a
    database.
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
    Pair,
    cutout_at,
    make_pair,
    pairs_from_database,
    random_cutout,
    validation_cutouts,
)
from srlib.training.loop import (
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    make_model,
    mean_loss,
    run_training,
    scheduled_rate,
    train,
    transfer_model,
)
from srlib.training.study import (
    KINDS,
    TrainedNetwork,
    load_networks,
    network_name,
    train_networks,
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
    "fit_model_threshold",
    "fit_threshold",
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
    "run_training",
    "scheduled_rate",
    "train",
    "train_networks",
    "training_settings",
    "transfer_model",
    "validation_cutouts",
]
