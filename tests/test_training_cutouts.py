"""Tests of srlib.training.cutouts: pairs, cutouts and their Eq. (3) alignment."""

import numpy as np
import pytest
from scipy import ndimage

from srlib import training as T
from srlib.resample import downsample


def _field(shape, seed, sigma=1.5):
    noise = np.random.default_rng(seed).standard_normal(shape)
    return ndimage.gaussian_filter(noise, sigma, mode="wrap") > 0


def _three_channel_pair(hr, alpha):
    lr = hr[::alpha, ::alpha, ::alpha].astype(np.float32)
    extra = np.random.default_rng(5).random((1, *lr.shape)).astype(np.float32)
    # channel 2 = 1 - channel 0 lets us see that every channel gets the same transform
    return T.Pair(np.concatenate([lr[None], extra, 1 - lr[None]]), hr)


@pytest.mark.parametrize("alpha", [2, 4])
def test_augmented_pairs_stay_aligned_for_general_targets(alpha):
    # HR is not block-constant, so only a correctly shifted window keeps Eq. (3):
    # downsample(target_aug) == input_aug for every one of the 48 symmetries.
    rng = np.random.default_rng(alpha)
    hr = rng.random((alpha * 7, alpha * 8, alpha * 9)) < 0.5
    pair = _three_channel_pair(hr, alpha)
    for s in T.cube_symmetries():
        inp, tgt = T.cutout_at(pair, (1, 2, 3), 5, symmetry=s)
        assert inp.shape == (3, 5, 5, 5) and tgt.shape == (5 * alpha,) * 3
        assert np.array_equal(tgt[::alpha, ::alpha, ::alpha], inp[0] == 1), s
        assert np.array_equal(inp[2], 1 - inp[0])
        plain, _ = T.cutout_at(pair, (1, 2, 3), 5)
        assert np.array_equal(inp[1], T.apply_symmetry(plain[1], s))
    for _ in range(50):
        inp, tgt = T.random_cutout(pair, 5, rng)
        assert np.array_equal(tgt[::alpha, ::alpha, ::alpha], inp[0] == 1)
        assert np.array_equal(inp[2], 1 - inp[0])


def test_naive_mirroring_breaks_the_alignment():
    # Why the window is shifted: without it a mirrored pair violates Eq. (3).
    alpha = 2
    hr = np.random.default_rng(7).random((16, 16, 16)) < 0.5
    pair = T.make_pair(hr, alpha)
    mirror = T.Symmetry((0, 1, 2), (True, False, False))
    inp, tgt = T.cutout_at(pair, (1, 1, 1), 5, symmetry=mirror, align_mirrors=False)
    assert not np.array_equal(tgt[::alpha, ::alpha, ::alpha], inp[0] == 1)
    # the naive pair is the mirror of the plain pair, shifted by alpha - 1 HR voxels
    inp0, tgt0 = T.cutout_at(pair, (1, 1, 1), 5)
    assert np.array_equal(tgt, tgt0[::-1])
    assert np.array_equal(tgt[alpha - 1 :: alpha, ::alpha, ::alpha], inp[0] == 1)


def test_block_constant_targets_stay_aligned_either_way():
    alpha = 4
    lr = np.random.default_rng(8).random((6, 6, 6)) < 0.5
    hr = lr.repeat(alpha, 0).repeat(alpha, 1).repeat(alpha, 2)  # nearest-neighbour upsampling
    pair = T.make_pair(hr, alpha)
    for s in T.cube_symmetries():
        for align in (True, False):
            inp, tgt = T.cutout_at(pair, (1, 1, 1), 4, symmetry=s, align_mirrors=align)
            assert np.array_equal(tgt[::alpha, ::alpha, ::alpha], inp[0] == 1)


def test_cutout_needs_a_spare_voxel_for_aligned_mirroring():
    pair = T.make_pair(np.random.default_rng(9).random((8, 8, 8)) < 0.5, 2)  # LR 4³
    mirror = T.Symmetry((0, 1, 2), (True, False, False))
    with pytest.raises(ValueError, match="corner"):
        T.cutout_at(pair, (0, 0, 0), 4, symmetry=mirror)
    with pytest.raises(ValueError, match="spare"):
        for seed in range(20):  # some draw mirrors an axis
            T.random_cutout(pair, 4, np.random.default_rng(seed))
    inp, tgt = T.random_cutout(pair, 4, np.random.default_rng(0), align_mirrors=False)
    assert inp.shape == (1, 4, 4, 4) and tgt.shape == (8, 8, 8)


def test_pair_validation():
    hr = np.zeros((8, 8, 8), bool)
    assert T.Pair(np.zeros((4, 4, 4)), hr).alpha == 2
    with pytest.raises(ValueError, match="target shape"):
        T.Pair(np.zeros((1, 3, 4, 4)), hr)
    with pytest.raises(ValueError, match="channel 0"):
        T.Pair(np.full((1, 4, 4, 4), 0.5), hr)
    with pytest.raises(ValueError, match="binary"):
        T.Pair(np.zeros((4, 4, 4)), np.full((8, 8, 8), 2))
    with pytest.raises(ValueError, match="divisible"):
        T.make_pair(np.zeros((9, 8, 8), bool), 2)
    with pytest.raises(ValueError, match="alpha"):
        T.make_pair(hr, 3)


def test_make_pair_is_eq3_with_extra_channels():
    hr = _field((16, 8, 24), 12)
    extra = np.random.default_rng(13).random((2, 4, 2, 6))
    pair = T.make_pair(hr, 4, channels=extra)
    assert pair.alpha == 4 and pair.channels == 3 and pair.lr_shape == (4, 2, 6)
    assert np.array_equal(pair.input[0], downsample(hr, 4))
    assert np.array_equal(pair.input[1:], extra.astype(np.float32))
    assert pair.target is hr  # a bool target is not copied
    with pytest.raises(ValueError, match="channels"):
        T.make_pair(hr, 4, channels=extra[:, :2])


def test_validation_cutouts_are_fixed_by_the_seed():
    pairs = [T.make_pair(_field((16, 16, 16), s), 2) for s in range(2)]
    x, y = T.validation_cutouts(pairs, 5, 4, seed=3)
    assert x.shape == (5, 1, 4, 4, 4) and y.shape == (5, 8, 8, 8)
    assert np.array_equal(y[:, ::2, ::2, ::2], x[:, 0] == 1)  # not augmented: Eq. (3) holds
    x2, y2 = T.validation_cutouts(pairs, 5, 4, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, T.validation_cutouts(pairs, 5, 4, seed=4)[0])
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="validation cutouts"):
            T.validation_cutouts(pairs, bad, 4)
    with pytest.raises(ValueError, match="cutout"):
        T.validation_cutouts(pairs, 5, 0)
