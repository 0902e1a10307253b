"""A measured dry run of the ``paper`` profile: every stage at the paper's sizes, few of each.

The ``paper`` profile (``srlib.config``) draws 5 × 10 realizations of 800³ voxels, solves
the diffusion channels of all their low-resolution images, trains six 64-feature networks
for up to 1000 × 400 steps each and evaluates them on 400³ sub-images. This script runs one
instance of each of those stages at the paper's sizes, with the counts cut by profile
overrides, and measures it:

1. ``database``: the model calibrated on one public sample (``--sample``), three
   realizations of ``--hr-size``³ voxels (one each for training, validation and test: the
   profile's split needs three) with their LR versions for α = 2, 4, 8, written to the
   zarr store by :func:`srlib.datasets.build_database`;
2. ``channels``: the diffusion channels (Eqs. 7-8, both phases) of every LR image, by
   :func:`srlib.datasets.build_diffusion_channels`, one α at a time (α = 8, 4, 2) so that
   each LR size is timed on its own; at 800³ the α = 2 solves are 400³;
3. ``training``: ``--steps`` training steps and a validation on ``--val-cutouts`` cutouts of
   each network N^bin and N^diffu at each α (64 features, 8 blocks, 24³ LR cutouts, batch
   sizes 8, 8, 1), the cutouts streamed from the store in ``--loader-workers`` DataLoader
   workers; α = 4 and 8 start from the α/2 network (transfer learning) as in the study;
4. ``evaluation``: the protocol's units of work on sub-image 0 of the test realization at
   α = 8 (a 400³ HR sub-image at 800³), each timed: the ground truth's effective tortuosity
   (both phases) and geodesic tortuosity, N^diffu's input channels (of the whole LR image),
   one super-resolution by N^bin and by N^diffu (from stage 3, μ* = 0.5, one torch thread as
   in a protocol task) and by the interpolation, and the scoring of one SR sub-image (every
   metric, τ_eff included). :func:`srlib.evaluation.run_protocol` repeats these units for 8
   sub-images and every method; on two cores the whole of it takes hours (one N^bin
   super-resolution of a 400³ sub-image took 9 min), so the estimate multiplies the units.

Every stage runs in a fresh Python process, which measures its wall time, CPU time
(``time.process_time``, all threads, plus reaped child processes) and peak memory: the
``VmHWM`` line of ``/proc/self/status`` read inside the child (not ``ru_maxrss`` of a spawned
child, which includes the parent's pages). Sub-steps reset the high-water mark first (writing
``5`` to ``/proc/self/clear_refs``), so each has its own peak. Before a stage starts, its
memory is estimated (from bytes per voxel or per unknown, measured by earlier stages or at a
smaller ``--hr-size``, else the design budgets); a stage that would not fit in
``--memory-gb`` is skipped with what it needs, and a child that runs out of memory
(``MemoryError``, or killed by the kernel) is recorded as such. A finished stage is reused by
the next run with the same settings (``--fresh`` starts over).

Outputs under ``--out`` (default ``results/paper-dry``): ``dry_run.md`` (the table of stages
and the estimate for the whole ``paper`` profile on one GPU machine and on a cluster of
``--cluster-workers`` workers, with the basis of every extrapolated number), ``dry_run.json``
(everything), ``stages/<stage>.json`` (the records) and ``logs/<stage>.log``. With
``--publish`` the Markdown is also written to ``book/paper_dry_run.md``, which the
Reproducing page includes. ``--gpu-json`` reads the steps/s that ``benchmarks/gpu_check.py``
measured on a GPU, to turn the training formula into hours.

Run: ``python benchmarks/paper_dry_run.py [--hr-size 800] [--stages all] [--out DIR]
[--fresh] [--publish] [--time-basis wall|cpu] [--cluster-workers 16]`` (``make paper-dry``).
At 800³ it needs about 24 GB and several hours on two cores; ``--hr-size 160`` runs every
stage in tens of minutes. On a loaded machine, ``--time-basis cpu`` bases the estimate on the
CPU time of the single-threaded tasks rather than their stretched wall time (rerunning with
another basis reuses the records and only rewrites the report).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("database", "channels", "training", "evaluation")
NEEDS = {"channels": ("database",), "training": ("database", "channels"),
         "evaluation": ("database", "channels", "training")}
ALPHAS = (2, 4, 8)
BATCH_SIZES = (8, 8, 1)
KINDS = ("bin", "diffu")
PAPER = {"hr_size": 800, "scenarios": 5, "realizations": 10, "val_realizations": 2,
         "steps_per_network": 1000 * 400, "epochs": 1000, "val_cutouts": 30, "cutout": 24,
         "tomo_size": 416}
GIB = 1024**3
# Memory models used before anything was measured (bytes): the FEM budget per unknown
# (bench_transport), and per voxel of the padded FFT grid of a realization (a complex64 field, the
# float32 spectrum and the binary output: 12.6 B measured at 256³ on a 512³ grid).
FEM_BYTES_PER_UNKNOWN = 250.0
REALIZATION_BYTES_PER_GRID_VOXEL = 13.0
BASE_BYTES = 0.6 * GIB  # Python, NumPy, numba, zarr, dask and torch imported
FEM_EXPONENT = 1.1  # time ~ unknowns^p when fewer than two sizes were measured


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
            "correlation_length": length, "fft_grid_edge": _fft_grid_edge(edge, length),
            "fft_grid_edge_paper": _fft_grid_edge(PAPER["hr_size"], length)}


def _fft_grid_edge(n: int, correlation_length: float, pad_lengths: float = 8.0) -> int:
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
            config = TrainConfig(cutout=c, batch_size=batch, steps_per_epoch=per_epoch,
                                 max_epochs=2, patience=2, val_cutouts=s["val_cutouts"],
                                 learning_rate=1e-4, seed=seed,
                                 mixed_precision=native_bfloat16(device))
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


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


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
    _write_json(out / "stages" / f"{stage}.json", record)
    return 0 if record["status"] == "ok" else 1


# ----------------------------------------------------------------------------- memory plan


def _fem_bytes_per_unknown(records: dict) -> tuple[float, str]:
    """FEM memory per unknown: the rise of the peak between the two largest measured solves
    (the marginal cost, free of fixed overheads), else the rise over the largest one, else
    the design budget."""
    points = []
    for stage in ("channels", "evaluation"):
        for row in records.get(stage, {}).get("steps", []):
            n = row.get("unknowns_per_solve")
            if row.get("status") == "ok" and n and row.get("peak_is_own") \
                    and row.get("rss_start_bytes") and row.get("peak_bytes"):
                points.append((n, row["peak_bytes"] - row["rss_start_bytes"], stage))
    points.sort()
    if len(points) >= 2 and points[-1][0] > 2 * points[-2][0]:
        (n1, b1, _), (n2, b2, _) = points[-2:]
        if b2 > b1:
            return (b2 - b1) / (n2 - n1), (f"marginal, measured between {n1:,} and {n2:,} "
                                           "unknowns")
    if points and points[-1][0] > 10**5:
        n, b, stage = points[-1]
        return b / n, f"measured in stage {stage} ({n:,} unknowns)"
    return FEM_BYTES_PER_UNKNOWN, "design budget (not measured yet)"


def _correlation_length(s: dict, out: Path) -> float:
    """The scenario's correlation length 1/γ²: from the stored database, else calibrated."""
    info = _load(out / "database" / "scenarios.json")
    if info and info.get("scenarios"):
        return 1.0 / info["scenarios"][0]["gamma"] ** 2
    from srlib import datasets, stochastic

    try:
        sample = datasets.public_samples((s["sample"],))[0]
    except OSError:  # offline: the stage itself will say so; assume the largest pad
        return math.inf
    return stochastic.calibrate(sample.image).correlation_length


def memory_needed(stage: str, s: dict, records: dict, out: Path) -> tuple[float, str]:
    """Estimated peak memory of a stage (bytes) and how it was estimated."""
    edge = s["hr_size"]
    if stage == "database":
        grid = _fft_grid_edge(edge, _correlation_length(s, out))
        return BASE_BYTES + REALIZATION_BYTES_PER_GRID_VOXEL * grid**3, \
            f"{REALIZATION_BYTES_PER_GRID_VOXEL:.0f} B per voxel of the {grid}³ FFT grid"
    if stage == "training":
        return BASE_BYTES + 4 * GIB, "64-feature networks on 24³ cutouts (streamed)"
    per, how = _fem_bytes_per_unknown(records)
    solve_edge = edge // 2  # channels: LR at α = 2; evaluation: a 400³ sub-image
    extra = edge**3 * 1.5 if stage == "evaluation" else 0  # the HR image and its pieces
    return BASE_BYTES + extra + per * solve_edge**3, f"{per:.0f} B per FEM unknown, {how}"


# ----------------------------------------------------------------------------- the runner


def _stamp(seconds: float) -> str:
    """Local date and time of a POSIX time, to the minute."""
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_stage(stage: str, s: dict, out: Path, records: dict, *, memory_bytes: float) -> dict:
    """Run (or reuse, or skip) one stage in a fresh subprocess; returns its record."""
    path = out / "stages" / f"{stage}.json"
    old = _load(path)
    if old and old.get("status") == "ok" and old.get("settings") == s:
        print(f"[{stage}] reused (finished before; --fresh to rerun)", flush=True)
        old["reused"] = True
        old.setdefault("finished", _stamp(path.stat().st_mtime))
        return old
    missing = [n for n in NEEDS.get(stage, ()) if records.get(n, {}).get("status") != "ok"]
    if missing:
        return {"stage": stage, "status": "skipped", "settings": s,
                "reason": f"needs the stage(s) {', '.join(missing)} first", "steps": []}
    need, how = memory_needed(stage, s, records, out)
    if need > memory_bytes:
        reason = (f"needs ≈ {need / GIB:.1f} GiB ({how}), more than the "
                  f"{memory_bytes / GIB:.1f} GiB allowed (--memory-gb)")
        print(f"[{stage}] skipped: {reason}", flush=True)
        record = {"stage": stage, "status": "skipped", "settings": s, "reason": reason,
                  "needs_bytes": need, "steps": []}
        _write_json(path, record)
        return record
    print(f"[{stage}] running (estimated peak ≈ {need / GIB:.1f} GiB; log "
          f"{out / 'logs' / (stage + '.log')})", flush=True)
    path.unlink(missing_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    t0 = time.perf_counter()
    with open(out / "logs" / f"{stage}.log", "w") as log:
        done = subprocess.run([sys.executable, __file__, "--child", stage, "--out", str(out)],
                              stdout=log, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - t0
    record = _load(path)
    if record is None:  # the child died before writing its record
        killed = done.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
        tail = (out / "logs" / f"{stage}.log").read_text().strip().splitlines()[-3:]
        record = {"stage": stage, "settings": s, "steps": [],
                  "status": "out of memory" if killed else "failed",
                  "reason": ("killed by SIGKILL (the kernel's out-of-memory killer?); "
                             f"estimated need ≈ {need / GIB:.1f} GiB ({how})") if killed
                  else f"exit code {done.returncode}: {' | '.join(tail)}"}
    record.update({"wall_seconds_outside": wall, "load_average_start": load,
                   "estimated_need_bytes": need, "finished": _stamp(time.time())})
    _write_json(path, record)
    print(f"[{stage}] {record['status']} in {wall:.0f} s"
          + (f", peak {record['peak_bytes'] / GIB:.2f} GiB" if record.get("peak_bytes") else "")
          + (f": {record.get('reason') or record.get('error')}"
             if record["status"] != "ok" else ""), flush=True)
    return record


# ----------------------------------------------------------------------------- estimate


def _hours(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _gib(b: float | None) -> str:
    return "–" if not b else f"{b / GIB:.2f} GiB"


def _fit_exponent(points) -> tuple[float, str]:
    """Least-squares p in time ~ unknowns^p over (unknowns, seconds) points above 1 s."""
    pts = [(math.log(n), math.log(t)) for n, t in points if n and t and t > 1.0]
    if len(pts) < 2:
        return FEM_EXPONENT, f"assumed p = {FEM_EXPONENT}"
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    p = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    clipped = min(max(p, 1.0), 1.5)
    return clipped, (f"p = {p:.2f} fitted on {len(pts)} measured sizes"
                     + (f", clipped to {clipped}" if clipped != p else ""))


def _makespan(tasks: list[float], workers: int) -> float:
    """Time of independent tasks on ``workers`` (longest first to the least loaded)."""
    loads = [0.0] * max(1, workers)
    for t in sorted(tasks, reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


def estimate(records: dict, s: dict, *, cores: int, memory_bytes: float, cluster: int,
             gpu_rates: dict | None, time_basis: str = "wall") -> dict:
    """Estimate the whole ``paper`` profile from the measured stages (see ``basis``).

    ``time_basis="cpu"`` takes the CPU time of the single-threaded tasks (realizations,
    diffusion channels, the FEM of the evaluation) instead of their wall time: on a loaded
    machine that is the time they would take on a quiet one. Training and network inference
    (multi-threaded) always use wall time.
    """
    sec = "cpu_seconds" if time_basis == "cpu" else "seconds"
    h = s["hr_size"]
    k = PAPER["hr_size"] / h  # linear scale to the paper
    scaled = h != PAPER["hr_size"]
    n_sc, n_r = PAPER["scenarios"], PAPER["realizations"]
    rows, notes = [], []

    def workers_for(peak: float) -> int:
        return max(1, min(cores, int(memory_bytes // max(peak, 1))))

    def at_paper(row, exponent=1.0) -> tuple[float, float]:
        """Seconds and peak of a measured row scaled to 800³ (time ~ voxels^exponent)."""
        seconds = row["seconds"] * k ** (3 * exponent)
        start = row.get("rss_start_bytes") or 0
        peak = start + ((row.get("peak_bytes") or start) - start) * k**3
        return seconds, peak

    fem_p, fem_how = 1.0, "measured at the paper's size"
    db = records.get("database", {})
    if db.get("status") == "ok" and db["info"].get("seconds_per_realization"):
        build, info = db["steps"][1], db["info"]
        grid = (info.get("fft_grid_edge_paper", PAPER["hr_size"])
                / info.get("fft_grid_edge", h)) ** 3
        per = (build[sec] - db["steps"][0][sec]) / info["realizations_built"] * grid
        start = build.get("rss_start_bytes") or 0
        peak = start + ((build.get("peak_bytes") or start) - start) * grid
        calib = db["steps"][0][sec]
        tasks = [per] * (n_sc * n_r)
        rows.append({"part": f"database: {n_sc} × {n_r} realizations of 800³ + LR",
                     "machine": _makespan(tasks, workers_for(peak)) + n_sc * calib,
                     "cluster": _makespan(tasks, cluster) + calib,
                     "peak": peak,
                     "basis": (f"{_hours(per)} per realization "
                               + ("(measured)" if not scaled else
                                  "(time and memory ∝ voxels of the padded FFT grid, "
                                  f"{info['fft_grid_edge']}³ at {h}³ → "
                                  f"{info['fft_grid_edge_paper']}³ at 800³)"
                                  if "fft_grid_edge" in info else f"(∝ HR voxels from {h}³)")
                               + f"; calibration {calib:.0f} s each")})
    ch = records.get("channels", {})
    fem_task = {}
    if ch.get("status") == "ok":
        steps = [r for r in ch["steps"] if r.get("tasks")]
        fem_p, fem_how = _fit_exponent(
            [(r["unknowns_per_solve"], r[sec] / r["tasks"]) for r in steps])
        tasks, peaks, parts = [], [], []
        per_unknown, per_how = _fem_bytes_per_unknown(records)
        for r in steps:
            alpha = int(r["what"].split("α = ")[1].split()[0])
            t, _ = at_paper({**r, "seconds": r[sec] / r["tasks"]}, fem_p)
            peak = BASE_BYTES + per_unknown * r["unknowns_per_solve"] * k**3
            fem_task[alpha] = t
            tasks += [t] * (n_sc * n_r)
            peaks.append(peak)
            parts.append(f"α={alpha}: {_hours(t)}")
        rows.append({"part": "diffusion channels, all α (2 phases each)",
                     "machine": _makespan(tasks, workers_for(max(peaks))),
                     "cluster": _makespan(tasks, cluster), "peak": max(peaks),
                     "basis": ("per LR image " + ", ".join(parts)
                               + (f"; time ∝ unknowns^p, {fem_how}, from {h}³" if scaled
                                  else " (measured)")
                               + f"; memory {per_unknown:.0f} B per unknown ({per_how})")})
    tr = records.get("training", {})
    if tr.get("status") == "ok":
        nets = tr["info"]["networks"]
        c = s["cutout"]
        cut = (PAPER["cutout"] / c) ** 3 if c != PAPER["cutout"] else 1.0
        steps_max = PAPER["steps_per_network"]
        cpu_total, formula, gpu_total, gpu_cluster, mu_total = 0.0, [], 0.0, {}, 0.0
        for key, n in nets.items():
            per_step = n["seconds_per_step"] * cut
            val = n["val_seconds_per_cutout"] * cut * PAPER["val_cutouts"] * PAPER["epochs"]
            rate = n["inference_hr_voxels_per_s"]  # about independent of the cutout
            mu = n_sc * PAPER["val_realizations"] * PAPER["hr_size"] ** 3 / rate
            cpu_total += steps_max * per_step + val + mu
            mu_total += mu
            if gpu_rates and key in gpu_rates:
                g = steps_max / gpu_rates[key]
                gpu_total += g
                gpu_cluster[n["kind"]] = gpu_cluster.get(n["kind"], 0.0) + g / min(
                    cluster, n["batch"])
            formula.append(f"{key}: {per_step:.2f} s/step on CPU")
        if gpu_rates and len(gpu_cluster) == 2:
            gpu_cell, gpu_cluster_cell = gpu_total, max(gpu_cluster.values())
            how = "GPU steps/s from --gpu-json (training steps only, at most 400,000 each)"
        else:
            gpu_cell = gpu_cluster_cell = None
            how = ("GPU: T = Σ over the 6 networks of S / r_α (S ≤ 400,000 steps, r_α the "
                   "steps/s of benchmarks/gpu_check.py); with N GPUs (DDP) ≈ S / (r_α · "
                   "min(N, batch_α)) per network, the two kinds in parallel")
        peak = max((r.get("peak_bytes") or 0) for r in tr["steps"]) or None
        rows.append({"part": "training: 6 networks × ≤ 1000 × 400 steps (+ validation, μ*)",
                     "machine": gpu_cell, "cluster": gpu_cluster_cell, "peak": peak,
                     "cpu_only": cpu_total,
                     "basis": (f"CPU ({tr['info']['device']}): {'; '.join(formula)}"
                               + (f" (× (24/{c})³ from {c}³ cutouts; peak memory measured "
                                  f"at {c}³)" if cut != 1 else "")
                               + (f"; {s['features']} features, not the paper's 64"
                                  if s["features"] != 64 else "")
                               + f"; CPU steps/s do not transfer to a GPU. {how}. μ* on the "
                               f"validation images alone: {_hours(mu_total)} on this CPU")})
    ev = records.get("evaluation", {})
    if ev.get("status") == "ok" and "unit_seconds" in ev.get("info", {}):
        # units measured on one sub-image (see stage_evaluation): FEM, geodesic, the input
        # channels of N^diffu, one super-resolution per method, one scoring
        units = ev["steps"]
        fem_row, geo_row, ch_row, score_row = units[0], units[1], units[2], units[-1]
        sr_rows = {"bin": units[3], "diffu": units[4], "interpolation": units[5]}
        n_sub = ev["info"]["sub_images_per_image"]
        t_fem, _ = at_paper({**fem_row, "seconds": fem_row[sec]}, fem_p)
        t_geo, _ = at_paper({**geo_row, "seconds": geo_row[sec]})
        t_score, _ = at_paper(score_row)  # geodesic + τ_eff of the SR image + accuracies
        t_sr8 = {m: at_paper(r)[0] for m, r in sr_rows.items()}
        per_unknown, _ = _fem_bytes_per_unknown(records)
        fem_peak = (BASE_BYTES + 1.5 * PAPER["hr_size"] ** 3
                    + per_unknown * fem_row["unknowns_per_solve"] * k**3)
        nets = tr.get("info", {}).get("networks", {}) if tr.get("status") == "ok" else {}
        reference = n_sub * (t_geo + t_fem)  # the ground truth's, shared by the α
        groups = []  # one (image, α) task: every method on the 8 sub-images
        for alpha in ALPHAS:
            groups.append(0.0)
            for m in ("bin", "diffu", "interpolation"):
                t_sr = t_sr8[m]
                if m != "interpolation" and alpha != 8 and f"{m}8" in nets:
                    t_sr *= (nets[f"{m}8"]["inference_hr_voxels_per_s"]
                             / nets[f"{m}{alpha}"]["inference_hr_voxels_per_s"])
                channels = 0.0
                if m == "diffu":  # the whole LR image's channels, once per image and α
                    channels = (at_paper(ch_row)[0] if alpha == 8
                                else fem_task.get(alpha, 0.0))
                groups[-1] += n_sub * (t_sr + t_score) + channels
        tomo = (PAPER["tomo_size"] / PAPER["hr_size"]) ** 3
        # the protocol's Dask tasks: one reference per image, then its three (image, α)
        # groups (which wait for it); 5 simulated test images and 5 smaller tomographic ones
        references = [reference] * n_sc + [reference * tomo] * n_sc
        group_tasks = groups * n_sc + [g * tomo for g in groups] * n_sc

        def evaluation_makespan(workers: int) -> float:
            return _makespan(references, workers) + _makespan(group_tasks, workers)

        rows.append({"part": "evaluation: 5 test images + 5 tomographic, α = 2, 4, 8, "
                             "3 methods, τ_eff on all sub-images",
                     "machine": evaluation_makespan(workers_for(fem_peak)),
                     "cluster": evaluation_makespan(cluster),
                     "peak": fem_peak,
                     "basis": (f"per {PAPER['hr_size'] // 2}³ sub-image (measured on one"
                               + (f", scaled from {h // 2}³" if scaled else "")
                               + f"): ground truth τ_eff {_hours(t_fem)} and geodesic "
                               f"{_hours(t_geo)}; super-resolution at α = 8 "
                               + ", ".join(f"{m} {_hours(v)}" for m, v in t_sr8.items())
                               + " (one torch thread, as a protocol task; α = 2, 4 scaled by "
                               f"the networks' inference rates); scoring {_hours(t_score)} "
                               f"(accuracies, geodesic and τ_eff of the SR image); × {n_sub} "
                               "sub-images; tasks as the protocol's: a reference per image, "
                               "then one per (image, α) with the 3 methods, N^diffu's channels "
                               "once per image and α; tomographic images (416³) × "
                               f"{tomo:.2f}; networks on the CPU")})
    machine = sum(r["machine"] for r in rows if r["machine"] is not None)
    cluster_t = sum(r["cluster"] for r in rows if r["cluster"] is not None)
    kind = "CPU times (a loaded machine)" if sec != "seconds" else "wall times"
    notes.append(f"Task times are {kind}; training and inference: wall times. "
                 f"One machine: {cores} cores and {memory_bytes / GIB:.0f} GiB as measured "
                 "here plus one GPU for training; parallel tasks limited by cores and memory. "
                 f"Cluster: {cluster} workers of that size (one task each at a time, one GPU "
                 "each for training). Stages run one after the other.")
    return {"rows": rows, "machine_total": machine, "cluster_total": cluster_t,
            "training_unknown": any(r["machine"] is None for r in rows), "notes": notes,
            "fem_exponent": fem_p, "fem_exponent_basis": fem_how, "cluster_workers": cluster}


# ----------------------------------------------------------------------------- report


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "cpu": platform.processor()}
    try:
        with open("/proc/meminfo") as f:
            info["memory_bytes"] = int(f.readline().split()[1]) * 1024
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f
                                if ln.startswith("model name")), info["cpu"])
    except OSError:
        pass
    return info


def markdown(records: dict, est: dict, s: dict, info: dict) -> str:
    """The report: the table of stages, then the estimate."""
    # when the stages ran (a reused stage keeps its date), not when the report was written
    stamps = sorted(r["finished"] for r in records.values() if r.get("finished"))
    when = (" to ".join(dict.fromkeys([stamps[0], stamps[-1]])) + " (stage ends)" if stamps
            else datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    loads = [r.get("load_average_start", [None])[0] for r in records.values()
             if r.get("load_average_start")]
    lines = [
        f"Measured {when} on {info.get('cores')} cores ({info.get('cpu')}), "
        f"{_gib(info.get('memory_bytes'))} of memory"
        + (f", load average {min(loads):.1f}–{max(loads):.1f} at the stages' starts"
           if loads else "")
        + f"; HR edge {s['hr_size']}, sample {s['sample']}, {s['realizations']} realizations "
        f"(train/val/test 1/1/1), {s['features']} features, {s['blocks']} blocks, cutouts "
        f"{s['cutout']}³, {s['steps']} steps per network, device {s['device']}"
        + (" (training in bfloat16 autocast, native there)"
           if records.get("training", {}).get("info", {}).get("bfloat16") else "") + ". "
        "Peak memory is the child process's VmHWM (each sub-step its own).",
        "",
        "| stage | what | size | wall time | CPU time | peak memory |",
        "|---|---|---|---|---|---|",
    ]
    for stage in STAGES:
        r = records.get(stage)
        if r is None:
            continue
        if r.get("status") != "ok" and not r.get("steps"):
            lines.append(f"| {stage} | **{r['status']}**: {r.get('reason') or r.get('error')}"
                         " | | | | |")
            continue
        for row in r["steps"]:
            status = "" if row.get("status") == "ok" else f" (**{row.get('status')}**)"
            lines.append(f"| {stage} | {row['what']}{status} | {row.get('size', '')} | "
                         f"{_hours(row['seconds'])} | {_hours(row['cpu_seconds'])} | "
                         f"{_gib(row.get('peak_bytes'))} |")
        if r.get("status") != "ok":
            lines.append(f"| {stage} | **{r['status']}**: {r.get('error') or r.get('reason')}"
                         " | | | | |")
    lines += ["", f"**Estimate for the whole `paper` profile** ({PAPER['scenarios']} scenarios × "
              f"{PAPER['realizations']} realizations of 800³, every α, training up to 1000 × "
              "400 steps per network, the whole evaluation). "
              + " ".join(est["notes"]), "",
              f"| part | one machine + 1 GPU | cluster of {est['cluster_workers']} | "
              "peak per task | basis |",
              "|---|---|---|---|---|"]
    for row in est["rows"]:
        machine = _hours(row["machine"]) if row["machine"] is not None else "formula"
        cluster = _hours(row["cluster"]) if row["cluster"] is not None else "formula"
        if "cpu_only" in row:
            machine += f" (CPU only: {_hours(row['cpu_only'])})"
        lines.append(f"| {row['part']} | {machine} | {cluster} | {_gib(row['peak'])} | "
                     f"{row['basis']} |")
    total = (f"| total | {_hours(est['machine_total'])} | {_hours(est['cluster_total'])} | | "
             + ("without training (GPU steps/s not measured: run benchmarks/gpu_check.py "
                "and pass --gpu-json)" if est["training_unknown"] else "") + " |")
    lines += [total, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hr-size", type=int, default=800,
                        help="HR edge (paper: 800; must be divisible by 16)")
    parser.add_argument("--stages", default="all",
                        help=f"comma-separated subset of {', '.join(STAGES)} (default all)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "paper-dry")
    parser.add_argument("--fresh", action="store_true", help="delete earlier results first")
    parser.add_argument("--publish", action="store_true",
                        help="also write the report to book/paper_dry_run.md")
    parser.add_argument("--sample", default="berea", help="public sample of the scenario")
    parser.add_argument("--steps", type=int, default=5, help="training steps per network")
    parser.add_argument("--val-cutouts", type=int, default=4)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--loader-workers", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--memory-gb", type=float, default=None,
                        help="memory a stage may use (default: this machine's)")
    parser.add_argument("--cluster-workers", type=int, default=16)
    parser.add_argument("--gpu-json", type=Path, default=None,
                        help="benchmarks/gpu_check.py's JSON, for the training estimate")
    parser.add_argument("--time-basis", choices=("wall", "cpu"), default="wall",
                        help="times of the single-threaded tasks in the estimate: wall (a "
                             "quiet machine) or CPU time (a loaded one)")
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.child:
        return run_child(args.child, out)
    if args.hr_size < 32 or args.hr_size % 16:
        parser.error(f"--hr-size must be a multiple of 16, at least 32, got {args.hr_size}")
    for name in ("steps", "val_cutouts", "features", "cluster_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    stages = STAGES if args.stages == "all" else tuple(args.stages.split(","))
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    info = machine_info()
    memory = (args.memory_gb * GIB if args.memory_gb is not None
              else info.get("memory_bytes", 24 * GIB))
    if args.fresh and out.exists():
        for name in ("database", "networks", "evaluation", "stages", "logs"):
            shutil.rmtree(out / name, ignore_errors=True)
    s = settings_from(args)
    out.mkdir(parents=True, exist_ok=True)
    old = _load(out / "settings.json")
    if old is not None and old != s and not args.fresh and (out / "database").exists():
        changed = sorted(k for k in s if s[k] != old.get(k))
        print(f"settings changed ({', '.join(changed)}): the stages will rerun; the database "
              f"is reused only if it matches (else pass --fresh)", flush=True)
    _write_json(out / "settings.json", s)
    records = {st: r for st in STAGES if (r := _load(out / "stages" / f"{st}.json"))
               and r.get("settings") == s}
    for st, r in records.items():  # written before "finished" existed: the file's time
        r.setdefault("finished", _stamp((out / "stages" / f"{st}.json").stat().st_mtime))
    for stage in STAGES:
        if stage in stages:
            records[stage] = run_stage(stage, s, out, records, memory_bytes=memory)
    gpu = None
    if args.gpu_json is not None:
        data = json.loads(args.gpu_json.read_text())
        gpu = {f"{r['kind']}{r['alpha']}": r["steps_per_s"] for r in data.get("training", [])}
    est = estimate(records, s, cores=info.get("cores") or 1, memory_bytes=memory,
                   cluster=args.cluster_workers, gpu_rates=gpu, time_basis=args.time_basis)
    text = markdown(records, est, s, info)
    (out / "dry_run.md").write_text(text)
    _write_json(out / "dry_run.json", {"settings": s, "machine": info, "records": records,
                                       "estimate": est})
    if args.publish:
        (ROOT / "book" / "paper_dry_run.md").write_text(text)
    print(text)
    failed = [st for st in stages if records.get(st, {}).get("status") not in ("ok",)]
    return 1 if any(records[st]["status"] == "failed" for st in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
