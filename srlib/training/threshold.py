r"""The threshold μ* of Eq. (18), which turns the network's probabilities into a binary image.

Contract. A voxel is solid where the network's probability is at least μ (Eq. (17)); μ* is
the μ in (0, 1) that minimises the mean absolute error of the porosity over the validation
cutouts (Eq. (18)). :func:`porosity_error` evaluates that objective, :func:`fit_threshold`
minimises it exactly (the paper uses Nelder–Mead; see there), :func:`predict_cutouts` runs a
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

from srlib._checks import positive_int
from srlib._progress import progress_bar
from srlib.devices import resolve_device
from srlib.network import SRResNet3d
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
    return _objective_at(sorted_probs, [0] * len(sorted_probs),
                         [s.size for s in sorted_probs], pore_fractions, mu)


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


def fit_threshold(probabilities, targets) -> float:
    """Find the threshold μ* of Eq. (18): its exact global minimiser.

    μ* minimises the mean over cutouts of ``|ε(P ≥ μ) − ε(HR)|`` (ε the pore fraction) for
    μ in (0, 1). The objective is piecewise constant in μ: it changes only where μ passes a
    probability value. The paper minimises it with Nelder–Mead, which stalls on a flat
    plateau wherever it starts (even from the best point of a fine grid it missed the
    minimum, by 3e-5, for an untrained network whose outputs all lay in 0.47-0.53). Here
    every plateau is visited at once: sorting all values, passing one value of cutout ``i``
    changes that cutout's term by a known amount, so a cumulative sum gives the objective on
    every plateau (O(N log N) for N values). μ* is the middle of the first plateau of least
    objective.

    Parameters
    ----------
    probabilities : sequence of numpy.ndarray
        Network outputs in [0, 1], one array per cutout (any shape), or one array whose first
        axis indexes cutouts.
    targets : sequence of numpy.ndarray
        Matching binary high-resolution images (True = solid).

    Returns
    -------
    float
        μ* in (0, 1).

    Raises
    ------
    ValueError
        If the inputs do not match or are not probabilities and binary images.
    """
    sorted_probs, pore_fractions = _prepare_threshold_data(probabilities, targets)
    sizes = np.array([v.size for v in sorted_probs])
    mu, _ = _plateau_minimum(sorted_probs, np.zeros(len(sizes), int), sizes, pore_fractions,
                             0.0, 1.0)
    return mu


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


def _plateau_minimum(window, under, sizes, pore, lo: float, hi: float) -> tuple[float, bool]:
    """Exact minimum of Eq. (18) over μ in ``[lo, hi]`` ∩ (0, 1).

    ``window[i]``: the sorted values of cutout ``i`` in ``[lo, hi)``; ``under[i]``: its
    values below ``lo``; ``sizes[i]``: all its values. Returns μ (the middle of the first
    plateau of least objective) and whether that plateau touches ``lo`` or ``hi`` (the
    minimum over all μ may then lie beyond).
    """
    sizes = np.asarray(sizes, np.float64)
    under = np.asarray(under, np.float64)
    lengths = [w.size for w in window]
    # μ is chosen in the values' own precision: a float32 network output is compared with
    # float32(μ) when thresholded (NumPy casts a Python float to the array's type), so a
    # float64 midpoint could round onto a plateau's edge value and move it
    values = np.concatenate([np.ravel(w) for w in window])
    label = np.repeat(np.arange(len(window)), lengths)
    rank = np.concatenate([np.arange(n) for n in lengths]) if values.size else values
    # passing the rank-th value of cutout i raises its count below μ by one
    before = (under[label] + rank) / sizes[label] - pore[label]
    delta = np.abs(before + 1.0 / sizes[label]) - np.abs(before)
    order = np.argsort(values, kind="stable")
    v = values[order]
    passed = np.concatenate([[0.0], np.cumsum(delta[order])])
    base = float(np.sum(np.abs(under / sizes - pore)))
    # plateau k holds the μ with exactly k window values below: (v[k-1], v[k]]
    ks = np.append(np.flatnonzero(np.r_[True, v[1:] != v[:-1]]) if v.size else [], v.size)
    ks = ks.astype(int)
    lower = np.where(ks > 0, v[np.maximum(ks - 1, 0)] if v.size else lo, lo)
    upper = np.where(ks < v.size, v[np.minimum(ks, v.size - 1)] if v.size else hi, hi)
    mid = lower + (upper - lower) / 2
    mid = np.where((mid > lower) & (mid <= upper), mid, upper)
    ok = (mid > 0.0) & (mid < 1.0) & (mid >= lo) & (mid <= hi)
    if not ok.any():
        raise ValueError("no threshold in (0, 1) separates the values")
    value = np.where(ok, (base + passed[ks]) / len(window), np.inf)
    # the cumulative sum rounds: decide near-ties (the 64 lowest) with the objective itself
    near = np.flatnonzero(value <= value.min() + 1e-9)
    near = np.sort(near[np.argsort(value[near], kind="stable")[:64]])
    exact = [_objective_at(window, under, sizes, pore, float(mid[j])) for j in near]
    j = int(near[int(np.argmin(exact))])
    return float(mid[j]), bool(j == 0 or j == len(ks) - 1)


def _objective_at(window, under, sizes, pore, mu: float) -> float:
    """Eq. (18)'s objective at ``mu`` from the sorted values of each cutout in a window.

    ``under[i]`` of cutout ``i``'s ``sizes[i]`` values lie below the window. ε(P ≥ μ) is the
    fraction of voxels with P < μ (pore = below the threshold).
    """
    eps = np.array([(int(u) + int(np.searchsorted(w, mu, side="left"))) / int(n)
                    for w, u, n in zip(window, under, sizes, strict=True)])
    return float(np.mean(np.abs(eps - pore)))


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
        See :func:`~srlib.devices.resolve_device`.
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
            for i in progress_bar(range(0, len(jobs), batch_size), desc="cutouts",
                                  disable=not progress):
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
    the points of a grid of 999 (about 8 kB per cutout), which give the objective there
    exactly; a second pass keeps the predictions within a few grid steps of the best grid
    point and finds the exact minimum among them (another pass, wider, while it lies on the
    window's edge). μ* is the same as in memory unless a plateau far from the best grid
    point is lower still than every plateau near it.

    Parameters
    ----------
    model : SRResNet3d
        Trained network.
    pairs : sequence of Pair
        Validation pairs.
    cutout, stride, batch_size : int
        See :func:`predict_cutouts`.
    device : str, torch.device or None
        See :func:`~srlib.devices.resolve_device`.
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
    pore, sizes = np.asarray(pore), np.asarray(sizes)
    if cache[0] is not None:
        return _plateau_minimum(cache[0], np.zeros(len(pore), int), sizes, pore, 0.0, 1.0)[0]
    values = _grid_objective(np.stack(below), sizes, pore)
    step = 1.0 / (len(mus) + 1)
    mu0 = float(mus[int(np.argmin(values))])
    width = _WINDOW
    while True:  # the exact minimum in a window around the best grid point; wider if on its edge
        lo, hi = max(mu0 - width * step, 0.0), min(mu0 + width * step, 1.0)
        window, under = [], []

        def window_pass(prob, target, lo=lo, hi=hi, window=window, under=under):
            flat = np.ravel(prob)
            window.append(np.sort(flat[(flat >= lo) & (flat < hi)]))
            under.append(int(np.count_nonzero(flat < lo)))

        _stream_cutouts(model, pairs, window_pass, **stream)
        mu, on_edge = _plateau_minimum(window, under, sizes, pore, lo, hi)
        if not on_edge or (lo == 0.0 and hi == 1.0):
            return mu
        width = 2 * width + 1


#: Grid of the first search of μ* when the predictions do not fit in memory.
_GRID = 999
#: Half-width, in grid steps, of the first window of predictions kept around its best point.
_WINDOW = 4
