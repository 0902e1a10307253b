r"""The threshold μ* of Eq. (18), which turns the network's probabilities into a binary image.

Contract. A voxel is solid where the network's probability is at least μ (Eq. (17)); μ* is
the μ in (0, 1) that minimises the mean absolute error of the porosity over the validation
cutouts (Eq. (18)). :func:`porosity_error` evaluates that objective, :func:`fit_threshold`
minimises it (a grid search, then Nelder–Mead as in the paper), :func:`predict_cutouts` runs a
network on the cutouts of validation pairs, and :func:`fit_model_threshold` chains the two
while streaming: the cutouts are read and predicted a batch at a time, and the fit holds
counts per cutout, not predictions, when these would exceed a memory bound. Arrays passed in
are never modified; the model's mode and device are restored.
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

    mus = _grid(grid)
    counts = np.stack([np.searchsorted(s, mus, side="left") for s in sorted_probs])
    sizes = np.array([s.size for s in sorted_probs])
    return _minimise(objective, _grid_objective(counts, sizes, pore_fractions), mus)


def _grid(grid: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, grid + 2)[1:-1]


def _grid_objective(counts: np.ndarray, sizes: np.ndarray, pore: np.ndarray) -> np.ndarray:
    """Eq. (18)'s objective at every grid point from the counts below them.

    ``counts[i, j]`` is the number of values of cutout ``i`` below grid point ``j`` (one
    :func:`numpy.searchsorted` of the whole grid per cutout). Each grid point's mean is taken
    over a contiguous row of the cutouts' errors, in cutout order, so it is bit for bit the
    value :func:`_porosity_objective` gives at that point.
    """
    errors = np.ascontiguousarray((counts / sizes[:, None]).T) - pore
    return np.array([float(np.mean(np.abs(row))) for row in errors])


def _minimise(objective, values: np.ndarray, mus: np.ndarray) -> float:
    """Nelder–Mead from the best grid point (``values`` = the objective at ``mus``)."""
    best = int(np.argmin(values))
    mu0, f0 = float(mus[best]), float(values[best])
    step = 1.0 / (len(mus) + 1)
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
    probs, targets = [], []

    def keep(prob, target):
        probs.append(prob)
        targets.append(target)

    _stream_cutouts(model, pairs, keep, cutout=cutout, stride=stride, batch_size=batch_size,
                    device=device, progress=progress)
    return probs, targets


def _cutout_jobs(model: SRResNet3d, pairs, cutout: int, stride: int | None) -> list:
    pairs = as_pairs(pairs, "pairs")
    cutout = positive_int(cutout, "cutout")
    stride = cutout if stride is None else positive_int(stride, "stride")
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
    return jobs


def _stream_cutouts(model: SRResNet3d, pairs, visit, *, cutout: int, stride: int | None,
                    batch_size: int, device, progress: bool) -> None:
    """Call ``visit(probability, target)`` for every cutout, in order, holding one batch."""
    jobs = _cutout_jobs(model, pairs, cutout, stride)
    cutout = int(cutout)
    batch_size = positive_int(batch_size, "batch_size")
    dev = resolve_device(device)
    device_before = next(model.parameters()).device
    was_training = model.training
    model.to(dev).eval()
    try:
        with torch.no_grad():
            for i in tqdm(range(0, len(jobs), batch_size), desc="cutouts", disable=not progress):
                batch = [cutout_at(p, c, cutout) for p, c in jobs[i : i + batch_size]]
                x = torch.from_numpy(np.stack([b[0] for b in batch])).to(dev)
                out = model(x)[:, 0].float().cpu().numpy()
                for prob, (_, target) in zip(out, batch, strict=True):
                    visit(prob, target)
    finally:
        model.to(device_before).train(was_training)


def fit_model_threshold(model: SRResNet3d, pairs, *, cutout: int = 24,
                        stride: int | None = None, batch_size: int = 4, device=None,
                        progress: bool = True, max_bytes: int = 1 << 28) -> float:
    """Fit μ* (Eq. (18)) for a trained network on the cutouts of validation pairs.

    The result of :func:`predict_cutouts` followed by :func:`fit_threshold`, without holding
    the predictions: the cutouts are read (lazily, for lazy pairs) and predicted one batch at
    a time. While the sorted predictions take at most ``max_bytes`` they are kept and the fit
    is :func:`fit_threshold`'s. Beyond, the first pass keeps only each cutout's counts below
    the grid points (about 8 kB per cutout), which give the grid search exactly; the
    Nelder–Mead refinement then runs on the predictions within a few grid steps of the best
    grid point, from a second pass over the cutouts (another pass, wider, if it steps
    outside). μ* is the same either way.

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
    max_bytes : int
        Memory for the sorted predictions of a single pass.

    Returns
    -------
    float
        μ* in (0, 1).
    """
    max_bytes = positive_int(max_bytes, "max_bytes")
    stream = dict(cutout=cutout, stride=stride, batch_size=batch_size, device=device,
                  progress=progress)
    mus = _grid(_GRID)
    below, sizes, pore, cache = [], [], [], [[], 0]

    def first_pass(prob, target):  # the objective on the grid; the values while they fit
        ordered = np.sort(prob, axis=None)
        below.append(np.searchsorted(ordered, mus, side="left"))
        sizes.append(ordered.size)
        pore.append(1.0 - np.count_nonzero(target) / target.size)
        if cache[0] is not None:
            cache[0].append(ordered)
            cache[1] += ordered.nbytes
            if cache[1] > max_bytes:
                cache[0] = None  # too many: later passes keep a window around μ* only

    _stream_cutouts(model, pairs, first_pass, **stream)
    pore = np.asarray(pore)
    if cache[0] is not None:
        objective = _window_objective(cache[0], np.zeros(len(pore), int), pore, 0.0, 1.0)
        return _minimise(objective, np.array([objective(m) for m in mus]), mus)
    counts, sizes = np.stack(below), np.asarray(sizes)
    values = _grid_objective(counts, sizes, pore)
    step = 1.0 / (len(mus) + 1)
    mu0 = float(mus[int(np.argmin(values))])
    lo, hi = max(mu0 - _WINDOW * step, 0.0), min(mu0 + _WINDOW * step, 1.0)
    while True:  # Nelder–Mead on the values in [lo, hi]; a pass more if it steps outside
        window, under = [], []

        def window_pass(prob, target, lo=lo, hi=hi, window=window, under=under):
            flat = np.ravel(prob)
            inside = np.sort(flat[(flat >= lo) & (flat < hi)])
            window.append(inside)
            under.append(int(np.count_nonzero(flat < lo)))

        _stream_cutouts(model, pairs, window_pass, **stream)
        objective = _window_objective(window, np.asarray(under), pore, lo, hi,
                                      sizes=sizes)
        try:
            return _minimise(objective, values, mus)
        except _OutsideWindow as out:
            lo = max(min(lo, out.mu - (_WINDOW + 1) * step), 0.0)
            hi = min(max(hi, out.mu + (_WINDOW + 1) * step), 1.0)


#: Grid of the first search of μ* (as :func:`fit_threshold`'s default).
_GRID = 999
#: Half-width, in grid steps, of the window of predictions kept for Nelder–Mead.
_WINDOW = 4


class _OutsideWindow(Exception):
    def __init__(self, mu: float):
        super().__init__(mu)
        self.mu = mu


def _window_objective(window, under, pore, lo: float, hi: float, *, sizes=None):
    """Eq. (18)'s objective from the sorted values in ``[lo, hi)`` and the counts below ``lo``.

    Exact for μ in ``[lo, hi]`` (the arithmetic of :func:`porosity_error`); raises
    :class:`_OutsideWindow` elsewhere.
    """
    sizes = [w.size for w in window] if sizes is None else sizes

    def objective(mu):
        mu = float(np.ravel(mu)[0])
        if not lo <= mu <= hi:
            raise _OutsideWindow(mu)
        eps = np.array([(int(u) + int(np.searchsorted(w, mu, side="left"))) / int(n)
                        for w, u, n in zip(window, under, sizes, strict=True)])
        return float(np.mean(np.abs(eps - pore)))

    return objective
