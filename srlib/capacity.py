r"""Budget and capacity study: how the network's gain over the interpolation grows with training.

Contract. :func:`capacity_study` trains :math:`N^{bin,\alpha}` (from scratch, default α = 4)
on the training realizations of a database for several step budgets and widths
(``features``), fits μ* (Eq. 18) on the validation realizations as the study does, and scores
the thresholded super-resolution of each whole validation LR image against its HR image
(accuracy, Eq. 19). The same images are scored for the reference lines: the interpolation
aligned to Eq. (3) and on the pixel-centre grid (threshold 0.5) and the ``local_bayes`` table
counted on the training realizations (:mod:`srlib.baselines`). The result is one row per run
and reference with the median accuracy over the validation realizations and its gain over the
aligned interpolation: does the gain saturate with the budget, and where?

By default (``nested=True``) the budgets of one width are prefixes of one run at a constant
learning rate: the run is trained to the smallest budget, scored, then extended from its
checkpoint to the next (:func:`srlib.training.train` resumes a run exactly), so the study costs
the largest budget, not their sum. With ``nested=False`` each budget is a fresh run with the
profile's learning-rate schedule stretched over it. Either way there is no early stop
(``max_epochs = steps / steps_per_epoch``) and the weights of the best validation epoch so far
are scored, as :func:`srlib.training.train` returns them. A network starts from scratch, or
(``start_from``) by transfer from a trained α/2 network of the same width
(:func:`srlib.training.transfer_model`), as the study's networks do. The validation realizations
serve early stopping, μ* and the score, so the numbers describe the training budget rather
than generalisation to unseen data (the evaluation protocol does that, on the test set).

Resumable and seeded: every run writes its row to ``<out>/capacity/f<features>_s<steps>.json``
atomically (:func:`srlib.io.atomic_path`) and a training checkpoint beside it; a finished run
is read back, an interrupted one resumes from its checkpoint, and the same ``seed`` gives the
same networks.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from srlib._checks import check_alpha, positive_int
from srlib.io import atomic_path, read_current, write_json
from srlib.methods import BIN, GRIDS, INTERPOLATION, LOCAL_BAYES, interpolation

logger = logging.getLogger(__name__)

__all__ = ["REFERENCE_METHODS", "capacity_study", "epoch_steps", "reference_accuracies"]

#: The reference lines of the study (methods that are not networks).
REFERENCE_METHODS = (interpolation("aligned"), interpolation("centred"), LOCAL_BAYES)


def reference_accuracies(db, alpha: int, *, scenarios=None) -> dict:
    """Median accuracy of the reference methods on the validation realizations of a database.

    Parameters
    ----------
    db : srlib.datasets.Database
        The database.
    alpha : int
        Scaling factor.
    scenarios : sequence of str, optional
        Restrict to these scenarios; default all.

    Returns
    -------
    dict
        ``{method: median accuracy}`` for :data:`REFERENCE_METHODS` (``local_bayes`` counted on
        the training realizations).
    """
    from srlib.baselines import LocalBayes, interpolate
    from srlib.metrics import accuracy

    alpha = check_alpha(alpha)
    names = db.scenario_names if scenarios is None else list(scenarios)
    table = LocalBayes.from_database(db, alpha, scenarios=names)
    methods = {interpolation(grid): (lambda lr, g=grid: interpolate(lr, alpha, convention=g))
               for grid in GRIDS}
    methods[LOCAL_BAYES] = table.predict
    scores = {m: [] for m in methods}
    for s in names:
        for i in db.indices("val"):
            hr, lr = db.hr(s, i), db.lr(s, i, alpha)
            for m, f in methods.items():
                scores[m].append(accuracy(f(lr), hr))
    return {m: float(np.median(v)) for m, v in scores.items()}


def epoch_steps(profile, budgets) -> int:
    """Steps between two validations of the study's runs.

    The largest number dividing the profile's ``steps_per_epoch`` and every budget, so that
    each budget ends on a validated epoch (``quick``, 50-step epochs, budgets 25-250: 25).
    """
    return math.gcd(int(profile.steps_per_epoch), *(int(b) for b in budgets))


def capacity_study(db, profile, out_dir, *, alpha: int = 4, budgets=(25, 50, 100, 250),
                   features=(16, 32), seed: int = 0, nested: bool = True,
                   start_from: dict | None = None, scenarios=None, device=None,
                   num_threads: int | None = None, progress: bool = True):
    """Train N^bin for several step budgets and widths; gain over the interpolation per run.

    Parameters
    ----------
    db : srlib.datasets.Database
        The database (HR and LR images; no diffusion channels needed).
    profile : srlib.config.Profile
        Training hyper-parameters: ``blocks``, ``cutout``, ``batch_size(alpha)``,
        ``steps_per_epoch`` (validation every :func:`epoch_steps`), ``learning_rate``,
        ``lr_schedule``, ``val_cutouts``.
    out_dir : path
        Folder of the results; runs are written under ``<out_dir>/capacity/``.
    alpha : int
        Scaling factor (the issue's study: 4).
    budgets : sequence of int
        Training steps per run.
    features : sequence of int
        Widths of the network.
    seed : int
        Seed of the weights, cutouts and augmentations (the same for every run).
    nested : bool
        Budgets as prefixes of one constant-rate run per width (default), or fresh runs with
        the profile's schedule.
    start_from : dict, optional
        ``{features: trained α/2 SRResNet3d}``: widths found here start by transfer learning
        from that network (e.g. the study's N^bin at α/2); the others from scratch.
    scenarios : sequence of str, optional
        Restrict to these scenarios; default all.
    device : str, optional
        Torch device; default ``profile.device``.
    num_threads : int, optional
        Torch CPU threads.
    progress : bool
        Show a progress bar over the runs.

    Returns
    -------
    pandas.DataFrame
        One row per run (``method`` "bin", ``features``, ``steps``) and per reference method
        (``features`` and ``steps`` empty): ``accuracy`` (median over the validation
        realizations), ``gain`` (minus the aligned interpolation's), and for runs ``start``
        ("scratch" or "transfer"), ``threshold`` (μ*), ``best_epoch``, ``steps_run`` and
        ``seconds`` (training since the previous budget when nested, and μ*).
        Also written to ``<out_dir>/capacity.csv``.
    """
    import pandas as pd

    from srlib._progress import progress_bar
    from srlib.devices import torch_threads

    alpha = check_alpha(alpha)
    budgets = sorted({positive_int(b, "budgets") for b in budgets})
    start_from = dict(start_from or {})
    features = [positive_int(f, "features") for f in features]
    per_epoch = epoch_steps(profile, budgets)
    out = Path(out_dir) / "capacity"
    out.mkdir(parents=True, exist_ok=True)
    device = profile.device if device is None else device
    names = db.scenario_names if scenarios is None else list(scenarios)
    settings = json.loads(json.dumps({
        "database": str(getattr(db, "profile", "")), "scenarios": names, "alpha": alpha,
        "seed": seed, "blocks": profile.blocks, "cutout": profile.cutout,
        "batch_size": profile.batch_size(alpha), "steps_per_epoch": per_epoch,
        "learning_rate": profile.learning_rate, "lr_schedule": profile.lr_schedule,
        "val_cutouts": profile.val_cutouts, "nested": bool(nested),
        "mixed_precision": bool(profile.mixed_precision)}))
    if nested:
        settings["lr_schedule"] = None
    refs = _references(db, out, alpha, names, settings["database"])
    rows = []
    data: dict = {}  # the training and validation pairs, read once when a run needs them
    runs = [(f, b) for f in features for b in budgets]
    with torch_threads(num_threads):
        for f, b in progress_bar(runs, desc=f"capacity study (alpha={alpha})",
                                 disable=not progress):
            rows.append(_run(db, profile, out, alpha, f, b, budgets, settings, seed=seed,
                             nested=nested, start_from=start_from, names=names,
                             device=device, data=data))
    rows += [{"method": m, "alpha": alpha, "accuracy": v} for m, v in refs.items()]
    table = pd.DataFrame(rows)
    table["gain"] = table["accuracy"] - refs[INTERPOLATION]
    with atomic_path(Path(out_dir) / "capacity.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def _references(db, out: Path, alpha: int, names: list, database: str) -> dict:
    """The reference methods' accuracies, stored beside the runs and reused for the same data."""
    path = out / f"references_a{alpha}.json"
    settings = {"scenarios": names, "database": database}
    stored = read_current(path, settings)
    if stored is not None:
        return stored["accuracy"]
    refs = reference_accuracies(db, alpha, scenarios=names)
    write_json(path, {"accuracy": refs, "settings": settings})
    return refs


def _run(db, profile, out: Path, alpha: int, f: int, b: int, budgets: list, settings: dict, *,
         seed: int, nested: bool, start_from: dict, names: list, device, data: dict) -> dict:
    """One run of the study (width ``f``, budget ``b``): stored, or trained and scored."""
    from srlib.inference import super_resolve
    from srlib.metrics import accuracy
    from srlib.training import (
        fit_model_threshold,
        make_model,
        pairs_from_database,
        train,
        transfer_model,
    )

    per_epoch = settings["steps_per_epoch"]  # the study's epoch_steps, computed once
    start = "transfer" if f in start_from else "scratch"
    settings_f = {**settings, "start": start}
    stem = f"a{alpha}_f{f}_{start}_seed{seed}" + ("_nested" if nested else f"_s{b}")
    path = out / f"a{alpha}_f{f}_{start}_s{b}_seed{seed}{'_nested' if nested else ''}.json"
    ckpt = out / f"{stem}.ckpt"
    row = read_current(path, settings_f)
    if row is not None:
        return row
    if path.exists():
        logger.warning("%s was computed with other settings; recomputing", path)
        ckpt.unlink(missing_ok=True)
    if not data:
        data["train"] = pairs_from_database(db, "train", alpha, scenarios=names)
        data["val"] = pairs_from_database(db, "val", alpha, scenarios=names)
    t0 = time.perf_counter()
    if f in start_from:
        model = transfer_model(start_from[f], alpha, seed=seed)
    else:
        model = make_model(1, alpha, seed=seed, features=f, blocks=profile.blocks)
    result = train(
        model, data["train"], data["val"], cutout=profile.cutout,
        batch_size=profile.batch_size(alpha), steps_per_epoch=per_epoch,
        max_epochs=b // per_epoch, patience=max(budgets) // per_epoch + 1,
        val_cutouts=profile.val_cutouts, learning_rate=profile.learning_rate,
        lr_schedule=settings["lr_schedule"], seed=seed, checkpoint=ckpt,
        device=device, mixed_precision=profile.mixed_precision, progress=False)
    mu = fit_model_threshold(model, data["val"], cutout=profile.cutout, device=device,
                             progress=False)
    seconds = time.perf_counter() - t0
    scores = [accuracy(super_resolve(model, p.input, threshold=mu, device=device,
                                     progress=False), p.target) for p in data["val"]]
    row = {"method": BIN, "alpha": alpha, "features": f, "start": start, "steps": b,
           "accuracy": float(np.median(scores)), "threshold": mu,
           "best_epoch": result.best_epoch, "steps_run": result.steps,
           "seconds": seconds, "seed": seed}
    write_json(path, {**row, "settings": settings_f})
    if not nested or b == budgets[-1]:
        ckpt.unlink(missing_ok=True)
    return row
