r"""The study's six networks: N^bin and N^diffu for α = 2 → 4 → 8 (sections 2.2.2–2.2.3).

Contract. :func:`train_networks` trains the networks :math:`N^{bin,\alpha}` (input: the
binary low-resolution image, Eq. (11)) and :math:`N^{diffu,\alpha}` (input: the binary image
and its two diffusion channels, Eq. (13)) of a profile along α = 2 → 4 → 8, each α network
initialised from the trained α/2 one (transfer learning), and fits μ* (Eq. (18)) for each,
saving the weights and metadata under one folder (``results/<profile>/networks``). A network
whose weights are there is loaded, not retrained; files written under other settings
(:func:`training_settings`: the database, the architecture, the hyper-parameters and, for
:math:`N^{diffu,\alpha}`, the connectivity of its diffusion channels) or by another profile
are refused. :func:`load_networks` reads them back as :class:`TrainedNetwork` records.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from srlib._checks import check_alpha, positive_int
from srlib.devices import torch_threads
from srlib.io import remove_stale_temp, write_json
from srlib.methods import METHODS, NETWORKS
from srlib.network import SRResNet3d, load_model, save_model
from srlib.training import distributed
from srlib.training.cutouts import pairs_from_database
from srlib.training.loop import (
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    make_model,
    run_training,
    transfer_model,
)
from srlib.training.threshold import fit_model_threshold

__all__ = [
    "KINDS",
    "TrainedNetwork",
    "load_networks",
    "network_name",
    "train_networks",
    "training_scale_text",
    "training_settings",
]

logger = logging.getLogger(__name__)

#: The two input types: ``"bin"`` (Eq. (11), 1 channel) and ``"diffu"`` (Eq. (13), 3 channels).
KINDS = NETWORKS
_NETWORK_FORMAT = 1


def _check_kind(kind) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


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
            "wall_time_s": r.seconds, "bfloat16": r.bfloat16, "best_val_loss": r.best_val_loss,
            "final_train_loss": r.train_loss[-1] if r.train_loss else math.nan,
        }


def network_name(kind: str, alpha: int) -> str:
    """File stem of a network of the study: ``N_<kind>_<alpha>``."""
    return f"N_{_check_kind(kind)}_{check_alpha(alpha)}"


def training_settings(profile, kind: str | None = None) -> dict:
    """The profile fields that determine a trained network (stored with its weights).

    Parameters
    ----------
    profile : srlib.config.Profile
        The profile.
    kind : {None, "bin", "diffu"}
        The network's input type. For "diffu" the settings include ``connectivity``, the FEM
        convention of the diffusion channels it is trained on (:mod:`srlib.transport`), so a
        run with ``connectivity="vertex"`` never reuses networks trained on "face" channels
        (or the reverse). ``N^bin`` does not see the channels, so its settings leave it out.
        (The channels are always computed along axis 0, which is not a profile setting.)

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
    if kind is not None and METHODS[_check_kind(kind)].needs_channels:
        settings["connectivity"] = profile.connectivity
    return json.loads(json.dumps(settings))


def _network_seed(profile, alpha: int) -> int:
    # bin and diffu networks of the same alpha share the seed: the same initial body
    # weights, cutouts, augmentations and validation cutouts, so their curves compare directly.
    return int(profile.seed) * 1000 + alpha


def _load_network(out_dir: Path, kind: str, alpha: int, settings: dict) -> TrainedNetwork | None:
    stem = network_name(kind, alpha)
    weights, meta = out_dir / f"{stem}.pt", out_dir / f"{stem}.json"
    if not weights.exists():
        return None
    if not meta.exists():
        raise ValueError(f"{weights} has no metadata file {meta.name}; delete it to retrain")
    try:
        info = json.loads(meta.read_text())
    except ValueError as err:  # truncated or not JSON
        raise ValueError(f"{meta} is damaged ({err}); delete {weights} to retrain") from err
    if not isinstance(info, dict) or info.get("format") != _NETWORK_FORMAT:
        raise ValueError(f"{meta} has an unknown format; delete {weights} to retrain")
    if not all(isinstance(info.get(k), dict) for k in ("settings", "result", "model")):
        raise ValueError(f"{meta} is damaged (its settings, result or model are missing); "
                         f"delete {weights} to retrain")
    if info["settings"].get("name") != settings["name"]:
        raise ValueError(
            f"{weights} belongs to profile {info['settings'].get('name')!r}, not "
            f"{settings['name']!r}; never reused across profiles - use that profile's folder"
        )
    stored = dict(info["settings"])
    if "database" not in settings:  # loaded without its database (load_networks): not judged
        stored.pop("database", None)
    if stored != settings:
        diff = sorted(k for k in set(settings) | set(stored)
                      if settings.get(k) != stored.get(k))
        raise ValueError(
            f"{weights} was trained with other settings ({', '.join(diff)}); delete "
            f"{out_dir} (or that network's files) to retrain"
        )
    try:
        result = TrainResult(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in info["result"].items()})
    except TypeError as err:  # a missing or unknown field
        raise ValueError(f"{meta} is damaged ({err}); delete {weights} to retrain") from err
    model = load_model(weights, device="cpu")
    if (model.alpha, model.in_channels) != (alpha, METHODS[kind].in_channels) or any(
            model.config.get(k) != v for k, v in info["model"].items()):
        raise ValueError(
            f"{weights} holds a network for alpha={model.alpha} with {model.in_channels} "
            f"input channel(s), not {stem} (alpha={alpha}, {METHODS[kind].in_channels}) as its "
            f"metadata {meta.name} says; delete both to retrain")
    return TrainedNetwork(kind=kind, alpha=alpha, model=model,
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
    found = {}
    for kind in kinds:
        settings = training_settings(profile, _check_kind(kind))
        for alpha in sorted(profile.alphas):
            net = _load_network(out_dir, kind, alpha, settings)
            if net is None:
                raise ValueError(f"{out_dir / network_name(kind, alpha)}.pt is missing; "
                                 "train it with srlib.training.train_networks (or `srlib train`)")
            found[kind, alpha] = net
    return found


def train_networks(db, profile, out_dir, *, kinds=KINDS, device=None, progress: bool = True,
                   num_threads: int | None = None, num_workers: int = 0,
                   nproc: int | None = None) -> dict[tuple[str, int], TrainedNetwork]:
    r"""Train (or load) the networks :math:`N^{kind,\alpha}` of a profile, then fit μ*.

    For each input type, the networks are handled in increasing α. A network whose weights
    file ``<out_dir>/N_<kind>_<alpha>.pt`` exists is loaded, not retrained (its metadata must
    record the same profile and settings). Otherwise it is built from scratch for the
    smallest α, and by transfer learning from the trained α/2 network for the others
    (:func:`~srlib.training.loop.transfer_model`), trained with
    :func:`~srlib.training.loop.train` on the profile's hyper-parameters
    (training pairs from the realizations with role 'train', early stopping on cutouts of
    those with role 'val', of every scenario), with a checkpoint under ``out_dir`` after
    every epoch so that an interrupted call resumes; then μ* (Eq. (18)) is fitted on the
    non-overlapping cutouts of the validation pairs
    (:func:`~srlib.training.threshold.fit_model_threshold`), and the weights and metadata
    are written. Temporary files that killed writes left in ``out_dir`` are removed first.

    Training pairs and validation cutouts are read from the database cutout by cutout when it
    hands out lazy arrays (:func:`~srlib.training.cutouts.pairs_from_database`), in
    ``num_workers`` DataLoader workers. With ``nproc`` > 1 the networks are trained by that
    many data-parallel ranks started with ``torch.distributed.run``
    (:mod:`srlib.training.distributed`), then loaded from ``out_dir``; called inside ranks
    that ``torchrun`` started, this function trains data-parallel itself (rank 0 fits μ* and
    writes the files).

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
    num_workers : int
        DataLoader workers reading the training cutouts (0: in this process).
    nproc : int, optional
        Number of data-parallel ranks to launch on this machine (None or 1: this process).

    Returns
    -------
    dict
        ``{(kind, alpha): TrainedNetwork}`` in training order.

    Raises
    ------
    ValueError
        If the database belongs to another profile, or stored networks or checkpoints were
        made with other settings.
    TrainingDiverged
        If a network's loss becomes NaN or infinite (named with its kind, α and epoch).
    """
    if db.profile != profile.name:
        raise ValueError(f"database {db.root} belongs to profile {db.profile!r}, not "
                         f"{profile.name!r}")
    missing = sorted(set(profile.alphas) - set(db.alphas))
    if missing:
        raise ValueError(f"the database has no low-resolution images for alpha {missing}")
    out_dir = Path(out_dir)
    device = profile.device if device is None else device
    before = {(k, a) for k in kinds for a in profile.alphas
              if (out_dir / f"{network_name(k, a)}.pt").exists()}
    # with nothing to train no ranks start: the loop below loads (and checks) every network
    if nproc is not None and positive_int(nproc, "nproc") > 1 \
            and distributed.world_size() == 1 and len(before) < len(kinds) * len(profile.alphas):
        _check_launch(profile, nproc, device)
        distributed.launch(nproc, db.root, profile, out_dir, kinds=kinds, device=device,
                           num_threads=num_threads, num_workers=num_workers, progress=progress)
        return {key: dataclasses.replace(net, trained_now=key not in before)
                for key, net in load_networks(profile, out_dir, kinds=kinds).items()}
    rank_device = distributed.init_from_env(device)
    if rank_device is not None:
        device = rank_device
    if distributed.is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp(out_dir)
    distributed.barrier()
    networks = {}
    pairs_cache: dict = {}

    def pairs(role, alpha, kind):
        key = (role, alpha, kind)
        if key not in pairs_cache:
            pairs_cache[key] = pairs_from_database(
                db, role, alpha, diffu=METHODS[kind].needs_channels,
                connectivity=profile.connectivity)
        return pairs_cache[key]

    with torch_threads(num_threads):
        for kind in kinds:
            # the database is part of what made a network: the same profile's settings on
            # another database (other samples, another solid side) train other networks
            settings = {**training_settings(profile, _check_kind(kind)), "database": db.key}
            previous = None
            for alpha in sorted(profile.alphas):
                net = _load_network(out_dir, kind, alpha, settings)
                if net is None:
                    net = _train_one(kind, alpha, previous, pairs, profile, settings, out_dir,
                                     device=device, progress=progress,
                                     num_workers=num_workers)
                else:
                    logger.info("loaded %s (mu* = %.4f) from %s", net.name, net.threshold,
                                net.path)
                networks[kind, alpha] = net
                previous = net.model
            pairs_cache.clear()
    return networks


def _check_launch(profile, nproc: int, device) -> None:
    """Refuse, before any rank starts, what the ranks could not do."""
    odd = [(a, b) for a, b in zip(profile.alphas, profile.batch_sizes, strict=True) if b % nproc]
    if odd:
        listed = ", ".join(f"{b} at alpha={a}" for a, b in odd)
        raise ValueError(
            f"nproc={nproc}: each rank takes an equal share of every batch, but the batch "
            f"size(s) {listed} are not multiples of {nproc}; give batch_sizes that are "
            "(a profile override) or train in one process")
    if device is not None and torch.device(device).type == "cuda" \
            and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested for {nproc} ranks, but CUDA is not "
                         "available here; use device='cpu' (gloo) or a machine with GPUs")


def _train_one(kind, alpha, previous, pairs, profile, settings, out_dir, *, device,
               progress, num_workers) -> TrainedNetwork:
    seed = _network_seed(profile, alpha)
    if previous is None:
        model = make_model(METHODS[kind].in_channels, alpha, seed=seed, features=profile.features,
                           blocks=profile.blocks)
    else:
        model = transfer_model(previous, alpha, seed=seed)
    stem = network_name(kind, alpha)
    logger.info("training %s", stem)
    train_pairs, val_pairs = pairs("train", alpha, kind), pairs("val", alpha, kind)
    # The checkpoint records what its inputs were made with, beyond the loop's settings.
    context = ({"connectivity": profile.connectivity} if METHODS[kind].needs_channels else {})
    config = TrainConfig.from_profile(profile, alpha, seed=seed, context=context)
    try:
        result = run_training(model, train_pairs, val_pairs, config,
                              checkpoint=out_dir / f"{stem}.ckpt", device=device,
                              progress=progress, num_workers=num_workers, label=stem)
    except TrainingDiverged as exc:
        raise TrainingDiverged(epoch=exc.epoch, which=exc.which, value=exc.value, alpha=alpha,
                               kind=kind) from exc
    # μ* on the non-overlapping cutouts of the validation pairs, in batches of about 2M
    # output voxels: tiny cutouts pass through the network together.
    # Rank 0 fits μ* and writes the files; the other ranks receive μ*.
    batch = max(1, (1 << 21) // (alpha * profile.cutout) ** 3)
    mu = (fit_model_threshold(model, val_pairs, cutout=profile.cutout, batch_size=batch,
                              device=device, progress=progress)
          if distributed.is_main() else None)
    mu = distributed.broadcast(mu)
    model = model.cpu().eval()
    weights = out_dir / f"{stem}.pt"
    if distributed.is_main():
        write_json(out_dir / f"{stem}.json", {
            "format": _NETWORK_FORMAT, "kind": kind, "alpha": alpha, "threshold": mu,
            "settings": settings, "model": model.config, "result": dataclasses.asdict(result),
        })
        save_model(model, weights)  # written last: its presence marks the network as complete
    distributed.barrier()
    return TrainedNetwork(kind=kind, alpha=alpha, model=model, threshold=mu, result=result,
                          path=weights, trained_now=True)


def training_scale_text(profile, paper, networks: dict) -> tuple[str, str]:
    """Two Markdown sentences for the book on how the networks were trained.

    The first states the profile's training budget against the paper's and the steps the
    networks ran; the second whether N^diffu ran fewer steps than N^bin (an unequal training
    that a comparison of the two would mix with the value of the diffusion channels).

    Parameters
    ----------
    profile, paper : srlib.config.Profile
        The profile built and the ``paper`` profile.
    networks : dict
        ``{(kind, alpha): TrainedNetwork}`` of :func:`load_networks`.
    """
    steps = {key: net.result.steps for key, net in networks.items()}
    alphas = sorted({a for _, a in steps})
    tex = {k: METHODS[k].tex for k in NETWORKS}
    if profile.train_budget_s:
        budget = f"a budget of {profile.train_budget_s:.0f} s of CPU time per network"
    else:
        caps = ", ".join(str(profile.max_epochs_for(a)) for a in alphas)
        budget = (f"at most {caps} epochs of {profile.steps_per_epoch} steps for α = "
                  f"{', '.join(map(str, alphas))}"
                  + (", with a cosine learning-rate schedule" if profile.lr_schedule else ""))
    per_kind = {k: [steps[(k, a)] for a in alphas if (k, a) in steps] for k in NETWORKS}
    top = max(alphas)
    scale = (f"Training used {budget} (paper: up to {paper.max_epochs} epochs of "
             f"{paper.steps_per_epoch} steps with early stopping): "
             + ", ".join(f"{min(v)} to {max(v)} steps for {tex[k]}" for k, v in per_kind.items())
             + f", and at α = {top} only "
             + " and ".join(str(steps[(k, top)]) for k in NETWORKS if (k, top) in steps) + ".")
    bin_, diffu = NETWORKS
    fewer = sum(steps[(diffu, a)] < steps[(bin_, a)] for a in alphas
                if (diffu, a) in steps and (bin_, a) in steps)
    unequal = (f"{tex[diffu]} ran fewer training steps than {tex[bin_]} at {fewer} of the "
               f"{len(alphas)} scaling factors (its input has three channels)"
               + (", so a comparison of the two networks at this scale mixes the value of the "
                  "transport information with a difference in training." if fewer else "."))
    return scale, unequal
