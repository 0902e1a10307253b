"""Benchmark: drawing χ² model realizations (srlib.stochastic.sample) against GSTools.

Times ``sample`` at 256³ and 800³ (wall time and peak memory, each in a fresh process so the
peak is its own) and GSTools' randomization method (``Exponential`` covariance, the same
correlation length, one Gaussian field, structured grid) at 256³, in one run. srlib draws two
Gaussian fields per call (the χ² field needs both), so the per-field ratio is also given.

Run: ``python benchmarks/bench_stochastic.py [--sizes 256 800] [--skip-gstools]``.
Results: printed table and ``benchmarks/out/stochastic.json``.
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import time
from pathlib import Path

GAMMA2 = 0.1  # correlation length 1/γ² = 10 voxels
FRACTION = 0.7


def _srlib(size, queue):
    import numpy as np

    from srlib import stochastic

    params = stochastic.ModelParams.from_solid_fraction(FRACTION, gamma=math.sqrt(GAMMA2))
    t0 = time.perf_counter()
    image = stochastic.sample(size, params, seed=1)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    queue.put({"method": "srlib.stochastic.sample (2 fields + excursion)", "size": size,
               "seconds": seconds, "peak_GiB": peak,
               "solid_fraction": float(np.count_nonzero(image)) / image.size})


def _gstools(size, queue):
    import gstools as gs
    import numpy as np

    # GSTools' Exponential: C(r) = exp(-r / len_scale), so len_scale = 1/γ².
    model = gs.Exponential(dim=3, var=1.0, len_scale=1.0 / GAMMA2)
    srf = gs.SRF(model, seed=1, mode_no=1000)
    axis = np.arange(size, dtype=float)
    t0 = time.perf_counter()
    field = srf.structured([axis, axis, axis])
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    queue.put({"method": "GSTools SRF Exponential (1 field, 1000 modes)", "size": size,
               "seconds": seconds, "peak_GiB": peak, "field_variance": float(field.var())})


def run(target, size):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(size, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 800])
    parser.add_argument("--gstools-size", type=int, default=256)
    parser.add_argument("--skip-gstools", action="store_true")
    args = parser.parse_args()
    rows = [run(_srlib, n) for n in args.sizes]
    if not args.skip_gstools:
        rows.append(run(_gstools, args.gstools_size))
    print(f"{'method':52s} {'size':>6s} {'seconds':>9s} {'peak GiB':>9s}")
    for r in rows:
        print(f"{r['method']:52s} {r['size']:>5d}³ {r['seconds']:9.2f} {r['peak_GiB']:9.2f}")
    srl = {r["size"]: r for r in rows if r["method"].startswith("srlib")}
    gst = [r for r in rows if r["method"].startswith("GSTools")]
    if gst and gst[0]["size"] in srl:
        ratio = gst[0]["seconds"] / srl[gst[0]["size"]]["seconds"]
        print(f"GSTools / srlib time at {gst[0]['size']}³: {ratio:.1f}x "
              f"(per Gaussian field: {2 * ratio:.1f}x)")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    meta = {"cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version()}
    (out / "stochastic.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
