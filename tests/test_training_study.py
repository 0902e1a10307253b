"""Tests of srlib.training.study: the networks of the study, trained once, then reused."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from srlib import training as T
from srlib.io import is_temp_name
from srlib.training import study as study_module

# Smallest consistent study: 2 scenarios, HR 16³, alpha 2 and 4, one step per network.
STUDY = dict(hr_size=16, alphas=(2, 4), batch_sizes=(2, 1), cutout=3, features=2, blocks=1,
             max_epochs=2, steps_per_epoch=1, patience=2, val_cutouts=2)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from srlib import datasets, stochastic
    from srlib._store import write_array
    from srlib.config import get_profile

    profile = get_profile("tiny", **STUDY)
    params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.5)
    samples = [datasets.Sample(name=f"s{k}", image=stochastic.sample(24, params, seed=k),
                               voxel_size_um=None, source="test") for k in range(2)]
    root = tmp_path_factory.mktemp("study")
    db = datasets.build_database(profile, samples=samples, root=root / "database",
                                 workers=1, progress=False)
    # known "diffusion channels" (any floats in [0, 1]) written in the database's layout
    rng = np.random.default_rng(0)
    for s in db.scenario_names:
        for i in db.indices():
            for a in db.alphas:
                shape = db.lr(s, i, a).shape
                write_array(db.path(s, i, f"diffu{a}"), rng.random((2, *shape)).astype(np.float32))
    # recorded as build_diffusion_channels records them: training checks the settings
    (db.root / "channels.json").write_text(json.dumps({"connectivity": "face", "axis": 0}))
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
        # the stored μ* is Eq. (18) fitted on the validation pairs' cutouts
        val = T.pairs_from_database(db, "val", alpha, diffu=kind == "diffu")
        assert net.threshold == T.fit_model_threshold(net.model, val, cutout=profile.cutout,
                                                      progress=False)
        assert net.result.steps == net.result.stopped_epoch * profile.steps_per_epoch
        assert net.path == out / f"N_{kind}_{alpha}.pt" and net.path.exists()
        row = net.summary()
        assert row["mu_star"] == net.threshold and row["best_val_loss"] == min(net.result.val_loss)

    # a second call (a re-run, a later notebook) loads everything and trains nothing
    def no_training(*args, **kwargs):
        raise AssertionError("train() must not be called when the weights exist")

    monkeypatch.setattr(study_module, "run_training", no_training)
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


def test_networks_of_another_database_are_refused(study):
    """Networks trained on database A used to load as current for database B."""
    from srlib import datasets, stochastic

    profile, db, root = study
    out = root / "networks-db"
    T.train_networks(db, profile, out, kinds=("bin",), progress=False, num_threads=1)
    params = stochastic.ModelParams.from_solid_fraction(0.4, gamma=0.5)
    others = [datasets.Sample(name=f"s{k}", image=stochastic.sample(24, params, seed=10 + k),
                              voxel_size_um=None, source="test") for k in range(2)]
    other = datasets.build_database(profile, samples=others, root=root / "database-b",
                                    workers=1, progress=False)
    assert other.key != db.key
    with pytest.raises(ValueError, match=r"other settings \(database\)"):
        T.train_networks(other, profile, out, kinds=("bin",), progress=False)
    assert set(T.load_networks(profile, out, kinds=("bin",))) == {("bin", 2), ("bin", 4)}


def test_weights_of_another_alpha_are_refused(study):
    """`cp N_bin_4.pt N_bin_2.pt` used to make `--alpha 2` super-resolve by 4."""
    import shutil

    profile, db, root = study
    out = root / "networks-swapped"
    T.train_networks(db, profile, out, kinds=("bin",), progress=False, num_threads=1)
    shutil.copy(out / "N_bin_4.pt", out / "N_bin_2.pt")
    with pytest.raises(ValueError, match=r"N_bin_2.pt holds a network for alpha=4"):
        T.load_networks(profile, out, kinds=("bin",))


@pytest.mark.parametrize(("text", "fragment"), [
    ("[]", "unknown format"),
    ('{"format": FMT}', "settings, result or model are missing"),
    ("TRUNC", "is damaged"),
    ("EXTRA", "is damaged"),
])
def test_damaged_network_metadata_is_named(study, tmp_path, text, fragment):
    """Damaged metadata used to raise KeyError, AttributeError or TypeError tracebacks."""
    import shutil

    profile, db, root = study
    out = root / "networks-meta"
    if not (out / "N_bin_4.pt").exists():
        T.train_networks(db, profile, out, kinds=("bin",), progress=False, num_threads=1)
    work = tmp_path / "networks"
    shutil.copytree(out, work)
    meta = work / "N_bin_2.json"
    good = meta.read_text()
    info = json.loads(good)
    if text == "TRUNC":
        text = good[: len(good) // 2]
    elif text == "EXTRA":
        info["result"]["surprise"] = 1
        text = json.dumps(info)
    else:
        text = text.replace("FMT", json.dumps(info["format"]))
    meta.write_text(text)
    with pytest.raises(ValueError, match=rf"N_bin_2.json.*{fragment}|{fragment}.*N_bin_2"):
        T.load_networks(profile, work, kinds=("bin",))


def test_connectivity_is_part_of_the_diffu_settings(study):
    profile, _, _ = study
    vertex = dataclasses.replace(profile, connectivity="vertex")
    assert T.training_settings(profile, "bin") == T.training_settings(vertex, "bin")
    assert T.training_settings(profile, "diffu")["connectivity"] == "face"
    assert T.training_settings(vertex, "diffu")["connectivity"] == "vertex"
    with pytest.raises(ValueError, match="kind"):
        T.training_settings(profile, "rgb")


def test_vertex_run_never_reuses_face_networks(study):
    profile, db, root = study
    out = root / "networks-connectivity"
    T.train_networks(db, profile, out, progress=False, num_threads=1)
    vertex = dataclasses.replace(profile, connectivity="vertex")
    assert set(T.load_networks(vertex, out, kinds=("bin",))) == {("bin", 2), ("bin", 4)}
    with pytest.raises(ValueError, match="connectivity"):
        T.load_networks(vertex, out, kinds=("diffu",))
    with pytest.raises(ValueError, match="connectivity"):
        T.train_networks(db, vertex, out, progress=False)
    stale = out / ".N_bin_2.ckpt.srlibtmpab12cd34.ckpt"  # what a killed atomic write leaves
    assert is_temp_name(stale.name)
    stale.write_bytes(b"half a checkpoint")
    T.train_networks(db, profile, out, kinds=("bin",), progress=False)
    assert not stale.exists()  # removed when the stage starts
    # metadata that does not record the channels' connectivity is refused, not guessed
    meta = out / "N_diffu_2.json"
    info = json.loads(meta.read_text())
    del info["settings"]["connectivity"]
    meta.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="connectivity"):
        T.load_networks(profile, out, kinds=("diffu",))
    # an unfinished "face" network (its checkpoint only) is not resumed by a "vertex" run
    for alpha in profile.alphas:
        (out / f"N_diffu_{alpha}.pt").unlink()
        (out / f"N_diffu_{alpha}.json").unlink()
    with pytest.raises(ValueError, match="computed with .*'face'.* not .*'vertex'"):
        T.train_networks(db, vertex, out, kinds=("diffu",), progress=False)  # the database
    key = db.root / "channels.json"
    key.write_text(json.dumps({"connectivity": "vertex", "axis": 0}))
    try:  # with "vertex" channels, the checkpoint of the "face" run still refuses
        with pytest.raises(ValueError, match="context"):
            T.train_networks(db, vertex, out, kinds=("diffu",), progress=False)
    finally:
        key.write_text(json.dumps({"connectivity": "face", "axis": 0}))


def test_diverged_network_is_named(study):
    profile, db, root = study
    wild = dataclasses.replace(profile, learning_rate=1e30)
    with pytest.raises(T.TrainingDiverged, match=r"N_bin_2 diverged in epoch \d") as info:
        T.train_networks(db, wild, root / "networks-wild", kinds=("bin",), progress=False)
    assert (info.value.kind, info.value.alpha) == ("bin", 2)


@pytest.mark.slow
def test_data_parallel_study_matches_one_process(study):
    # srlib train --nproc 2: two gloo ranks under torch.distributed.run train the same
    # networks as one process, to float tolerance; rank 0 writes them, once.
    profile, db, root = study
    even = dataclasses.replace(profile, batch_sizes=(2, 2))  # each rank: one cutout
    single = T.train_networks(db, even, root / "networks-one", kinds=("bin",), progress=False,
                              num_threads=1)
    ranks = T.train_networks(db, even, root / "networks-ddp", kinds=("bin",), progress=False,
                             num_threads=1, nproc=2)
    assert set(ranks) == set(single) and all(net.trained_now for net in ranks.values())
    for key, net in single.items():
        for (name, want), got in zip(net.model.state_dict().items(),
                                     ranks[key].model.state_dict().values(), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=name)
        assert ranks[key].threshold == pytest.approx(net.threshold, abs=1e-3)
        assert ranks[key].result.val_loss == pytest.approx(net.result.val_loss, rel=1e-4)


def test_impossible_data_parallel_runs_are_refused_before_any_rank_starts(study, monkeypatch):
    """--nproc 3 used to print rank tracebacks; --nproc 2 failed hours in, at batch 1."""
    profile, db, root = study

    def no_launch(*args, **kwargs):
        raise AssertionError("no rank may start")

    monkeypatch.setattr(study_module.distributed, "launch", no_launch)
    out = root / "networks-refused"
    with pytest.raises(ValueError, match=r"batch size\(s\) 2 at alpha=2, 1 at alpha=4 .*"
                                         r"multiples of 3"):
        T.train_networks(db, profile, out, kinds=("bin",), progress=False, nproc=3)
    even = dataclasses.replace(profile, batch_sizes=(2, 2))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            T.train_networks(db, even, out, kinds=("bin",), progress=False, nproc=2,
                             device="cuda")
    # every network on disk: loaded, no ranks started
    trained = T.train_networks(db, even, out, kinds=("bin",), progress=False, num_threads=1)
    again = T.train_networks(db, even, out, kinds=("bin",), progress=False, nproc=2)
    assert set(again) == set(trained) and not any(n.trained_now for n in again.values())
