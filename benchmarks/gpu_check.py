"""GPU check of the ``paper`` profile: training speed and memory per α, and the GPU FEM.

On a CUDA machine, for each network of the study (N^bin and N^diffu at α = 2, 4, 8: 64
features, 8 blocks, 24³ low-resolution cutouts, batch sizes 8, 8, 1, as the ``paper``
profile trains), this runs training steps (forward, binary cross-entropy, backward, Adam) under
bfloat16 autocast with channels-last activations and weights, on random binary cutouts (the
speed does not depend on the data), and reports steps/s (after a warm-up), the peak GPU memory
(``torch.cuda.max_memory_allocated``) and the inference rate (high-resolution voxels/s). Then,
if :mod:`srlib.transport` has a GPU path (a ``device`` argument of ``solve_laplace``), it
solves one χ² image on the CPU and on the GPU and compares τ_eff; otherwise it says that the
check is skipped. The whole check stays under ``--budget-s`` seconds (default 480): each
network gets an equal share of it for its timed steps.

Prints a table and writes JSON to ``benchmarks/out/gpu_check.json`` (``--out``), which
``benchmarks/paper_dry_run.py --gpu-json`` reads to turn its training formula into hours. On
a machine without CUDA it prints "no CUDA device" and exits 0.

Run: ``python benchmarks/gpu_check.py [--budget-s 480] [--steps 50] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "gpu_check.json"
ALPHAS = (2, 4, 8)
BATCH_SIZES = (8, 8, 1)
KINDS = {"bin": 1, "diffu": 3}
FEATURES, BLOCKS, CUTOUT = 64, 8, 24


def train_rate(kind: str, alpha: int, batch: int, *, budget_s: float, max_steps: int) -> dict:
    """Steps/s, peak memory and inference rate of one network on the GPU."""
    import torch
    import torch.nn.functional as F

    from srlib.network import SRResNet3d

    dev = torch.device("cuda")
    torch.manual_seed(alpha)
    model = SRResNet3d(KINDS[kind], alpha, features=FEATURES, blocks=BLOCKS).to(dev)
    model = model.to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator(device=dev).manual_seed(alpha)
    shape = (batch, KINDS[kind], CUTOUT, CUTOUT, CUTOUT)
    x = (torch.rand(shape, device=dev, generator=gen) < 0.5).float()
    x = x.to(memory_format=torch.channels_last_3d)
    y = (torch.rand((batch, 1, *(alpha * CUTOUT,) * 3), device=dev, generator=gen) < 0.5).float()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            logits = model.logits(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        loss.backward()
        optimizer.step()

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    for _ in range(3):  # warm-up: cuDNN picks its kernels
        step()
    torch.cuda.synchronize(dev)
    steps, t0 = 0, time.perf_counter()
    while steps < max_steps and time.perf_counter() - t0 < budget_s:
        step()
        steps += 1
        if steps % 5 == 0:
            torch.cuda.synchronize(dev)
    torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(dev)
    model.eval()
    with torch.no_grad(), torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        model.logits(x)
        torch.cuda.synchronize(dev)
        t1 = time.perf_counter()
        for _ in range(5):
            model.logits(x)
        torch.cuda.synchronize(dev)
        infer = (time.perf_counter() - t1) / 5
    return {"kind": kind, "alpha": alpha, "batch": batch, "steps": steps,
            "steps_per_s": steps / seconds, "peak_gpu_bytes": int(peak),
            "inference_hr_voxels_per_s": batch * (alpha * CUTOUT) ** 3 / infer,
            "loss_finite": True}


def fem_check(size: int) -> dict:
    """τ_eff on CPU and GPU of one χ² image, when srlib.transport can solve on a GPU."""
    from srlib import transport

    params = inspect.signature(transport.solve_laplace).parameters
    if "device" not in params:
        return {"skipped": "srlib.transport has no GPU path (solve_laplace takes no device); "
                           "the FEM runs on the CPU"}
    from srlib.stochastic import ModelParams, sample

    image = sample((size,) * 3, ModelParams.from_solid_fraction(0.7, gamma=10**-0.5), seed=0)
    transport.solve_laplace(image[:16, :16, :16], False, device="cuda")  # CUDA context, untimed
    rows, worst = {}, 0.0
    for name, phase in (("pore", False), ("solid", True)):
        for label, device in (("cpu multigrid", None), ("cuda", "cuda")):
            t0 = time.perf_counter()
            r = transport.solve_laplace(image, phase, axis=0, device=device)
            rows[f"{name}, {label}"] = {"tau_eff": float(r.tau_eff), "iterations": r.iterations,
                                        "seconds": time.perf_counter() - t0}
        ref, gpu = rows[f"{name}, cpu multigrid"], rows[f"{name}, cuda"]
        worst = max(worst, abs(gpu["tau_eff"] - ref["tau_eff"]) / ref["tau_eff"])
    return {"size": size, **rows, "relative_difference": worst, "agrees": worst < 1e-6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="time for all the timed training steps together")
    parser.add_argument("--steps", type=int, default=50, help="at most this many per network")
    parser.add_argument("--fem-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False): nothing to "
              "check here. Run it on a machine with an NVIDIA GPU and a CUDA build of torch.")
        return 0
    name = torch.cuda.get_device_name(0)
    print(f"gpu_check on {name}, torch {torch.__version__}", flush=True)
    share = args.budget_s * 0.8 / (len(KINDS) * len(ALPHAS))
    rows = []
    for kind in KINDS:
        for alpha, batch in zip(ALPHAS, BATCH_SIZES, strict=True):
            try:
                row = train_rate(kind, alpha, batch, budget_s=share, max_steps=args.steps)
            except torch.cuda.OutOfMemoryError as err:
                row = {"kind": kind, "alpha": alpha, "batch": batch, "error": f"OOM: {err}"}
            rows.append(row)
            torch.cuda.empty_cache()
            print(json.dumps(row), flush=True)
    fem = fem_check(args.fem_size)
    print("\n| network | batch | steps/s | s/step | peak GPU memory | inference HR voxels/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| N^{r['kind']} α={r['alpha']} | {r['batch']} | {r['error']} | | | |")
            continue
        print(f"| N^{r['kind']} α={r['alpha']} | {r['batch']} | {r['steps_per_s']:.2f} | "
              f"{1 / r['steps_per_s']:.3f} | {r['peak_gpu_bytes'] / 2**30:.2f} GiB | "
              f"{r['inference_hr_voxels_per_s']:.3g} |")
    total = sum(400_000 / r["steps_per_s"] for r in rows if "steps_per_s" in r)
    print(f"\nAt most 1000 × 400 steps per network: {total / 3600:.1f} h of training steps "
          "for the six networks on this GPU (early stopping ends most runs sooner).")
    print("GPU FEM:", fem.get("skipped") or json.dumps(fem))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": name, "torch": torch.__version__,
                                    "python": platform.python_version(), "training": rows,
                                    "fem": fem, "max_training_hours": total / 3600
                                    if math.isfinite(total) else None}, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
