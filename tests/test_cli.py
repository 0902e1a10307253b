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
