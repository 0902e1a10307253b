import itertools

import numpy as np
import pytest

from srlib import baselines
from srlib.resample import _dodgson_kernel, interpolate_quadratic


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_centred_interpolation_reproduces_block_means_of_a_linear_ramp(alpha):
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in (7, 6, 5)), indexing="ij")
    lr = 0.3 + 0.05 * z - 0.02 * y + 0.07 * x
    out = baselines.interpolate_quadratic_centred(lr, alpha)
    assert out.shape == (7 * alpha, 6 * alpha, 5 * alpha) and out.dtype == np.float64
    blocks = out.reshape(7, alpha, 6, alpha, 5, alpha).mean(axis=(1, 3, 5))
    inner = (slice(1, -1),) * 3  # the border blocks are half extrapolated (edge replication)
    np.testing.assert_allclose(blocks[inner], lr[inner], atol=1e-12)
    # the aligned interpolation does not have this property: its block means are shifted
    aligned = interpolate_quadratic(lr, alpha).reshape(7, alpha, 6, alpha, 5, alpha)
    assert not np.allclose(aligned.mean(axis=(1, 3, 5))[inner], lr[inner])


def test_centred_interpolation_matches_a_direct_evaluation_of_the_kernel(rng):
    alpha, n = 4, 5
    lr = rng.random((n, n, n))
    out = baselines.interpolate_quadratic_centred(lr, alpha)

    def weights(i):  # HR voxel i at LR coordinate (i + 1/2)/alpha - 1/2, edges replicated
        xi = (i + 0.5) / alpha - 0.5
        w = np.zeros(n)
        for j in range(-3, n + 3):
            w[min(max(j, 0), n - 1)] += _dodgson_kernel(xi - j)
        return w

    for i, k, m in [(0, 0, 0), (3, 9, 19), (10, 1, 7), (19, 19, 19)]:
        expected = np.einsum("a,b,c,abc->", weights(i), weights(k), weights(m), lr)
        assert out[i, k, m] == pytest.approx(expected, abs=1e-12)


def test_centred_interpolation_commutes_with_mirroring(rng):
    lr = rng.random((6, 5, 4)) < 0.5
    out = baselines.interpolate_quadratic_centred(lr, 4)
    np.testing.assert_allclose(baselines.interpolate_quadratic_centred(lr[::-1, :, ::-1], 4),
                               out[::-1, :, ::-1], atol=1e-6)
    assert np.all(baselines.interpolate_quadratic_centred(np.ones((3, 3, 3)), 2) == 1)


def test_interpolate_conventions_and_thresholds(rng):
    lr = rng.random((6, 6, 6)) < 0.5
    aligned = baselines.interpolate(lr, 2)
    assert aligned.dtype == bool and np.array_equal(aligned[::2, ::2, ::2], lr)
    grey = baselines.interpolate(lr, 2, convention="centred", threshold=None)
    assert np.array_equal(baselines.interpolate(lr, 2, convention="centred", threshold=0.3),
                          grey >= 0.3)
    with pytest.raises(ValueError, match="convention"):
        baselines.interpolate(lr, 2, convention="corner")
    with pytest.raises(ValueError, match="threshold"):
        baselines.interpolate(lr, 2, threshold=float("nan"))
    with pytest.raises(ValueError, match="lr must be a binary"):
        baselines.interpolate(lr * 255, 2)
    with pytest.raises(ValueError, match="dtype"):
        baselines.interpolate_quadratic_centred(lr, 2, dtype="banana")


def test_corner_patterns_use_eq3_cells_and_replicate_the_last_plane():
    lr = np.zeros((3, 3, 3), dtype=bool)
    lr[1, 1, 0] = True
    p = baselines.corner_patterns(lr)
    assert p.dtype == np.uint8 and p.shape == lr.shape
    # voxel (1, 1, 0) is corner c = 4 dz + 2 dy + dx of the cell (1 - dz, 1 - dy, 0 - dx)
    assert (p[1, 1, 0], p[0, 1, 0], p[1, 0, 0], p[0, 0, 0]) == (1, 16, 4, 64)
    assert np.count_nonzero(p) == 4
    # the last y plane has no upper neighbour: it is replicated (corners dy = 0 and 1 equal)
    lr = np.zeros((3, 3, 3), dtype=bool)
    lr[1, 2, 0] = True
    p = baselines.corner_patterns(lr)
    assert (p[1, 2, 0], p[0, 2, 0], p[1, 1, 0], p[0, 1, 0]) == (1 | 4, 16 | 64, 4, 64)


def _aligned_nearest(lr, alpha):
    """An HR image whose every alpha-block is filled by its Eq. (3) LR voxel."""
    return lr.repeat(alpha, 0).repeat(alpha, 1).repeat(alpha, 2)


@pytest.mark.parametrize("alpha", [2, 4])
def test_local_bayes_reproduces_a_nearest_neighbour_world_exactly(rng, alpha):
    # In a world whose HR images are the block-wise copies of their LR image, the HR voxel is
    # the corner (0, 0, 0) of its cell: every seen cell is decided, and the table is exact.
    train = [_aligned_nearest(rng.random((6, 6, 6)) < 0.5, alpha) for _ in range(4)]
    lb = baselines.LocalBayes.count(train, alpha)
    assert lb.table.shape == (256, alpha ** 3) and lb.total.sum() == 4 * 5 ** 3
    seen = lb.total > 0
    assert np.array_equal(lb.table[seen], np.repeat((np.arange(256) & 1)[seen, None],
                                                    alpha ** 3, axis=1).astype(np.int8))
    test_lr = rng.random((5, 4, 6)) < 0.5
    sr = lb.predict(test_lr)
    if seen.all():
        assert np.array_equal(sr, _aligned_nearest(test_lr, alpha))
    decided = lb.table[baselines.corner_patterns(test_lr)].min(axis=-1) >= 0
    blocks = sr.reshape(5, alpha, 4, alpha, 6, alpha).transpose(0, 2, 4, 1, 3, 5)
    assert np.all(blocks[decided] == test_lr[decided][:, None, None, None])


def test_local_bayes_majority_ties_and_unseen_fall_back_to_interpolation():
    alpha = 2
    solid = np.zeros((256, 8), dtype=np.int64)
    total = np.zeros(256, dtype=np.int64)
    total[0], solid[0] = 10, [0, 7, 5, 3, 0, 0, 0, 10]  # 7/10 solid, 5/10 tie, 3/10 pore
    total[255], solid[255] = 4, [0, 0, 2, 0, 0, 0, 0, 0]  # mostly pore, one tie
    lb = baselines.LocalBayes(alpha, solid, total)
    assert lb.table[0].tolist() == [0, 1, -1, 0, 0, 0, 0, 1]
    assert lb.table[255].tolist() == [0, 0, -1, 0, 0, 0, 0, 0]
    assert np.all(lb.table[1:255] == -1)
    assert lb.coverage == pytest.approx(14 / (256 * 8))

    def blocks(sr):
        return sr.reshape(3, 2, 3, 2, 3, 2).transpose(0, 2, 4, 1, 3, 5).reshape(27, 8)

    pore = np.zeros((3, 3, 3), dtype=bool)  # pattern 0 in every cell; the tie falls back
    assert np.array_equal(blocks(lb.predict(pore)), np.tile([0, 1, 0, 0, 0, 0, 0, 1], (27, 1)))
    solid_lr = ~pore  # pattern 255; the tie falls back to the interpolation: solid
    assert np.array_equal(blocks(lb.predict(solid_lr)), np.tile([0, 0, 1, 0, 0, 0, 0, 0], (27, 1)))
    lr = np.zeros((3, 3, 3), dtype=bool)
    lr[1, 1, 1] = True  # unseen patterns around it: the interpolation there
    sr, interp = lb.predict(lr), interpolate_quadratic(lr, 2) >= 0.5
    unseen = np.repeat(np.repeat(np.repeat(lb.total[baselines.corner_patterns(lr)] == 0,
                                           2, 0), 2, 1), 2, 2)
    assert unseen.any() and np.array_equal(sr[unseen], interp[unseen])
    with pytest.raises(ValueError, match="solid counts"):
        baselines.LocalBayes(alpha, solid + 11, total)
    with pytest.raises(ValueError, match="solid must be"):
        baselines.LocalBayes(4, solid, total)


def test_local_bayes_counts_only_cells_with_a_genuine_upper_neighbour(rng):
    hr = rng.random((8, 8, 8)) < 0.5
    lb = baselines.LocalBayes.count([hr], 2)
    assert lb.total.sum() == 3 ** 3  # 4 LR voxels per axis, 3 complete cells
    lr = hr[::2, ::2, ::2]
    pattern = baselines.corner_patterns(lr)
    # brute force over the inner cells
    solid = np.zeros((256, 8), dtype=np.int64)
    for j, k, m in itertools.product(range(3), repeat=3):
        block = hr[2 * j:2 * j + 2, 2 * k:2 * k + 2, 2 * m:2 * m + 2].reshape(-1)
        solid[pattern[j, k, m]] += block
    assert np.array_equal(lb.solid, solid)
    with pytest.raises(ValueError, match="empty"):
        baselines.LocalBayes.count([], 2)
    with pytest.raises(ValueError, match="divisible"):
        baselines.LocalBayes.count([hr[:6, :6, :7]], 2)


def test_local_bayes_beats_or_matches_interpolation_on_its_training_images():
    from srlib import stochastic
    from srlib.metrics import accuracy

    params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.4)
    images = [stochastic.sample(32, params, seed=s) for s in range(3)]
    lb = baselines.LocalBayes.count(images, 4)
    for hr in images:
        lr = hr[::4, ::4, ::4]
        inner = (slice(0, 28),) * 3  # the counted cells
        got = accuracy(lb.predict(lr)[inner], hr[inner])
        interp = accuracy(baselines.interpolate(lr, 4)[inner], hr[inner])
        assert got >= interp - 0.02
    assert lb.digest == baselines.LocalBayes.count(images, 4).digest
    assert lb.digest != baselines.LocalBayes.count(images[:2], 4).digest


def test_interpolation_cutouts_and_fitted_threshold_follow_eq18(rng):
    from srlib.training import fit_threshold, make_pair

    params_hr = [(rng.random((16, 16, 16)) < 0.3) for _ in range(2)]
    pairs = [make_pair(h, 2) for h in params_hr]
    probs, targets = baselines.interpolation_cutouts(pairs, cutout=4)
    assert len(probs) == 2 * 2 ** 3 and probs[0].shape == (8, 8, 8)
    assert all(p.min() >= 0 and p.max() <= 1 for p in probs)
    # the first cutout is the interpolation of the first LR cutout on its own
    lr0 = params_hr[0][::2, ::2, ::2][:4, :4, :4]
    np.testing.assert_allclose(probs[0], np.clip(interpolate_quadratic(lr0, 2), 0, 1))
    assert np.array_equal(targets[0], params_hr[0][:8, :8, :8])
    mu = baselines.fit_interpolation_threshold(pairs, cutout=4)
    assert mu == fit_threshold(probs, targets)
    mu_c = baselines.fit_interpolation_threshold(pairs, convention="centred", cutout=4)
    assert 0 < mu_c < 1
    # the fit matches porosities: thresholding at mu gets the mean pore fraction closer
    pore = np.mean([1 - t.mean() for t in targets])
    at = np.mean([np.mean(p < mu) for p in probs])
    at_half = np.mean([np.mean(p < 0.5) for p in probs])
    assert abs(at - pore) <= abs(at_half - pore) + 1e-9
    with pytest.raises(ValueError, match="smaller than the cutout"):
        baselines.interpolation_cutouts(pairs, cutout=9)
