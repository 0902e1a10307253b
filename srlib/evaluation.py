"""The evaluation protocol of section 3: every method, every metric, on sub-images.

Contract. For a high-resolution image (a simulated test realization or a tomographic sample)
and each scaling factor α, :func:`evaluate_image` down-samples it by Eq. (3), splits both the
HR image and its LR version into 8 non-overlapping sub-images (:func:`srlib.resample.subdivide`),
super-resolves every LR sub-image with every method, and scores the result against the HR
sub-image with :func:`srlib.metrics.evaluate` (accuracy, surface accuracy, geodesic and effective
tortuosity accuracies per phase). The methods are N^bin (the LR image alone), N^diffu (the LR
image plus its diffusion channels, computed on that LR sub-image, Eqs. 7-8 and 13) and
tri-quadratic interpolation thresholded at 0.5. The ground truth's tortuosities are computed once
per sub-image and reused for all methods.

:func:`run_protocol` does this for the whole study of a profile and writes one table with a
row per dataset, sample, sub-image, α and method to ``<out>/evaluation.csv``; each
(dataset, sample, α) group is written to its own file first (atomically), so an interrupted run
resumes where it stopped. The HR sub-images do not depend on α, so their tortuosities are
computed once per image (:func:`reference_tortuosities`) and shared by all α. Images can be
evaluated in parallel processes (``workers``). The effective tortuosity (a finite-element solve
per phase and image) dominates the cost; ``effective_sub_images=k`` computes it on the first
``k`` sub-images of every image only (column ``effective_computed`` says where), so that a
smaller budget is visible in the table rather than silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from srlib import metrics
from srlib._checks import as_binary, check_alpha
from srlib.io import atomic_path
from srlib.resample import downsample, interpolate_quadratic_binary, subdivide

logger = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "N_SUB_IMAGES",
    "compare_methods",
    "evaluate_image",
    "median_table",
    "method_resolvers",
    "network_resolver",
    "reference_tortuosities",
    "run_protocol",
    "sub_image_pairs",
]

#: Method names in the results table (the paper's N^bin, N^diffu and the interpolation).
METHODS = ("bin", "diffu", "interpolation")
#: Sub-images per image (2 × 2 × 2, :func:`srlib.resample.subdivide`).
N_SUB_IMAGES = 8


def _effective_here(k: int, effective: bool, effective_sub_images: int | None) -> bool:
    """Whether the effective tortuosity is computed for sub-image ``k``."""
    return effective and (effective_sub_images is None or k < effective_sub_images)


def _check_effective_sub_images(effective_sub_images) -> int | None:
    if effective_sub_images is None:
        return None
    if (isinstance(effective_sub_images, bool) or not isinstance(effective_sub_images, int)
            or not 0 <= effective_sub_images <= N_SUB_IMAGES):
        raise ValueError(f"effective_sub_images must be None or an int in 0..{N_SUB_IMAGES}, "
                         f"got {effective_sub_images!r}")
    return effective_sub_images


def reference_tortuosities(hr, *, axis: int = 0, effective: bool = True,
                           effective_sub_images: int | None = None,
                           connectivity: str = "face") -> list[dict]:
    """Tortuosities of the 8 HR sub-images of an image (the same for every α).

    Parameters
    ----------
    hr : array_like
        Binary HR image, every extent even.
    axis : int
        Transport axis.
    effective : bool
        Also compute effective tortuosities.
    effective_sub_images : int, optional
        Compute them only for the first ``k`` sub-images (None: all).
    connectivity : str
        FEM mesh convention.

    Returns
    -------
    list of dict
        :func:`srlib.metrics.reference_tortuosities` of sub-image ``k``, for ``k = 0..7``.
    """
    hr = as_binary(hr, name="hr")
    effective_sub_images = _check_effective_sub_images(effective_sub_images)
    return [metrics.reference_tortuosities(
                hr_k, axis=axis, connectivity=connectivity,
                effective=_effective_here(k, effective, effective_sub_images))
            for k, hr_k in enumerate(subdivide(hr))]


def sub_image_pairs(hr, alpha: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 8 pairs (LR sub-image, HR sub-image) of an image at scaling factor ``alpha``.

    Parameters
    ----------
    hr : array_like
        Binary HR image, every extent divisible by ``2 * alpha``.
    alpha : int
        Scaling factor.

    Returns
    -------
    list of tuple
        ``(lr_k, hr_k)`` for ``k = 0..7``, with ``lr_k == downsample(hr_k, alpha)``.
    """
    hr = as_binary(hr, name="hr")
    alpha = check_alpha(alpha)
    if any(n % (2 * alpha) for n in hr.shape):
        raise ValueError(f"hr shape {hr.shape} must be divisible by 2 * alpha = {2 * alpha}")
    return list(zip(subdivide(downsample(hr, alpha)), subdivide(hr), strict=True))


def network_resolver(network, *, connectivity: str = "face", device=None):
    """A function ``lr -> bool SR image`` applying a trained network with its threshold μ*.

    Parameters
    ----------
    network : srlib.training.TrainedNetwork
        The network (kind "bin" or "diffu") and its threshold.
    connectivity : str
        Mesh convention of the diffusion channels of N^diffu's input.
    device : str, optional
        Torch device for inference.

    Returns
    -------
    callable
        Maps a binary LR image to the thresholded SR image (Eq. 17 with μ*).
    """
    from srlib.inference import super_resolve
    from srlib.transport import diffusion_channels

    def resolve(lr: np.ndarray) -> np.ndarray:
        x = lr.astype(np.float32)[None]
        if network.kind == "diffu":
            x = np.concatenate([x, diffusion_channels(lr, connectivity=connectivity)])
        return super_resolve(network.model, x, threshold=network.threshold, device=device,
                             progress=False)

    return resolve


def evaluate_image(hr, *, alpha: int, resolvers: dict, dataset: str, sample: str,
                   axis: int = 0, effective: bool = True, connectivity: str = "face",
                   effective_sub_images: int | None = None,
                   references: list | None = None) -> list[dict]:
    """Score every method on the 8 sub-images of one HR image at one scaling factor.

    Parameters
    ----------
    hr : array_like
        Binary HR image.
    alpha : int
        Scaling factor.
    resolvers : dict
        Method name -> function mapping a binary LR sub-image to a binary SR sub-image.
    dataset : str
        Label of the data set ("simulated" or "tomographic").
    sample : str
        Label of the image (scenario or sample name).
    axis : int
        Transport axis of the tortuosities.
    effective : bool
        Compute effective tortuosities (FEM).
    connectivity : str
        FEM mesh convention.
    effective_sub_images : int, optional
        Compute effective tortuosities only on the first ``k`` sub-images (None: all); the
        others get None in the ``tau_eff_*`` fields and ``effective_computed`` False.
    references : list of dict, optional
        :func:`reference_tortuosities` of ``hr`` (same ``axis``, ``effective``,
        ``effective_sub_images`` and ``connectivity``), to share them between α.

    Returns
    -------
    list of dict
        One row per sub-image and method: labels, the fields of
        :class:`srlib.metrics.Evaluation`, ``effective_computed``, the SR time in seconds and
        the HR sub-image's solid fraction.
    """
    effective_sub_images = _check_effective_sub_images(effective_sub_images)
    if references is None:
        references = reference_tortuosities(hr, axis=axis, effective=effective,
                                            effective_sub_images=effective_sub_images,
                                            connectivity=connectivity)
    if len(references) != N_SUB_IMAGES:
        raise ValueError(f"references must hold {N_SUB_IMAGES} entries, got {len(references)}")
    rows = []
    for k, (lr_k, hr_k) in enumerate(sub_image_pairs(hr, alpha)):
        eff_k = _effective_here(k, effective, effective_sub_images)
        for method, resolve in resolvers.items():
            t0 = time.perf_counter()
            sr_k = resolve(lr_k)
            seconds = time.perf_counter() - t0
            ev = metrics.evaluate(sr_k, hr_k, alpha, axis=axis, effective=eff_k,
                                  connectivity=connectivity, reference=references[k])
            rows.append({"dataset": dataset, "sample": sample, "sub_image": k, "method": method,
                         **ev.as_dict(), "effective_computed": eff_k, "sr_seconds": seconds,
                         "hr_solid_fraction": float(hr_k.mean())})
    return rows


def _write_csv(frame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def method_resolvers(alpha: int, networks: dict, *, methods=METHODS, connectivity: str = "face",
                     device=None) -> dict:
    """The super-resolution function of every method at one scaling factor.

    Parameters
    ----------
    alpha : int
        Scaling factor.
    networks : dict
        ``(kind, alpha) -> srlib.training.TrainedNetwork``.
    methods : sequence of str
        Subset of :data:`METHODS`; a network method without a network at ``alpha`` is skipped
        with a warning.
    connectivity : str
        Mesh convention of N^diffu's diffusion channels.
    device : str, optional
        Torch device.

    Returns
    -------
    dict
        Method name -> function mapping a binary LR image to the binary SR image.
    """
    alpha = check_alpha(alpha)
    resolvers = {}
    for method in methods:
        if method == "interpolation":
            resolvers[method] = lambda lr, a=alpha: interpolate_quadratic_binary(lr, a)
        elif (method, alpha) in networks:
            resolvers[method] = network_resolver(networks[(method, alpha)],
                                                 connectivity=connectivity, device=device)
        else:
            logger.warning("no trained network %s for alpha=%d; skipped", method, alpha)
    return resolvers


def network_ids(networks: dict, alpha: int, methods) -> dict:
    """Identity of each method's network at ``alpha``: SHA-256 prefix of its weights and μ*.

    Stored rows carry it (column ``network_id``), so results of networks that were retrained
    since are recomputed rather than reused. The hash covers the parameter names, shapes,
    dtypes and values (not the weights file, whose bytes differ between saves of the same
    weights), so a bit-identical retraining keeps its results. The interpolation's identity is
    ``"-"``.
    """
    import hashlib

    ids = {}
    for method in methods:
        net = networks.get((method, alpha))
        if net is None:
            ids[method] = "-"
            continue
        import torch  # only with a network

        digest = hashlib.sha256()
        for name, tensor in net.model.state_dict().items():
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        ids[method] = f"{digest.hexdigest()[:16]}:{net.threshold:.6f}"
    return ids


def _part_is_current(frame, methods, effective: bool, effective_sub_images,
                     ids: dict) -> bool:
    """Whether a stored group matches these methods, effective set and networks (``ids``)."""
    if "effective_computed" not in frame or not set(frame["method"]) <= set(methods):
        return False
    if "network_id" not in frame:
        return False
    if any(str(nid) != ids.get(m) for m, nid in zip(frame["method"], frame["network_id"],
                                                     strict=True)):
        return False
    expected = [_effective_here(int(k), effective, effective_sub_images)
                for k in frame["sub_image"]]
    return [bool(v) for v in frame["effective_computed"]] == expected


def _evaluate_groups(dataset: str, sample: str, hr, alphas, parts, networks: dict, methods,
                     ids: dict, effective: bool, effective_sub_images, connectivity: str,
                     axis: int, device, threads: int | None = None) -> list[tuple[int, int]]:
    """Evaluate one image at the given α, write each α's part file; returns (α, rows).

    ``ids`` maps each α to its :func:`network_ids`, computed once by the caller.
    """
    import pandas as pd

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    references = reference_tortuosities(hr, axis=axis, effective=effective,
                                        effective_sub_images=effective_sub_images,
                                        connectivity=connectivity)
    done = []
    for alpha, part in zip(alphas, parts, strict=True):
        resolvers = method_resolvers(alpha, networks, methods=methods,
                                     connectivity=connectivity, device=device)
        rows = evaluate_image(hr, alpha=alpha, resolvers=resolvers,
                              dataset=dataset, sample=sample, axis=axis, effective=effective,
                              connectivity=connectivity, effective_sub_images=effective_sub_images,
                              references=references)
        frame = pd.DataFrame(rows)
        if len(frame):
            frame["network_id"] = frame["method"].map(ids[alpha])
        _write_csv(frame, Path(part))
        done.append((alpha, len(rows)))
    return done


@contextlib.contextmanager
def _single_threaded_children():
    """Environment for worker processes: one BLAS/OpenMP thread each (restored afterwards)."""
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_protocol(images, networks: dict, alphas, out_dir, *, methods=METHODS,
                 effective: bool = True, effective_sub_images: int | None = None,
                 connectivity: str = "face", axis: int = 0, device=None, workers: int = 1,
                 progress: bool = True):
    """Run the protocol of section 3 on a set of images and write the results table.

    Parameters
    ----------
    images : sequence of tuple
        ``(dataset, sample, hr)``: e.g. ``("simulated", "berea", test_realization)`` and
        ``("tomographic", "berea", crop)``.
    networks : dict
        ``(kind, alpha) -> srlib.training.TrainedNetwork`` (from
        :func:`srlib.training.load_networks`); a method without a network for some α is
        skipped there with a warning.
    alphas : sequence of int
        Scaling factors.
    out_dir : path
        Folder for ``evaluation.csv`` and its per-group parts (``evaluation/``).
    methods : sequence of str
        Subset of :data:`METHODS`.
    effective : bool
        Compute effective tortuosities.
    effective_sub_images : int, optional
        Compute them only on the first ``k`` of the 8 sub-images of every image (None: all).
        Rows without them have ``effective_computed`` False and empty ``tau_eff_*`` fields.
    connectivity : str
        FEM mesh convention (transport metrics and N^diffu's input).
    axis : int
        Transport axis.
    device : str, optional
        Torch device for the networks.
    workers : int
        Number of processes evaluating images in parallel (1: in this process). Each worker
        runs single-threaded.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        The whole table (also written to ``<out_dir>/evaluation.csv``), rows ordered by image,
        then α, sub-image and method. A stored group is reused only if it was computed with the
        same methods and the same ``effective_sub_images``; otherwise it is recomputed.
    """
    import pandas as pd
    from tqdm import tqdm

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    effective_sub_images = _check_effective_sub_images(effective_sub_images)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    out_dir = Path(out_dir)
    parts = out_dir / "evaluation"
    alphas = list(alphas)

    def part_path(dataset, sample, alpha):
        return parts / f"{dataset}_{sample}_a{alpha}.csv"

    ids = {alpha: network_ids(networks, alpha, methods) for alpha in alphas}
    jobs = []  # (dataset, sample, hr, missing alphas)
    for dataset, sample, hr in images:
        missing = []
        for alpha in alphas:
            path = part_path(dataset, sample, alpha)
            if path.exists():
                stored = pd.read_csv(path, dtype={"network_id": str})
                if _part_is_current(stored, methods, effective, effective_sub_images,
                                    ids[alpha]):
                    continue
                logger.warning("%s was computed with other settings; recomputing", path)
            missing.append(alpha)
        if missing:
            jobs.append((dataset, sample, hr, missing))
    common = {"networks": networks, "methods": tuple(methods), "ids": ids, "effective": effective,
              "effective_sub_images": effective_sub_images, "connectivity": connectivity,
              "axis": axis, "device": device}
    total = sum(len(job[3]) for job in jobs)
    with tqdm(total=total, desc="evaluation (image, α)", disable=not progress) as bar:
        if workers == 1 or len(jobs) <= 1:
            for dataset, sample, hr, missing in jobs:
                _evaluate_groups(dataset, sample, hr, missing,
                                 [part_path(dataset, sample, a) for a in missing], **common)
                bar.update(len(missing))
        else:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            with _single_threaded_children(), ProcessPoolExecutor(
                    min(workers, len(jobs)), mp_context=context) as pool:
                futures = [pool.submit(_evaluate_groups, dataset, sample, hr, missing,
                                       [str(part_path(dataset, sample, a)) for a in missing],
                                       threads=1, **common)
                           for dataset, sample, hr, missing in jobs]
                for future in as_completed(futures):
                    bar.update(len(future.result()))
    frames = [pd.read_csv(part_path(d, s, a)) for d, s, _ in images for a in alphas]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    _write_csv(table, out_dir / "evaluation.csv")
    return table


# ----------------------------------------------------------------------------- summaries


def _median(values) -> float:
    """Median over the defined values (``nan`` left out, ``-inf`` kept as the worst)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else float("nan")


def median_table(table, metrics, *, by=("dataset", "alpha", "method")):
    """Medians of metrics per group of the results table.

    ``nan`` values (undefined: no path in the ground truth, or not computed) are left out;
    ``-inf`` values (lost paths) are kept and count as the worst values, so a median is
    ``-inf`` when at least half of a group lost the path.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`run_protocol`.
    metrics : sequence of str
        Columns.
    by : sequence of str
        Grouping columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``by``, one column per metric.
    """
    return table.groupby(list(by))[list(metrics)].agg(_median)


def compare_methods(table, metrics, method: str, baseline: str,
                    *, by=("dataset", "alpha")):
    """Compare two methods per group: medians, their difference and paired wins.

    The two methods are paired by sub-image (same dataset, sample, sub-image and α). A pair
    counts as a win when ``method`` scores higher, a loss when lower; ties and pairs with a
    ``nan`` are not counted. ``p_sign`` is the two-sided sign-test p-value of wins against
    losses (:func:`scipy.stats.binomtest`), nan when there are none.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`run_protocol`.
    metrics : sequence of str
        Columns to compare.
    method, baseline : str
        Method names (values of the ``method`` column).
    by : sequence of str
        Grouping columns.

    Returns
    -------
    pandas.DataFrame
        One row per group and metric: ``median_<method>``, ``median_<baseline>``,
        ``difference`` (method minus baseline; nan if both are ``-inf``), ``higher`` (the
        method's median is strictly higher), ``wins``, ``losses``, ``ties``, ``pairs`` and
        ``p_sign``.
    """
    import pandas as pd
    from scipy.stats import binomtest

    keys = ["dataset", "sample", "alpha", "sub_image"]
    a = table[table["method"] == method].set_index(keys)
    b = table[table["method"] == baseline].set_index(keys)
    joined = a[list(metrics)].merge(b[list(metrics)], left_index=True, right_index=True,
                                    suffixes=("_a", "_b")).reset_index()
    rows = []
    for group, sub in joined.groupby(list(by)):
        group = group if isinstance(group, tuple) else (group,)
        for metric in metrics:
            x = sub[f"{metric}_a"].to_numpy(float)
            y = sub[f"{metric}_b"].to_numpy(float)
            ok = ~(np.isnan(x) | np.isnan(y))
            wins = int(np.count_nonzero(x[ok] > y[ok]))
            losses = int(np.count_nonzero(x[ok] < y[ok]))
            med_a, med_b = _median(x), _median(y)
            with np.errstate(invalid="ignore"):
                diff = med_a - med_b
            rows.append({**dict(zip(by, group, strict=True)), "metric": metric,
                         f"median_{method}": med_a, f"median_{baseline}": med_b,
                         "difference": diff, "higher": bool(med_a > med_b),
                         "wins": wins, "losses": losses,
                         "ties": int(np.count_nonzero(ok)) - wins - losses,
                         "pairs": int(np.count_nonzero(ok)),
                         "p_sign": (binomtest(wins, wins + losses).pvalue if wins + losses
                                    else float("nan"))})
    return pd.DataFrame(rows)
