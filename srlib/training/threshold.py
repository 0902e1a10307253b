r"""The threshold μ* of Eq. (18), which turns the network's probabilities into a binary image.

Contract. A voxel is solid where the network's probability is at least μ (Eq. (17)); μ* is
the μ in (0, 1) that minimises the mean absolute error of the porosity over the validation
cutouts (Eq. (18)). :func:`porosity_error` evaluates that objective, :func:`fit_threshold`
minimises it (a grid search, then Nelder–Mead as in the paper), :func:`predict_cutouts` runs a
network on the cutouts of validation pairs, and :func:`fit_model_threshold` chains the two.
Arrays passed in are never modified; the model's mode and device are restored.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import torch
from scipy.optimize import minimize
from tqdm import tqdm

from srlib._checks import positive_int
from srlib.network import SRResNet3d, resolve_device
from srlib.training.cutouts import as_pairs, cutout_at

__all__ = ["fit_model_threshold", "fit_threshold", "porosity_error", "predict_cutouts"]

logger = logging.getLogger(__name__)


def _prepare_threshold_data(probabilities, targets):
    if isinstance(probabilities, np.ndarray) and probabilities.ndim == 0:
        raise ValueError("probabilities must be a sequence of arrays")
    if len(probabilities) != len(targets):
        raise ValueError(
            f"got {len(probabilities)} probability arrays but {len(targets)} targets"
        )
    if len(probabilities) == 0:
        raise ValueError("probabilities is empty; at least one cutout is needed")
    sorted_probs, pore_fractions = [], []
    for k, (p, t) in enumerate(zip(probabilities, targets, strict=True)):
        p = np.asarray(p)
        t = np.asarray(t)
        if p.shape != t.shape or p.size == 0:
            raise ValueError(
                f"probabilities[{k}] has shape {p.shape} but targets[{k}] has {t.shape}"
            )
        if not np.issubdtype(p.dtype, np.floating):
            raise ValueError(f"probabilities[{k}] must be floating point, got {p.dtype}")
        if not (np.all(p >= 0) and np.all(p <= 1)):
            raise ValueError(f"probabilities[{k}] has values outside [0, 1]")
        if t.dtype != bool and not np.all((t == 0) | (t == 1)):
            raise ValueError(f"targets[{k}] must be binary (True = solid)")
        sorted_probs.append(np.sort(p, axis=None))
        pore_fractions.append(1.0 - np.count_nonzero(t) / t.size)
    return sorted_probs, np.asarray(pore_fractions)


def _porosity_objective(sorted_probs, pore_fractions, mu: float) -> float:
    # ε(P ≥ μ) = fraction of voxels with P < μ (pore = below the threshold).
    eps = np.array([np.searchsorted(s, mu, side="left") / s.size for s in sorted_probs])
    return float(np.mean(np.abs(eps - pore_fractions)))


def porosity_error(probabilities, targets, mu: float) -> float:
    """Mean absolute porosity error of thresholding at ``mu``: the objective of Eq. (18).

    Parameters
    ----------
    probabilities : sequence of numpy.ndarray
        Network outputs in [0, 1] (one array per cutout, or one array whose first axis
        indexes cutouts).
    targets : sequence of numpy.ndarray
        Matching binary high-resolution images (True = solid).
    mu : float
        Threshold; a voxel is solid if its probability is ≥ ``mu`` (Eq. (17)).

    Returns
    -------
    float
        Mean over cutouts of ``|ε(P ≥ μ) − ε(HR)|``, ε the pore fraction.
    """
    sorted_probs, pore_fractions = _prepare_threshold_data(probabilities, targets)
    return _porosity_objective(sorted_probs, pore_fractions, float(mu))


def fit_threshold(probabilities, targets, *, grid: int = 999) -> float:
    """Find the threshold μ* of Eq. (18) by the Nelder–Mead method.

    μ* minimises the mean over cutouts of ``|ε(P ≥ μ) − ε(HR)|`` (ε the pore fraction) for
    μ in (0, 1). The objective is piecewise constant in μ (it changes only where μ passes a
    probability value), so a Nelder–Mead search started at an arbitrary point can stall on a
    flat plateau far from the optimum. We therefore evaluate it first on a grid of ``grid``
    equally spaced values in (0, 1) and start Nelder–Mead (with bounds (0, 1) and a first
    step of one grid spacing) from the best grid point; the better of the two is returned.

    Parameters
    ----------
    probabilities : sequence of numpy.ndarray
        Network outputs in [0, 1], one array per cutout (any shape), or one array whose first
        axis indexes cutouts.
    targets : sequence of numpy.ndarray
        Matching binary high-resolution images (True = solid).
    grid : int
        Number of grid points of the initial search.

    Returns
    -------
    float
        μ* in (0, 1).

    Raises
    ------
    ValueError
        If the inputs do not match or are not probabilities and binary images.
    """
    grid = positive_int(grid, "grid")
    sorted_probs, pore_fractions = _prepare_threshold_data(probabilities, targets)

    def objective(mu):
        return _porosity_objective(sorted_probs, pore_fractions, float(np.ravel(mu)[0]))

    mus = np.linspace(0.0, 1.0, grid + 2)[1:-1]
    values = np.array([objective(m) for m in mus])
    best = int(np.argmin(values))
    mu0, f0 = float(mus[best]), float(values[best])
    step = 1.0 / (grid + 1)
    lo, hi = 1e-9, 1.0 - 1e-9
    second = mu0 + step if mu0 + step < hi else mu0 - step
    res = minimize(
        objective, x0=[mu0], method="Nelder-Mead", bounds=[(lo, hi)],
        options={"initial_simplex": [[mu0], [second]], "xatol": 1e-7, "fatol": 0.0,
                 "maxiter": 400},
    )
    mu = float(res.x[0])
    if objective(mu) > f0:
        mu = mu0
    logger.info("fit_threshold: mu* = %.6f (objective %.3g; best grid point %.4f: %.3g)",
                mu, objective(mu), mu0, f0)
    return mu


def predict_cutouts(model: SRResNet3d, pairs, *, cutout: int = 24, stride: int | None = None,
                    batch_size: int = 4, device=None, progress: bool = True
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run the network on every cutout of a grid of positions of the given pairs.

    The paper fits μ* (Eq. (18)) on "all possible 24³ cutouts of low-resolution images in the
    validation set"; ``stride=1`` gives literally all positions. The default
    ``stride=cutout`` gives all non-overlapping cutouts, which costs (cutout)³ times less
    and covers every voxel once (except a remainder narrower than the cutout at the far
    ends). Each cutout is super-resolved on its own, as during training.

    Memory: the result holds ``(α cutout)³`` float32 values per cutout (28 MB at α = 8,
    cutout = 24).

    Parameters
    ----------
    model : SRResNet3d
        Trained network (its mode is restored afterwards).
    pairs : sequence of Pair
        Validation pairs.
    cutout : int
        Edge of the low-resolution cutouts.
    stride : int, optional
        Distance between cutout positions; default ``cutout``.
    batch_size : int
        Cutouts per forward pass.
    device : str, torch.device or None
        See :func:`~srlib.network.resolve_device`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    probabilities : list of numpy.ndarray
        float32 ``(α cutout,) * 3`` network outputs.
    targets : list of numpy.ndarray
        Matching bool targets.
    """
    pairs = as_pairs(pairs, "pairs")
    cutout = positive_int(cutout, "cutout")
    stride = cutout if stride is None else positive_int(stride, "stride")
    batch_size = positive_int(batch_size, "batch_size")
    jobs = []
    for k, p in enumerate(pairs):
        if p.alpha != model.alpha or p.channels != model.in_channels:
            raise ValueError(
                f"pairs[{k}] (alpha={p.alpha}, {p.channels} channels) does not match the model "
                f"(alpha={model.alpha}, in_channels={model.in_channels})"
            )
        if min(p.lr_shape) < cutout:
            raise ValueError(f"pairs[{k}] input shape {p.lr_shape} is smaller than the cutout")
        starts = [range(0, n - cutout + 1, stride) for n in p.lr_shape]
        jobs += [(p, c) for c in itertools.product(*starts)]
    dev = resolve_device(device)
    device_before = next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    probs, targets = [], []
    try:
        with torch.no_grad():
            for i in tqdm(range(0, len(jobs), batch_size), desc="cutouts", disable=not progress):
                batch = [cutout_at(p, c, cutout) for p, c in jobs[i : i + batch_size]]
                x = torch.from_numpy(np.stack([b[0] for b in batch])).to(dev)
                out = model(x)[:, 0].float().cpu().numpy()
                probs += list(out)
                targets += [b[1] for b in batch]
    finally:
        model.to(device_before).train(was_training)
    return probs, targets


def fit_model_threshold(model: SRResNet3d, pairs, *, cutout: int = 24,
                        stride: int | None = None, batch_size: int = 4, device=None,
                        progress: bool = True) -> float:
    """Fit μ* (Eq. (18)) for a trained network on the cutouts of validation pairs.

    Shorthand for :func:`predict_cutouts` followed by :func:`fit_threshold`.

    Parameters
    ----------
    model : SRResNet3d
        Trained network.
    pairs : sequence of Pair
        Validation pairs.
    cutout, stride, batch_size : int
        See :func:`predict_cutouts`.
    device : str, torch.device or None
        See :func:`~srlib.network.resolve_device`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    float
        μ* in (0, 1).
    """
    probs, targets = predict_cutouts(model, pairs, cutout=cutout, stride=stride,
                                     batch_size=batch_size, device=device, progress=progress)
    return fit_threshold(probs, targets)
