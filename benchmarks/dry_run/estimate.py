"""The time and memory of the whole ``paper`` profile, from the measured stages."""

from __future__ import annotations

import math
from pathlib import Path

from . import (
    ALPHAS,
    BASE_BYTES,
    FEM_BYTES_PER_UNKNOWN,
    FEM_EXPONENT,
    GIB,
    PAPER,
    REALIZATION_BYTES_PER_GRID_VOXEL,
    hours,
    load,
)
from .stages import fft_grid_edge

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
    info = load(out / "database" / "scenarios.json")
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
        grid = fft_grid_edge(edge, _correlation_length(s, out))
        return BASE_BYTES + REALIZATION_BYTES_PER_GRID_VOXEL * grid**3, \
            f"{REALIZATION_BYTES_PER_GRID_VOXEL:.0f} B per voxel of the {grid}³ FFT grid"
    if stage == "training":
        return BASE_BYTES + 4 * GIB, "64-feature networks on 24³ cutouts (streamed)"
    per, how = _fem_bytes_per_unknown(records)
    solve_edge = edge // 2  # channels: LR at α = 2; evaluation: a 400³ sub-image
    extra = edge**3 * 1.5 if stage == "evaluation" else 0  # the HR image and its pieces
    return BASE_BYTES + extra + per * solve_edge**3, f"{per:.0f} B per FEM unknown, {how}"


# ----------------------------------------------------------------------------- estimate


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


class _Scale:
    """How measured rows scale to the paper's size, and the machines the estimate is for."""

    def __init__(self, s: dict, *, cores: int, memory_bytes: float, cluster: int,
                 time_basis: str):
        self.sec = "cpu_seconds" if time_basis == "cpu" else "seconds"
        self.h = s["hr_size"]
        self.k = PAPER["hr_size"] / self.h  # linear scale to the paper
        self.scaled = self.h != PAPER["hr_size"]
        self.n_sc, self.n_r = PAPER["scenarios"], PAPER["realizations"]
        self.cores, self.memory_bytes, self.cluster = cores, memory_bytes, cluster

    def workers_for(self, peak: float) -> int:
        """Tasks of this peak memory that fit the machine at once."""
        return max(1, min(self.cores, int(self.memory_bytes // max(peak, 1))))

    def at_paper(self, row, exponent=1.0) -> tuple[float, float]:
        """Seconds and peak of a measured row scaled to the paper (time ~ voxels^exponent)."""
        seconds = row["seconds"] * self.k ** (3 * exponent)
        start = row.get("rss_start_bytes") or 0
        peak = start + ((row.get("peak_bytes") or start) - start) * self.k**3
        return seconds, peak


def estimate(records: dict, s: dict, *, cores: int, memory_bytes: float, cluster: int,
             gpu_rates: dict | None, time_basis: str = "wall") -> dict:
    """Estimate the whole ``paper`` profile from the measured stages (see ``basis``).

    ``time_basis="cpu"`` takes the CPU time of the single-threaded tasks (realizations,
    diffusion channels, the FEM of the evaluation) instead of their wall time: on a loaded
    machine that is the time they would take on a quiet one. Training and network inference
    (multi-threaded) always use wall time.
    """
    sc = _Scale(s, cores=cores, memory_bytes=memory_bytes, cluster=cluster,
                time_basis=time_basis)
    rows, notes = [], []
    row = _database_row(records, sc)
    if row:
        rows.append(row)
    row, fem_task, fem_p, fem_how = _channels_row(records, sc)
    if row:
        rows.append(row)
    row = _hr_channels_row(records, sc, fem_task, fem_p)
    if row:
        rows.append(row)
    row = _training_row(records, s, sc, gpu_rates)
    if row:
        rows.append(row)
    row = _evaluation_row(records, sc, fem_task, fem_p)
    if row:
        rows.append(row)
    sec = sc.sec
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




def _database_row(records: dict, sc: _Scale) -> dict | None:
    """The realizations and their LR versions."""
    sec, h, scaled, n_sc, n_r, cluster = sc.sec, sc.h, sc.scaled, sc.n_sc, sc.n_r, sc.cluster
    workers_for = sc.workers_for
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
        return {"part": f"database: {n_sc} × {n_r} realizations of 800³ + LR",
                     "machine": _makespan(tasks, workers_for(peak)) + n_sc * calib,
                     "cluster": _makespan(tasks, cluster) + calib,
                     "peak": peak,
                     "basis": (f"{hours(per)} per realization "
                               + ("(measured)" if not scaled else
                                  "(time and memory ∝ voxels of the padded FFT grid, "
                                  f"{info['fft_grid_edge']}³ at {h}³ → "
                                  f"{info['fft_grid_edge_paper']}³ at 800³)"
                                  if "fft_grid_edge" in info else f"(∝ HR voxels from {h}³)")
                               + f"; calibration {calib:.0f} s each")}
    return None


def _channels_row(records: dict, sc: _Scale):
    """The diffusion channels of every LR image; also the FEM time per α and its exponent."""
    sec, h, k, scaled, n_sc, n_r, cluster = sc.sec, sc.h, sc.k, sc.scaled, sc.n_sc, sc.n_r, \
        sc.cluster
    workers_for, at_paper = sc.workers_for, sc.at_paper
    fem_p, fem_how = 1.0, "measured at the paper's size"
    ch = records.get("channels", {})
    fem_task: dict = {}
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
            parts.append(f"α={alpha}: {hours(t)}")
        return ({"part": "diffusion channels, all α (2 phases each)",
                     "machine": _makespan(tasks, workers_for(max(peaks))),
                     "cluster": _makespan(tasks, cluster), "peak": max(peaks),
                     "basis": ("per LR image " + ", ".join(parts)
                               + (f"; time ∝ unknowns^p, {fem_how}, from {h}³" if scaled
                                  else " (measured)")
                               + f"; memory {per_unknown:.0f} B per unknown ({per_how})")},
                fem_task, fem_p, fem_how)
    return None, fem_task, fem_p, fem_how


def _hr_channels_row(records: dict, sc: _Scale, fem_task: dict, fem_p: float) -> dict | None:
    """The HR channels of the future-work chapter: the α = 2 FEM extrapolated to 800³.

    Not measured: a solve on 800³ needs more memory than the dry run's machine. The time per
    realization is the α = 2 channels' (LR 400³) times 8^p, the memory per unknown the same.
    """
    if 2 not in fem_task:
        return None
    per_unknown, per_how = _fem_bytes_per_unknown(records)
    unknowns = PAPER["hr_size"] ** 3  # both phases together: the voxels of the image
    t = fem_task[2] * 8 ** fem_p
    peak = BASE_BYTES + per_unknown * unknowns * 0.7  # the larger phase: 70 % of the voxels
    tasks = [t] * (sc.n_sc * sc.n_r)
    fits = peak <= sc.memory_bytes
    return {"part": "HR diffusion channels for the field networks (chapter 9; extrapolated)",
            "machine": _makespan(tasks, sc.workers_for(peak)),
            "cluster": _makespan(tasks, sc.cluster), "peak": peak,
            "basis": (f"per 800³ realization {hours(t)}: the α = 2 channels' time × 8^{fem_p:.2f}"
                      f" (not measured); memory {per_unknown:.0f} B per unknown ({per_how})"
                      " for the larger phase (70 % of 800³)"
                      + ("" if fits else "; more than this machine's memory: times for "
                         "nodes with that much"))}


def _training_row(records: dict, s: dict, sc: _Scale, gpu_rates: dict | None) -> dict | None:
    """The six networks: a formula for the GPU, the CPU time measured here."""
    n_sc, cluster = sc.n_sc, sc.cluster
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
        return {"part": "training: 6 networks × ≤ 1000 × 400 steps (+ validation, μ*)",
                     "machine": gpu_cell, "cluster": gpu_cluster_cell, "peak": peak,
                     "cpu_only": cpu_total,
                     "basis": (f"CPU ({tr['info']['device']}): {'; '.join(formula)}"
                               + (f" (× (24/{c})³ from {c}³ cutouts; peak memory measured "
                                  f"at {c}³)" if cut != 1 else "")
                               + (f"; {s['features']} features, not the paper's 64"
                                  if s["features"] != 64 else "")
                               + f"; CPU steps/s do not transfer to a GPU. {how}. μ* on the "
                               f"validation images alone: {hours(mu_total)} on this CPU")}
    return None


def _evaluation_row(records: dict, sc: _Scale, fem_task: dict, fem_p: float) -> dict | None:
    """The protocol on the simulated test images and the tomographic crops."""
    sec, h, k, scaled, n_sc, cluster = sc.sec, sc.h, sc.k, sc.scaled, sc.n_sc, sc.cluster
    workers_for, at_paper = sc.workers_for, sc.at_paper
    tr = records.get("training", {})
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
        # the protocol's Dask tasks: one reference per image, then its three (image, α)
        # groups (which wait for it); one simulated test image per scenario, and the
        # tomographic crops of the profile (Profile.tomo_edge), each scaled by its volume
        tomo = [(e / PAPER["hr_size"]) ** 3 for e in PAPER["tomo_edges"].values()]
        references = [reference] * n_sc + [reference * f for f in tomo]
        group_tasks = groups * n_sc + [g * f for f in tomo for g in groups]

        def evaluation_makespan(workers: int) -> float:
            return _makespan(references, workers) + _makespan(group_tasks, workers)

        crops = ", ".join(f"{e}³" for e in PAPER["tomo_edges"].values())
        return {"part": f"evaluation: {n_sc} test images + {len(tomo)} tomographic, α = "
                        f"{', '.join(map(str, ALPHAS))}, 3 methods, τ_eff on all sub-images",
                     "machine": evaluation_makespan(workers_for(fem_peak)),
                     "cluster": evaluation_makespan(cluster),
                     "peak": fem_peak,
                     "basis": (f"per {PAPER['hr_size'] // 2}³ sub-image (measured on one"
                               + (f", scaled from {h // 2}³" if scaled else "")
                               + f"): ground truth τ_eff {hours(t_fem)} and geodesic "
                               f"{hours(t_geo)}; super-resolution at α = 8 "
                               + ", ".join(f"{m} {hours(v)}" for m, v in t_sr8.items())
                               + " (one torch thread, as a protocol task; α = 2, 4 scaled by "
                               f"the networks' inference rates); scoring {hours(t_score)} "
                               f"(accuracies, geodesic and τ_eff of the SR image); × {n_sub} "
                               "sub-images; tasks as the protocol's: a reference per image, "
                               "then one per (image, α) with the 3 methods, N^diffu's channels "
                               f"once per image and α; tomographic crops {crops}; networks "
                               "on the CPU")}
    return None
