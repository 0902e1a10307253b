"""Tests of srlib.geodesic: mean geodesic tortuosity (section 2.3.3) on volumes with known paths."""

import itertools
import math

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from srlib.geodesic import GeodesicResult, geodesic_tortuosity, mean_geodesic_tortuosity

SQRT2 = math.sqrt(2.0)
SQRT3 = math.sqrt(3.0)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_full_block_has_tortuosity_one_on_every_axis(axis):
    image = np.ones((5, 6, 7), dtype=bool)
    result = geodesic_tortuosity(image, True, axis=axis)
    assert result.mean == pytest.approx(1.0, abs=1e-12)
    assert result.connected_fraction == 1.0
    plane = np.delete(np.array(image.shape), axis % 3)
    assert result.n_start == result.n_connected == plane.prod()
    assert result.tortuosity_map.shape == tuple(plane)
    assert result.axis == axis % 3


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_straight_channels_along_the_axis_have_tortuosity_one(axis):
    image = np.zeros((6, 6, 6), dtype=bool)
    index = [slice(None)] * 3
    for a, b in [(1, 1), (3, 4), (4, 1)]:
        other = [d for d in range(3) if d != axis]
        index = [slice(None)] * 3
        index[other[0]], index[other[1]] = a, b
        image[tuple(index)] = True
    assert mean_geodesic_tortuosity(image, True, axis=axis) == pytest.approx(1.0, abs=1e-12)
    # and the same channels as pore in a solid block
    assert mean_geodesic_tortuosity(~image, "pore", axis=axis) == pytest.approx(1.0, abs=1e-12)


def test_channel_across_the_axis_has_no_path():
    image = np.zeros((6, 5, 7), dtype=bool)
    image[0, 2, :] = True  # lies in the start plane, runs along x
    image[3, :, 4] = True  # in the middle, runs along y
    result = geodesic_tortuosity(image, "solid", axis=0)
    assert result.mean == math.inf
    assert result.n_start == 7 and result.n_connected == 0
    assert result.connected_fraction == 0.0
    assert mean_geodesic_tortuosity(image, 1, axis=0) == math.inf
    # along x the first channel is straight
    assert mean_geodesic_tortuosity(image, True, axis=2) == pytest.approx(1.0)


def test_phase_missing_from_start_plane_gives_inf_and_zero_fraction():
    image = np.zeros((5, 4, 4), dtype=bool)
    image[1:, 1, 1] = True
    result = geodesic_tortuosity(image, True)
    assert result.n_start == 0
    assert result.mean == math.inf
    assert result.connected_fraction == 0.0


def _draw(points, shape):
    image = np.zeros(shape, dtype=bool)
    for z, x in points:
        image[z, 1, x] = True
    return image


def test_l_shaped_detour_known_length():
    # Corridor in the plane y = 1: down x = 0 (z 0..4), across z = 4 (x 0..6), down x = 6
    # (z 4..8). Shortest 26-path cuts both corners diagonally:
    # (0,0)->(3,0): 3, ->(4,1): sqrt2, ->(4,5): 4, ->(5,6): sqrt2, ->(8,6): 3.
    pts = [(z, 0) for z in range(5)] + [(4, x) for x in range(7)] + [(z, 6) for z in range(4, 9)]
    image = _draw(pts, (9, 3, 7))
    expected = (10 + 2 * SQRT2) / 8
    assert mean_geodesic_tortuosity(image, True) == pytest.approx(expected, rel=1e-12)


def test_u_shaped_detour_that_runs_backwards_known_length():
    # Down x = 0 (z 0..5), across z = 5 (x 0..4), back UP x = 4 (z 5..1), across z = 1
    # (x 4..8), down x = 8 (z 1..9). Hand count: 4 + sqrt2 + 2 + sqrt2 + 2 + sqrt2 + 2 +
    # sqrt2 + 7 = 17 + 4 sqrt2 over a thickness of 9.
    pts = (
        [(z, 0) for z in range(6)]
        + [(5, x) for x in range(5)]
        + [(z, 4) for z in range(1, 6)]
        + [(1, x) for x in range(4, 9)]
        + [(z, 8) for z in range(1, 10)]
    )
    image = _draw(pts, (10, 3, 9))
    expected = (17 + 4 * SQRT2) / 9
    assert mean_geodesic_tortuosity(image, True) == pytest.approx(expected, rel=1e-12)
    # pore voxels in the planes y = 0 and y = 2 beside the curve have straight paths
    pore_map = geodesic_tortuosity(image, False).tortuosity_map
    np.testing.assert_allclose(pore_map[[0, 2], :], 1.0, rtol=1e-12)
    assert np.all(pore_map[1, 1:] > 1.0)  # those in the curve's plane must step around it


def test_edge_touching_staircase_is_connected():
    # voxels (k, k, 2): consecutive voxels share only an edge -> steps of sqrt2
    n = 6
    image = np.zeros((n, n, 5), dtype=bool)
    for k in range(n):
        image[k, k, 2] = True
    assert mean_geodesic_tortuosity(image, True, axis=0) == pytest.approx(SQRT2, rel=1e-12)
    assert mean_geodesic_tortuosity(image, True, axis=1) == pytest.approx(SQRT2, rel=1e-12)


def test_corner_touching_staircase_is_connected():
    # voxels (k, k, k): consecutive voxels share only a corner -> steps of sqrt3
    n = 5
    image = np.zeros((n, n, n), dtype=bool)
    for k in range(n):
        image[k, k, k] = True
    for axis in range(3):
        assert mean_geodesic_tortuosity(image, "solid", axis=axis) == pytest.approx(SQRT3)


def test_connected_fraction_with_dead_ends():
    image = np.zeros((6, 5, 5), dtype=bool)
    image[:, 1, 1] = True  # straight: tau = 1
    image[:, 3, 3] = True  # straight: tau = 1
    image[:3, 1, 4] = True  # dead end, not touching the others
    image[0, 4, 0] = True  # isolated start voxel
    result = geodesic_tortuosity(image, True)
    assert result.n_start == 4
    assert result.n_connected == 2
    assert result.connected_fraction == pytest.approx(0.5)
    assert result.mean == pytest.approx(1.0)
    tau = result.tortuosity_map
    assert tau[1, 1] == pytest.approx(1.0) and tau[3, 3] == pytest.approx(1.0)
    assert tau[1, 4] == math.inf and tau[4, 0] == math.inf
    assert np.isnan(tau[0, 0])  # not a phase voxel
    assert np.count_nonzero(np.isnan(tau)) == 25 - 4


def test_mean_averages_different_path_lengths():
    # one straight channel (tau 1) and one edge-staircase (tau sqrt2), disjoint
    n = 5
    image = np.zeros((n, 8, 8), dtype=bool)
    image[:, 0, 0] = True
    for k in range(n):
        image[k, 2 + k, 6] = True
    assert mean_geodesic_tortuosity(image, True) == pytest.approx((1 + SQRT2) / 2)


def _reference_mean(image, phase, axis):
    """Independent reference: 26-neighbour graph + scipy dijkstra from every target voxel."""
    mask = np.moveaxis(image == phase, axis, 0)
    idx = -np.ones(mask.shape, dtype=np.int64)
    idx[mask] = np.arange(np.count_nonzero(mask))
    rows, cols, vals = [], [], []
    shape = np.array(mask.shape)
    coords = np.argwhere(mask)
    for off in itertools.product((-1, 0, 1), repeat=3):
        if off == (0, 0, 0):
            continue
        nb = coords + off
        ok = np.all((nb >= 0) & (nb < shape), axis=1)
        src, nb = coords[ok], nb[ok]
        keep = mask[tuple(nb.T)]
        rows.append(idx[tuple(src[keep].T)])
        cols.append(idx[tuple(nb[keep].T)])
        vals.append(np.full(keep.sum(), math.sqrt(sum(o * o for o in off))))
    n = np.count_nonzero(mask)
    graph = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(n, n)).tocsr()
    targets = idx[-1][mask[-1]]
    starts = idx[0][mask[0]]
    if targets.size == 0 or starts.size == 0:
        return math.inf
    dist = dijkstra(graph, indices=targets, min_only=True)[starts]
    dist = dist[np.isfinite(dist)]
    return float(dist.mean() / (mask.shape[0] - 1)) if dist.size else math.inf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_independent_dijkstra_on_random_images(seed):
    rng = np.random.default_rng(seed)
    image = rng.random((9, 10, 11)) < 0.35  # solid sparse (detours), pore dense
    for phase, axis in itertools.product((True, False), range(3)):
        expected = _reference_mean(image, phase, axis)
        got = mean_geodesic_tortuosity(image, phase, axis=axis)
        assert got == pytest.approx(expected, rel=1e-12), (phase, axis)


def test_phase_spellings_agree_and_input_untouched():
    rng = np.random.default_rng(3)
    image = (rng.random((8, 8, 8)) < 0.5).astype(np.uint8)
    before = image.copy()
    solid = [mean_geodesic_tortuosity(image, p) for p in (True, 1, "solid", "SOLID")]
    pore = [mean_geodesic_tortuosity(image, p) for p in (False, 0, "pore")]
    assert len(set(solid)) == 1 and len(set(pore)) == 1
    np.testing.assert_array_equal(image, before)


def test_result_is_a_frozen_record():
    result = geodesic_tortuosity(np.ones((3, 3, 3), dtype=bool), True)
    assert isinstance(result, GeodesicResult)
    with pytest.raises(AttributeError):
        result.mean = 2.0


@pytest.mark.parametrize(
    ("image", "phase", "axis", "match"),
    [
        (np.full((4, 4, 4), 2), True, 0, "binary image with values 0 and 1"),
        (np.ones((4, 4)), True, 0, "3D array"),
        (np.ones((4, 4, 4)), False, 0, r"phase pore \(False\) is absent"),
        (np.zeros((4, 4, 4)), "solid", 0, r"phase solid \(True\) is absent"),
        (np.ones((4, 4, 4)), "liquid", 0, "phase must be"),
        (np.ones((4, 4, 4)), 0.5, 0, "phase must be"),
        (np.ones((4, 4, 4)), True, 3, "axis 3 is out of range"),
        (np.ones((4, 4, 4)), True, 1.0, "axis must be an integer"),
        (np.ones((1, 4, 4)), True, 0, "at least 2 voxels along axis 0"),
    ],
)
def test_bad_input_raises(image, phase, axis, match):
    with pytest.raises(ValueError, match=match):
        geodesic_tortuosity(image, phase, axis=axis)
