import dataclasses

import numpy as np
import pytest

from srlib import capacity
from srlib.config import get_profile
from srlib.resample import downsample


class _FakeDatabase:
    """The part of srlib.datasets.Database the study reads, in memory."""

    profile = "fake"

    def __init__(self, size=16):
        from srlib import stochastic

        params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.5)
        self.images = [stochastic.sample(size, params, seed=20 + i) for i in range(3)]
        self.alphas = (2, 4)
        self.scenario_names = ["s"]
        self.root = "memory"

    def indices(self, role=None):
        return {"train": [1], "val": [2], "test": [3], None: [1, 2, 3]}[role]

    def hr(self, s, i):
        return self.images[i - 1]

    def lr(self, s, i, alpha):
        return downsample(self.images[i - 1], alpha)


@pytest.fixture
def profile():
    return get_profile("tiny", cutout=2, steps_per_epoch=2, val_cutouts=2, batch_sizes=(1, 1, 1),
                       blocks=1)


def test_reference_accuracies_are_the_methods_scores_on_the_validation_images():
    from srlib.baselines import LocalBayes, interpolate
    from srlib.metrics import accuracy

    db = _FakeDatabase()
    refs = capacity.reference_accuracies(db, 2)
    hr, lr = db.images[1], downsample(db.images[1], 2)
    assert refs["interpolation"] == accuracy(interpolate(lr, 2), hr)
    assert refs["interpolation_centred"] == accuracy(interpolate(lr, 2, convention="centred"),
                                                     hr)
    assert refs["local_bayes"] == accuracy(LocalBayes.count([db.images[0]], 2).predict(lr), hr)


@pytest.mark.slow
def test_capacity_study_is_seeded_resumable_and_reports_gains(tmp_path, profile, monkeypatch):
    db = _FakeDatabase()
    kw = {"alpha": 2, "budgets": (2, 4), "features": (2,), "progress": False,
          "num_threads": 1}
    table = capacity.capacity_study(db, profile, tmp_path / "a", **kw)
    runs = table[table.method == "bin"]
    assert sorted(zip(runs.features, runs.steps, strict=True)) == [(2, 2), (2, 4)]
    assert runs.steps_run.tolist() == runs.steps.tolist()  # the whole budget is trained
    interp = table[table.method == "interpolation"].accuracy.item()
    np.testing.assert_allclose(table.gain, table.accuracy - interp)
    assert set(table.method) == {"bin", *capacity.REFERENCE_METHODS}
    assert (tmp_path / "a" / "capacity.csv").exists()
    assert not list((tmp_path / "a" / "capacity").glob("*.ckpt"))

    from srlib import training

    def fail(*args, **kwargs):
        raise AssertionError("retrained a finished run")

    monkeypatch.setattr(training, "train", fail)
    again = capacity.capacity_study(db, profile, tmp_path / "a", **kw)
    assert again.drop(columns="seconds").equals(table.drop(columns="seconds"))
    monkeypatch.undo()
    other = capacity.capacity_study(db, profile, tmp_path / "b", **{**kw, "budgets": (4,)})
    cols = ["accuracy", "threshold", "best_epoch"]
    assert (other[other.method == "bin"][cols].reset_index(drop=True)
            .equals(runs[runs.steps == 4][cols].reset_index(drop=True)))
    # seeded, and nested budgets are prefixes of one run: 4 steps at once == 2, then 2 more
    # a width found in start_from begins by transfer from the alpha/2 network
    from srlib.training import make_model

    start = {2: make_model(1, 2, seed=1, features=2, blocks=1)}
    moved = capacity.capacity_study(db, profile, tmp_path / "d", **{
        **kw, "alpha": 4, "budgets": (2,), "nested": False, "start_from": start})
    assert moved[moved.method == "bin"].start.tolist() == ["transfer"]
    # a run validates every gcd(steps_per_epoch, budgets) steps, so every budget ends an epoch
    fifty = dataclasses.replace(profile, steps_per_epoch=50)
    assert capacity.epoch_steps(fifty, (25, 50, 100, 250)) == 25
    assert capacity.epoch_steps(fifty, (100, 200)) == 50
    assert capacity.epoch_steps(dataclasses.replace(profile, steps_per_epoch=2), (3,)) == 1
