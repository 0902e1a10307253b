import numpy as np
import pytest

from srlib import evaluation
from srlib.resample import downsample


@pytest.fixture
def hr():
    from srlib import stochastic

    params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.5)
    return stochastic.sample(16, params, seed=4)


def test_sub_image_pairs_align(hr):
    pairs = evaluation.sub_image_pairs(hr, 2)
    assert len(pairs) == 8
    for lr_k, hr_k in pairs:
        assert hr_k.shape == (8, 8, 8)
        assert np.array_equal(lr_k, downsample(hr_k, 2))
    with pytest.raises(ValueError, match="divisible"):
        evaluation.sub_image_pairs(hr[:12, :12, :12], 8)


def test_oracle_scores_one_and_interpolation_less(hr):
    truth = {lr.tobytes(): h for lr, h in evaluation.sub_image_pairs(hr, 2)}
    resolvers = {
        "oracle": lambda lr: truth[lr.tobytes()],
        "interpolation": lambda lr: evaluation.interpolate_quadratic_binary(lr, 2),
    }
    rows = evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="simulated",
                                     sample="s", effective=False)
    assert len(rows) == 16
    oracle = [r for r in rows if r["method"] == "oracle"]
    assert all(r["accuracy"] == 1.0 and r["surface_accuracy"] == 1.0 for r in oracle)
    interp = [r for r in rows if r["method"] == "interpolation"]
    assert all(r["accuracy"] < 1.0 for r in interp)
    assert {r["sub_image"] for r in rows} == set(range(8))


def test_run_protocol_writes_table_and_resumes(hr, tmp_path, monkeypatch):
    images = [("simulated", "s", hr), ("tomographic", "t", ~hr)]
    table = evaluation.run_protocol(images, {}, (2, 4), tmp_path, methods=("interpolation",),
                                    effective=False, progress=False)
    assert len(table) == 2 * 2 * 8
    assert (tmp_path / "evaluation.csv").exists()
    assert len(list((tmp_path / "evaluation").glob("*.csv"))) == 4

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a finished group")

    monkeypatch.setattr(evaluation, "evaluate_image", fail)
    again = evaluation.run_protocol(images, {}, (2, 4), tmp_path, methods=("interpolation",),
                                    effective=False, progress=False)
    assert again.shape == table.shape


def test_unknown_method(tmp_path, hr):
    with pytest.raises(ValueError, match="unknown method"):
        evaluation.run_protocol([("simulated", "s", hr)], {}, (2,), tmp_path, methods=("gan",))
