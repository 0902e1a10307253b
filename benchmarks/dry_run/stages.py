"""The stages of the dry run, each measured in a fresh process (wall time, CPU time, peak)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from . import ALPHAS, BATCH_SIZES, KINDS, PAPER, write_json

# ----------------------------------------------------------------------------- settings


def settings_from(args) -> dict:
    """The settings that determine the stages' results (stored with every record)."""
    cutout = min(PAPER["cutout"], args.hr_size // max(ALPHAS) - 1)
    return {"hr_size": args.hr_size, "sample": args.sample, "realizations": 3,
            "steps": args.steps, "val_cutouts": args.val_cutouts, "features": args.features,
            "blocks": 8, "cutout": cutout, "loader_workers": args.loader_workers,
            "device": args.device, "connectivity": "face", "seed": 0}


def make_profile(s: dict):
    """The ``paper`` profile with the dry run's counts."""
    from srlib.config import get_profile

    return get_profile("paper", samples=(s["sample"],), hr_size=s["hr_size"],
                       n_realizations=s["realizations"], split=(1, 1, 1),
                       features=s["features"], blocks=s["blocks"], cutout=s["cutout"],
                       max_epochs=1, steps_per_epoch=s["steps"], patience=1,
                       val_cutouts=s["val_cutouts"], tomo_size=None,
                       device=s["device"], connectivity=s["connectivity"], seed=s["seed"])


# ----------------------------------------------------------------------------- measuring


def _status_bytes(key: str) -> int | None:
    """A ``kB`` line of ``/proc/self/status`` (VmHWM, VmRSS) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu_seconds() -> float:
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


class Steps:
    """Sub-steps of a stage, each with wall time, CPU time, start RSS and its own peak."""

    def __init__(self):
        self.rows: list[dict] = []

    @contextmanager
    def step(self, what: str, **size):
        row = {"what": what, **size, "status": "running"}
        self.rows.append(row)
        row["peak_is_own"] = _reset_peak()
        row["rss_start_bytes"] = _status_bytes("VmRSS")
        cpu, t0 = _cpu_seconds(), time.perf_counter()
        try:
            yield row
            row["status"] = "ok"
        finally:
            row["seconds"] = time.perf_counter() - t0
            row["cpu_seconds"] = _cpu_seconds() - cpu
            row["peak_bytes"] = _status_bytes("VmHWM")
            if row["status"] == "running":
                row["status"] = "failed"


# ----------------------------------------------------------------------------- the stages


def _warm_up_fem(connectivity: str) -> None:
    """Solve a tiny image once, untimed: numba's kernels are compiled (or loaded) here."""
    import numpy as np

    from srlib import transport

    image = np.random.default_rng(0).random((12, 12, 12)) < 0.5
    transport.diffusion_channels(image, connectivity=connectivity)


def stage_database(s: dict, out: Path, steps: Steps) -> dict:
    from srlib import datasets, stochastic

    profile = make_profile(s)
    root = out / "database"
    before = sum((root / s["sample"] / f"r{i:02d}_hr").exists()
                 for i in range(1, s["realizations"] + 1))
    with steps.step("calibration on the public sample", voxels=None) as row:
        sample = datasets.public_samples((s["sample"],))[0]
        stochastic.calibrate(sample.image)
        row["voxels"] = int(sample.image.size)
        row["size"] = f"{s['sample']} {'×'.join(map(str, sample.image.shape))}"
    n = s["realizations"] - before
    edge = s["hr_size"]
    with steps.step("realizations and their LR versions (α = 2, 4, 8)",
                    voxels=n * edge**3, tasks=n,
                    size=f"{n} × {edge}³ HR + LR {', '.join(f'{edge // a}³' for a in ALPHAS)}"):
        datasets.build_database(profile, samples=[sample], root=root, workers=1,
                                progress=True)
    calibration, build = steps.rows[-2]["seconds"], steps.rows[-1]["seconds"]
    length = datasets.Database(root).scenarios[0].params.correlation_length
    return {"realizations_built": n, "resumed_from": before,
            "seconds_per_realization": (build - calibration) / n if n else None,
            "correlation_length": length, "fft_grid_edge": fft_grid_edge(edge, length),
            "fft_grid_edge_paper": fft_grid_edge(PAPER["hr_size"], length)}


def fft_grid_edge(n: int, correlation_length: float, pad_lengths: float = 8.0) -> int:
    """Edge of the periodic grid on which srlib.stochastic.sample draws an ``n``³ window.

    The window padded by ``pad_lengths`` correlation lengths (at most by ``n``), rounded up to
    a fast FFT length, as the module docstring of :mod:`srlib.stochastic` states.
    """
    import scipy.fft

    length = pad_lengths * correlation_length
    return scipy.fft.next_fast_len(n + (n if length >= n else math.ceil(length)))


def stage_channels(s: dict, out: Path, steps: Steps) -> dict:
    import numpy as np

    from srlib import datasets

    root = out / "database"
    _warm_up_fem(s["connectivity"])
    per_alpha = {}
    for alpha in sorted(ALPHAS, reverse=True):
        db = datasets.Database(root)
        # One α per call (the attribute lists the α whose channels the call computes), so
        # that every LR size gets its own time and peak; the stored result is the same.
        db.alphas = (alpha,)
        todo = [i for i in db.indices()
                if not db.path(s["sample"], i, f"diffu{alpha}").exists()]
        lr = db.lr(s["sample"], db.indices()[0], alpha)
        edge = lr.shape[0]
        solid = float(np.count_nonzero(lr)) / lr.size
        del lr
        with steps.step(f"diffusion channels α = {alpha} (pore and solid FEM)",
                        voxels=len(todo) * edge**3, tasks=len(todo),
                        unknowns_per_solve=int(max(solid, 1 - solid) * edge**3),
                        size=f"{len(todo)} × 2 phases × {edge}³") as row:
            datasets.build_diffusion_channels(db, connectivity=s["connectivity"], workers=1,
                                              progress=True)
        per_alpha[alpha] = {"edge": edge, "tasks": len(todo),
                            "seconds_per_task": row["seconds"] / len(todo) if todo else None}
    return {"per_alpha": per_alpha}


def stage_training(s: dict, out: Path, steps: Steps) -> dict:
    import torch

    from srlib import datasets
    from srlib.devices import native_bfloat16, resolve_device
    from srlib.network import save_model
    from srlib.training import (
        TrainConfig,
        make_model,
        mean_loss,
        pairs_from_database,
        run_training,
        transfer_model,
        validation_cutouts,
    )

    db = datasets.Database(out / "database")
    profile = make_profile(s)  # the paper's run settings with the dry run's counts
    nets = out / "networks"
    nets.mkdir(parents=True, exist_ok=True)
    device = resolve_device(None if s["device"] == "auto" else s["device"])
    c = s["cutout"]
    networks = {}
    for kind in KINDS:
        previous = None
        for alpha, batch in zip(ALPHAS, BATCH_SIZES, strict=True):
            seed = 1000 * s["seed"] + alpha
            model = (make_model(3 if kind == "diffu" else 1, alpha, seed=seed,
                                features=s["features"], blocks=s["blocks"])
                     if previous is None else transfer_model(previous, alpha, seed=seed))
            with steps.step(f"N^{kind} α = {alpha}: streamed pairs (Eq. 3 check)",
                            voxels=None, size="train + val realizations"):
                diffu = kind == "diffu"
                train_pairs = pairs_from_database(db, "train", alpha, diffu=diffu,
                                                  connectivity=s["connectivity"])
                val_pairs = pairs_from_database(db, "val", alpha, diffu=diffu,
                                                connectivity=s["connectivity"])
            # Two epochs: the first starts the DataLoader workers and the kernels (warm-up),
            # the second, timed between the epoch callbacks, gives the rate of steady steps.
            per_epoch = max(1, math.ceil(s["steps"] / 2))
            config = dataclasses.replace(
                TrainConfig.from_profile(profile, alpha, seed=seed), steps_per_epoch=per_epoch,
                max_epochs=2, patience=2, mixed_precision=native_bfloat16(device))
            ends = []
            with steps.step(f"N^{kind} α = {alpha}: 2 × {per_epoch} steps + validation",
                            voxels=2 * per_epoch * batch * (alpha * c) ** 3,
                            size=f"2 × {per_epoch} × {batch} × {c}³ → {alpha * c}³") as row:
                result = run_training(model, train_pairs, val_pairs, config, device=device,
                                      num_workers=s["loader_workers"], progress=True,
                                      callback=lambda *_, e=ends: e.append(time.perf_counter()))
            val_x, val_y = validation_cutouts(val_pairs, s["val_cutouts"], c, seed=seed)
            # the epoch's validation ran in the training's precision: subtract that; the
            # inference rate (μ*, evaluation) is float32's
            t0 = time.perf_counter()
            mean_loss(model, val_x, val_y, batch_size=batch, device=device,
                      mixed_precision=config.mixed_precision)
            epoch_val_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            mean_loss(model, val_x, val_y, batch_size=batch, device=device)
            val_seconds = time.perf_counter() - t0
            steady = max(ends[-1] - ends[-2] - epoch_val_seconds, 0.0) / per_epoch
            networks[f"{kind}{alpha}"] = {
                "kind": kind, "alpha": alpha, "batch": batch, "steps": result.steps,
                "seconds_per_step": steady,
                "val_seconds_per_cutout": val_seconds / s["val_cutouts"],
                "inference_hr_voxels_per_s": s["val_cutouts"] * (alpha * c) ** 3 / val_seconds,
                "val_loss": result.best_val_loss, "stage_seconds": row["seconds"],
            }
            save_model(model, nets / f"N_{kind}_{alpha}.pt")
            previous = model
    return {"networks": networks, "device": str(device), "torch_threads": torch.get_num_threads(),
            "bfloat16": native_bfloat16(device)}


def stage_evaluation(s: dict, out: Path, steps: Steps) -> dict:
    """The protocol's units of work at the paper's size, each timed: what one task does.

    The protocol (:func:`srlib.evaluation.run_protocol`) on an 800³ image at α = 8 repeats,
    for each of its 8 sub-images, the ground truth's tortuosities and, per method, one
    super-resolution (one torch thread a task) and one scoring. On two cores the whole of it
    takes hours (one N^bin super-resolution of a sub-image alone took 9 min here), so this
    stage runs each unit once on sub-image 0 and the estimate multiplies (as the other stages
    run one realization and two training steps of the profile's many).
    """
    import numpy as np

    from srlib import baselines, datasets, evaluation, metrics, resolvers, transport
    from srlib.network import load_model
    from srlib.training import TrainedNetwork, TrainResult

    db = datasets.Database(out / "database")
    scenario, test = s["sample"], db.indices("test")[0]
    hr = db.hr(scenario, test)
    alpha = 8
    lr = db.lr(scenario, test, alpha)
    lr0, hr0 = evaluation.sub_image_pairs(hr, alpha)[0]
    lr0, hr0 = lr0.copy(), hr0.copy()
    del hr
    edge, lr_edge = hr0.shape[0], lr0.shape[0]
    _warm_up_fem(s["connectivity"])
    fem = {}
    with steps.step(f"τ_eff of one {edge}³ HR sub-image (pore and solid FEM)",
                    voxels=int(hr0.size), size=f"2 phases × {edge}³") as row:
        for name, phase in (("pore", False), ("solid", True)):
            t0 = time.perf_counter()
            r = transport.solve_laplace(hr0, phase, axis=0, connectivity=s["connectivity"])
            fem[name] = {"unknowns": int(r.solution.size), "iterations": int(r.iterations),
                         "seconds": time.perf_counter() - t0, "tau_eff": float(r.tau_eff)}
            del r
        row["unknowns_per_solve"] = max(f["unknowns"] for f in fem.values())
    with steps.step(f"geodesic tortuosity of one {edge}³ HR sub-image (both phases)",
                    voxels=int(hr0.size), size=f"2 phases × {edge}³"):
        reference = metrics.reference_tortuosities(hr0, effective=False)
    reference["eff"] = {name: f["tau_eff"] for name, f in fem.items()}
    dummy = TrainResult(train_loss=(), val_loss=(), best_epoch=0, best_val_loss=math.nan,
                        stopped_epoch=0, stop_reason="dry run", steps=0, seconds=0.0)
    with steps.step(f"N^diffu's input: diffusion channels of the whole {lr.shape[0]}³ LR image",
                    voxels=int(lr.size), size=f"2 phases × {lr.shape[0]}³"):
        channels0 = evaluation._split_channels(
            transport.diffusion_channels(lr, connectivity=s["connectivity"]))[0]
    device = None if s["device"] == "auto" else s["device"]
    sr = {}
    for kind in KINDS:
        path = out / "networks" / f"N_{kind}_{alpha}.pt"
        network = TrainedNetwork(kind=kind, alpha=alpha, model=load_model(path), threshold=0.5,
                                 result=dummy, path=path, trained_now=False)
        resolve = resolvers.network_resolver(network, connectivity=s["connectivity"],
                                              device=device)
        # one torch thread, as in a protocol task (one task a core)
        with steps.step(f"N^{kind}: one {lr_edge}³ LR sub-image → {edge}³ (one torch thread)",
                        voxels=int(hr0.size), size=f"{lr_edge}³ → {edge}³"), \
                evaluation._torch_threads(True):
            sr[kind] = resolve(lr0, channels=channels0 if kind == "diffu" else None)
        del network, resolve
    with steps.step("interpolation (Eq. 3-aligned, threshold 0.5): one sub-image",
                    voxels=int(hr0.size), size=f"{lr_edge}³ → {edge}³"):
        sr["interpolation"] = baselines.interpolate(lr0, alpha)
    with steps.step("scoring one SR sub-image: accuracies, geodesic and τ_eff (both phases)",
                    voxels=int(hr0.size), size=f"{edge}³"):
        scores = metrics.evaluate(sr["bin"], hr0, alpha, axis=0, effective=True,
                                  connectivity=s["connectivity"], reference=reference)
    unit = {r["what"]: r["seconds"] for r in steps.rows}
    return {"fem": fem, "reference": reference, "scores_bin": scores.as_dict(),
            "unit_seconds": unit, "sub_images_per_image": evaluation.N_SUB_IMAGES,
            "accuracy": {m: float(np.mean(v == hr0)) for m, v in sr.items()}}


STAGE_FUNCS = {"database": stage_database, "channels": stage_channels,
               "training": stage_training, "evaluation": stage_evaluation}


def run_child(stage: str, out: Path) -> int:
    """Run one stage in this (fresh) process and write its record."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("distributed", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    s = json.loads((out / "settings.json").read_text())
    steps = Steps()
    record = {"stage": stage, "settings": s, "status": "failed", "steps": steps.rows}
    cpu, t0 = _cpu_seconds(), time.perf_counter()
    try:
        record["info"] = STAGE_FUNCS[stage](s, out, steps)
        record["status"] = "ok"
    except MemoryError:
        record["status"] = "out of memory"
        record["error"] = "MemoryError: " + traceback.format_exc(limit=3)
    except Exception as err:  # recorded, so that the table says what went wrong
        record["error"] = f"{type(err).__name__}: {err}"
        traceback.print_exc()
    record["seconds"] = time.perf_counter() - t0
    record["cpu_seconds"] = _cpu_seconds() - cpu
    record["peak_bytes"] = max([r["peak_bytes"] or 0 for r in steps.rows]
                               + [_status_bytes("VmHWM") or 0])
    record["load_average_end"] = os.getloadavg()
    write_json(out / "stages" / f"{stage}.json", record)
    return 0 if record["status"] == "ok" else 1


