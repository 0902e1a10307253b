"""Tests of srlib.training.loop: training one network, checkpoints, divergence."""

import dataclasses
import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import ndimage

from srlib import training as T
from srlib.network import SRResNet3d


def _field(shape, seed, sigma=1.5):
    noise = np.random.default_rng(seed).standard_normal(shape)
    return ndimage.gaussian_filter(noise, sigma, mode="wrap") > 0


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
    torch_state = torch.get_rng_state()
    result = T.train(model, pairs[:2], pairs[2:], checkpoint=path, **SETTINGS)
    # no hidden global state: the run draws nothing from torch's random generator
    assert torch.equal(torch.get_rng_state(), torch_state)
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
    data = path.read_bytes()  # a checkpoint cut short by a crash of the disk or the copy
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"run\.pt.*truncated or corrupt"):
        T.train(_model(), pairs[:2], pairs[2:], checkpoint=path, **SETTINGS)


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


def test_the_epoch_length_only_decides_where_validation_happens(pairs, tmp_path):
    # 4 epochs of 2 steps and 2 epochs of 4 steps: the same batches, learning rates and
    # weights; the longer epochs validate at every second epoch of the shorter ones
    settings = {**SETTINGS, "lr_schedule": "cosine", "patience": 4}
    runs = {}
    for per_epoch in (2, 4):
        path = tmp_path / f"e{per_epoch}.pt"
        runs[per_epoch] = T.train(_model(), pairs[:2], pairs[2:], checkpoint=path, **{
            **settings, "steps_per_epoch": per_epoch, "max_epochs": 8 // per_epoch})
    a, b = runs[2], runs[4]
    assert a.steps == b.steps == 8
    assert list(b.val_loss) == list(a.val_loss[1::2])
    assert b.best_val_loss == min(a.val_loss[1::2])
    last = [torch.load(tmp_path / f"e{e}.pt", weights_only=False)["model"] for e in (2, 4)]
    for p, q in zip(last[0].values(), last[1].values(), strict=True):
        assert torch.equal(p, q)


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


def test_train_config_is_validated_once():
    config = T.TrainConfig(batch_size=np.int64(2), learning_rate=1, context={"b": 1, "a": "x"})
    assert type(config.batch_size) is int and config.learning_rate == 1.0
    assert config.context == (("a", "x"), ("b", 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3
    bad = [("cutout", 0), ("batch_size", 2.0), ("steps_per_epoch", True), ("max_epochs", -1),
           ("patience", "3"), ("val_cutouts", 0), ("learning_rate", 0), ("learning_rate", math.nan),
           ("min_delta", -1e-3), ("min_delta", math.inf), ("seed", -1), ("seed", 1.5),
           ("time_budget_s", -1), ("lr_schedule", "step")]
    for name, value in bad:
        with pytest.raises(ValueError, match=name):
            T.TrainConfig(**{name: value})
    with pytest.raises(ValueError, match="num_threads"):
        T.train(_model(), [], [], num_threads=0)
    with pytest.raises(ValueError, match="TrainConfig"):
        T.run_training(_model(), [], [], dict(SETTINGS))


def test_train_is_run_training_with_a_config(pairs):
    quick = {**SETTINGS, "max_epochs": 1, "steps_per_epoch": 2}
    fields = {f.name for f in dataclasses.fields(T.TrainConfig)}
    config = T.TrainConfig(**{k: v for k, v in quick.items() if k in fields})
    model, model_ref = _model(), _model()
    result = T.run_training(model, pairs[:2], pairs[2:], config, progress=False, num_threads=2)
    result_ref = T.train(model_ref, pairs[:2], pairs[2:], **quick)
    assert dataclasses.replace(result, seconds=0) == dataclasses.replace(result_ref, seconds=0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, model_ref.state_dict()[k]), k


def test_checkpoint_keeps_its_context(pairs, tmp_path):
    fields = {f.name for f in dataclasses.fields(T.TrainConfig)}
    base = {k: v for k, v in SETTINGS.items() if k in fields} | {"max_epochs": 1,
                                                                  "steps_per_epoch": 1}
    path = tmp_path / "context.pt"
    T.run_training(_model(), pairs[:2], pairs[2:], T.TrainConfig(**base), checkpoint=path,
                   progress=False)
    other = T.TrainConfig(**base, context={"connectivity": "vertex"})
    with pytest.raises(ValueError, match="context"):
        T.run_training(_model(), pairs[:2], pairs[2:], other, checkpoint=path, progress=False)


def test_nan_training_loss_stops_with_the_epoch(pairs):
    model = _model()
    with torch.no_grad():
        model.head[0].bias.fill_(math.nan)  # every output NaN from the first step
    with pytest.raises(T.TrainingDiverged,
                       match=r"alpha=2 network diverged in epoch 1.*training") as info:
        T.train(model, pairs[:2], pairs[2:], **SETTINGS)
    assert isinstance(info.value, RuntimeError) and info.value.epoch == 1
    again = pickle.loads(pickle.dumps(info.value))  # e.g. raised in a worker process
    assert str(again) == str(info.value) and again.alpha == 2


class _NanWhenEvaluated(SRResNet3d):
    """Trains normally, but its validation (eval-mode) outputs are NaN from epoch 2 on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.evaluations = 0

    def logits(self, x):
        out = super().logits(x)
        if not self.training:
            self.evaluations += 1
            if self.evaluations > 1:
                return out * math.nan
        return out


def test_nan_validation_loss_stops_with_the_epoch(pairs, tmp_path):
    model = _NanWhenEvaluated(1, 2, features=4, blocks=1)
    path = tmp_path / "nan.pt"
    with pytest.raises(T.TrainingDiverged, match="epoch 2.*validation loss is nan") as info:
        T.train(model, pairs[:2], pairs[2:], checkpoint=path,
                **{**SETTINGS, "steps_per_epoch": 1, "batch_size": 4, "val_cutouts": 4})
    assert info.value.epoch == 2 and info.value.which == "validation"
    # the checkpoint keeps the last good epoch
    assert torch.load(path, weights_only=True)["state"]["epoch"] == 1


def test_huge_learning_rate_diverges(pairs):
    with pytest.raises(T.TrainingDiverged, match="diverged in epoch"):
        T.train(_model(), pairs[:2], pairs[2:],
                **{**SETTINGS, "steps_per_epoch": 2, "learning_rate": 1e30})


def test_mixed_precision_on_the_cpu(pairs, caplog):
    """bfloat16 autocast trains where the CPU has it natively and is refused, loudly, elsewhere."""
    from srlib.devices import native_bfloat16

    settings = {**SETTINGS, "cutout": 9}  # not narrower than the 9³ head (see the next test)
    vx, vy = T.validation_cutouts(pairs[2:], settings["val_cutouts"], 9, seed=settings["seed"])
    plain = T.train(_model(), pairs[:2], pairs[2:], **settings)
    model = _model()
    initial = T.mean_loss(model, vx, vy)
    with caplog.at_level("WARNING", logger="srlib.training.loop"):
        mixed = T.train(model, pairs[:2], pairs[2:], mixed_precision=True, **settings)
    if not native_bfloat16("cpu"):
        assert "no native bfloat16" in caplog.text
        assert mixed.val_loss == plain.val_loss  # it trained in float32
        return
    assert "float32" not in caplog.text
    # it learns, along the same path as float32 up to bfloat16 rounding (8 bits of mantissa)
    assert mixed.best_val_loss < initial - 0.05
    assert mixed.val_loss != plain.val_loss
    np.testing.assert_allclose(mixed.train_loss, plain.train_loss, rtol=0.05)
    np.testing.assert_allclose(mixed.val_loss, plain.val_loss, rtol=0.05)
    # validation in bfloat16 is close to float32 on the same weights
    amp_loss = T.mean_loss(model, vx, vy, mixed_precision=True)
    assert amp_loss == pytest.approx(T.mean_loss(model, vx, vy), rel=0.02)


def test_mixed_precision_refused_for_cutouts_narrower_than_the_head(pairs, caplog):
    """A cutout under the 9³ head kernel trains in float32 on the CPU, with a warning.

    oneDNN's bfloat16 weight gradient of such a convolution came back NaN on an AVX512-BF16
    CPU (8³ inputs, batch 8, 12 of 20 trials), which diverged this very training.
    """
    plain = T.train(_model(), pairs[:2], pairs[2:], **SETTINGS)  # cutout 8
    with caplog.at_level("WARNING", logger="srlib.training.loop"):
        mixed = T.train(_model(), pairs[:2], pairs[2:], mixed_precision=True, **SETTINGS)
    assert "training in float32" in caplog.text
    assert mixed.val_loss == plain.val_loss


def test_mean_loss_runs_a_repeated_batch_once(pairs, monkeypatch):
    """Batches equal to earlier ones reuse their loss: fewer forward passes, the same number."""
    from srlib.training.data import batch_sources

    model = _model()
    vx, vy = T.validation_cutouts(pairs[2:], 4, 8, seed=0)
    # cutouts 0, 1, 0, 2, 1, 0 (three repeats), then cutout 0's input with a changed target
    order = [0, 1, 0, 2, 1, 0, 3]
    x, y = vx[order], vy[order].copy()
    x[6] = x[0]
    y[6, 0, 0, 0] = not y[0, 0, 0, 0]
    assert batch_sources(x, y, 1) == [(0, 0), (1, 1), (2, 0), (3, 3), (4, 1), (5, 0), (6, 6)]
    assert [s for _, s in batch_sources(x, y, 2)] == [0, 2, 4, 6]  # no equal pair of pairs
    calls, logits = [], model.logits
    monkeypatch.setattr(model, "logits", lambda inputs: calls.append(1) or logits(inputs))
    loss = T.mean_loss(model, x, y, batch_size=1)
    monkeypatch.undo()
    assert len(calls) == 4  # cutouts 0, 1, 2 and the changed one
    # every cutout run on its own, summed in the same order: the same bits
    each = [T.mean_loss(model, x[i : i + 1], y[i : i + 1], batch_size=1) for i in range(7)]
    assert loss == sum(each) / 7
    assert T.mean_loss(model, x, y, batch_size=3) == pytest.approx(loss, rel=1e-6)
