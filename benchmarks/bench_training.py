"""Benchmark: one training step of the SRResNet3d in both memory layouts, for every α.

For each α of a profile (default ``quick``: 16 features, 8 blocks, cutouts of 11³, batches
8/4/1), times a full training step (forward, binary cross-entropy, backward, Adam step) and an
inference forward pass on random inputs, with the activations and weights in the default
channels-last layout (``torch.channels_last_3d``, what :class:`srlib.network.SRResNet3d` uses)
and in the plain contiguous layout, and reports the median of ``--repeats`` runs after a
warm-up, their ratio and the largest difference between the two layouts' outputs. The table is
printed and written as JSON to ``benchmarks/out/training.json``. Timings depend on the machine
and on its load; the load average is recorded with them.

A last line compares whole training steps with the cutouts read and augmented in the
training process (``num_workers=0``) and in ``--workers`` DataLoader workers running ahead
(:mod:`srlib.training.data`), on the smallest α (``--loader-steps 0`` skips it).

Run: ``python benchmarks/bench_training.py [--profile quick] [--threads 2] [--repeats 5]
[--device cpu|cuda] [--workers 2] [--loader-steps 20]``. On CUDA with ``--bf16`` the step
runs under bfloat16 autocast, as the ``paper`` profile trains.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from srlib.config import get_profile
from srlib.network import SRResNet3d

OUT = Path(__file__).resolve().parent / "out" / "training.json"
LAYOUTS = {"channels_last_3d": torch.channels_last_3d, "contiguous": torch.contiguous_format}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, repeats: int) -> float:
    fn()  # warm-up (oneDNN/cuDNN pick their kernels on the first call)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_alpha(alpha: int, batch: int, profile, device, repeats: int, bf16: bool) -> dict:
    """Time one α in both layouts; return the row of the table."""
    torch.manual_seed(0)
    base = SRResNet3d(1, alpha, features=profile.features, blocks=profile.blocks)
    n = profile.cutout
    x = torch.rand(batch, 1, n, n, n, device=device).round()
    y = (torch.rand(batch, 1, alpha * n, alpha * n, alpha * n, device=device) > 0.5).float()
    row = {"alpha": alpha, "batch": batch, "cutout": n}
    outputs = {}
    for name, layout in LAYOUTS.items():
        model = copy.deepcopy(base).to(device).to(memory_format=layout)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model.logits(x)
            F.binary_cross_entropy_with_logits(logits.float(), y).backward()
            optimizer.step()

        def infer(model=model):
            with torch.no_grad(), torch.autocast(device_type=device.type,
                                                 dtype=torch.bfloat16, enabled=bf16):
                return model(x)

        model.eval()
        outputs[name] = infer().float().cpu()
        row[f"infer_s_{name}"] = _time(infer, device, repeats)
        model.train()
        row[f"step_s_{name}"] = _time(step, device, repeats)
    row["step_speedup"] = row["step_s_contiguous"] / row["step_s_channels_last_3d"]
    row["infer_speedup"] = row["infer_s_contiguous"] / row["infer_s_channels_last_3d"]
    row["max_output_difference"] = float(
        (outputs["contiguous"] - outputs["channels_last_3d"]).abs().max())
    return row


def bench_loader(profile, device, steps: int, workers: int) -> dict:
    """Steps per second of :func:`srlib.training.train` with and without DataLoader workers."""
    import numpy as np

    from srlib import training

    alpha, n = min(profile.alphas), profile.cutout
    rng = np.random.default_rng(0)
    pairs = [training.make_pair(rng.random((alpha * 4 * n,) * 3) < 0.5, alpha)
             for _ in range(3)]
    row = {"alpha": alpha, "steps": steps, "workers": workers}
    for w in (0, workers):
        model = training.make_model(1, alpha, features=profile.features, blocks=profile.blocks)
        t0 = time.perf_counter()
        training.train(model, pairs[:2], pairs[2:], cutout=n, batch_size=profile.batch_size(alpha),
                       steps_per_epoch=steps, max_epochs=1, val_cutouts=1, device=device,
                       num_workers=w, progress=False)
        row[f"steps_per_s_workers_{w}"] = steps / (time.perf_counter() - t0)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers compared")
    parser.add_argument("--loader-steps", type=int, default=20,
                        help="training steps of the DataLoader comparison (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    profile = get_profile(args.profile)
    rows = [bench_alpha(a, profile.batch_size(a), profile, device, args.repeats,
                        args.bf16 and device.type == "cuda")
            for a in profile.alphas]
    print(f"profile {profile.name}, {args.threads} threads, device {device}"
          f"{', bf16' if args.bf16 else ''}; median of {args.repeats} (seconds)")
    print(f"{'α':>2} {'batch':>5} {'step CL':>8} {'step plain':>10} {'×':>5} "
          f"{'infer CL':>8} {'infer plain':>11} {'×':>5} {'max |Δ|':>8}")
    for r in rows:
        print(f"{r['alpha']:>2} {r['batch']:>5} {r['step_s_channels_last_3d']:8.3f} "
              f"{r['step_s_contiguous']:10.3f} {r['step_speedup']:5.2f} "
              f"{r['infer_s_channels_last_3d']:8.3f} {r['infer_s_contiguous']:11.3f} "
              f"{r['infer_speedup']:5.2f} {r['max_output_difference']:8.1e}")
    loader = None
    if args.loader_steps > 0:
        loader = bench_loader(profile, device, args.loader_steps, args.workers)
        print(f"training steps/s at alpha={loader['alpha']} (cutouts read in the loop vs "
              f"{args.workers} DataLoader workers): {loader['steps_per_s_workers_0']:.2f} vs "
              f"{loader[f'steps_per_s_workers_{args.workers}']:.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "profile": profile.name, "threads": args.threads, "device": str(device),
        "bf16": args.bf16, "repeats": args.repeats, "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(), "rows": rows, "loader": loader}, indent=2))
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
