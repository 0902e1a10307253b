"""The benchmark scripts' command lines: the paper dry run's planning and the GPU check's fallback.

Fast: no stage of the dry run runs here (its memory pre-check and its prerequisites are what
is tested, and the estimate's helpers on known answers); the GPU check runs with CUDA hidden.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})},
                          check=False)


@pytest.fixture(scope="module")
def dry_run():
    """The estimate of the dry-run package under benchmarks/ (with its constants)."""
    sys.path.insert(0, str(BENCH))
    try:
        module = importlib.import_module("dry_run.estimate")
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_gpu_check_without_cuda_exits_0_with_a_clear_message(tmp_path):
    done = _run("gpu_check.py", "--out", str(tmp_path / "gpu.json"),
                env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout
    assert not (tmp_path / "gpu.json").exists()


def test_dry_run_skips_a_stage_that_does_not_fit_and_says_what_it_needs(tmp_path):
    out = tmp_path / "dry"
    (out / "database").mkdir(parents=True)  # the scenario's 1/γ² = 4 voxels: no calibration
    (out / "database" / "scenarios.json").write_text('{"scenarios": [{"gamma": 0.5}]}')
    done = _run("paper_dry_run.py", "--hr-size", "32", "--stages", "database",
                "--memory-gb", "0.01", "--out", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "stages" / "database.json").read_text())
    assert record["status"] == "skipped"
    assert record["needs_bytes"] > 0.01 * 2**30
    table = (out / "dry_run.md").read_text()
    assert "skipped" in table and "needs ≈" in table
    assert "64³ FFT grid" in table  # 32 + 8 × 4 voxels of padding
    assert not (out / "stages" / "database.log").exists()
    assert not (out / "logs").exists()  # no stage was started


def test_dry_run_stage_without_its_prerequisite_is_skipped_with_the_reason(tmp_path):
    out = tmp_path / "dry"
    done = _run("paper_dry_run.py", "--hr-size", "32", "--stages", "channels",
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "needs the stage(s) database first" in (out / "dry_run.md").read_text()


@pytest.mark.parametrize("args", [("--hr-size", "40"), ("--stages", "database,nope")])
def test_dry_run_rejects_bad_options(tmp_path, args):
    done = _run("paper_dry_run.py", *args, "--out", str(tmp_path / "dry"))
    assert done.returncode == 2
    assert "--hr-size" in done.stderr or "unknown stage" in done.stderr


def test_fem_exponent_is_fitted_from_measured_sizes(dry_run):
    points = [(n, 1e-6 * n**1.25) for n in (1e6, 8e6, 64e6)]
    p, how = dry_run._fit_exponent(points)
    assert p == pytest.approx(1.25)
    assert "fitted on 3" in how
    p, how = dry_run._fit_exponent([(1e6, 5.0)])  # one size: the assumed exponent
    assert p == dry_run.FEM_EXPONENT and "assumed" in how


def test_makespan_places_longest_tasks_first(dry_run):
    assert dry_run._makespan([4, 3, 3, 2], 2) == 6
    assert dry_run._makespan([5, 1, 1], 10) == 5
    assert dry_run._makespan([1.0] * 8, 1) == 8


def test_paper_estimate_scales_the_database_by_voxels(dry_run):
    s = {"hr_size": 400, "cutout": 24}
    steps = [{"seconds": 1.0, "rss_start_bytes": 0, "peak_bytes": 0},
              {"seconds": 21.0, "rss_start_bytes": 1 * 2**30, "peak_bytes": 2 * 2**30}]
    records = {"database": {"status": "ok", "steps": steps,
                            "info": {"seconds_per_realization": 10.0, "realizations_built": 2}}}
    est = dry_run.estimate(records, s, cores=1, memory_bytes=64 * 2**30, cluster=50,
                           gpu_rates=None)
    row = est["rows"][0]
    # 800³ has 8 times the voxels of 400³: 80 s and 1 + 8 GiB per realization; the paper
    # profile has 3 scenarios (the public samples) of 10 realizations
    assert dry_run.PAPER["scenarios"] == 3 and dry_run.PAPER["realizations"] == 10
    assert row["cluster"] == pytest.approx(80 + 1)
    assert row["machine"] == pytest.approx(30 * 80 + 3 * 1)
    assert row["peak"] == pytest.approx(9 * 2**30)


def test_fem_bytes_per_unknown_is_the_marginal_rise_between_the_largest_solves(dry_run):
    def row(n, rise):
        return {"status": "ok", "unknowns_per_solve": n, "peak_is_own": True,
                "rss_start_bytes": 10**8, "peak_bytes": 10**8 + rise}

    records = {"channels": {"steps": [row(10**4, 30e6), row(10**5, 40e6), row(8 * 10**5, 110e6)]}}
    per, how = dry_run._fem_bytes_per_unknown(records)
    assert per == pytest.approx(70e6 / 7e5)  # 100 B per unknown, the 30-40 MB overhead gone
    assert "marginal" in how
    per, how = dry_run._fem_bytes_per_unknown({})
    assert per == dry_run.FEM_BYTES_PER_UNKNOWN and "budget" in how


def test_paper_estimate_multiplies_the_evaluation_units(dry_run):
    """One sub-image's units, measured at 800³, times 8 sub-images and 1 + 9 (method, α)."""
    s = {"hr_size": 800, "cutout": 24}
    seconds = {"fem": 100.0, "geo": 20.0, "channels": 5.0, "bin": 60.0, "diffu": 70.0,
               "interpolation": 1.0, "score": 130.0}
    steps = [{"what": what, "seconds": t, "cpu_seconds": t, "rss_start_bytes": 0,
              "peak_bytes": 0, **({"unknowns_per_solve": 10**6} if what == "fem" else {})}
             for what, t in seconds.items()]
    records = {"evaluation": {"status": "ok", "steps": steps,
                              "info": {"unit_seconds": {}, "sub_images_per_image": 8}}}
    est = dry_run.estimate(records, s, cores=1, memory_bytes=64 * 2**30, cluster=50,
                           gpu_rates=None)
    row = est["rows"][0]
    reference = 8 * (100 + 20)
    # without training records the networks' time at α = 2, 4 is the α = 8 one; without
    # channel records N^diffu's channels at α = 2, 4 are not counted (α = 8: 5 s)
    group8 = 8 * (60 + 130) + 8 * (70 + 130) + 8 * (1 + 130) + 5
    group = group8 - 5
    # 50 workers: the references side by side, then every (image, α) group side by side
    assert row["cluster"] == pytest.approx(reference + group8)
    # the paper profile's tomographic crops of the three sandstones (Profile.tomo_edge)
    assert sorted(dry_run.PAPER["tomo_edges"].values()) == [96, 192, 496]
    tomo = sum((e / 800) ** 3 for e in (96, 192, 496))
    # one worker: everything one after the other
    assert row["machine"] == pytest.approx((3 + tomo) * (reference + group8 + 2 * group))
