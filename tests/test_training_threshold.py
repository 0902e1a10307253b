"""Tests of srlib.training.threshold: the threshold μ* of Eq. (18)."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from srlib import training as T


def _field(shape, seed, sigma=1.5):
    noise = np.random.default_rng(seed).standard_normal(shape)
    return ndimage.gaussian_filter(noise, sigma, mode="wrap") > 0


@pytest.fixture(scope="module")
def pairs():
    return [T.make_pair(_field((32, 32, 32), s), 2) for s in range(3)]


def _model(seed=0):
    return T.make_model(1, 2, features=4, blocks=1, seed=seed)


@pytest.mark.parametrize("mu_true", [0.23, 0.5, 0.71])
def test_fit_threshold_recovers_a_known_threshold(mu_true):
    rng = np.random.default_rng(10)
    probs = [ndimage.uniform_filter(rng.random((20, 20, 20)), 3) for _ in range(5)]
    probs = [(p - p.min()) / (p.max() - p.min()) for p in probs]
    targets = [p >= mu_true for p in probs]
    mu = T.fit_threshold(probs, targets)
    assert mu == pytest.approx(mu_true, abs=1e-3)
    assert T.porosity_error(probs, targets, mu) == pytest.approx(0, abs=1e-4)


def test_fit_threshold_escapes_flat_plateaus():
    # All probabilities lie in [0.9, 0.95]: the objective is flat on (0, 0.9), where a
    # Nelder-Mead search started at 0.5 would stall.
    rng = np.random.default_rng(11)
    probs = 0.9 + 0.05 * rng.random((4, 12, 12, 12))
    targets = probs >= 0.92
    assert T.fit_threshold(probs, targets) == pytest.approx(0.92, abs=1e-3)


def test_fit_threshold_bad_input():
    p = np.full((4, 4, 4), 0.5)
    with pytest.raises(ValueError, match="targets"):
        T.fit_threshold([p, p], [p > 0])
    with pytest.raises(ValueError, match="outside"):
        T.fit_threshold([p + 1], [p > 0])
    with pytest.raises(ValueError, match="shape"):
        T.fit_threshold([p], [np.zeros((3, 3, 3), bool)])


def test_predict_cutouts_and_fit_model_threshold(pairs):
    model = _model()
    probs, targets = T.predict_cutouts(model, pairs[2:], cutout=8, progress=False)
    assert len(probs) == len(targets) == 2**3  # LR 16³ → 2 non-overlapping per axis
    assert probs[0].shape == targets[0].shape == (16, 16, 16)
    assert model.training  # mode restored
    inp, tgt = T.cutout_at(pairs[2], (8, 0, 8), 8)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(inp)[None])[0, 0].numpy()
    np.testing.assert_allclose(probs[5], expected, atol=1e-6)  # position (1, 0, 1)
    assert np.array_equal(targets[5], tgt)
    mu = T.fit_model_threshold(model, pairs[2:], cutout=8, stride=4, batch_size=3,
                               progress=False)
    probs, targets = T.predict_cutouts(model, pairs[2:], cutout=8, stride=4, progress=False)
    assert len(probs) == 3**3
    # μ* attains the global minimum of the Eq. (18) objective, found by brute force
    best_mu, best = _brute_force_threshold(probs, targets)
    assert T.porosity_error(probs, targets, mu) == pytest.approx(best, abs=1e-12)
    assert T.porosity_error(probs, targets, 0.5) > best  # the minimum is not trivial here
    assert mu == T.fit_threshold(probs, targets)


def _brute_force_threshold(probs, targets):
    # Eq. (18) by exhaustion: ε(P ≥ μ) only changes where μ passes a probability value, so
    # the objective takes every value it can at the distinct probabilities (and above them).
    values = np.unique(np.concatenate([np.ravel(p) for p in probs]))
    candidates = np.append(values, np.nextafter(values[-1], 2))
    candidates = candidates[(candidates > 0) & (candidates < 1)]
    errors = np.zeros(len(candidates))
    for p, t in zip(probs, targets, strict=True):
        below = np.searchsorted(np.sort(p, axis=None), candidates, side="left") / p.size
        errors += np.abs(below - (1 - t.mean()))
    errors /= len(probs)
    k = int(np.argmin(errors))
    return float(candidates[k]), float(errors[k])


def test_fit_threshold_attains_the_brute_force_minimum():
    # Probabilities unrelated to the targets: no threshold is exact, the minimum is > 0.
    rng = np.random.default_rng(12)
    probs = [rng.beta(2, 5, (6, 6, 6)) for _ in range(4)]
    targets = [rng.random((6, 6, 6)) < f for f in (0.2, 0.4, 0.5, 0.7)]
    best_mu, best = _brute_force_threshold(probs, targets)
    mu = T.fit_threshold(probs, targets)
    assert best > 0.01
    assert T.porosity_error(probs, targets, mu) == pytest.approx(best, abs=1e-12)
    assert T.porosity_error(probs, targets, best_mu) == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize(("max_bytes", "window"), [(1, 4), (1, 0), (1 << 28, 4)])
def test_streamed_fit_equals_the_fit_on_all_predictions(pairs, max_bytes, window, monkeypatch):
    # window=0: the first window is empty, its minimum on its edge; wider passes follow
    monkeypatch.setattr("srlib.training.threshold._WINDOW", window)
    # max_bytes=1: no prediction is kept; the grid comes from counts, the exact minimum from
    # a window of predictions re-read around the best grid point. Same μ*, bit for bit.
    model = T.make_model(1, 2, features=4, blocks=1, seed=4)
    probs, targets = T.predict_cutouts(model, pairs, cutout=8, stride=4, progress=False)
    want = T.fit_threshold(probs, targets)
    got = T.fit_model_threshold(model, pairs, cutout=8, stride=4, batch_size=5,
                                progress=False, max_bytes=max_bytes)
    assert got == want
    with pytest.raises(ValueError, match="max_bytes"):
        T.fit_model_threshold(model, pairs, cutout=8, progress=False, max_bytes=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_search_is_bit_identical_to_one_objective_per_grid_point(dtype):
    # The grid search counts all grid points per cutout at once; each grid value must be the
    # objective of Eq. (18) evaluated on its own (one searchsorted per cutout and point), bit
    # for bit, so that μ* does not change. Cutouts of several sizes, with ties at grid points.
    from srlib.training import threshold as th

    rng = np.random.default_rng(13)
    probs = [rng.random(n).astype(dtype) for n in (50, 64, 7, 300)] * 3
    probs += [np.round(rng.random(40), 3).astype(dtype)]  # values on grid points: ties
    fractions = np.linspace(0.1, 0.9, len(probs))
    targets = [rng.random(p.shape) < f for p, f in zip(probs, fractions, strict=True)]
    sorted_probs, pore = th._prepare_threshold_data(probs, targets)
    mus = th._grid(999)
    one_by_one = np.array([th._porosity_objective(sorted_probs, pore, float(m)) for m in mus])
    counts = np.stack([np.searchsorted(s, mus, side="left") for s in sorted_probs])
    sizes = np.array([s.size for s in sorted_probs])
    assert np.array_equal(th._grid_objective(counts, sizes, pore), one_by_one)
    assert len(np.unique(one_by_one)) > 100  # the objective varies along the grid


def test_threshold_between_adjacent_float32_values():
    """μ* is chosen in the outputs' precision: thresholding float32 outputs casts μ to float32,
    and a float64 midpoint of two adjacent float32 values would round onto one of them."""
    a = np.float32(0.5)
    b = np.nextafter(a, np.float32(1))
    probs = [np.array([a] * 10 + [b] * 10, np.float32)]
    targets = [np.array([False] * 10 + [True] * 10)]
    mu = T.fit_threshold(probs, targets)
    assert T.porosity_error(probs, targets, mu) == 0.0
    assert np.array_equal(probs[0] >= mu, targets[0])
