"""Benchmark: srlib.transport against TauFactor (and PoreSpy) on one χ² structure.

Solves both phases of a χ² excursion set (default 128^3, correlation length 1/γ² = 10 voxels,
solid fraction 0.7) along axis 0 with

* srlib's FEM (``connectivity="face"`` and ``"vertex"``, at the library's default tolerance
  ``srlib.transport.DEFAULT_TOL``),
* TauFactor's finite-volume SOR solver on the CPU (``Solver(img).solve(conv_crit=1e-3)``,
  the conducting phase labelled 1), run right after srlib on the same phase,
* optionally (``--porespy``) PoreSpy's ``simulations.tortuosity_fd`` (needs ``openpnm``).

Every solve runs in a fresh subprocess, which reports its wall time, CPU time and the rise of
its peak RSS (``ru_maxrss``) during the solve above the RSS (``VmRSS``) it had just before
(image built, modules imported, kernels compiled by an untimed solve of a 32³ block for srlib
and of an 8³ block for TauFactor); ``bytes/unknown`` divides that rise
by the number of unknowns (srlib: mesh nodes; TauFactor: voxels of the phase). The solves run
in ``--repeat`` rounds (each method once a round, back to back); a row gives the median wall
time and the range of the rounds, and each ratio comes with the range of the rounds' own
ratios: on a shared 2-core machine one solve's time moves by a third or more from run to run.
The table gives, per phase and for both together, srlib's time, TauFactor's, their ratio and
bytes per unknown; it is written as JSON to ``benchmarks/out/transport.json``. The budgets:
both phases, and the solid phase alone, in at most half of TauFactor's time
(``BUDGET_RATIO``, on the medians); at most 250 bytes per unknown. Wall times depend on the
load: the load average is printed with every row.

Run: ``python benchmarks/bench_transport.py [--size 128] [--seed 0] [--repeat 3] [--porespy]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from srlib import transport
from srlib.stochastic import ModelParams, sample

OUT = Path(__file__).resolve().parent / "out" / "transport.json"
CORRELATION_LENGTH = 10.0  # 1/γ² in voxels
SOLID_FRACTION = 0.7

#: Largest ratio of srlib's solve time to TauFactor's within the budget.
BUDGET_RATIO = 0.5


def chi2_image(size: int, seed: int) -> tuple[np.ndarray, str]:
    """The χ² structure of the benchmark (srlib.stochastic.sample) and where it came from."""
    gamma = 1.0 / math.sqrt(CORRELATION_LENGTH)
    params = ModelParams.from_solid_fraction(SOLID_FRACTION, gamma=gamma)
    return sample((size,) * 3, params, seed=seed), "srlib.stochastic.sample"


def _current_rss_kib() -> int:
    """The resident set now (KiB; ``VmRSS``), not the peak so far that ``ru_maxrss`` gives:
    the warm-up solve's peak must not hide part of the timed solve's rise."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:  # not Linux: the peak so far
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_srlib(image: np.ndarray, phase: bool, connectivity: str, tol: float | None = None) -> dict:
    # Compile (or load from numba's cache) every kernel the timed solve runs, untimed: a 32³
    # block takes the grid-level path (more than DIRECT_SIZE unknowns) and has two coarse
    # levels, int8 and int16 (an 8³ block took the matrix path, so the grid level's kernels
    # were loaded inside the timed solve: the first 128³ solve of a process took 0.38-0.45 s
    # longer than the next ones).
    transport.solve_laplace(np.ones((32, 32, 32), dtype=bool), True, connectivity=connectivity)
    tol = transport.DEFAULT_TOL if tol is None else tol
    base = _current_rss_kib()
    cpu = time.process_time()
    start = time.perf_counter()
    result = transport.solve_laplace(image, phase, axis=0, connectivity=connectivity, tol=tol)
    seconds = time.perf_counter() - start
    return {
        "tau": result.tau_eff,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "rss_increase_bytes": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024,
        "unknowns": int(result.solution.size),
        "iterations": result.iterations,
        "flux_balance": abs(result.flux_in - result.flux_out) / max(result.flux_in, 1e-300),
        "converged": result.converged,
    }


def run_taufactor(image: np.ndarray, phase: bool) -> dict:
    try:
        import taufactor
    except ImportError as err:
        return {"skipped": f"taufactor not installed ({err})"}
    labels = (image == phase).astype(np.uint8)  # TauFactor labels the conducting phase 1
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        taufactor.Solver(labels[:8, :8, :8], device="cpu").solve(verbose=False)  # warm up
        base = _current_rss_kib()
        cpu = time.process_time()
        start = time.perf_counter()
        solver = taufactor.Solver(labels, device="cpu")
        solver.solve(verbose=False, conv_crit=1e-3)
        seconds = time.perf_counter() - start
    return {
        "tau": float(np.asarray(solver.tau).ravel()[0]),
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "rss_increase_bytes": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024,
        "unknowns": int(labels.sum()),
        "iterations": int(solver.iter),
        "converged": bool(solver.converged),
    }


def _child(spec: str) -> None:
    """Run one solve described by ``size,seed,phase,method`` and print its row as JSON."""
    size, seed, phase, method = spec.split(",")
    image, _ = chi2_image(int(size), int(seed))
    phase = phase == "solid"
    if method == "taufactor":
        row = run_taufactor(image, phase)
    elif method == "porespy":
        row = run_porespy(image, phase)
    else:
        row = run_srlib(image, phase, method)
    print(json.dumps(row))


def solve_in_subprocess(size: int, seed: int, phase: str, method: str) -> dict:
    """One solve in a fresh interpreter, so that peak RSS and timings do not mix."""
    command = [sys.executable, __file__, "--child", f"{size},{seed},{phase},{method}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"skipped": f"subprocess failed: {done.stderr.strip().splitlines()[-1:]}"}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["load_average"] = os.getloadavg()[0]
    if "rss_increase_bytes" in row:
        row["bytes_per_unknown"] = row["rss_increase_bytes"] / max(row["unknowns"], 1)
    return row


def run_porespy(image: np.ndarray, phase: bool) -> dict:
    try:
        import openpnm  # noqa: F401  (tortuosity_fd imports it)
        import porespy
    except ImportError as err:
        return {"skipped": f"porespy.simulations.tortuosity_fd needs openpnm ({err})"}
    mask = image == phase
    start = time.perf_counter()
    result = porespy.simulations.tortuosity_fd(mask, axis=0)
    seconds = time.perf_counter() - start
    # PoreSpy divides by the porosity of the percolating part; Eq. (9) uses the whole phase.
    tau_full = result.original_porosity * result.formation_factor
    return {
        "tau": float(tau_full),
        "tau_effective_porosity": float(result.tortuosity),
        "seconds": seconds,
        "converged": bool(result.converged),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--porespy", action="store_true", help="also run PoreSpy")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of solves (each method once a round, a fresh process "
                             "each); the table gives the median")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.child:
        _child(args.child)
        return {}

    image, source = chi2_image(args.size, args.seed)
    load_before = os.getloadavg()
    methods = [("srlib FEM face", "face"), ("TauFactor (CPU)", "taufactor"),
               ("srlib FEM vertex", "vertex")]
    if args.porespy:
        methods.append(("PoreSpy tortuosity_fd", "porespy"))
    rows = _run_rounds(args, image, methods)
    summary = _summarize(rows, methods)
    report = {
        "image": {
            "shape": list(image.shape),
            "correlation_length": CORRELATION_LENGTH,
            "target_solid_fraction": SOLID_FRACTION,
            "solid_fraction": float(image.mean()),
            "seed": args.seed,
            "source": source,
        },
        "axis": 0,
        "rows": rows,
        "summary": summary,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
    }
    print()
    _judge(summary)
    print(f"load average before/after: {load_before} / {report['machine']['load_average_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


def _run_rounds(args, image, methods) -> list[dict]:
    """Every method on both phases, ``args.repeat`` rounds; one row (the median run) each."""
    rows = []
    for name in ("pore", "solid"):
        fraction = float(np.mean(image == (name == "solid")))
        runs = {key: [] for _, key in methods}
        for _ in range(args.repeat):  # the methods back to back, in rounds
            for _, key in methods:
                runs[key].append(solve_in_subprocess(args.size, args.seed, name, key))
        for method, key in methods:
            rows.append({"phase": name, "volume_fraction": fraction, "method": method,
                         **_median_run(runs[key])})
            print(_format_row(rows[-1]), flush=True)
    return rows


def _summarize(rows: list[dict], methods) -> dict:
    """Per method with both phases solved: the medians' sums and each round's sums."""
    summary = {}
    for method, _ in methods:
        mine = [r for r in rows if r["method"] == method and "seconds" in r]
        if len(mine) == 2:
            pore, solid = (next(r for r in mine if r["phase"] == p) for p in ("pore", "solid"))
            summary[method] = {
                "both_seconds": pore["seconds"] + solid["seconds"],
                "both_cpu_seconds": sum(r["cpu_seconds"] for r in mine if "cpu_seconds" in r),
                "solid_seconds": solid["seconds"],
                "both_seconds_runs": [a + b for a, b in zip(pore["seconds_runs"],
                                                            solid["seconds_runs"], strict=True)],
                "solid_seconds_runs": solid["seconds_runs"],
                "max_bytes_per_unknown": max(r.get("bytes_per_unknown", math.nan) for r in mine),
            }
    return summary


def _judge(summary: dict) -> None:
    """Print srlib's ratios to TauFactor against the budgets (and add them to ``summary``)."""
    reference = summary.get("TauFactor (CPU)")
    for method in ("srlib FEM face", "srlib FEM vertex"):
        if method not in summary or reference is None:
            continue
        mine = summary[method]
        for label, key in (("both phases", "both_seconds"), ("solid", "solid_seconds")):
            ratio = mine[key] / reference[key]
            # each round's own ratio (the two solves ran back to back): the spread of the load
            paired = [a / b for a, b in zip(mine[key + "_runs"], reference[key + "_runs"],
                                            strict=True)]
            mine[key.replace("seconds", "ratio")] = ratio
            mine[key.replace("seconds", "ratio_rounds")] = paired
            verdict = "within" if ratio <= BUDGET_RATIO else "OVER"
            print(f"{method}, {label}: {mine[key]:.2f} s vs TauFactor {reference[key]:.2f} s "
                  f"(medians of {len(paired)}) -> ratio {ratio:.2f} (rounds "
                  f"{min(paired):.2f}-{max(paired):.2f}), {verdict} budget")
        verdict = "within" if mine["max_bytes_per_unknown"] <= 250 else "OVER"
        print(f"{method}: {mine['max_bytes_per_unknown']:.0f} bytes/unknown -> {verdict} budget")


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time, with every run's time; a skipped run stands for all."""
    skipped = [r for r in runs if "seconds" not in r]
    if skipped:
        return skipped[0]
    seconds = [r["seconds"] for r in runs]
    row = dict(sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2])
    row["seconds"] = float(np.median(seconds))
    row["seconds_runs"] = seconds
    if "bytes_per_unknown" in row:
        row["bytes_per_unknown"] = max(r["bytes_per_unknown"] for r in runs)
    return row


def _format_row(row: dict) -> str:
    head = f"{row['phase']:<5s} (ε={row['volume_fraction']:.3f})  {row['method']:<24s}"
    if "skipped" in row:
        return f"{head} skipped: {row['skipped']}"
    extra = ""
    if "flux_balance" in row:
        extra += f"  |in-out|/in {row['flux_balance']:.1e}"
    if "iterations" in row:
        extra += f"  iterations {row['iterations']}"
    if "tau_effective_porosity" in row:
        extra += f"  (τ with percolating fraction {row['tau_effective_porosity']:.4f})"
    if "bytes_per_unknown" in row:
        extra += f"  {row['bytes_per_unknown']:.0f} B/unknown ({row['unknowns']} unknowns)"
    extra += f"  load {row['load_average']:.1f}"
    spread = ""
    if len(row.get("seconds_runs", [])) > 1:
        spread = f" ({min(row['seconds_runs']):.2f}-{max(row['seconds_runs']):.2f})"
    return f"{head} τ = {row['tau']:8.4f}  {row['seconds']:6.2f} s{spread}{extra}"


if __name__ == "__main__":
    main()
