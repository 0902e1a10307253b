"""Tests of srlib.metrics (section 2.3): accuracies, boundary band, relative accuracy, evaluate."""

import itertools
import math
import sys
import types

import numpy as np
import pytest

from srlib import metrics
from srlib.metrics import (
    Evaluation,
    accuracy,
    band_structuring_element,
    boundary_band,
    evaluate,
    relative_accuracy,
    surface_accuracy,
)

# floor(0.55 alpha): how far the band reaches into each phase from a planar interface
REACH = {2: 1, 4: 2, 8: 4}


def half_space(k, shape=(16, 5, 6)):
    """Solid for z < k, pore for z >= k."""
    image = np.zeros(shape, dtype=bool)
    image[:k] = True
    return image


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# --- accuracy ----------------------------------------------------------------------------


def test_identical_images_have_accuracy_one(rng):
    image = rng.random((8, 9, 10)) < 0.5
    assert accuracy(image, image.copy()) == 1.0
    for alpha in (2, 4, 8):
        assert surface_accuracy(image, image, alpha) == 1.0


def test_complementary_images_have_accuracy_zero(rng):
    image = rng.random((8, 9, 10)) < 0.5
    assert accuracy(~image, image) == 0.0
    assert surface_accuracy(~image, image, 2) == 0.0


def test_accuracy_counts_voxels_and_accepts_0_1_arrays():
    hr = np.zeros((4, 5, 5), dtype=np.uint8)
    sr = hr.copy()
    sr[0, 0, :3] = 1
    assert accuracy(sr, hr) == pytest.approx(1 - 3 / 100)
    assert accuracy(sr.astype(float), hr.astype(bool)) == pytest.approx(0.97)


def test_inputs_are_not_modified(rng):
    sr = rng.random((6, 6, 6)) < 0.5
    hr = rng.random((6, 6, 6)) < 0.5
    before = sr.copy(), hr.copy()
    accuracy(sr, hr)
    surface_accuracy(sr, hr, 2)
    boundary_band(hr, 4)
    np.testing.assert_array_equal(sr, before[0])
    np.testing.assert_array_equal(hr, before[1])


# --- boundary band -----------------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "size"), [(2, 7), (4, 33), (8, 365)])
def test_structuring_element_is_the_lattice_ball(alpha, size):
    element = band_structuring_element(alpha)
    assert element.shape == (2 * REACH[alpha] + 1,) * 3
    assert element.sum() == size
    # no lattice point on the sphere: closed and open balls agree
    r = 0.55 * alpha
    reach = REACH[alpha]
    g = np.mgrid[-reach : reach + 1, -reach : reach + 1, -reach : reach + 1]
    np.testing.assert_array_equal(element, (g**2).sum(0) < r * r)


@pytest.mark.parametrize("alpha", [2, 4, 8])
@pytest.mark.parametrize("k", [6, 8, 10])
def test_band_of_half_space_is_a_slab_of_alpha_layers(alpha, k):
    hr = half_space(k)
    band = boundary_band(hr, alpha)
    m = REACH[alpha]  # hand count: floor(0.55 alpha) layers on each side
    expected = np.zeros_like(hr)
    expected[k - m : k + m] = True
    np.testing.assert_array_equal(band, expected)
    assert band.sum() == 2 * m * 5 * 6 == alpha * 5 * 6  # one LR voxel thick


def test_window_border_never_creates_band(rng):
    assert not boundary_band(np.ones((6, 6, 6), dtype=bool), 2).any()
    assert not boundary_band(np.zeros((6, 6, 6), dtype=bool), 8).any()
    # a solid slab touching the z = 0 face: band only at the interface, not at the faces
    band = boundary_band(half_space(8), 4)
    assert not band[0].any() and not band[-1].any()
    assert band[6:10, 0].all() and band[6:10, :, -1].all()  # interface reaches the faces


@pytest.mark.parametrize("alpha", [2, 4])
def test_band_matches_brute_force_definition(rng, alpha):
    # band voxel <=> some voxel of the other phase inside the window within distance 0.55 alpha
    hr = rng.random((7, 8, 6)) < 0.6
    coords = np.argwhere(np.ones(hr.shape, dtype=bool))
    values = hr.reshape(-1)
    r2 = (0.55 * alpha) ** 2
    expected = np.zeros(hr.size, dtype=bool)
    for i, c in enumerate(coords):
        d2 = ((coords - c) ** 2).sum(axis=1)
        expected[i] = np.any((d2 <= r2) & (values != values[i]))
    np.testing.assert_array_equal(boundary_band(hr, alpha).reshape(-1), expected)


@pytest.mark.parametrize("alpha", [2, 4, 8])
@pytest.mark.parametrize("shift", [1, -1])
def test_one_voxel_shift_lowers_surface_accuracy_by_one_band_layer(alpha, shift):
    k = 8
    hr = half_space(k)
    sr = half_space(k + shift)  # exactly one layer (z = k or z = k - 1) is wrong
    # that layer lies in the band, which is alpha layers thick: 1 of alpha layers is wrong
    assert surface_accuracy(sr, hr, alpha) == pytest.approx(1 - 1 / alpha, abs=1e-15)
    assert accuracy(sr, hr) == pytest.approx(1 - 1 / 16, abs=1e-15)


def test_surface_accuracy_of_single_phase_ground_truth_is_nan(caplog):
    hr = np.ones((4, 4, 4), dtype=bool)
    sr = hr.copy()
    sr[0, 0, 0] = False
    with caplog.at_level("WARNING", logger="srlib.metrics"):
        assert math.isnan(surface_accuracy(sr, hr, 2))
    assert "one phase only" in caplog.text


# --- relative accuracy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sr", "hr", "expected"),
    [
        (1.2, 1.2, 1.0),
        (1.1, 1.0, 0.9),
        (0.9, 1.0, 0.9),
        (3.0, 1.0, -1.0),
        (np.float32(2.0), np.float64(4.0), 0.5),
        (2, 4, 0.5),
        (0.0, 2.0, 0.0),
    ],
)
def test_relative_accuracy_values(sr, hr, expected):
    assert relative_accuracy(sr, hr) == pytest.approx(expected, abs=1e-12)


def test_relative_accuracy_infinite_conventions():
    assert relative_accuracy(math.inf, 1.5) == -math.inf  # sr lost the path
    assert math.isnan(relative_accuracy(1.5, math.inf))  # undefined: no path in ground truth
    assert math.isnan(relative_accuracy(math.inf, math.inf))


@pytest.mark.parametrize(
    ("sr", "hr", "match"),
    [
        (math.nan, 1.0, "value_sr is nan"),
        (1.0, math.nan, "value_hr is nan"),
        (1.0, 0.0, "value_hr must be positive"),
        (-1.0, 1.0, "value_sr must be non-negative"),
        (1.0, -2.0, "value_hr must be non-negative"),
        ("a", 1.0, "value_sr must be a real number"),
        (1.0, None, "value_hr must be a real number"),
        (True, 1.0, "value_sr must be a number"),
    ],
)
def test_relative_accuracy_rejects_bad_values(sr, hr, match):
    with pytest.raises(ValueError, match=match):
        relative_accuracy(sr, hr)


# --- validation --------------------------------------------------------------------------


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"sr shape \(4, 4, 4\) and hr shape \(4, 4, 5\)"):
        accuracy(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))
    with pytest.raises(ValueError, match="differ"):
        evaluate(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)), 2)


@pytest.mark.parametrize("func", [accuracy, lambda s, h: surface_accuracy(s, h, 2)])
def test_non_binary_input_is_rejected(func):
    with pytest.raises(ValueError, match="sr must be a binary image"):
        func(np.full((3, 3, 3), 0.5), np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="hr must be a 3D array"):
        func(np.zeros((3, 3, 3)), np.zeros((3, 3)))


@pytest.mark.parametrize("alpha", [1, 3, 2.0, None])
def test_bad_alpha_is_rejected(alpha):
    image = np.zeros((4, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="alpha must be one of"):
        boundary_band(image, alpha)
    with pytest.raises(ValueError, match="alpha must be one of"):
        surface_accuracy(image, image, alpha)
    with pytest.raises(ValueError, match="alpha must be one of"):
        evaluate(image, image, alpha, effective=False)


def test_bad_axis_is_rejected():
    image = np.zeros((4, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="axis 5 is out of range"):
        evaluate(image, image, 2, axis=5, effective=False)


# --- evaluate ----------------------------------------------------------------------------


def tiny_structure():
    """8 x 6 x 6 image: a solid column along z and solid walls around a pore column."""
    image = np.zeros((8, 6, 6), dtype=bool)
    image[:, 1:3, 1:3] = True  # straight solid column (tau = 1)
    image[:, 0, :] = True  # solid wall on the y = 0 face
    return image


def blocked_pore():
    """Solid percolates (column), pore has no path along z (a full solid plane at z = 4)."""
    image = np.zeros((8, 6, 6), dtype=bool)
    image[:, 1:3, 1:3] = True
    image[4] = True
    return image


def _fake_transport(monkeypatch, table):
    """Install a stub srlib.transport whose effective_tortuosity looks values up in ``table``."""
    module = types.ModuleType("srlib.transport")
    calls = []

    def effective_tortuosity(image, phase, *, axis=0, connectivity="face"):
        calls.append((phase, axis, connectivity))
        return table[(image.tobytes(), phase)]

    module.effective_tortuosity = effective_tortuosity
    monkeypatch.setitem(sys.modules, "srlib.transport", module)
    return calls


def test_evaluate_identical_images_gives_ones():
    image = tiny_structure()
    result = evaluate(image, image.copy(), 2)  # real effective tortuosity (srlib.transport)
    assert isinstance(result, Evaluation)
    assert result.accuracy == 1.0 and result.surface_accuracy == 1.0
    for kind, phase in itertools.product(("geod", "eff"), ("solid", "pore")):
        assert math.isfinite(getattr(result, f"tau_{kind}_hr_{phase}"))
        assert getattr(result, f"tau_{kind}_acc_{phase}") == pytest.approx(1.0, abs=1e-9)
    assert result.tau_geod_acc_mean == pytest.approx(1.0)
    assert result.tau_eff_acc_mean == pytest.approx(1.0, abs=1e-9)
    assert result.geod_excluded == result.eff_excluded == ()
    assert result.geod_lost == result.eff_lost == ()
    assert result.tau_geod_hr_solid == pytest.approx(1.0)  # straight column
    assert result.tau_eff_hr_solid == pytest.approx(1.0, rel=1e-6)


def test_evaluate_excludes_a_phase_without_path_in_ground_truth():
    hr = blocked_pore()
    sr = hr.copy()
    sr[0, 5, 5] = True  # a small error in the start plane
    result = evaluate(sr, hr, 2, effective=False)
    assert result.geod_excluded == ("pore",)
    assert result.tau_geod_hr_pore == math.inf
    assert math.isnan(result.tau_geod_acc_pore)
    assert math.isfinite(result.tau_geod_acc_solid)
    assert result.tau_geod_acc_mean == result.tau_geod_acc_solid  # pore not averaged in
    assert 0 < result.accuracy < 1 and math.isfinite(result.surface_accuracy)
    assert result.tau_eff_sr_solid is None and result.tau_eff_acc_mean is None
    row = result.as_dict()
    assert row["geod_excluded"] == "pore" and row["geod_lost"] == ""
    assert all(not isinstance(v, (tuple, list, np.ndarray)) for v in row.values())


def test_evaluate_reports_a_phase_lost_by_the_super_resolution():
    hr = tiny_structure()
    sr = hr.copy()
    sr[4, 1:3, 1:3] = False  # cut the solid column ...
    sr[4, 0, :] = False  # ... and the wall: no solid path left in sr
    result = evaluate(sr, hr, 2, effective=False)
    assert result.tau_geod_sr_solid == math.inf
    assert result.tau_geod_acc_solid == -math.inf
    assert result.geod_lost == ("solid",) and result.geod_excluded == ()
    assert result.tau_geod_acc_mean == -math.inf  # kept, not dropped or NaN
    assert math.isfinite(result.tau_geod_acc_pore)


def test_evaluate_handles_a_phase_absent_from_sr():
    hr = tiny_structure()
    sr = np.zeros_like(hr)  # all pore
    result = evaluate(sr, hr, 4, effective=False)
    assert result.tau_geod_sr_solid == math.inf
    assert result.geod_lost == ("solid",)
    assert result.tau_geod_sr_pore == pytest.approx(1.0)


def test_evaluate_single_phase_ground_truth(caplog):
    hr = np.ones((6, 6, 6), dtype=bool)
    sr = hr.copy()
    sr[2, 2, 2] = False
    with caplog.at_level("WARNING", logger="srlib.metrics"):
        result = evaluate(sr, hr, 2, effective=False)
    assert result.geod_excluded == ("pore",)
    assert math.isnan(result.surface_accuracy)  # empty band
    # the missing voxel forces a sidestep on one of the 36 start voxels: 4 + sqrt2 over 5
    expected_sr = (35 + (4 + math.sqrt(2)) / 5) / 36
    assert result.tau_geod_sr_solid == pytest.approx(expected_sr, rel=1e-12)
    assert result.tau_geod_acc_mean == pytest.approx(1 - (expected_sr - 1), rel=1e-12)
    result = evaluate(~sr, ~hr, 2, effective=False)
    assert result.geod_excluded == ("solid",)


def test_evaluate_no_path_in_either_phase_gives_nan_mean_and_says_so(caplog):
    hr = np.zeros((8, 5, 5), dtype=bool)
    hr[4] = True  # a solid plane across the axis: it blocks the pore, and spans nothing
    with caplog.at_level("WARNING", logger="srlib.metrics"):
        result = evaluate(hr, hr, 2, effective=False)
    assert result.geod_excluded == ("solid", "pore")
    assert math.isnan(result.tau_geod_acc_mean)
    assert "no path through either phase" in caplog.text
    assert result.accuracy == 1.0 and result.surface_accuracy == 1.0


def test_evaluate_effective_tortuosity_logic_with_stub_transport(monkeypatch):
    hr = blocked_pore()
    sr = hr.copy()
    sr[0, 5, 5] = True
    table = {
        (hr.tobytes(), True): 1.5,
        (hr.tobytes(), False): math.inf,
        (sr.tobytes(), True): 1.8,
        (sr.tobytes(), False): math.inf,
    }
    calls = _fake_transport(monkeypatch, table)
    result = evaluate(sr, hr, 2, axis=1, connectivity="vertex")
    assert result.tau_eff_acc_solid == pytest.approx(0.8)
    assert math.isnan(result.tau_eff_acc_pore)
    assert result.eff_excluded == ("pore",)
    assert result.tau_eff_acc_mean == pytest.approx(0.8)
    assert {c[1:] for c in calls} == {(1, "vertex")}
    assert len(calls) == 4


def test_evaluate_does_not_call_transport_for_an_absent_phase(monkeypatch):
    hr = tiny_structure()
    sr = np.ones_like(hr)  # no pore at all
    table = {
        (hr.tobytes(), True): 1.0,
        (hr.tobytes(), False): 2.0,
        (sr.tobytes(), True): 1.0,
    }
    calls = _fake_transport(monkeypatch, table)
    result = evaluate(sr, hr, 2)
    assert len(calls) == 3
    assert result.tau_eff_sr_pore == math.inf
    assert result.tau_eff_acc_pore == -math.inf
    assert result.eff_lost == ("pore",)
    assert result.tau_eff_acc_mean == -math.inf


def test_importing_metrics_does_not_import_the_fem_stack():
    # metrics imports srlib.transport (scikit-fem, pyamg) lazily, only for effective tortuosities
    import subprocess

    code = ("import sys, srlib.metrics; "
            "print(sorted(m for m in ('srlib.transport', 'skfem', 'pyamg', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_evaluate_with_reference_matches_direct(monkeypatch):
    rng = np.random.default_rng(3)
    hr = rng.random((12, 12, 12)) < 0.6
    sr = hr.copy()
    sr[::3, ::2, 1] ^= True
    ref = metrics.reference_tortuosities(hr, effective=False)
    direct = metrics.evaluate(sr, hr, 2, effective=False)
    reused = metrics.evaluate(sr, hr, 2, effective=False, reference=ref)
    assert reused == direct
    with pytest.raises(ValueError, match="reference has no 'eff'"):
        metrics.evaluate(sr, hr, 2, effective=True, reference=ref)
