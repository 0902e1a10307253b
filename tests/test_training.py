import dataclasses
import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

from srlib import training as T
from srlib.network import SRResNet3d

# ---------------------------------------------------------------------------------------
# symmetries
# ---------------------------------------------------------------------------------------


def test_48_distinct_symmetries_24_rotations():
    syms = T.cube_symmetries()
    assert len(syms) == 48 and syms[0] == T.IDENTITY
    cube = np.random.default_rng(0).random((4, 4, 4))
    images = {T.apply_symmetry(cube, s).tobytes() for s in syms}
    assert len(images) == 48
    assert sum(T.is_rotation(s) for s in syms) == 24


def test_symmetries_closed_under_composition_and_inverse():
    syms = T.cube_symmetries()
    cube = np.random.default_rng(1).random((2, 3, 3, 3))
    for a in syms:
        once = T.apply_symmetry(cube, a)
        assert np.array_equal(T.apply_symmetry(once, T.invert_symmetry(a)), cube)
        for b in syms:
            ab = T.compose_symmetries(a, b)
            assert ab in syms
            assert np.array_equal(T.apply_symmetry(once, b), T.apply_symmetry(cube, ab))


def test_apply_symmetry_torch_matches_numpy_and_keeps_input():
    cube = np.random.default_rng(2).random((3, 4, 4, 4)).astype(np.float32)
    before = cube.copy()
    tensor = torch.from_numpy(cube.copy())
    for s in T.cube_symmetries():
        assert np.array_equal(T.apply_symmetry(tensor, s).numpy(), T.apply_symmetry(cube, s))
    assert np.array_equal(cube, before)
    with pytest.raises(ValueError, match="symmetry"):
        T.apply_symmetry(cube, ((0, 0, 1), (False, False, False)))


def test_random_symmetry_is_uniform():
    rng = np.random.default_rng(3)
    draws = [T.random_symmetry(rng) for _ in range(4800)]
    counts = np.array([draws.count(s) for s in T.cube_symmetries()])
    assert counts.min() > 60 and counts.max() < 140  # expected 100 each, sd about 10
    mirrored = np.mean([not T.is_rotation(s) for s in draws])
    assert abs(mirrored - 0.5) < 0.03


# ---------------------------------------------------------------------------------------
# pairs, cutouts and the alignment of input and target
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------

SETTINGS = dict(
    cutout=8, batch_size=2, steps_per_epoch=8, max_epochs=3, patience=10, val_cutouts=4,
    learning_rate=3e-3, seed=1, progress=False, num_threads=2,
)


@pytest.fixture(scope="module")
def pairs():
    return [T.make_pair(_field((32, 32, 32), s), 2) for s in range(3)]


def _model(seed=0):
    return T.make_model(1, 2, features=4, blocks=1, seed=seed)


@pytest.fixture(scope="module")
def reference_run(pairs, tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "reference.pt"
    model = _model()
    vx, vy = T.validation_cutouts(pairs[2:], SETTINGS["val_cutouts"], 8, seed=SETTINGS["seed"])
    initial = T.mean_loss(model, vx, vy)
    result = T.train(model, pairs[:2], pairs[2:], checkpoint=path, **SETTINGS)
    return model, result, initial, path


def test_training_lowers_the_validation_loss(reference_run):
    model, result, initial, path = reference_run
    assert result.best_val_loss < initial - 0.05
    assert len(result.train_loss) == len(result.val_loss) == result.stopped_epoch == 3
    assert result.steps == 3 * SETTINGS["steps_per_epoch"]
    assert result.stop_reason == "max_epochs"
    assert result.best_val_loss == min(result.val_loss)
    assert result.val_loss[result.best_epoch - 1] == result.best_val_loss
    assert result.history["val_loss"] == list(result.val_loss)
    assert path.exists() and not model.training


def test_resume_continues_the_same_run(pairs, reference_run, tmp_path):
    model_ref, result_ref, _, _ = reference_run

    class Interrupt(Exception):
        pass

    def interrupt_after_first_epoch(epoch, train_loss, val_loss):
        if epoch == 1:
            raise Interrupt

    path = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        T.train(_model(), pairs[:2], pairs[2:], checkpoint=path,
                callback=interrupt_after_first_epoch, **SETTINGS)
    # a fresh process would rebuild the model from scratch; the checkpoint restores it
    model = _model(seed=123)
    result = T.train(model, pairs[:2], pairs[2:], checkpoint=path, **SETTINGS)
    assert dataclasses.replace(result, seconds=0) == dataclasses.replace(result_ref, seconds=0)
    for (k, v), v_ref in zip(model.state_dict().items(), model_ref.state_dict().values(),
                             strict=True):
        assert torch.equal(v, v_ref), k
    with pytest.raises(ValueError, match="seed"):
        T.train(_model(), pairs[:2], pairs[2:], checkpoint=path, **{**SETTINGS, "seed": 2})


def test_scheduled_rate():
    assert T.scheduled_rate(1e-3, None, 17, 20) == 1e-3
    assert T.scheduled_rate(1e-3, "cosine", 0, 20) == pytest.approx(1e-3)
    assert T.scheduled_rate(1e-3, "cosine", 10, 20) == pytest.approx(1e-3 * (0.01 + 0.99 / 2))
    assert T.scheduled_rate(1e-3, "cosine", 20, 20) == pytest.approx(1e-5)
    assert T.scheduled_rate(1e-3, "cosine", 25, 20) == pytest.approx(1e-5)  # past the end
    rates = [T.scheduled_rate(1.0, "cosine", t, 50) for t in range(51)]
    assert all(a > b for a, b in itertools.pairwise(rates))
    with pytest.raises(ValueError, match="lr_schedule"):
        T.scheduled_rate(1e-3, "linear", 0, 10)


def test_cosine_schedule_reaches_the_optimizer(pairs, tmp_path, monkeypatch):
    seen = []
    step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    settings = {**SETTINGS, "steps_per_epoch": 2, "max_epochs": 2}
    path = tmp_path / "cosine.pt"
    T.train(_model(), pairs[:2], pairs[2:], lr_schedule="cosine", checkpoint=path, **settings)
    lr = settings["learning_rate"]
    assert seen == pytest.approx([T.scheduled_rate(lr, "cosine", t, 4) for t in range(4)])
    assert seen[0] == pytest.approx(lr) and seen[-1] < 0.2 * lr
    with pytest.raises(ValueError, match="lr_schedule"):  # a checkpoint keeps its schedule
        T.train(_model(), pairs[:2], pairs[2:], checkpoint=path, **settings)
    with pytest.raises(ValueError, match="lr_schedule"):
        T.train(_model(), pairs[:2], pairs[2:], lr_schedule="step", **settings)


def test_early_stopping_and_time_budget(pairs):
    quick = {**SETTINGS, "steps_per_epoch": 1, "max_epochs": 10}
    # an improvement must beat the best loss by min_delta: impossible after the first epoch
    result = T.train(_model(), pairs[:2], pairs[2:], **{**quick, "patience": 2, "min_delta": 1e9})
    assert result.stop_reason == "early_stopping"
    assert result.stopped_epoch == 3 and result.best_epoch == 1
    result = T.train(_model(), pairs[:2], pairs[2:], **{**quick, "time_budget_s": 0.0})
    assert result.stop_reason == "time_budget" and result.stopped_epoch == 1


def test_train_rejects_mismatched_pairs(pairs):
    with pytest.raises(ValueError, match="alpha"):
        T.train(T.make_model(1, 4, features=4, blocks=1), pairs[:2], pairs[2:], **SETTINGS)
    with pytest.raises(ValueError, match="channels"):
        T.train(T.make_model(3, 2, features=4, blocks=1), pairs[:2], pairs[2:], **SETTINGS)
    with pytest.raises(ValueError, match="too small"):
        T.train(_model(), pairs[:2], pairs[2:], **{**SETTINGS, "cutout": 16})
    with pytest.raises(ValueError, match="empty"):
        T.train(_model(), [], pairs[2:], **SETTINGS)


def test_transfer_model_builds_the_next_alpha():
    src = T.make_model(3, 2, features=4, blocks=1, seed=0)
    dst = T.transfer_model(src)
    assert isinstance(dst, SRResNet3d) and dst.alpha == 4 and dst.in_channels == 3
    for k, v in dst.state_dict().items():
        if not k.startswith("upsample.1."):
            assert torch.equal(v, src.state_dict()[k]), k
    assert T.transfer_model(dst).alpha == 8
    with pytest.raises(ValueError, match="alpha"):
        T.transfer_model(T.transfer_model(dst))


# ---------------------------------------------------------------------------------------
# the threshold (Eq. 18)
# ---------------------------------------------------------------------------------------


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
    mu = T.fit_model_threshold(model, pairs[2:], cutout=8, stride=4, progress=False)
    assert 0 < mu < 1


# ---------------------------------------------------------------------------------------
# the networks of the study: pairs from the database, train or load
# ---------------------------------------------------------------------------------------

# Smallest consistent study: 2 scenarios, HR 16³, alpha 2 and 4, one step per network.
STUDY = dict(hr_size=16, alphas=(2, 4), batch_sizes=(2, 1), cutout=3, features=2, blocks=1,
             max_epochs=2, steps_per_epoch=1, patience=2, val_cutouts=2)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from srlib import datasets, stochastic
    from srlib.config import get_profile

    profile = get_profile("tiny", **STUDY)
    params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.5)
    samples = [datasets.Sample(name=f"s{k}", image=stochastic.sample(24, params, seed=k),
                               voxel_size_um=None, source="test") for k in range(2)]
    root = tmp_path_factory.mktemp("study")
    db = datasets.build_database(profile, samples=samples, root=root / "database",
                                 progress=False)
    # known "diffusion channels" (any floats in [0, 1]) written in the database's layout
    rng = np.random.default_rng(0)
    for s in db.scenario_names:
        for i in db.indices():
            for a in db.alphas:
                shape = db.lr(s, i, a).shape
                np.save(db.path(s, i, f"diffu{a}"), rng.random((2, *shape)).astype(np.float32))
    return profile, db, root


def test_pairs_from_database(study):
    profile, db, _ = study
    for role in ("train", "val", "test"):
        pairs = T.pairs_from_database(db, role, 2)
        assert len(pairs) == len(db.scenario_names) * len(db.indices(role))
    (p, q) = T.pairs_from_database(db, "val", 4)  # one val realization in each scenario
    assert p.alpha == 4 and p.channels == 1 and p.lr_shape == (4, 4, 4)
    assert np.array_equal(p.target, db.hr("s0", 2))
    assert np.array_equal(p.input[0], db.lr("s0", 2, 4))
    assert np.array_equal(q.target, db.hr("s1", 2))
    (d,) = T.pairs_from_database(db, "train", 2, diffu=True, scenarios=["s1"])
    assert d.channels == 3
    assert np.array_equal(d.input[0], db.lr("s1", 1, 2))
    assert np.array_equal(d.input[1:], db.channels("s1", 1, 2))
    with pytest.raises(ValueError, match="role"):
        T.pairs_from_database(db, "training", 2)
    with pytest.raises(ValueError, match="alpha"):
        T.pairs_from_database(db, "train", 8)
    with pytest.raises(ValueError, match="scenario"):
        T.pairs_from_database(db, "train", 2, scenarios=["granite"])


def test_train_networks_trains_once_then_reuses(study, monkeypatch):
    profile, db, root = study
    out = root / "networks"
    nets = T.train_networks(db, profile, out, progress=False, num_threads=1)
    assert list(nets) == [("bin", 2), ("bin", 4), ("diffu", 2), ("diffu", 4)]
    for (kind, alpha), net in nets.items():
        assert net.trained_now and net.model.alpha == alpha and not net.model.training
        assert net.model.in_channels == (1 if kind == "bin" else 3)
        assert 0 < net.threshold < 1
        assert net.result.steps == net.result.stopped_epoch * profile.steps_per_epoch
        assert net.path == out / f"N_{kind}_{alpha}.pt" and net.path.exists()
        row = net.summary()
        assert row["mu_star"] == net.threshold and row["best_val_loss"] == min(net.result.val_loss)

    # a second call (a re-run, a later notebook) loads everything and trains nothing
    def no_training(*args, **kwargs):
        raise AssertionError("train() must not be called when the weights exist")

    monkeypatch.setattr(T, "train", no_training)
    again = T.train_networks(db, profile, out, progress=False)
    loaded = T.load_networks(profile, out)
    for key, net in nets.items():
        for other in (again[key], loaded[key]):
            assert not other.trained_now
            assert other.threshold == net.threshold and other.result == net.result
            for k, v in net.model.state_dict().items():
                assert torch.equal(v, other.model.state_dict()[k]), k


def test_train_networks_resumes_from_its_checkpoint(study):
    profile, db, root = study
    out = root / "networks-resume"
    first = T.train_networks(db, profile, out, kinds=("bin",), progress=False, num_threads=1)
    # interrupted after training N_bin_4 but before its weights were written
    (out / "N_bin_4.pt").unlink()
    (out / "N_bin_4.json").unlink()
    assert (out / "N_bin_4.ckpt").exists()
    second = T.train_networks(db, profile, out, kinds=("bin",), progress=False, num_threads=1)
    assert not second["bin", 2].trained_now and second["bin", 4].trained_now
    assert dataclasses.replace(second["bin", 4].result, seconds=0) == dataclasses.replace(
        first["bin", 4].result, seconds=0)
    for k, v in first["bin", 4].model.state_dict().items():
        assert torch.equal(v, second["bin", 4].model.state_dict()[k]), k


def test_train_networks_never_reuses_other_settings(study):
    from srlib.config import get_profile

    profile, db, root = study
    out = root / "networks-guard"
    T.train_networks(db, profile, out, kinds=("bin",), progress=False, num_threads=1)
    other = dataclasses.replace(profile, learning_rate=profile.learning_rate / 2)
    with pytest.raises(ValueError, match="learning_rate"):
        T.train_networks(db, other, out, kinds=("bin",), progress=False)
    with pytest.raises(ValueError, match="profile"):
        T.load_networks(dataclasses.replace(profile, name="quick"), out, kinds=("bin",))
    with pytest.raises(ValueError, match="belongs to profile"):
        T.train_networks(db, get_profile("quick"), out, progress=False)
    with pytest.raises(ValueError, match="missing"):
        T.load_networks(profile, out, kinds=("diffu",))
