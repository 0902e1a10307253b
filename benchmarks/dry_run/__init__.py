"""The measured dry run of the ``paper`` profile (the command: ``benchmarks/paper_dry_run.py``).

``stages`` runs one instance of each stage at the paper's sizes and measures it, ``estimate``
turns the records into the time and memory of the whole profile, ``report`` writes the
Markdown. The counts and sizes come from the ``paper`` profile (:data:`PROFILE`), so the
estimate is of what ``make paper`` runs.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from srlib.config import get_profile
from srlib.methods import NETWORKS
from srlib.samples import PUBLIC_NAMES, PUBLIC_SHAPES

ROOT = Path(__file__).resolve().parent.parent.parent
STAGES = ("database", "channels", "training", "evaluation")
NEEDS = {"channels": ("database",), "training": ("database", "channels"),
         "evaluation": ("database", "channels", "training")}
#: The profile estimated: the counts, sizes and budgets below are read from it.
PROFILE = get_profile("paper")
ALPHAS = PROFILE.alphas
BATCH_SIZES = PROFILE.batch_sizes
KINDS = NETWORKS
_SAMPLES = PROFILE.samples or PUBLIC_NAMES
PAPER = {"hr_size": PROFILE.hr_size, "scenarios": len(_SAMPLES),
         "realizations": PROFILE.n_realizations, "val_realizations": PROFILE.split[1],
         "steps_per_network": PROFILE.max_epochs * PROFILE.steps_per_epoch,
         "epochs": PROFILE.max_epochs, "val_cutouts": PROFILE.val_cutouts,
         "cutout": PROFILE.cutout,
         # the tomographic crops the protocol scores (Profile.tomo_edge of each sample)
         "tomo_edges": {n: PROFILE.tomo_edge(PUBLIC_SHAPES[n]) for n in _SAMPLES}}
GIB = 1024**3
# Memory models used before anything was measured (bytes): the FEM budget per unknown
# (bench_transport), and per voxel of the padded FFT grid of a realization (a complex64
# field, the float32 spectrum and the binary output).
FEM_BYTES_PER_UNKNOWN = 250.0
REALIZATION_BYTES_PER_GRID_VOXEL = 13.0
BASE_BYTES = 0.6 * GIB  # Python, NumPy, numba, zarr, dask and torch imported
FEM_EXPONENT = 1.1  # time ~ unknowns^p when fewer than two sizes were measured


def write_json(path: Path, data) -> None:
    """Write JSON atomically (a rename over the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def load(path: Path) -> dict | None:
    """A JSON file, or None when it is missing or damaged."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def hours(seconds: float | None) -> str:
    """A duration in s, min or h."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gib(b: float | None) -> str:
    """Bytes in GiB."""
    return "–" if not b else f"{b / GIB:.2f} GiB"
