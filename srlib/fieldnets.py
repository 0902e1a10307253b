r"""The paper's future work: networks that super-resolve the diffusion field (section 4).

Contract. The paper's outlook proposes two experiments, run here:

* **(A)** the input of :math:`N^{diffu}` (the LR image and its two diffusion channels), with
  the HR image *and* its two HR diffusion channels as targets (method ``fields_diffu``);
* **(B)** learning to solve: the LR image alone (with the position channel that tells a
  cutout where in the domain it lies, :mod:`srlib.training.targets`), the HR fields as
  targets (method ``fields_position``; it outputs the morphology too, which its own τ
  estimate needs).

:func:`train_field_networks` fine-tunes both from the study's trained networks at each α of
``profile.field_alphas`` (:func:`srlib.training.targets.widen_model`; (A) from
:math:`N^{diffu}`, (B) from :math:`N^{bin}`) on the database with its HR channels
(:func:`srlib.fields.build_hr_channels`), fits μ* on the validation realizations as for every
network, and stores each as ``N_<method>_<α>.pt`` with its metadata; a stored one is reused
only if it was trained under the same settings *from the same source network* (its weights'
digest), else it is trained again. :func:`predict_fields` applies one to an LR image.

:func:`field_study` scores, on every test image (the whole image is the domain, as the
realizations the networks were trained on), four routes to the HR field against the FEM on
the true HR image (:data:`srlib.methods.FIELD_METHODS`): the two networks, the LR FEM
solution interpolated tri-quadratically, and the FEM solved on :math:`N^{diffu}`'s
super-resolution (the classical pipeline). Per image it stores, in one JSON record reused only
for the same image, networks and settings (:func:`srlib.io.read_current`): the root-mean-square
error of each phase's field in each of the 8 sub-image regions (the pairs the intervals are
over; u runs from 0 to 1, so it is relative to the potential drop, where a region's own
relative L2 error explodes in regions where u is near 0), the relative L2 error over the whole
image, the effective tortuosity each field implies (:func:`srlib.fields.tau_from_field`; the
pipeline's is its FEM's), the wall time of every route on the whole image, and the section 2.3
metrics of the networks' morphology on the 8 sub-images (:func:`srlib.evaluation.evaluate_image`,
the rows of the protocol's table).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from srlib._checks import as_binary, check_alpha
from srlib.methods import (
    BIN,
    DIFFU,
    DIFFU_TUNED,
    FIELD_INTERPOLATION,
    FIELD_PIPELINE,
    FIELDS_DIFFU,
    FIELDS_POSITION,
)

__all__ = ["FIELD_NETWORKS", "FieldNetwork", "compare_routes", "field_network_name",
           "field_resolvers", "field_settings", "field_slices", "field_study", "field_table",
           "load_field_networks", "predict_fields", "train_field_networks"]

logger = logging.getLogger(__name__)

_FORMAT = 2  # of a field network: 2, its field channels correct a fixed upsampling
_STUDY_FORMAT = 1  # of a field-study record
class _Spec(NamedTuple):
    inputs: str  # "diffu" (experiment A) or "position" (B)
    source: str  # the study network it is fine-tuned from
    weight: float | None  # its field weight; None: the profile's


#: Field network -> its input, the study network it starts from and its field weight: A, B and
#: the control of A (field weight 0: the same extra training, the morphology alone).
FIELD_NETWORKS = {FIELDS_DIFFU: _Spec("diffu", DIFFU, None),
                  FIELDS_POSITION: _Spec("position", BIN, None),
                  DIFFU_TUNED: _Spec("diffu", DIFFU, 0.0)}
_PHASES = (("pore", False), ("solid", True))  # the order of the diffusion channels
#: Relative residual of the lift in the τ estimates of the study: on the FEM's own solution
#: of the quick test images it moves τ by under 0.1 % (engineering notes), far below the
#: estimates' errors, at half the time of the default.
_LIFT_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class FieldNetwork:
    """A trained field network, its threshold μ* and where it came from."""

    method: str
    alpha: int
    model: object
    threshold: float
    result: object
    source: str
    path: Path
    trained_now: bool = False

    @property
    def inputs(self) -> str:
        """"diffu" (experiment A) or "position" (B)."""
        return FIELD_NETWORKS[self.method].inputs


def field_network_name(method: str, alpha: int) -> str:
    """File stem of a field network: ``N_<method>_<alpha>``."""
    if method not in FIELD_NETWORKS:
        raise ValueError(f"method must be one of {tuple(FIELD_NETWORKS)}, got {method!r}")
    return f"N_{method}_{check_alpha(alpha)}"


def field_settings(profile, method: str) -> dict:
    """The settings that determine a field network (stored with it).

    The source network's training settings and the profile's field settings.
    """
    from srlib.training.study import training_settings

    field_network_name(method, 2)  # checks the method
    spec = FIELD_NETWORKS[method]
    settings = training_settings(profile, spec.source)
    settings.update(method=method, field_epochs=profile.field_epochs,
                    field_weight=_weight(profile, method), connectivity=profile.connectivity)
    return json.loads(json.dumps(settings))


def _weight(profile, method: str) -> float:
    spec = FIELD_NETWORKS[method]
    return profile.field_weight if spec.weight is None else spec.weight


def _source_id(networks: dict, kind: str, alpha: int) -> str:
    from srlib.resolvers import network_id

    if (kind, alpha) not in networks:
        raise ValueError(f"the field networks at alpha={alpha} start from N_{kind}_{alpha}, "
                         "which is not among the networks given (train them first)")
    return network_id(networks[kind, alpha])


def _load(out_dir: Path, method: str, alpha: int, settings: dict) -> FieldNetwork | None:
    from srlib.io import read_current
    from srlib.network import load_model
    from srlib.training.settings import TrainResult

    stem = field_network_name(method, alpha)
    weights = out_dir / f"{stem}.pt"
    record = read_current(out_dir / f"{stem}.json", settings)
    if record is None or not weights.exists() or record.get("format") != _FORMAT:
        return None
    result = TrainResult(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in record["result"].items()})
    return FieldNetwork(method, alpha, load_model(weights, device="cpu"),
                        float(record["threshold"]), result, settings["source"], weights)


def load_field_networks(profile, out_dir, networks) -> dict:
    """The stored field networks of ``profile`` trained from ``networks``, by (method, α).

    Raises
    ------
    ValueError
        If one is missing or was trained under other settings or from another network.
    """
    out_dir = Path(out_dir)
    found = {}
    for method, (_, kind, _) in FIELD_NETWORKS.items():
        for alpha in profile.field_alphas:
            settings = {**field_settings(profile, method),
                        "source": _source_id(networks, kind, alpha)}
            net = _load(out_dir, method, alpha, settings)
            if net is None:
                raise ValueError(f"{out_dir / field_network_name(method, alpha)}.pt is missing "
                                 "or was trained from other networks or settings; run "
                                 "srlib.fieldnets.train_field_networks")
            found[method, alpha] = net
    return found


def train_field_networks(db, profile, out_dir, networks, *, device=None, progress: bool = True,
                         num_workers: int = 0) -> dict:
    """Fine-tune (or load) the field networks of ``profile`` (see the module docstring).

    Parameters
    ----------
    db : srlib.datasets.Database
        The database, with its HR channels built (:func:`srlib.fields.build_hr_channels`).
    profile : srlib.config.Profile
        Sizes, budgets, ``field_alphas``, ``field_epochs``, ``field_weight``.
    out_dir : path
        Folder of the field networks (weights, metadata, checkpoints).
    networks : dict
        The study's trained networks, ``{(kind, α): TrainedNetwork}``.
    device, progress, num_workers
        As for :func:`srlib.training.train_networks`.

    Returns
    -------
    dict
        ``{(method, α): FieldNetwork}``.
    """
    out_dir = Path(out_dir)
    out = {}
    for method, (_, kind, _) in FIELD_NETWORKS.items():
        for alpha in profile.field_alphas:
            source = _source_id(networks, kind, alpha)
            settings = {**field_settings(profile, method), "source": source}
            net = _load(out_dir, method, alpha, settings)
            if net is None:
                net = _train_one(db, profile, out_dir, method, alpha, networks[kind, alpha],
                                 settings, device=device, progress=progress,
                                 num_workers=num_workers)
            out[method, alpha] = net
    return out


def _train_one(db, profile, out_dir: Path, method: str, alpha: int, src, settings: dict, *,
               device, progress: bool, num_workers: int) -> FieldNetwork:
    from srlib.io import read_current, write_json
    from srlib.network import save_model
    from srlib.training import TrainConfig, fit_model_threshold, run_training
    from srlib.training.cutouts import Pair
    from srlib.training.targets import field_pairs, widen_model

    inputs = FIELD_NETWORKS[method].inputs
    stem = field_network_name(method, alpha)
    seed = int(profile.seed) * 1000 + alpha
    ckpt = out_dir / f"{stem}.ckpt"
    meta = out_dir / f"{stem}.json"
    if meta.exists() and read_current(meta, settings) is None:
        # trained from another network or under other settings: its checkpoint is not ours
        logger.warning("%s was trained under other settings or from another network; "
                       "training it again", stem)
        ckpt.unlink(missing_ok=True)
    train = field_pairs(db, "train", alpha, inputs, connectivity=profile.connectivity)
    val = field_pairs(db, "val", alpha, inputs, connectivity=profile.connectivity)
    model = widen_model(src.model, inputs, seed=seed)
    base = TrainConfig.from_profile(profile, alpha, seed=seed, context={
        "source": settings["source"], "connectivity": profile.connectivity, "method": method})
    config = dataclasses.replace(base, max_epochs=profile.field_epochs_for(alpha),
                                 field_weight=_weight(profile, method))
    result = run_training(model, train, val, config, checkpoint=ckpt, device=device,
                          progress=progress, num_workers=num_workers,
                          label=f"{method} α={alpha}")
    threshold = fit_model_threshold(model, [Pair(p.input, p.target) for p in val],
                                    cutout=profile.cutout, device=device, progress=False)
    weights = save_model(model, out_dir / f"{stem}.pt")
    write_json(out_dir / f"{stem}.json", {
        "format": _FORMAT, "method": method, "alpha": alpha, "threshold": float(threshold),
        "result": dataclasses.asdict(result), "settings": settings})
    return FieldNetwork(method, alpha, model, float(threshold), result, settings["source"],
                        weights, trained_now=True)


def predict_fields(net: FieldNetwork, lr, *, channels=None, device=None,
                   progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Apply a field network to a binary LR image.

    Parameters
    ----------
    net : FieldNetwork
        The network.
    lr : array_like
        Binary LR image; transport along axis 0 (u = 0 at its first slice, 1 at its last).
    channels : array_like, optional
        The LR diffusion channels ``(2, *lr.shape)`` (experiment A; computed when omitted).
    device, progress
        As for :func:`srlib.inference.super_resolve`.

    Returns
    -------
    probability : numpy.ndarray
        float32 ``(α n,)*3``, the probability that each HR voxel is solid.
    fields : numpy.ndarray
        float32 ``(2, α n, ...)``, the predicted HR fields ``[pore, solid]`` clipped to [0, 1].
    """
    from srlib.inference import super_resolve
    from srlib.training.targets import field_input
    from srlib.transport import diffusion_channels

    lr = as_binary(lr, name="lr")
    if net.inputs == "diffu" and channels is None:
        channels = diffusion_channels(lr)
    x = field_input(lr, net.inputs, channels=channels)
    out = super_resolve(net.model, x, all_channels=True, device=device, progress=progress)
    return out[0], np.clip(out[1:], 0.0, 1.0)


def field_resolvers(field_networks: dict, alpha: int, *, device=None) -> dict:
    """The field networks' morphology at ``alpha``: ``{method: lr -> bool SR image}``.

    Channel 0 thresholded at μ*, for :func:`srlib.evaluation.evaluate_image`.
    """
    out = {}
    for (method, a), net in field_networks.items():
        if a != alpha:
            continue

        def resolve(lr, *, channels=None, net=net):
            return predict_fields(net, lr, channels=channels, device=device)[0] >= net.threshold

        resolve.needs_channels = net.inputs == "diffu"
        out[method] = resolve
    return out


def _timed(func, *args, **kwargs):
    t0 = time.perf_counter()
    value = func(*args, **kwargs)
    return value, time.perf_counter() - t0


def _routes(hr: np.ndarray, alpha: int, networks: dict, field_networks: dict,
            connectivity: str, device) -> tuple[np.ndarray, dict, dict, dict]:
    """The FEM on the HR image and every route's fields, SR images and wall times."""
    from srlib.fields import interpolated_channels
    from srlib.resample import downsample
    from srlib.resolvers import network_resolver
    from srlib.transport import diffusion_channels

    lr = downsample(hr, alpha)
    true, t_hr = _timed(diffusion_channels, hr, connectivity=connectivity)
    lr_fields, t_lr = _timed(diffusion_channels, lr, connectivity=connectivity)
    interp, t_int = _timed(interpolated_channels, lr_fields, lr, alpha)
    resolve = network_resolver(networks[DIFFU, alpha], connectivity=connectivity, device=device)
    sr, t_sr = _timed(resolve, lr, channels=lr_fields)
    pipeline, t_fem_sr = _timed(diffusion_channels, sr, connectivity=connectivity)
    fields = {FIELD_INTERPOLATION: interp, FIELD_PIPELINE: pipeline}
    images = {FIELD_PIPELINE: sr}
    seconds = {"hr_fem": t_hr, FIELD_INTERPOLATION: t_lr + t_int,
               FIELD_PIPELINE: t_lr + t_sr + t_fem_sr}
    for method in FIELD_NETWORKS:
        net = field_networks[method, alpha]
        (prob, pred), t_net = _timed(predict_fields, net, lr, channels=lr_fields, device=device)
        fields[method] = pred
        images[method] = prob >= net.threshold
        seconds[method] = t_net + (t_lr if net.inputs == "diffu" else 0.0)
    return true, fields, images, seconds


def _score_image(hr: np.ndarray, alpha: int, networks: dict, field_networks: dict, *,
                 dataset: str, sample: str, connectivity: str, device) -> dict:
    from srlib import transport
    from srlib.fem import mesh
    from srlib.fields import relative_l2, taus_from_fields
    from srlib.metrics import relative_accuracy
    from srlib.resample import subdivide

    true, fields, images, seconds = _routes(hr, alpha, networks, field_networks,
                                            connectivity, device)
    labels = {"dataset": dataset, "sample": sample, "alpha": alpha}
    hr_parts = subdivide(hr)
    errors, taus = [], []
    for c, (name, phase) in enumerate(_PHASES):
        # the voxels of the phase outside its clusters that touch both faces (u is 0 or 1
        # there): their share of each squared error says how much is connectivity
        spanning, _ = mesh.clusters(hr == phase, 0, connectivity)
        apart = subdivide((hr == phase) & ~spanning)
        for method, pred in fields.items():
            parts = zip(subdivide(pred[c]), subdivide(true[c]), hr_parts, apart, strict=True)
            for k, (p_k, t_k, hr_k, apart_k) in enumerate(parts):
                inside = hr_k == phase
                squared = (p_k - t_k) ** 2 * inside
                total = float(squared.sum())
                errors.append({**labels, "sub_image": k, "method": method, "phase": name,
                               "rms": float(np.sqrt(total / inside.sum()))
                               if inside.any() else float("nan"),
                               "isolated_share": float(squared[apart_k].sum()) / total
                               if total > 0 else float("nan")})
    for c, (name, phase) in enumerate(_PHASES):
        tau_fem = transport.effective_tortuosity(hr, phase, connectivity=connectivity)
        lifted = [m for m in fields if m != FIELD_PIPELINE]
        lifts = taus_from_fields([fields[m][c] for m in lifted], hr, phase,
                                 connectivity=connectivity, tol=_LIFT_TOL)
        estimates = dict(zip(lifted, lifts, strict=True))
        # the pipeline's tau is its FEM's on its SR image
        estimates[FIELD_PIPELINE] = transport.effective_tortuosity(
            images[FIELD_PIPELINE], phase, connectivity=connectivity)
        for method, tau in estimates.items():
            taus.append({**labels, "method": method, "phase": name,
                         "relative_l2": relative_l2(fields[method][c], true[c], hr, phase),
                         "tau_eff": tau, "tau_eff_fem": tau_fem,
                         "tau_eff_acc": relative_accuracy(tau, tau_fem)})
    times = [{**labels, "route": route, "seconds": s} for route, s in seconds.items()]
    middle = hr.shape[1] // 2
    slices = {"fem": true[:, :, middle], "hr": hr[:, middle],
              **{m: f[:, :, middle] for m, f in fields.items()}}
    return {"errors": errors, "images": taus, "times": times}, slices


def field_study(images, networks: dict, field_networks: dict, alpha: int, out_dir, *,
                connectivity: str = "face", device=None, progress: bool = True,
                workers: int | None = None, scheduler=None) -> dict:
    """Score the routes to the HR field on the test images (see the module docstring).

    Parameters
    ----------
    images : sequence of (str, str, numpy.ndarray)
        ``(dataset, sample, HR image)``, e.g. :func:`srlib.evaluation.protocol_images`.
    networks, field_networks : dict
        The study's networks and the field networks (:func:`train_field_networks`).
    alpha : int
        Scaling factor (one of the profile's ``field_alphas``).
    out_dir : path
        Folder of the per-image records (``<dataset>_<sample>_a<α>.json`` and ``.npz``).
    connectivity, device, progress
        FEM mesh convention, torch device, a progress bar over the images.
    workers, scheduler
        Images not stored yet are scored as Dask tasks, one per image
        (:func:`srlib.parallel.dask_client`; ``workers=1`` scores them in this process).
        Each task times its routes one after the other, on one torch thread.

    Returns
    -------
    dict of pandas.DataFrame
        ``errors`` (per sub-image region, method and phase: ``rms``, the root-mean-square
        error of u over the phase's voxels of the region, in units of the potential drop, and
        ``isolated_share``, the share of its squared error on voxels outside the clusters
        that touch both faces), ``images`` (per image, method and phase: ``relative_l2``
        over the whole image, ``tau_eff`` implied by the field and ``tau_eff_fem``, with
        ``tau_eff_acc`` by Eq. (24)), ``times`` (per image and route, seconds),
        ``morphology`` (the protocol's rows of the field networks' morphology on the 8
        sub-images).
    """
    import pandas as pd

    from srlib.io import image_digest, read_current
    from srlib.parallel import dask_client, run_tasks
    from srlib.resolvers import network_id

    alpha = check_alpha(alpha)
    out_dir = Path(out_dir)
    ids = {m: _source_id(networks, kind, alpha) + "|" + network_id(field_networks[m, alpha])
           for m, (_, kind, _) in FIELD_NETWORKS.items()}
    ids[FIELD_PIPELINE] = _source_id(networks, DIFFU, alpha)
    nets = {k: v for k, v in networks.items() if k == (DIFFU, alpha)}
    fnets = {k: v for k, v in field_networks.items() if k[1] == alpha}
    jobs, records = [], {}
    for dataset, sample, hr in images:
        hr = as_binary(hr, name="hr")
        settings = {"ids": ids, "image": image_digest(hr), "alpha": alpha,
                    "connectivity": connectivity, "format": _STUDY_FORMAT}
        path = out_dir / f"{dataset}_{sample}_a{alpha}.json"
        records[path] = read_current(path, settings)
        if records[path] is None:
            jobs.append((hr, alpha, nets, fnets, dataset, sample, connectivity, device,
                         str(path), settings))
    if jobs:
        out_dir.mkdir(parents=True, exist_ok=True)
        with dask_client(scheduler, workers=workers) as client:
            written = run_tasks(client, _image_task, jobs, desc=f"field study α={alpha}",
                                progress=progress)
        records.update({Path(job[8]): record for job, record in zip(jobs, written,
                                                                    strict=True)})
    tables = {"errors": [], "images": [], "times": [], "morphology": []}
    for record in records.values():
        for name in tables:
            tables[name] += record[name]
    return {name: pd.DataFrame(rows) for name, rows in tables.items()}


def _image_task(hr, alpha: int, networks: dict, field_networks: dict, dataset: str,
                sample: str, connectivity: str, device, path: str, settings: dict) -> dict:
    """Dask task: score one image, write its record (JSON) and slices (npz) atomically.

    Returns the record (without its settings).
    """
    from srlib.devices import torch_threads
    from srlib.evaluation import evaluate_image
    from srlib.io import atomic_path, write_json

    path = Path(path)
    with torch_threads(1):
        record, slices = _score_image(hr, alpha, networks, field_networks, dataset=dataset,
                                      sample=sample, connectivity=connectivity, device=device)
        # the FEM's tortuosity of the morphology for A and its control, whose comparison is
        # experiment A's first question; B's morphology gets every other metric
        record["morphology"] = evaluate_image(
            hr, alpha=alpha, resolvers=field_resolvers(field_networks, alpha, device=device),
            dataset=dataset, sample=sample, connectivity=connectivity,
            effective_methods=[m for m, spec in FIELD_NETWORKS.items() if spec.source == DIFFU])
    with atomic_path(path.with_suffix(".npz")) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **slices)
    write_json(path, {**record, "settings": settings}, indent=None)
    return record


def field_table(errors):
    """The field errors one row per sub-image region and method: ``rms_pore``, ``rms_solid``.

    Columns ``dataset``, ``sample``, ``alpha``, ``sub_image``, ``method`` as in the protocol's
    table, so :func:`srlib.plotting.metric_boxplots` and :func:`compare_routes` take it.
    """
    wide = errors.pivot_table(index=["dataset", "sample", "alpha", "sub_image", "method"],
                              columns="phase", values="rms", aggfunc="first", dropna=False)
    wide.columns = [f"rms_{c}" for c in wide.columns]
    return wide.reset_index()


def compare_routes(table, metrics, method: str, baseline: str, *, lower_is_better=(),
                   floor=None):
    """Paired differences ``method - baseline`` over sub-images, with their intervals.

    :func:`srlib.intervals.compare_methods`, for metrics where lower is better too (field
    errors: "better" then means a lower error; ``difference``, ``lo``, ``hi`` stay in the
    metric's own units), and with the training noise: a difference whose median is within
    ``floor[metric]`` (the seed spread) is a "tie" whatever its sampling interval.
    """
    from srlib.intervals import compare_methods

    frame = table.copy()
    for m in lower_is_better:
        frame[m] = -frame[m]
    out = compare_methods(frame, metrics, method, baseline)
    flip = out["metric"].isin(list(lower_is_better))
    lo, hi = out["lo"].copy(), out["hi"].copy()
    out.loc[flip, "difference"] = -out.loc[flip, "difference"]
    out.loc[flip, "lo"], out.loc[flip, "hi"] = -hi[flip], -lo[flip]
    for column in (f"median_{method}", f"median_{baseline}"):
        out.loc[flip, column] = -out.loc[flip, column]
    floor = floor or {}
    within = out.apply(lambda r: abs(r["difference"]) <= floor.get(r["metric"], 0.0), axis=1)
    out.loc[within & out["verdict"].isin(["better", "worse"]), "verdict"] = "tie"
    return out


def field_slices(out_dir, dataset: str, sample: str, alpha: int) -> dict:
    """The middle slices (across axis 1) of one test image, as stored by :func:`field_study`.

    ``{"hr": image (n0, n2), "fem": (2, n0, n2), method: (2, n0, n2)}``, fields
    ``[pore, solid]``.
    """
    with np.load(Path(out_dir) / f"{dataset}_{sample}_a{alpha}.npz") as data:
        return {k: data[k] for k in data.files}

