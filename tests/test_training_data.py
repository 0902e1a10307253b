"""Tests of srlib.training.data and lazy pairs: planned cutouts, DataLoader workers, streaming."""

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from srlib import training as T
from srlib.resample import downsample
from srlib.training.data import draw_plan, rank_share

SETTINGS = dict(cutout=6, batch_size=4, steps_per_epoch=3, max_epochs=2, patience=10,
                val_cutouts=3, learning_rate=3e-3, seed=5, progress=False, num_threads=1)


def _field(shape, seed):
    noise = np.random.default_rng(seed).standard_normal(shape)
    return ndimage.gaussian_filter(noise, 1.5, mode="wrap") > 0


def _channels(seed, shape):
    return np.random.default_rng(seed).random((2, *shape)).astype(np.float32)


@pytest.fixture(scope="module")
def pairs():
    return [T.make_pair(_field((24, 24, 24), s), 2, channels=_channels(s, (12, 12, 12)))
            for s in range(3)]


def _model():
    return T.make_model(3, 2, features=4, blocks=1, seed=0)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_plan_draws_what_random_cutout_draws(pairs):
    # the plan consumes the generator as the loop once did: same cutouts, same state after
    plan = draw_plan(np.random.default_rng(3), pairs, 2, 3, cutout=6)
    rng = np.random.default_rng(3)
    for batch in plan:
        for k, corner, sym in batch:
            want = T.random_cutout(pairs[int(rng.integers(len(pairs)))], 6, rng)
            got = T.cutout_at(pairs[k], corner, 6, symmetry=sym)
            assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    rng2 = np.random.default_rng(3)
    draw_plan(rng2, pairs, 2, 3, cutout=6)
    assert rng2.bit_generator.state == rng.bit_generator.state


def test_rank_share_splits_the_batch():
    shares = [rank_share(8, r, 4) for r in range(4)]
    assert [list(range(8))[s] for s in shares] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    with pytest.raises(ValueError, match="divisible"):
        rank_share(6, 0, 4)


def test_same_batches_whatever_the_number_of_workers(pairs):
    runs = []
    for workers in (0, 2):
        model = _model()
        result = T.train(model, pairs[:2], pairs[2:], num_workers=workers, **SETTINGS)
        runs.append((_weights(model), result.train_loss, result.val_loss))
    assert _same(runs[0][0], runs[1][0])
    assert runs[0][1:] == runs[1][1:]
    with pytest.raises(ValueError, match="num_workers"):
        T.train(_model(), pairs[:2], pairs[2:], num_workers=-1, **SETTINGS)


def test_resumed_run_with_workers_continues_the_uninterrupted_run(pairs, tmp_path):
    straight = _model()
    T.train(straight, pairs[:2], pairs[2:], num_workers=1, **SETTINGS)
    path = tmp_path / "run.ckpt"
    T.train(_model(), pairs[:2], pairs[2:], checkpoint=path, num_workers=2,
            **{**SETTINGS, "max_epochs": 1})
    resumed = _model()  # a fresh process rebuilds the model; the checkpoint restores it
    result = T.train(resumed, pairs[:2], pairs[2:], checkpoint=path, num_workers=0, **SETTINGS)
    assert result.stopped_epoch == 2
    assert _same(_weights(straight), _weights(resumed))


def _memmaps(tmp_path, pair, name):
    paths = {}
    for key, arr in (("input", pair.input), ("target", pair.target)):
        paths[key] = tmp_path / f"{name}_{key}.npy"
        np.save(paths[key], arr)
    return T.Pair(np.load(paths["input"], mmap_mode="r"), np.load(paths["target"], mmap_mode="r"))


def test_lazy_pairs_train_like_pairs_in_memory(pairs, tmp_path):
    zarr = pytest.importorskip("zarr")
    lazy = [_memmaps(tmp_path, p, f"p{i}") for i, p in enumerate(pairs[:2])]
    z = zarr.create_array(store=tmp_path / "hr.zarr", shape=pairs[2].target.shape,
                          chunks=(8, 8, 8), dtype=bool)
    z[:] = pairs[2].target
    lr = zarr.create_array(store=tmp_path / "lr.zarr", shape=pairs[2].input.shape,
                           chunks=(1, 8, 8, 8), dtype=np.float32)
    lr[:] = pairs[2].input
    lazy.append(T.Pair(zarr.open_array(tmp_path / "lr.zarr", mode="r"),
                       zarr.open_array(tmp_path / "hr.zarr", mode="r")))
    assert all(p.lazy for p in lazy) and not pairs[0].lazy
    assert isinstance(lazy[0].input, T.ChannelStack) and lazy[0].lr_shape == (12, 12, 12)
    sym = T.cube_symmetries()[29]
    for p, q in zip(pairs, lazy, strict=True):
        a, b = T.cutout_at(p, (1, 2, 3), 6, symmetry=sym), T.cutout_at(q, (1, 2, 3), 6,
                                                                       symmetry=sym)
        assert a[0].dtype == b[0].dtype and a[1].dtype == b[1].dtype == bool
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    eager, streamed = _model(), _model()
    r1 = T.train(eager, pairs[:2], pairs[2:], **SETTINGS)
    r2 = T.train(streamed, lazy[:2], lazy[2:], num_workers=2, **SETTINGS)
    assert _same(_weights(eager), _weights(streamed)) and r1.val_loss == r2.val_loss


def test_channel_stack_reads_only_what_is_asked(tmp_path):
    lr = np.arange(4 * 5 * 6).reshape(4, 5, 6) % 2
    ch = np.random.default_rng(0).random((2, 4, 5, 6)).astype(np.float32)
    stack = T.ChannelStack([lr, ch])
    assert stack.shape == (3, 4, 5, 6) and stack.dtype == np.float32
    assert np.array_equal(stack[:, 1:3, :, 2:4], np.concatenate([lr[None], ch])[:, 1:3, :, 2:4])
    assert np.array_equal(np.asarray(stack)[2], ch[1])
    with pytest.raises(ValueError, match="spatial shape"):
        T.ChannelStack([lr, ch[:, :3]])
    with pytest.raises(ValueError, match="target shape"):
        T.Pair(T.ChannelStack([lr]), np.zeros((8, 10, 11), bool))


class _StubDatabase:
    """What pairs_from_database asks of a database that hands out lazy arrays."""

    def __init__(self, root, hrs, alpha=2, channels_key=None):
        self.root, self.alphas, self.scenario_names = root, (alpha,), ["s"]
        self.key = channels_key or {"connectivity": "face", "axis": 0}
        self.asked = []
        for i, hr in enumerate(hrs, start=1):
            np.save(root / f"r{i}_hr.npy", hr)
            np.save(root / f"r{i}_lr{alpha}.npy", downsample(hr, alpha))
            np.save(root / f"r{i}_diffu{alpha}.npy", _channels(i, downsample(hr, alpha).shape))

    def indices(self, role):
        return [1, 2] if role == "train" else [3]

    def array(self, kind, scenario, i, alpha=None, **checks):
        kind = {"hr": "hr", "lr": f"lr{alpha}", "channels": f"diffu{alpha}"}[kind]
        self.asked.append((kind, checks))
        other = {k: v for k, v in checks.items() if self.key.get(k) != v}
        if other:
            raise ValueError(f"channels computed with {self.key}, not {other}")
        return np.load(self.root / f"r{i}_{kind}.npy", mmap_mode="r")


def test_pairs_from_database_are_lazy_and_checked(tmp_path):
    hrs = [_field((16, 16, 16), s) for s in range(3)]
    db = _StubDatabase(tmp_path, hrs)
    train = T.pairs_from_database(db, "train", 2, diffu=True, connectivity="face",
                                  preload_bytes=0)
    assert len(train) == 2 and all(p.lazy and p.channels == 3 for p in train)
    assert ("diffu2", {"connectivity": "face", "axis": 0}) in db.asked
    inp, tgt = T.cutout_at(train[1], (0, 0, 0), 8)
    assert np.array_equal(tgt, hrs[1][:16, :16, :16])
    assert np.array_equal(inp[0], downsample(hrs[1], 2)[:8, :8, :8])
    # small enough to hold: loaded once, the same values
    size = sum(p.input.shape[0] * 8**3 * 4 + 16**3 for p in train)
    held = T.pairs_from_database(db, "train", 2, diffu=True, connectivity="face",
                                 preload_bytes=size)
    assert not any(p.lazy for p in held)
    for a, b in zip(train, held, strict=True):
        assert np.array_equal(a.input[:], b.input) and np.array_equal(a.target[:], b.target)
    assert all(p.lazy for p in T.pairs_from_database(db, "train", 2, diffu=True,
                                                     preload_bytes=size - 1))
    with pytest.raises(ValueError, match="vertex"):
        T.pairs_from_database(db, "train", 2, diffu=True, connectivity="vertex")
    np.save(tmp_path / "r3_lr2.npy", ~downsample(hrs[2], 2))  # an LR image that lies
    with pytest.raises(ValueError, match="Eq. \\(3\\)"):
        T.pairs_from_database(db, "val", 2)
    json.dumps(db.asked)  # plain data only
