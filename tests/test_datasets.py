import numpy as np
import pytest

from srlib import datasets
from srlib.config import get_profile
from srlib.resample import downsample


def test_public_samples(public):
    assert set(public) == {"berea", "bentheimer", "leopard"}
    shapes = {name: s.image.shape for name, s in public.items()}
    assert shapes == {"berea": (200,) * 3, "bentheimer": (500,) * 3, "leopard": (100,) * 3}
    assert all(s.image.dtype == bool for s in public.values())
    # Decoding: Berea 0 = pore (1 592 109 of 8e6 voxels), Leopard 1 = pore (262 235 of 1e6).
    assert public["berea"].solid_fraction == pytest.approx(1 - 1592109 / 200**3)
    assert public["leopard"].solid_fraction == pytest.approx(1 - 262235 / 100**3)
    assert public["bentheimer"].solid_fraction == pytest.approx(1 - 0.199687176)
    assert public["berea"].voxel_size_um == 5.345


def test_unknown_public_sample():
    with pytest.raises(ValueError, match="unknown public sample"):
        datasets.public_samples(["granite"])


def test_folder_samples(tmp_path, rng):
    truth = rng.random((8, 8, 8)) < 0.5
    np.save(tmp_path / "mine.npy", truth.astype(np.uint8))
    (s,) = datasets.folder_samples(tmp_path)
    assert s.name == "mine" and np.array_equal(s.image, truth)
    with pytest.raises(ValueError, match="does not exist"):
        datasets.folder_samples(tmp_path / "missing")


def test_bits_roundtrip(tmp_path, rng):
    img = rng.random((5, 6, 7)) < 0.3
    path = datasets.save_bits(tmp_path / "x.npz", img)
    assert np.array_equal(datasets.load_bits(path), img)


def test_crop_center():
    img = np.arange(6**3).reshape(6, 6, 6)
    assert np.array_equal(datasets.crop_center(img, 2), img[2:4, 2:4, 2:4])
    with pytest.raises(ValueError, match="cannot crop"):
        datasets.crop_center(img, 8)


@pytest.fixture
def small_samples(rng):
    from srlib import stochastic

    params = stochastic.ModelParams.from_solid_fraction(0.7, gamma=0.4)
    return [datasets.Sample(name=f"s{i}", image=stochastic.sample(32, params, seed=i),
                            voxel_size_um=None, source="test") for i in range(2)]


def test_build_database_and_resume(tmp_path, small_samples):
    profile = get_profile("tiny")
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, progress=False)
    assert db.scenario_names == ["s0", "s1"]
    assert db.indices("train") == [1] and db.indices("val") == [2] and db.indices("test") == [3]
    hr = db.hr("s1", 2)
    assert hr.shape == (32,) * 3 and hr.dtype == bool
    for a in profile.alphas:
        assert np.array_equal(db.lr("s1", 2, a), downsample(hr, a))
    # realizations differ across scenarios and indices
    assert not np.array_equal(db.hr("s0", 1), db.hr("s0", 2))
    # an interrupted run resumes: a deleted realization is regenerated identically
    db.path("s1", 2, "hr").unlink()
    db2 = datasets.build_database(profile, samples=small_samples, root=tmp_path, progress=False)
    assert np.array_equal(db2.hr("s1", 2), hr)
    # a different profile must not reuse this database
    with pytest.raises(ValueError, match="another profile"):
        datasets.build_database(get_profile("tiny", seed=5), samples=small_samples, root=tmp_path,
                                progress=False)
