"""Planning a profile's run without computing it: every stage checked against the samples.

Contract. :func:`plan` takes a profile and the shapes of the tomographic samples it will use
and returns, stage by stage (database, diffusion channels, training, evaluation), the sizes
the run will meet, with a memory estimate where one is known, or raises :class:`ValueError`
naming every stage that could not run (a size not divisible by α, a cutout that does not fit,
a crop larger than its sample). Nothing is computed or written, so a profile that would fail
hours in (``make paper``) is refused in a second. ``srlib plan --profile NAME`` prints it;
``make paper`` runs it first.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FEM_BYTES_PER_UNKNOWN", "REALIZATION_BYTES_PER_VOXEL", "PlanStep", "format_plan",
           "plan"]

#: Budget of the transport solver's memory (`benchmarks/bench_transport.py` measures it),
#: used to estimate the peak of a finite-element solve.
FEM_BYTES_PER_UNKNOWN = 250
#: Peak bytes per voxel of drawing one HR realization with its LR versions: the paper dry run
#: measured 16.0 GiB for 800³ (Reproducing page).
REALIZATION_BYTES_PER_VOXEL = 16.0 * 2**30 / 800**3


@dataclass(frozen=True)
class PlanStep:
    """One checked size of a stage.

    Attributes
    ----------
    stage : str
        "database", "channels", "training" or "evaluation".
    what : str
        What was checked.
    value : str
        The size or count the run will meet.
    memory_gib : float or None
        Estimated peak memory of that step, where there is an estimate (for a solve, from the
        solver's memory budget per unknown and the most unknowns the image can have: an upper
        estimate).
    """

    stage: str
    what: str
    value: str
    memory_gib: float | None = None


def _gib(n_bytes: float) -> float:
    return n_bytes / 2**30


def plan(profile, sample_shapes: dict) -> list[PlanStep]:
    """Check every stage of ``profile`` against the samples' shapes, without computing.

    Parameters
    ----------
    profile : srlib.config.Profile
        The profile.
    sample_shapes : dict of str to tuple
        Shape of each tomographic sample by name (the profile's ``samples``, or all of them
        when it names none).

    Returns
    -------
    list of PlanStep
        The sizes of each stage.

    Raises
    ------
    ValueError
        Listing every problem found, each with its stage.
    """
    names = list(profile.samples or sorted(sample_shapes))
    steps, problems = [], []
    unknown = [n for n in names if n not in sample_shapes]
    if unknown:
        raise ValueError(f"plan: no shape given for the sample(s) {unknown}")
    hr, n_train, n_val, n_test = profile.hr_size, *profile.split
    steps.append(PlanStep("database", "scenarios × realizations (train/val/test)",
                          f"{len(names)} × {profile.n_realizations} "
                          f"({n_train}/{n_val}/{n_test})",
                          _gib(REALIZATION_BYTES_PER_VOXEL * hr**3)))
    for a in profile.alphas:
        lr = hr // a
        steps.append(PlanStep("database", f"LR image at α = {a}", f"{lr}³"))
        steps.append(PlanStep("channels", f"FEM solve of an LR image at α = {a}",
                              f"≤ {(lr + 1) ** 3:,} unknowns",
                              _gib(FEM_BYTES_PER_UNKNOWN * (lr + 1) ** 3)))
        if lr < profile.cutout + 1:
            problems.append(f"training at α = {a}: the LR image ({lr}³) cannot hold a "
                            f"cutout of {profile.cutout}³ plus the mirror's spare voxel")
        batch = profile.batch_size(a)
        steps.append(PlanStep("training", f"batch at α = {a}",
                              f"{batch} × {profile.cutout}³ → {a * profile.cutout}³"))
    if profile.seed_alphas:
        steps.append(PlanStep("training", "second training (seed + 1), N^bin and N^diffu",
                              "α = " + ", ".join(map(str, profile.replica().alphas))))
    edges = {"simulated (HR test realization)": hr}
    for name in names:
        try:
            edges[f"tomographic {name} {tuple(sample_shapes[name])}"] = profile.tomo_edge(
                sample_shapes[name])
        except ValueError as err:
            problems.append(f"evaluation of {name}: {err}")
    for label, edge in edges.items():
        sub = edge // 2
        steps.append(PlanStep("evaluation", f"{label}: crop and its 8 sub-images",
                              f"{edge}³ → 8 × {sub}³",
                              _gib(FEM_BYTES_PER_UNKNOWN * (sub + 1) ** 3)))
        for a in profile.alphas:
            if edge % 2 or sub % a:
                problems.append(f"evaluation of {label} at α = {a}: sub-images of {sub}³ "
                                f"(from {edge}³) are not divisible by α = {a}")
    if problems:
        raise ValueError(f"profile {profile.name!r} cannot run: " + "; ".join(problems))
    order = ("database", "channels", "training", "evaluation")
    return sorted(steps, key=lambda s: order.index(s.stage))


def format_plan(steps) -> str:
    """The plan as lines of text (what ``srlib plan`` prints)."""
    lines = []
    for s in steps:
        memory = f"  (peak ~{s.memory_gib:.1f} GiB)" if s.memory_gib is not None else ""
        lines.append(f"{s.stage:<11} {s.what}: {s.value}{memory}")
    return "\n".join(lines)
