import json

import numpy as np
import pytest

from srlib import cli, io, stochastic
from srlib.resample import downsample


@pytest.fixture
def volume(tmp_path):
    params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.4)
    hr = stochastic.sample(32, params, seed=2)
    io.write_volume(tmp_path / "hr.tif", hr)
    io.write_volume(tmp_path / "lr.npy", downsample(hr, 2))
    return hr


def test_calibrate_prints_parameters(tmp_path, volume, capsys):
    args = ["calibrate", str(tmp_path / "hr.tif"), "--json", str(tmp_path / "p.json")]
    assert cli.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["shape"] == [32, 32, 32]
    assert result["solid_fraction"] == pytest.approx(volume.mean())
    assert result["model_solid_fraction"] == pytest.approx(volume.mean())
    assert json.loads((tmp_path / "p.json").read_text())["nu"] == result["nu"]


def test_super_resolve_interpolation_and_evaluate(tmp_path, volume, capsys):
    args = ["super-resolve", str(tmp_path / "lr.npy"), str(tmp_path / "sr.npy"), "--alpha", "2",
            "--method", "interpolation"]
    assert cli.main(args) == 0
    sr = io.read_volume(tmp_path / "sr.npy")
    assert sr.shape == volume.shape and sr.dtype == bool
    assert np.array_equal(sr[::2, ::2, ::2], downsample(volume, 2))
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "sr.npy"), str(tmp_path / "hr.tif"),
                     "--alpha", "2", "--no-effective"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert 0.5 < row["accuracy"] < 1.0


def test_bad_alpha_is_a_clear_error(tmp_path, volume, capsys):
    code = cli.main(["super-resolve", str(tmp_path / "lr.npy"), str(tmp_path / "x.npy"),
                     "--alpha", "3", "--method", "interpolation"])
    assert code == 2
    assert "alpha must be one of" in capsys.readouterr().err


def test_super_resolve_without_trained_network(tmp_path, volume, capsys):
    code = cli.main(["super-resolve", str(tmp_path / "lr.npy"), str(tmp_path / "x.npy"),
                     "--alpha", "2", "--profile", "tiny", "--results-root", str(tmp_path)])
    assert code == 2
    assert "N_bin_2.pt is missing" in capsys.readouterr().err


# ----------------------------------------------------------------------------- issue 12


def _one_line_error(capsys, fragment):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert fragment in err, err
    return err


def test_super_resolve_refuses_to_overwrite_its_input(tmp_path, volume, capsys):
    lr = tmp_path / "lr.npy"
    before = lr.read_bytes()
    assert cli.main(["super-resolve", str(lr), str(lr), "--alpha", "2",
                     "--method", "interpolation"]) == 2
    _one_line_error(capsys, "is the input")
    assert lr.read_bytes() == before


def test_json_into_missing_folder_is_one_line(tmp_path, volume, capsys):
    target = tmp_path / "missing" / "p.json"
    assert cli.main(["calibrate", str(tmp_path / "hr.tif"), "--json", str(target)]) == 2
    _one_line_error(capsys, f"folder {target.parent} does not exist")


def test_unwritable_output_is_one_line(tmp_path, volume, capsys, monkeypatch):
    import tempfile

    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied", kwargs["dir"])

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "sr.npy"
    assert cli.main(["super-resolve", str(tmp_path / "lr.npy"), str(out), "--alpha", "2",
                     "--method", "interpolation"]) == 2
    _one_line_error(capsys, f"cannot write {out}: Permission denied")
    assert cli.main(["calibrate", str(tmp_path / "hr.tif"), "--json",
                     str(tmp_path / "p.json")]) == 2
    _one_line_error(capsys, "p.json: Permission denied")


@pytest.mark.parametrize("argv", [["train", "--threads", "0"], ["train", "--threads", "x"],
                                  ["calibrate", "v.tif", "--max-lag", "0"]])
def test_bad_arguments_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    _one_line_error(capsys, "error: argument")


def test_calibrate_max_lag_too_large_is_a_clear_error(tmp_path, volume, capsys):
    assert cli.main(["calibrate", str(tmp_path / "hr.tif"), "--max-lag", "1000"]) == 2
    _one_line_error(capsys, "max_lag=1000 must be smaller")


def test_rgb_tiff_is_refused_by_calibrate(tmp_path, capsys):
    import tifffile

    rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert cli.main(["calibrate", str(tmp_path / "rgb.tif")]) == 2
    _one_line_error(capsys, "colour image")


def test_truncated_npz_is_one_line(tmp_path, volume, capsys):
    good = tmp_path / "v.npz"
    io.write_volume(good, volume)
    good.write_bytes(good.read_bytes()[:200])
    assert cli.main(["calibrate", str(good)]) == 2
    _one_line_error(capsys, str(good))


def _tiny_samples():
    from srlib import datasets

    params = stochastic.ModelParams.from_solid_fraction(0.7, gamma=0.4)
    return [datasets.Sample(name="s0", image=stochastic.sample(32, params, seed=0),
                            voxel_size_um=None, source="test")]


def test_truncated_database_is_one_line(tmp_path, capsys):
    from srlib import datasets
    from srlib.config import get_profile

    root = tmp_path / "tiny" / "database"
    db = datasets.build_database(get_profile("tiny"), samples=_tiny_samples(), root=root,
                                 workers=1, progress=False)
    bad = db.path("s0", 1, "lr8")
    shard = next(p for p in sorted((bad / "c").rglob("*")) if p.is_file())
    shard.write_bytes(shard.read_bytes()[:50])
    assert cli.main(["train", "--profile", "tiny", "--results-root", str(tmp_path)]) == 2
    _one_line_error(capsys, str(bad))


def test_generate_builds_the_database_with_the_dask_engine(tmp_path, capsys, monkeypatch):
    from dask.distributed import LocalCluster

    from srlib import datasets

    folder = tmp_path / "samples"
    folder.mkdir()
    io.write_volume(folder / "s0.npy", _tiny_samples()[0].image)
    argv = ["generate", "--samples", str(folder), "--profile", "tiny", "--results-root",
            str(tmp_path), "--no-channels"]
    assert cli.main(argv + ["--workers", "1"]) == 0
    db = datasets.Database(tmp_path / "tiny" / "database")
    assert db.scenario_names == ["s0"] and db.hr("s0", 3).shape == (32, 32, 32)
    assert "database of 1 scenario(s)" in capsys.readouterr().out
    seen = []
    build = datasets.build_database

    def spy(*args, **kwargs):
        seen.append(kwargs["scheduler"])
        return build(*args, **kwargs)

    monkeypatch.setattr(datasets, "build_database", spy)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                      dashboard_address=":0") as cluster:
        assert cli.main(argv + ["--scheduler", cluster.scheduler_address]) == 0
    assert seen == [cluster.scheduler_address]
    with pytest.raises(SystemExit) as info:
        cli.main(argv + ["--workers", "0"])
    assert info.value.code == 2
    _one_line_error(capsys, "error: argument --workers")


def test_truncated_weights_are_one_line(tmp_path, volume, capsys, monkeypatch):
    import torch

    from srlib import training

    weights = tmp_path / "N_bin_2.pt"
    torch.save({"w": torch.zeros(1000)}, weights)
    weights.write_bytes(weights.read_bytes()[:300])

    def load(*args, **kwargs):
        return torch.load(weights)

    monkeypatch.setattr(training, "load_networks", load)
    assert cli.main(["super-resolve", str(tmp_path / "lr.npy"), str(tmp_path / "sr.npy"),
                     "--alpha", "2", "--profile", "tiny", "--results-root", str(tmp_path)]) == 2
    _one_line_error(capsys, "networks in")


def test_evaluate_prints_strict_json_with_infinities(tmp_path, capsys):
    hr = np.zeros((16, 16, 16), bool)
    hr[:, 4:8, 4:8] = True        # a solid channel along axis 0
    sr = hr.copy()
    sr[8] = False                 # the super-resolved image cuts it
    io.write_volume(tmp_path / "hr.npy", hr)
    io.write_volume(tmp_path / "sr.npy", sr)
    argv = ["evaluate", str(tmp_path / "sr.npy"), str(tmp_path / "hr.npy"), "--alpha", "2",
            "--no-effective"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "Infinity" not in text and "NaN" not in text
    row = json.loads(text)
    assert row["tau_geod_sr_solid"] == "inf" and row["tau_geod_acc_solid"] == "-inf"
    assert float(row["tau_geod_acc_solid"]) == -np.inf
    assert cli.main(argv + ["--inf-as-null"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["tau_geod_sr_solid"] is None and row["tau_geod_acc_solid"] is None
