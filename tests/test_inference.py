import numpy as np
import pytest
import torch

from srlib.inference import auto_tile, super_resolve
from srlib.network import SRResNet3d


def _model(in_channels, alpha, seed=0, blocks=1):
    torch.manual_seed(seed)
    return SRResNet3d(in_channels, alpha, features=4, blocks=blocks)


def _single_pass(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(np.asarray(x, np.float32))[None])[0, 0].numpy()
    model.train(was_training)
    return out


def test_tiled_equals_single_pass_binary_input():
    model = _model(1, 2)
    # BatchNorm statistics away from their initial values, so eval mode matters
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 1, 8, 8, 8) * 3)
    lr = np.random.default_rng(0).random((13, 11, 9)) < 0.5
    before = lr.copy()
    reference = _single_pass(model, lr[None])
    tiled = super_resolve(model, lr, tile=4, progress=False)
    assert tiled.shape == (26, 22, 18) and tiled.dtype == np.float32
    np.testing.assert_allclose(tiled, reference, rtol=0, atol=1e-5)
    # the upsampling stage in sub-tiles of another size
    tiled = super_resolve(model, lr, tile=6, upsample_tile=2, progress=False)
    np.testing.assert_allclose(tiled, reference, rtol=0, atol=1e-5)
    assert 0 < tiled.min() and tiled.max() < 1
    single = super_resolve(model, lr.astype(np.uint8), progress=False)  # default tile: one pass
    np.testing.assert_allclose(single, reference, rtol=0, atol=1e-6)
    assert np.array_equal(lr, before)
    assert model.training  # mode restored


def test_tiled_equals_single_pass_three_channels_alpha_4():
    model = _model(3, 4, seed=1, blocks=2)
    rng = np.random.default_rng(1)
    x = np.concatenate([(rng.random((1, 7, 10, 6)) < 0.5), rng.random((2, 7, 10, 6))])
    x = x.astype(np.float64)
    reference = _single_pass(model, x)
    tiled = super_resolve(model, x, tile=5, upsample_tile=3, progress=False)
    assert tiled.shape == (28, 40, 24)
    np.testing.assert_allclose(tiled, reference, rtol=0, atol=1e-5)


def test_threshold_gives_binary_image():
    model = _model(1, 2)
    lr = np.random.default_rng(2).random((6, 6, 6)) < 0.5
    probs = super_resolve(model, lr, tile=4, progress=False)
    mu = float(np.median(probs))
    binary = super_resolve(model, lr, threshold=mu, tile=4, progress=False)
    assert binary.dtype == bool and binary.shape == (12, 12, 12)
    assert np.array_equal(binary, probs >= mu)  # Eq. (17): solid where P >= mu


def test_auto_tile_bounds_memory():
    model = SRResNet3d(1, 8)  # the paper's network
    assert auto_tile(model, (10, 10, 10)) == (10, 10)  # small volume: one pass
    tile, sub = auto_tile(model, (100, 100, 100))
    assert 1 <= sub < tile <= 100
    small_tile, small_sub = auto_tile(model, (100, 100, 100), max_bytes=1 << 28)
    assert small_tile <= tile and small_sub <= sub


@pytest.mark.parametrize(
    ("lr_input", "kwargs", "match"),
    [
        (np.zeros((8, 8)), {}, "3D"),
        (np.zeros((1, 1, 4, 4, 4)), {}, "3D"),
        (np.zeros((3, 4, 4, 4)), {}, "channel"),
        (np.full((4, 4, 4), np.nan), {}, "NaN"),
        (np.zeros((4, 4, 4)), {"threshold": 1.5}, "threshold"),
        (np.zeros((4, 4, 4)), {"tile": 0}, "tile"),
        (np.zeros((4, 4, 4)), {"upsample_tile": 2.5}, "upsample_tile"),
        (np.zeros((0, 4, 4)), {}, "empty"),
        # non-binary images used to come back as plausible binary super-resolutions
        (np.full((4, 4, 4), 255, dtype=np.uint8), {}, "must be a binary image"),
        (np.where(np.eye(4, dtype=bool)[None].repeat(4, 0), 0.3, 0.7), {}, "binary image"),
        (-np.ones((4, 4, 4)), {}, "binary image"),
        (np.zeros((4, 4, 4)), {"num_threads": 0}, "num_threads must be a positive integer"),
    ],
)
def test_bad_input(lr_input, kwargs, match):
    with pytest.raises(ValueError, match=match):
        super_resolve(_model(1, 2), lr_input, progress=False, **kwargs)


def test_bad_model():
    with pytest.raises(ValueError, match="SRResNet3d"):
        super_resolve(torch.nn.Identity(), np.zeros((4, 4, 4)))
