"""Tests of srlib.resample: down-sampling (Eq. 3), sub-division and the quadratic baseline."""

import numpy as np
import pytest

from srlib.resample import (
    downsample,
    interpolate_quadratic,
    interpolate_quadratic_binary,
    subdivide,
)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# --- downsample --------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_downsample_keeps_every_alpha_th_voxel(rng, alpha):
    image = rng.random((16, 24, 32)) < 0.4
    out = downsample(image, alpha)
    np.testing.assert_array_equal(out, image[::alpha, ::alpha, ::alpha])
    assert out.shape == (16 // alpha, 24 // alpha, 32 // alpha)
    assert out.dtype == image.dtype


def test_downsample_does_not_modify_input(rng):
    image = rng.random((8, 8, 8))
    before = image.copy()
    out = downsample(image, 2)
    out[...] = -1
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("alpha", [1, 3, 16, 2.0, True, "2"])
def test_downsample_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be one of"):
        downsample(np.zeros((16, 16, 16)), alpha)


def test_downsample_rejects_indivisible_shape():
    with pytest.raises(ValueError, match=r"shape \(16, 18, 16\) is not divisible by alpha=4"):
        downsample(np.zeros((16, 18, 16)), 4)


def test_downsample_rejects_non_3d():
    with pytest.raises(ValueError, match="must be a 3D array"):
        downsample(np.zeros((16, 16)), 2)


# --- subdivide ---------------------------------------------------------------------------


def test_subdivide_returns_eight_blocks_that_reassemble(rng):
    image = rng.random((6, 8, 10))
    blocks = subdivide(image)
    assert len(blocks) == 8
    assert all(b.shape == (3, 4, 5) for b in blocks)
    # lexicographic order in (bz, by, bx)
    rebuilt = np.block([[[blocks[0], blocks[1]], [blocks[2], blocks[3]]],
                        [[blocks[4], blocks[5]], [blocks[6], blocks[7]]]])
    np.testing.assert_array_equal(rebuilt, image)
    np.testing.assert_array_equal(blocks[5], image[3:, :4, 5:])


def test_subdivide_rejects_odd_shape():
    with pytest.raises(ValueError, match=r"shape \(6, 7, 8\) must be even"):
        subdivide(np.zeros((6, 7, 8)))


def test_subdivide_rejects_non_3d():
    with pytest.raises(ValueError, match="must be a 3D array"):
        subdivide(np.zeros((4, 4, 4, 4)))


# --- interpolate_quadratic ---------------------------------------------------------------


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_interpolation_passes_through_lr_samples(rng, alpha):
    lr = rng.random((5, 6, 7))
    out = interpolate_quadratic(lr, alpha)
    assert out.shape == (5 * alpha, 6 * alpha, 7 * alpha)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[::alpha, ::alpha, ::alpha], lr, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_interpolation_of_binary_input_passes_through_samples(rng, alpha):
    lr = rng.random((4, 5, 6)) < 0.5
    out = interpolate_quadratic(lr, alpha)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[::alpha, ::alpha, ::alpha], lr, rtol=0, atol=1e-6)
    binary = interpolate_quadratic_binary(lr, alpha)
    assert binary.dtype == bool
    np.testing.assert_array_equal(binary[::alpha, ::alpha, ::alpha], lr)
    np.testing.assert_array_equal(binary, out >= 0.5)


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_constant_image_stays_constant(alpha):
    out = interpolate_quadratic(np.full((3, 4, 5), 0.7), alpha)
    np.testing.assert_allclose(out, 0.7, rtol=0, atol=1e-12)  # including the extrapolated rim


def _interior(n, alpha):
    """HR indices whose 3 kernel taps lie inside the LR grid (LR coordinate in [1, n - 2])."""
    return slice(alpha, alpha * (n - 2) + 1)


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_linear_function_is_reproduced_in_the_interior(alpha):
    n = 7
    z, y, x = np.meshgrid(*(np.arange(n, dtype=float),) * 3, indexing="ij")
    lr = 0.3 * z - 1.2 * y + 2.5 * x + 4.0
    out = interpolate_quadratic(lr, alpha)
    hz, hy, hx = np.meshgrid(*(np.arange(alpha * n) / alpha,) * 3, indexing="ij")
    expected = 0.3 * hz - 1.2 * hy + 2.5 * hx + 4.0
    inner = (_interior(n, alpha),) * 3
    np.testing.assert_allclose(out[inner], expected[inner], rtol=0, atol=1e-11)


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_quadratic_function_is_not_reproduced_known_error(alpha):
    # Dodgson's interpolating kernel reproduces only up to linear functions. For f(x) = x^2 the
    # interpolant at j + t is f(j + t) + min(t, 1 - t)^2 (worked out by hand from the kernel).
    n = 8
    lr = np.broadcast_to((np.arange(n, dtype=float) ** 2)[None, None, :], (3, 3, n))
    out = interpolate_quadratic(lr, alpha)
    hx = np.arange(alpha * n) / alpha
    t = (np.arange(alpha * n) % alpha) / alpha
    expected = hx**2 + np.minimum(t, 1 - t) ** 2
    inner = _interior(n, alpha)
    np.testing.assert_allclose(out[1, 1, inner], expected[inner], rtol=0, atol=1e-11)
    # the error is real between the samples: 1/4 at the midpoints
    assert np.max(np.abs(out[1, 1, inner] - hx[inner] ** 2)) >= 0.25 - 1e-12


def test_alpha_2_equals_linear_interpolation_at_midpoints(rng):
    lr = rng.random((6, 1, 1))
    out = interpolate_quadratic(lr, 2)[:, 0, 0]
    np.testing.assert_allclose(out[1:-1:2], 0.5 * (lr[:-1, 0, 0] + lr[1:, 0, 0]), atol=1e-12)


def test_kernel_values_by_hand():
    # 1D: a unit impulse interpolated with alpha = 4 gives the kernel h(i / 4) itself.
    lr = np.zeros((9, 1, 1))
    lr[4] = 1.0
    out = interpolate_quadratic(lr, 4)[:, 0, 0]
    h = {0: 1.0, 1: 1 - 2 / 16, 2: 0.5, 3: 9 / 16 - 2.5 * 0.75 + 1.5, 4: 0.0,
         5: 25 / 16 - 2.5 * 1.25 + 1.5, 6: 0.0}
    for d, value in h.items():
        assert out[16 + d] == pytest.approx(value, abs=1e-12)
        assert out[16 - d] == pytest.approx(value, abs=1e-12)
    assert np.all(out[: 16 - 6] == 0) and np.all(out[16 + 6 :] == 0)


def test_extrapolated_rim_replicates_the_border():
    # Linear ramp: past the last sample the border is replicated, so the rim stays between
    # the last sample and the value the kernel gets from replicated neighbours.
    lr = np.arange(4, dtype=float)[:, None, None] * np.ones((4, 2, 2))
    out = interpolate_quadratic(lr, 4)[:, 0, 0]
    # coordinate 3 + t with samples f(2)=2, f(3)=3, f(4):=3, f(5):=3
    for p in range(1, 4):
        t = p / 4
        w = [np.abs(t - k) for k in (-1, 0, 1, 2)]
        h = [1 - 2 * s**2 if s <= 0.5 else (s**2 - 2.5 * s + 1.5 if s <= 1.5 else 0) for s in w]
        expected = h[0] * 2 + h[1] * 3 + h[2] * 3 + h[3] * 3
        assert out[12 + p] == pytest.approx(expected, abs=1e-12)


def test_interpolation_does_not_modify_input(rng):
    lr = rng.random((4, 4, 4)) < 0.5
    before = lr.copy()
    interpolate_quadratic(lr, 2)
    np.testing.assert_array_equal(lr, before)


@pytest.mark.parametrize("alpha", [0, 3, 16, 2.5, None])
def test_interpolation_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be one of"):
        interpolate_quadratic(np.zeros((4, 4, 4)), alpha)


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 4, 4), (0, 4, 4)])
def test_interpolation_rejects_non_3d_or_empty(shape):
    with pytest.raises(ValueError, match="lr"):
        interpolate_quadratic(np.zeros(shape), 2)


def test_interpolation_rejects_non_numeric():
    with pytest.raises(ValueError, match="real numeric"):
        interpolate_quadratic(np.full((2, 2, 2), "a"), 2)


def test_binary_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        interpolate_quadratic_binary(np.zeros((2, 2, 2)), 2, threshold=float("nan"))
