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
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the dry_run package beside this file

from dry_run import GIB, NEEDS, ROOT, STAGES, load, write_json  # noqa: E402
from dry_run.estimate import estimate, memory_needed  # noqa: E402
from dry_run.report import machine_info, markdown  # noqa: E402
from dry_run.stages import run_child, settings_from  # noqa: E402

# ----------------------------------------------------------------------------- the runner


def _stamp(seconds: float) -> str:
    """Local date and time of a POSIX time, to the minute."""
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def run_stage(stage: str, s: dict, out: Path, records: dict, *, memory_bytes: float) -> dict:
    """Run (or reuse, or skip) one stage in a fresh subprocess; returns its record."""
    path = out / "stages" / f"{stage}.json"
    old = load(path)
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
        write_json(path, record)
        return record
    print(f"[{stage}] running (estimated peak ≈ {need / GIB:.1f} GiB; log "
          f"{out / 'logs' / (stage + '.log')})", flush=True)
    path.unlink(missing_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    with open(out / "logs" / f"{stage}.log", "w") as log:
        done = subprocess.run([sys.executable, __file__, "--child", stage, "--out", str(out)],
                              stdout=log, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - t0
    record = load(path)
    if record is None:  # the child died before writing its record
        killed = done.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
        tail = (out / "logs" / f"{stage}.log").read_text().strip().splitlines()[-3:]
        record = {"stage": stage, "settings": s, "steps": [],
                  "status": "out of memory" if killed else "failed",
                  "reason": ("killed by SIGKILL (the kernel's out-of-memory killer?); "
                             f"estimated need ≈ {need / GIB:.1f} GiB ({how})") if killed
                  else f"exit code {done.returncode}: {' | '.join(tail)}"}
    record.update({"wall_seconds_outside": wall, "load_average_start": load_start,
                   "estimated_need_bytes": need, "finished": _stamp(time.time())})
    write_json(path, record)
    print(f"[{stage}] {record['status']} in {wall:.0f} s"
          + (f", peak {record['peak_bytes'] / GIB:.2f} GiB" if record.get("peak_bytes") else "")
          + (f": {record.get('reason') or record.get('error')}"
             if record["status"] != "ok" else ""), flush=True)
    return record


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
    old = load(out / "settings.json")
    if old is not None and old != s and not args.fresh and (out / "database").exists():
        changed = sorted(k for k in s if s[k] != old.get(k))
        print(f"settings changed ({', '.join(changed)}): the stages will rerun; the database "
              f"is reused only if it matches (else pass --fresh)", flush=True)
    write_json(out / "settings.json", s)
    records = {st: r for st in STAGES if (r := load(out / "stages" / f"{st}.json"))
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
    write_json(out / "dry_run.json", {"settings": s, "machine": info, "records": records,
                                       "estimate": est})
    if args.publish:
        (ROOT / "book" / "paper_dry_run.md").write_text(text)
    print(text)
    failed = [st for st in stages if records.get(st, {}).get("status") not in ("ok",)]
    return 1 if any(records[st]["status"] == "failed" for st in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
