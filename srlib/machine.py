"""What the study costs on this machine: training-step times and the predicted book build.

Contract. :func:`measure` times one training step of every network size of a profile on
this machine, in the arithmetic its training would use (bfloat16 where
:func:`srlib.devices.native_bfloat16` says so and the profile asks for it, float32
elsewhere), and :func:`predict_build` turns those times into the time of a cold ``make book``:
the training notebook is the profile's step count times the step times, with the overhead
(validation, data, checkpoints) of a measured reference build; everything else is the
reference build's remainder, scaled by a NumPy workload's time here against the reference
machine's (:func:`cpu_seconds`). :data:`REFERENCE` is that build: a record of one
measurement, with its CPU, date and arithmetic. ``srlib bench`` prints the report before a
long run.

The prediction is an estimate. The remainder (install, numba's compile, the FEM, evaluation)
follows the NumPy workload only roughly, and the reference's overhead factor is one
machine's; the Reproducing page states how the prediction compared with measured
builds.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from dataclasses import dataclass, field

from srlib.methods import NETWORKS

__all__ = ["REFERENCE", "BuildReference", "MachineReport", "cpu_seconds", "format_report",
           "measure", "predict_build", "training_steps"]

@dataclass(frozen=True)
class BuildReference:
    """A measured cold ``make book`` of the ``quick`` profile, the basis of the prediction.

    Attributes
    ----------
    cpu : str
        Processor (``lscpu``'s model name and instruction-set limits).
    date : str
        Day of the measurement.
    arithmetic : str
        What the training computed in (e.g. "float32, AVX2 limits").
    f32_step_s : dict of int to float
        Median float32 training step per α, measured by :func:`measure` on that machine.
    cpu_s : float
        Median time of :func:`cpu_seconds`'s NumPy workload on that machine.
    train_s : float
        Wall time of training the networks, the second training and the field networks
        included (``wall_time_s`` of ``training.csv`` and ``training_replica.csv`` and the
        field networks' training seconds, summed).
    total_s : float
        Wall time of the whole cold build, install included.
    """

    cpu: str
    date: str
    arithmetic: str
    f32_step_s: dict
    cpu_s: float
    train_s: float
    total_s: float


#: The reference build (see the Reproducing page for its per-notebook times).
REFERENCE = BuildReference(
    cpu="AMD EPYC (family 26), emulating an AVX2-only CPU: SRLIB_BFLOAT16=off, "
        "ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2; 2 cores",
    date="2026-12-06",
    arithmetic="float32",
    f32_step_s={2: 0.072, 4: 0.128, 8: 0.235},
    cpu_s=0.033,
    train_s=1070.7,
    total_s=1675.8,
)


@dataclass(frozen=True)
class MachineReport:
    """Step times of this machine and the cold build they predict.

    Attributes
    ----------
    profile : str
        Name of the profile measured.
    cpu : str
        Processor model.
    capability : str
        The instruction set ATen's CPU kernels use (``torch.backends.cpu.get_cpu_capability``).
    bfloat16 : bool
        Whether the profile's training would autocast to bfloat16 here.
    threads : int
        Torch CPU threads of the measurement.
    step_s : dict of int to float
        Median training step per α, in the arithmetic training would use.
    f32_step_s : dict of int to float
        The same in float32 (equal to ``step_s`` without bfloat16).
    cpu_s : float
        Median time of :func:`cpu_seconds`'s NumPy workload here.
    train_s, rest_s, total_s : float
        Predicted training time of the six networks, the rest of the build, and their sum.
    """

    profile: str
    cpu: str
    capability: str
    bfloat16: bool
    threads: int
    step_s: dict
    f32_step_s: dict
    cpu_s: float
    train_s: float
    rest_s: float
    total_s: float
    reference: BuildReference = field(default=REFERENCE)


def training_steps(profile, alpha: int) -> int:
    """Training steps of one network at ``alpha``: its epoch cap times the steps per epoch.

    The ``quick`` profile's patience is no shorter than its epoch caps, so its networks run
    to the cap; with a shorter patience this is an upper bound.
    """
    return profile.max_epochs_for(alpha) * profile.steps_per_epoch


def _step_work(profile, step_s: dict) -> float:
    """Seconds of training steps of a build: every network's steps times its step time.

    The study's two kinds at every α and at ``seed_alphas`` (the second training), and the
    field networks of chapter 9 at ``field_alphas`` (a step of theirs costs about one of the
    network they start from).
    """
    from srlib.fieldnets import FIELD_NETWORKS

    study = len(NETWORKS) * sum(training_steps(profile, a) * step_s[a]
                                for a in (*profile.alphas, *profile.seed_alphas))
    fields = len(FIELD_NETWORKS) * sum(
        profile.field_epochs_for(a) * profile.steps_per_epoch * step_s[a]
        for a in profile.field_alphas)
    return study + fields


def predict_build(profile, step_s: dict, cpu_s: float,
                  reference: BuildReference = REFERENCE) -> tuple[float, float]:
    """Predicted (training, rest) seconds of a cold build from step times.

    Training: both kinds of network, every α and the second training at ``seed_alphas``,
    and the field networks at ``field_alphas``, ``training_steps × step_s[α]``, times the
    reference build's ratio of its measured training time to the reference's float32 steps
    times the same counts (validation, data and checkpoints ride on the steps). The rest
    (install, numba, the FEM, geodesics, evaluation): the reference build's time outside
    training, times this machine's :func:`cpu_seconds` over the reference's (the rest does
    not follow the network's instruction set, so a step time would misjudge it).

    Parameters
    ----------
    profile : srlib.config.Profile
        The profile to predict (its α must be in the reference).
    step_s : dict of int to float
        Step times per α, in training's arithmetic.
    cpu_s : float
        This machine's :func:`cpu_seconds`.
    reference : BuildReference
        The measured build the prediction scales.

    Returns
    -------
    tuple of float
        Seconds of training and of everything else; the rest is NaN for a profile other than
        ``quick`` (the reference's remainder says nothing about other sizes).

    Raises
    ------
    ValueError
        If the reference holds no measurement, or lacks an α of the profile.
    """
    missing = [a for a in profile.alphas if a not in reference.f32_step_s]
    if missing or reference.train_s <= 0 or min(reference.f32_step_s.values()) <= 0:
        raise ValueError(f"the reference build has no step time for alpha {missing}"
                         if missing else "the reference build holds no measurement")
    from srlib.config import get_profile

    quick = get_profile("quick")
    overhead = reference.train_s / _step_work(quick, reference.f32_step_s)
    train = overhead * _step_work(profile, step_s)
    rest = ((reference.total_s - reference.train_s) * cpu_s / reference.cpu_s
            if profile == quick else math.nan)
    return train, rest


def cpu_seconds(repeats: int = 3) -> float:
    """Median time of a fixed NumPy/SciPy workload on a 96³ volume: this CPU's general speed.

    Parameters
    ----------
    repeats : int
        Timed runs (after one untimed).

    Returns
    -------
    float
        Seconds.
    """
    import numpy as np
    from scipy import ndimage

    volume = np.random.default_rng(0).random((96, 96, 96))
    solid = volume < 0.6

    def work():  # the kind of work outside training: labels, morphology, FFTs
        ndimage.label(solid)
        ndimage.binary_erosion(solid, iterations=3)
        np.fft.rfftn(volume)

    return _median_seconds(work, repeats=repeats, warmup=1)


def _median_seconds(fn, *, repeats: int, warmup: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _step_seconds(profile, alpha: int, *, bf16: bool, repeats: int) -> float:
    import torch
    import torch.nn.functional as F

    from srlib.network import SRResNet3d

    torch.manual_seed(0)
    model = SRResNet3d(1, alpha, features=profile.features, blocks=profile.blocks)
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.learning_rate)
    n, b = profile.cutout, profile.batch_size(alpha)
    x = torch.rand(b, 1, n, n, n).round()
    y = (torch.rand(b, 1, alpha * n, alpha * n, alpha * n) > 0.5).float()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model.logits(x)
        F.binary_cross_entropy_with_logits(logits.float(), y).backward()
        optimizer.step()

    # two untimed steps: oneDNN picks its kernels on the first calls
    return _median_seconds(step, repeats=repeats, warmup=2)


def measure(profile=None, *, repeats: int = 3, threads: int | None = None) -> MachineReport:
    """Time a training step per α on this machine's CPU and predict the cold build.

    Parameters
    ----------
    profile : srlib.config.Profile or str, optional
        The profile (default: ``$SRLIB_PROFILE``, else "quick").
    repeats : int
        Timed steps per α (after two untimed ones); the median counts.
    threads : int, optional
        Torch CPU threads during the measurement (default: torch's, all cores).

    Returns
    -------
    MachineReport
        Step times and the prediction.
    """
    import torch

    from srlib._checks import positive_int
    from srlib._heap import keep_freed_memory
    from srlib.config import Profile, get_profile
    from srlib.devices import torch_threads
    from srlib.network import SRResNet3d
    from srlib.training.loop import training_autocast
    from srlib.training.settings import TrainConfig

    if not isinstance(profile, Profile):
        profile = get_profile(profile)
    repeats = positive_int(repeats, "repeats")
    keep_freed_memory()  # as training does
    if threads is not None:
        threads = positive_int(threads, "threads")
    with torch_threads(threads):
        config = TrainConfig.from_profile(profile, min(profile.alphas), seed=profile.seed)
        model = SRResNet3d(1, min(profile.alphas), features=profile.features,
                           blocks=profile.blocks)
        bf16 = training_autocast(model, config, torch.device("cpu"))
        f32 = {a: _step_seconds(profile, a, bf16=False, repeats=repeats)
               for a in profile.alphas}
        steps = ({a: _step_seconds(profile, a, bf16=True, repeats=repeats)
                  for a in profile.alphas} if bf16 else dict(f32))
        used = torch.get_num_threads()
    cpu = cpu_seconds(9)  # cheap: more runs for a steadier median
    train, rest = predict_build(profile, steps, cpu)
    return MachineReport(profile=profile.name, cpu=_cpu_model(),
                         capability=torch.backends.cpu.get_cpu_capability(), bfloat16=bf16,
                         threads=used, step_s=steps, f32_step_s=f32, cpu_s=cpu, train_s=train,
                         rest_s=rest, total_s=train + rest)


def format_report(report: MachineReport) -> str:
    """The report as lines of text (what ``srlib bench`` prints)."""
    arith = "bfloat16" if report.bfloat16 else "float32"
    lines = [f"CPU: {report.cpu} (ATen: {report.capability}, {report.threads} threads)",
             f"training arithmetic: {arith}"]
    for a, s in report.step_s.items():
        extra = (f" (float32 {report.f32_step_s[a] * 1e3:.0f} ms)" if report.bfloat16 else "")
        lines.append(f"  step at alpha={a}: {s * 1e3:.0f} ms{extra}")
    ref = report.reference
    if math.isnan(report.rest_s):
        lines.append(f"predicted training of the six networks ({report.profile}): "
                     f"{report.train_s / 60:.1f} min (the rest of the build is predicted for "
                     "the quick profile only)")
    else:
        lines.append(f"predicted cold `make book` ({report.profile}): {report.total_s / 60:.1f} "
                     f"min (training {report.train_s / 60:.1f} min, the rest "
                     f"{report.rest_s / 60:.1f} min)")
    lines += [
        f"  scaled from a measured build of {ref.total_s / 60:.1f} min on {ref.cpu} "
        f"({ref.date}, {ref.arithmetic}); an estimate, not a measurement",
    ]
    return "\n".join(lines)
