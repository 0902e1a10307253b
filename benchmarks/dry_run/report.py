"""The dry run's report: the table of measured stages, then the estimate."""

from __future__ import annotations

import datetime
import os
import platform

from . import PAPER, STAGES, gib, hours

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
        f"{gib(info.get('memory_bytes'))} of memory"
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
                         f"{hours(row['seconds'])} | {hours(row['cpu_seconds'])} | "
                         f"{gib(row.get('peak_bytes'))} |")
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
        machine = hours(row["machine"]) if row["machine"] is not None else "formula"
        cluster = hours(row["cluster"]) if row["cluster"] is not None else "formula"
        if "cpu_only" in row:
            machine += f" (CPU only: {hours(row['cpu_only'])})"
        lines.append(f"| {row['part']} | {machine} | {cluster} | {gib(row['peak'])} | "
                     f"{row['basis']} |")
    total = (f"| total | {hours(est['machine_total'])} | {hours(est['cluster_total'])} | | "
             + ("without training (GPU steps/s not measured: run benchmarks/gpu_check.py "
                "and pass --gpu-json)" if est["training_unknown"] else "") + " |")
    lines += [total, ""]
    return "\n".join(lines)


