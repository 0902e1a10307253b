import math

import numpy as np
import pytest
from scipy import integrate, stats

from srlib import stochastic as st

PARAMS = st.ModelParams(nu=-2 * math.log(0.6), gamma=math.sqrt(0.1))


@pytest.fixture(scope="module")
def images():
    return [st.sample(128, PARAMS, seed=s) for s in range(3)]


def test_solid_fraction_formula():
    assert st.solid_fraction(PARAMS.nu) == pytest.approx(0.6)
    assert PARAMS.solid_fraction == pytest.approx(0.6)
    params = st.ModelParams.from_solid_fraction(0.7, gamma=0.3)
    assert params.nu == pytest.approx(-2 * math.log(0.7))


def test_sample_solid_fraction(images):
    assert all(im.dtype == bool and im.shape == (128, 128, 128) for im in images)
    mean = np.mean([im.mean() for im in images])
    assert abs(mean - 0.6) < 0.02


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_sample_two_point_probability(images, axis):
    lags = np.arange(1, 21)
    model = st.two_point_probability(lags, PARAMS)
    emp = np.mean(
        [st.empirical_two_point_probability(im, lags, axis=axis) for im in images], axis=0
    )
    assert np.max(np.abs(emp - model)) < 0.015


@pytest.mark.parametrize("h", [0.0, 0.5, 1, 3, 10, 20, 100])
def test_two_point_probability_matches_closed_form(h):
    a = PARAMS.nu / 2
    r = math.exp(-2 * PARAMS.gamma**2 * h)
    if r >= 1 - 1e-12:
        expected = math.exp(-a)
    else:
        def integrand(u):
            return math.exp(-u) * stats.ncx2.sf(2 * a / (1 - r), 2, 2 * r * u / (1 - r))

        expected = integrate.quad(integrand, a, np.inf, epsabs=1e-12)[0]
    assert st.two_point_probability(h, PARAMS) == pytest.approx(expected, abs=2e-3)


def test_two_point_probability_limits():
    p = PARAMS.solid_fraction
    assert st.two_point_probability(0, PARAMS) == pytest.approx(p)
    assert st.two_point_probability(1e4, PARAMS) == pytest.approx(p**2)
    values = st.two_point_probability(np.arange(0, 50), PARAMS)
    assert np.all(np.diff(values) < 0)


def test_sample_reproducible():
    a = st.sample(24, PARAMS, seed=7)
    assert np.array_equal(a, st.sample(24, PARAMS, seed=7))
    assert not np.array_equal(a, st.sample(24, PARAMS, seed=8))


def test_sample_non_cubic_shape():
    im = st.sample((16, 24, 32), PARAMS, seed=1)
    assert im.shape == (16, 24, 32)


def test_calibrate_recovers_parameters(images):
    fitted = st.calibrate(images[0])
    assert fitted.nu == pytest.approx(PARAMS.nu, rel=0.08)
    assert fitted.gamma == pytest.approx(PARAMS.gamma, rel=0.08)


@pytest.mark.parametrize("nu,gamma", [(0, 0.3), (-1, 0.3), (1, 0), (1, -0.2), (float("nan"), 0.3)])
def test_bad_parameters(nu, gamma):
    with pytest.raises(ValueError, match="nu|gamma"):
        st.sample(8, st.ModelParams(nu, gamma), seed=0)


def test_sample_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        st.sample((8, 8), PARAMS)


def test_calibrate_rejects_non_binary(rng):
    with pytest.raises(ValueError, match="binary"):
        st.calibrate(rng.random((16, 16, 16)))


@pytest.mark.parametrize("value", [True, False])
def test_calibrate_rejects_single_phase(value):
    with pytest.raises(ValueError, match="phase"):
        st.calibrate(np.full((16, 16, 16), value))
