import copy
import itertools
import logging

import numpy as np
import pytest
import torch

from srlib.devices import resolve_device
from srlib.network import (
    PixelShuffle3d,
    SRResNet3d,
    count_parameters,
    describe,
    load_model,
    save_model,
    transfer_weights,
)


def _model(in_channels, alpha, seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs.setdefault("features", 4)
    kwargs.setdefault("blocks", 1)
    return SRResNet3d(in_channels, alpha, **kwargs).eval()


@pytest.mark.parametrize("alpha", [2, 4, 8])
def test_output_shape_and_range(alpha):
    model = _model(1, alpha)
    x = (torch.rand(1, 1, 24, 24, 24, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 1, 24 * alpha, 24 * alpha, 24 * alpha)
    assert y.dtype == torch.float32
    assert float(y.min()) > 0 and float(y.max()) < 1


@pytest.mark.parametrize("alpha", [2, 4])
def test_three_channel_input(alpha):
    model = _model(3, alpha)
    with torch.no_grad():
        y = model(torch.rand(2, 3, 6, 5, 4))
    assert y.shape == (2, 1, 6 * alpha, 5 * alpha, 4 * alpha)
    with pytest.raises(ValueError, match="channels"):
        model(torch.rand(1, 1, 6, 6, 6))
    with pytest.raises(ValueError, match="5D"):
        model(torch.rand(3, 6, 6, 6))


def test_logits_and_probabilities_agree():
    model = _model(1, 2)
    x = torch.rand(1, 1, 5, 5, 5)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.logits(x)), model(x))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((1, 3), {}, "alpha"),
        ((1, 16), {}, "alpha"),
        ((1, 2.0), {}, "alpha"),
        ((0, 2), {}, "in_channels"),
        ((1, 2), {"features": 0}, "features"),
        ((1, 2), {"blocks": -1}, "blocks"),
        ((1, 2), {"head_kernel": 4}, "head_kernel"),
        ((1, 2), {"padding_mode": "mirror"}, "padding_mode"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SRResNet3d(*args, **kwargs)


@pytest.mark.parametrize("order", ["channel", "offset"])
@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_matches_reference_loop(r, order):
    c, d, h, w = 2, 3, 2, 4
    x = torch.arange(2 * c * r**3 * d * h * w, dtype=torch.float32).reshape(2, c * r**3, d, h, w)
    y = PixelShuffle3d(r, order=order)(x)
    assert y.shape == (2, c, r * d, r * h, r * w)
    ref = torch.empty_like(y)
    for n, cc, i, j, k, z, yy, xx in itertools.product(
        range(2), range(c), range(r), range(r), range(r), range(d), range(h), range(w)
    ):
        offset = i * r**2 + j * r + k
        channel = cc * r**3 + offset if order == "channel" else offset * c + cc
        ref[n, cc, r * z + i, r * yy + j, r * xx + k] = x[n, channel, z, yy, xx]
    assert torch.equal(y, ref)


@pytest.mark.parametrize("order", ["channel", "offset"])
@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_channels_last_matches_contiguous(r, order):
    x = torch.rand(2, 3 * r**3, 2, 3, 4)
    shuffle = PixelShuffle3d(r, order=order)
    y = shuffle(x.contiguous(memory_format=torch.channels_last_3d))
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(y, shuffle(x))


def test_shuffle_orders_give_the_same_network_up_to_a_permutation():
    """An offset-order network computes what a channel-order one does with its upsampling
    convolutions' output channels permuted."""
    fast = _model(1, 4, features=4, blocks=1)
    slow = _model(1, 4, features=4, blocks=1, shuffle_order="channel")
    state = fast.state_dict()
    f = fast.features
    for key, value in state.items():
        if key.startswith("upsample.") and key.endswith(("conv.weight", "conv.bias")):
            # channel c r³ + o (channel order) holds what channel o f + c holds (offset order)
            state[key] = value.reshape(8, f, *value.shape[1:]).transpose(0, 1).reshape(
                value.shape)
    slow.load_state_dict(state)
    x = torch.rand(1, 1, 4, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(slow(x), fast(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="orders"):
        transfer_weights(slow, _model(1, 8, features=4, blocks=1))
    with pytest.raises(ValueError, match="shuffle_order"):
        _model(1, 2, shuffle_order="row")
    with pytest.raises(ValueError, match="order"):
        PixelShuffle3d(2, order="row")


@pytest.mark.parametrize("alpha", [2, 8])
def test_output_does_not_depend_on_memory_layout(alpha):
    model = _model(3, alpha, features=8, blocks=2)
    assert model.trunk[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.rand(2, 3, 5, 6, 7)
    with torch.no_grad():
        fast = model(x)
        model.to(memory_format=torch.contiguous_format)
        plain = model(x)
    assert plain.shape == fast.shape == (2, 1, 5 * alpha, 6 * alpha, 7 * alpha)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)


def test_pixel_shuffle_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        PixelShuffle3d(2)(torch.rand(1, 7, 2, 2, 2))
    for factor in (0, 2.0, True, "2"):
        with pytest.raises(ValueError, match="factor"):
            PixelShuffle3d(factor)
    assert type(PixelShuffle3d(np.int64(2)).factor) is int


@pytest.mark.parametrize("alpha", [2, 4])
def test_receptive_radius_is_exact(alpha):
    # Flipping one input voxel c changes outputs exactly on the HR blocks of the LR voxels
    # c - R ... c + R (R = receptive_radius), not beyond.
    model = _model(1, alpha, seed=3)
    r = model.receptive_radius
    assert r == model.lr_radius + model.hr_radius == 4 + 2 * 1 + 1 + 2
    n = 2 * r + 3
    c = n // 2
    x = (np.random.default_rng(0).random((n, n, n)) < 0.5).astype(np.float32)
    x2 = x.copy()
    x2[c, c, c] = 1 - x2[c, c, c]
    with torch.no_grad():
        y1 = model(torch.from_numpy(x)[None, None])[0, 0].numpy()
        y2 = model(torch.from_numpy(x2)[None, None])[0, 0].numpy()
    changed = np.argwhere(y1 != y2)
    lo, hi = changed.min(axis=0), changed.max(axis=0)
    assert np.all(lo >= alpha * (c - r)) and np.all(hi < alpha * (c + r + 1))
    # tight: the outermost LR blocks are affected
    assert np.all(lo < alpha * (c - r + 1)) and np.all(hi >= alpha * (c + r))


def test_receptive_radius_paper_network():
    assert SRResNet3d(1, 8).receptive_radius == 4 + 16 + 1 + 2
    assert SRResNet3d(1, 2, tail_kernel=9).hr_radius == 2 + 1


def test_describe_and_count_parameters():
    model = _model(3, 4, features=4, blocks=2)
    rows = describe(model, (3, 6, 6, 6))
    assert [r.name for r in rows] == [
        "head", "body.0", "body.1", "trunk", "upsample.0", "upsample.1", "tail", "output"
    ]
    assert rows[0].output_shape == (1, 4, 6, 6, 6)
    assert rows[4].output_shape == (1, 4, 12, 12, 12)
    assert rows[-1].output_shape == (1, 1, 24, 24, 24)
    assert sum(r.parameters for r in rows) == count_parameters(model)
    leaves = describe(model, (1, 3, 6, 6, 6), leaves=True)
    assert sum(r.parameters for r in leaves) == count_parameters(model)
    assert leaves[0].kind == "Conv3d" and leaves[0].parameters == 3 * 4 * 9**3 + 4
    # the model itself is untouched (still on the CPU, real tensors)
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="input_shape"):
        describe(model, (6, 6, 6))


def test_transfer_weights_alpha_2_to_4(caplog):
    src = _model(1, 2, seed=0, blocks=2)
    src_before = copy.deepcopy(src.state_dict())
    dst = _model(1, 4, seed=1, blocks=2)
    dst_before = copy.deepcopy(dst.state_dict())
    with caplog.at_level(logging.INFO, logger="srlib.network"):
        copied = transfer_weights(src, dst)
    expected = [k for k in dst.state_dict() if not k.startswith("upsample.1.")]
    assert copied == expected
    assert any(k.startswith("upsample.0.") for k in copied) and "tail.weight" in copied
    for k, v in dst.state_dict().items():
        if k in copied:
            assert torch.equal(v, src.state_dict()[k])
        else:
            assert torch.equal(v, dst_before[k])
    for k, v in src.state_dict().items():
        assert torch.equal(v, src_before[k])
    assert "upsample.1.conv.weight" in caplog.text


def test_transfer_weights_other_channel_count_skips_head():
    copied = transfer_weights(_model(1, 2), _model(3, 2))
    assert "head.0.weight" not in copied and "head.0.bias" in copied


def test_save_and_load(tmp_path):
    model = _model(3, 2, padding_mode="replicate")
    path = save_model(model, tmp_path / "sub" / "net.pt")
    loaded = load_model(path, device="cpu")
    assert loaded.config == model.config
    x = torch.rand(1, 3, 5, 5, 5)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_load_model_reads_files_from_before_shuffle_order(tmp_path):
    """A file without ``shuffle_order`` in its config holds channel-order weights."""
    model = _model(1, 4, features=4, blocks=1, shuffle_order="channel")
    config = {k: v for k, v in model.config.items() if k != "shuffle_order"}
    torch.save({"config": config, "state_dict": model.state_dict()}, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt", device="cpu")
    assert loaded.shuffle_order == "channel"
    x = torch.rand(1, 1, 4, 4, 4)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU fallback")
def test_resolve_device_falls_back_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="srlib.network"):
        assert resolve_device("cuda").type == "cpu"
    assert "CUDA" in caplog.text
    assert resolve_device(None).type == "cpu"
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_load_model_refuses_truncated_or_foreign_files(tmp_path):
    path = save_model(_model(1, 2), tmp_path / "net.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt"):
        load_model(tmp_path / "cut.pt", device="cpu")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt"):
        load_model(tmp_path / "other.pt", device="cpu")
    with pytest.raises(ValueError, match="missing.pt"):
        load_model(tmp_path / "missing.pt", device="cpu")


def test_bfloat16_switch_turns_native_bfloat16_off(monkeypatch):
    """SRLIB_BFLOAT16=off: no device counts as computing in bfloat16; bad values are named."""
    from srlib.devices import native_bfloat16

    monkeypatch.setenv("SRLIB_BFLOAT16", "off")
    assert native_bfloat16("cpu") is False
    monkeypatch.setenv("SRLIB_BFLOAT16", "auto")
    expected = any(getattr(torch.cpu, name, lambda: False)()
                   for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    assert native_bfloat16("cpu") is expected
    monkeypatch.setenv("SRLIB_BFLOAT16", "no")
    with pytest.raises(ValueError, match="SRLIB_BFLOAT16 must be 'auto' or 'off'"):
        native_bfloat16("cpu")


def test_networks_with_more_output_channels_keep_the_paper_kind_unchanged(tmp_path):
    """Networks that also predict the two diffusion fields (the paper's future work)."""
    one = SRResNet3d(3, 2, features=4, blocks=1)
    three = SRResNet3d(3, 2, features=4, blocks=1, out_channels=3)
    x = torch.rand(1, 3, 6, 6, 6)
    assert one(x).shape == (1, 1, 12, 12, 12)
    with torch.no_grad():
        out = three(x)
    # channel 0 the probability; the others raw values (fields, srlib.training.targets)
    assert out.shape == (1, 3, 12, 12, 12)
    assert 0 < float(out[:, 0].min()) and float(out[:, 0].max()) < 1
    assert torch.equal(out[:, 1:], three.logits(x)[:, 1:])
    assert "out_channels" not in one.config and three.config["out_channels"] == 3
    assert three.receptive_radius == one.receptive_radius
    path = save_model(three, tmp_path / "three.pt")
    again = load_model(path)
    assert again.out_channels == 3
    assert torch.equal(again.eval()(x), three.eval()(x))
    with pytest.raises(ValueError, match="out_channels"):
        SRResNet3d(1, 2, features=4, blocks=1, out_channels=0)
