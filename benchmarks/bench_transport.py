"""Benchmark: srlib.transport against TauFactor and PoreSpy on one χ² structure.

Solves both phases of a 128^3 χ² excursion set (correlation length 1/γ² = 10 voxels, solid
fraction 0.7) along axis 0 with

* srlib's FEM (``connectivity="face"`` and ``"vertex"``, default tolerance 1e-8; and "face"
  at 1e-5, whose inlet/outlet flux balance is comparable to the peers' stopping criteria),
* TauFactor's finite-volume SOR solver on the CPU (``Solver(img).solve(conv_crit=1e-3)``,
  the conducting phase labelled 1),
* PoreSpy's ``simulations.tortuosity_fd`` (finite volumes on an OpenPNM cubic network,
  Ruge-Stueben AMG; needs ``openpnm``, skipped when it is not installed),

prints a table and writes it as JSON to ``benchmarks/out/transport.json``. The budget in
DESIGN.md: srlib solves both phases in no more time than TauFactor takes on the CPU. Wall times
depend on what else runs on the machine; the load average is recorded with the results.

Run: ``python benchmarks/bench_transport.py [--size 128] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from srlib import transport

OUT = Path(__file__).resolve().parent / "out" / "transport.json"
CORRELATION_LENGTH = 10.0  # 1/γ² in voxels
SOLID_FRACTION = 0.7


def chi2_image(size: int, seed: int) -> tuple[np.ndarray, str]:
    """The χ² structure, from srlib.stochastic when available, else from a small local helper."""
    gamma = 1.0 / math.sqrt(CORRELATION_LENGTH)
    try:
        from srlib.stochastic import ModelParams, sample
    except ImportError:
        return _chi2_fallback(size, gamma, seed), "local FFT helper"
    params = ModelParams.from_solid_fraction(SOLID_FRACTION, gamma=gamma)
    return sample((size,) * 3, params, seed=seed), "srlib.stochastic.sample"


def _chi2_fallback(size: int, gamma: float, seed: int) -> np.ndarray:
    """Y = X1² + X2², X Gaussian with covariance exp(-γ² h), by FFT on a padded periodic grid."""
    n = size + int(8 * CORRELATION_LENGTH)
    k = np.fft.fftfreq(n) * n
    h2 = np.minimum(k, n - k) ** 2
    dist = np.sqrt(h2[:, None, None] + h2[None, :, None] + h2[None, None, :])
    spectrum = np.fft.fftn(np.exp(-(gamma**2) * dist)).real
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n,) * 3) + 1j * rng.standard_normal((n,) * 3)
    field = np.fft.ifftn(np.sqrt(np.maximum(spectrum, 0.0)) * np.fft.fftn(noise))
    field = field[:size, :size, :size]
    x1, x2 = field.real, field.imag
    x1, x2 = x1 / x1.std(), x2 / x2.std()
    return x1**2 + x2**2 >= -2.0 * math.log(SOLID_FRACTION)


def run_srlib(image: np.ndarray, phase: bool, connectivity: str, tol: float = 1e-8) -> dict:
    start = time.perf_counter()
    result = transport.solve_laplace(image, phase, axis=0, connectivity=connectivity, tol=tol)
    seconds = time.perf_counter() - start
    return {
        "tau": result.tau_eff,
        "seconds": seconds,
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
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solver = taufactor.Solver(labels, device="cpu")
        solver.solve(verbose=False, conv_crit=1e-3)
    seconds = time.perf_counter() - start
    return {
        "tau": float(np.asarray(solver.tau).ravel()[0]),
        "seconds": seconds,
        "iterations": int(solver.iter),
        "converged": bool(solver.converged),
    }


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
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    image, source = chi2_image(args.size, args.seed)
    load_before = os.getloadavg()
    transport.element_stiffness()  # one-off scikit-fem assembly, outside the timings
    rows = []
    for phase, name in ((False, "pore"), (True, "solid")):
        fraction = float(np.mean(image == phase))
        entries = [
            ("srlib FEM face", run_srlib(image, phase, "face")),
            ("srlib FEM vertex", run_srlib(image, phase, "vertex")),
            # at a tolerance giving a flux balance like the peers' stopping criteria (1e-3)
            ("srlib FEM face tol=1e-5", run_srlib(image, phase, "face", tol=1e-5)),
            ("TauFactor (CPU)", run_taufactor(image, phase)),
            ("PoreSpy tortuosity_fd", run_porespy(image, phase)),
        ]
        for method, entry in entries:
            rows.append({"phase": name, "volume_fraction": fraction, "method": method, **entry})
            print(_format_row(rows[-1]), flush=True)

    totals = {}
    for method in sorted({row["method"] for row in rows}):
        times = [row.get("seconds") for row in rows if row["method"] == method]
        if all(t is not None for t in times):
            totals[method] = sum(times)
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
        "both_phases_seconds": totals,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
    }
    print()
    for method, seconds in totals.items():
        print(f"both phases, {method:<24s} {seconds:8.1f} s")
    reference = totals.get("TauFactor (CPU)")
    if reference is not None:
        for method in ("srlib FEM face", "srlib FEM vertex", "srlib FEM face tol=1e-5"):
            verdict = "within" if totals[method] <= reference else "OVER"
            mine = totals[method]
            print(f"{method}: {mine:.1f} s vs TauFactor {reference:.1f} s -> {verdict} budget")
    print(f"load average before/after: {load_before} / {report['machine']['load_average_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


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
    return f"{head} τ = {row['tau']:8.4f}  {row['seconds']:7.1f} s{extra}"


if __name__ == "__main__":
    main()
