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
resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from srlib import metrics
from srlib._checks import as_binary, check_alpha
from srlib.resample import downsample, interpolate_quadratic_binary, subdivide

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "evaluate_image", "network_resolver", "run_protocol", "sub_image_pairs"]

#: Method names in the results table (the paper's N^bin, N^diffu and the interpolation).
METHODS = ("bin", "diffu", "interpolation")


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
                   axis: int = 0, effective: bool = True, connectivity: str = "face") -> list[dict]:
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

    Returns
    -------
    list of dict
        One row per sub-image and method: labels, the fields of
        :class:`srlib.metrics.Evaluation`, and the SR time in seconds.
    """
    rows = []
    for k, (lr_k, hr_k) in enumerate(sub_image_pairs(hr, alpha)):
        reference = metrics.reference_tortuosities(hr_k, axis=axis, effective=effective,
                                                   connectivity=connectivity)
        for method, resolve in resolvers.items():
            t0 = time.perf_counter()
            sr_k = resolve(lr_k)
            seconds = time.perf_counter() - t0
            ev = metrics.evaluate(sr_k, hr_k, alpha, axis=axis, effective=effective,
                                  connectivity=connectivity, reference=reference)
            rows.append({"dataset": dataset, "sample": sample, "sub_image": k, "method": method,
                         **ev.as_dict(), "sr_seconds": seconds,
                         "hr_solid_fraction": float(hr_k.mean())})
    return rows


def _write_csv(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".csv")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_protocol(images, networks: dict, alphas, out_dir, *, methods=METHODS,
                 effective: bool = True, connectivity: str = "face", axis: int = 0,
                 device=None, progress: bool = True):
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
    connectivity : str
        FEM mesh convention (transport metrics and N^diffu's input).
    axis : int
        Transport axis.
    device : str, optional
        Torch device for the networks.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        The whole table (also written to ``<out_dir>/evaluation.csv``).
    """
    import pandas as pd
    from tqdm import tqdm

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    out_dir = Path(out_dir)
    parts = out_dir / "evaluation"
    groups = [(d, s, hr, a) for d, s, hr in images for a in alphas]
    frames = []
    for dataset, sample, hr, alpha in tqdm(groups, desc="evaluation", disable=not progress):
        part = parts / f"{dataset}_{sample}_a{alpha}.csv"
        if part.exists():
            frames.append(pd.read_csv(part))
            continue
        resolvers = {}
        for method in methods:
            if method == "interpolation":
                resolvers[method] = lambda lr, a=alpha: interpolate_quadratic_binary(lr, a)
            elif (method, alpha) in networks:
                resolvers[method] = network_resolver(networks[(method, alpha)],
                                                     connectivity=connectivity, device=device)
            else:
                logger.warning("no trained network %s for alpha=%d; skipped", method, alpha)
        rows = evaluate_image(hr, alpha=alpha, resolvers=resolvers, dataset=dataset,
                              sample=sample, axis=axis, effective=effective,
                              connectivity=connectivity)
        frame = pd.DataFrame(rows)
        _write_csv(frame, part)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    _write_csv(table, out_dir / "evaluation.csv")
    return table
