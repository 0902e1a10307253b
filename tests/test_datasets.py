import numpy as np
import pytest

from srlib import datasets
from srlib.config import get_profile
from srlib.resample import downsample


@pytest.mark.network
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


# ----------------------------------------------------------------------------- issue 12


def test_folder_samples_ignore_hidden_files(tmp_path, rng):
    truth = rng.random((8, 8, 8)) < 0.5
    np.save(tmp_path / "s10.npy", truth)
    np.save(tmp_path / "s2.npy", ~truth)
    np.save(tmp_path / ".s2.npy.tmpab12cd34.npy", truth)  # a killed write's leftover
    np.save(tmp_path / ".other.npy", truth)
    samples = datasets.folder_samples(tmp_path)
    assert [s.name for s in samples] == ["s2", "s10"]


def test_build_database_recomputes_truncated_files(tmp_path, small_samples):
    profile = get_profile("tiny")
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, progress=False)
    files = sorted(tmp_path.rglob("r*.npz"))
    before = {p: p.read_bytes() for p in files}
    hr_file, lr_file = db.path("s0", 1, "hr"), db.path("s1", 3, "lr4")
    hr_file.write_bytes(before[hr_file][:100])           # truncated externally
    lr_file.write_bytes(b"")
    stale = tmp_path / "s0" / ".r02_hr.npz.tmpab12cd34.npz"
    stale.write_bytes(b"half")
    with pytest.raises(ValueError, match=r"cannot read binary image .*r01_hr\.npz"):
        db.hr("s0", 1)
    datasets.build_database(profile, samples=small_samples, root=tmp_path, progress=False)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("r*.npz"))} == before
    assert not stale.exists()


def test_corrupt_scenarios_json_names_the_file(tmp_path, small_samples):
    profile = get_profile("tiny")
    datasets.build_database(profile, samples=small_samples, root=tmp_path, progress=False)
    (tmp_path / "scenarios.json").write_text('{"profile": ')
    with pytest.raises(ValueError, match=r"scenarios\.json is not readable JSON"):
        datasets.Database(tmp_path)
    with pytest.raises(ValueError, match=r"scenarios\.json is not readable JSON"):
        datasets.build_database(profile, samples=small_samples, root=tmp_path, progress=False)
    (tmp_path / "scenarios.json").write_text('{"profile": {}}')
    with pytest.raises(ValueError, match="is not a database description"):
        datasets.Database(tmp_path)


def test_channels_of_another_connectivity_are_not_reused(tmp_path, small_samples, monkeypatch):
    from srlib import transport

    calls = []

    def fake_channels(image, *, axis=0, connectivity="face"):
        calls.append(connectivity)
        value = {"face": 0.25, "vertex": 0.75}[connectivity] + axis
        return np.full((2, *image.shape), value, np.float32)

    monkeypatch.setattr(transport, "diffusion_channels", fake_channels)
    profile = get_profile("tiny", alphas=(8,), batch_sizes=(1,))
    db = datasets.build_database(profile, samples=small_samples[:1], root=tmp_path,
                                 progress=False)
    datasets.build_diffusion_channels(db, connectivity="face", progress=False)
    assert calls == ["face"] * 3
    datasets.build_diffusion_channels(db, connectivity="face", progress=False)
    assert calls == ["face"] * 3  # resumed: nothing recomputed
    assert db.channels("s0", 1, 8, connectivity="face", axis=0)[0, 0, 0, 0] == 0.25
    datasets.build_diffusion_channels(db, connectivity="vertex", progress=False)
    assert calls == ["face"] * 3 + ["vertex"] * 3
    assert db.channels("s0", 1, 8)[0, 0, 0, 0] == 0.75
    with pytest.raises(ValueError, match="computed with"):
        db.channels("s0", 1, 8, connectivity="face")
    datasets.build_diffusion_channels(db, connectivity="vertex", axis=1, progress=False)
    assert db.channels("s0", 2, 8, connectivity="vertex", axis=1)[1, 0, 0, 0] == 1.75
    db.path("s0", 2, "diffu8").write_bytes(b"\x93NUMPY")  # truncated
    datasets.build_diffusion_channels(db, connectivity="vertex", axis=1, progress=False)
    assert len(calls) == 10
    with pytest.raises(ValueError, match="connectivity"):
        datasets.build_diffusion_channels(db, connectivity="edge", progress=False)
    (tmp_path / "channels.json").unlink()  # settings unrecorded: refused when asked for
    with pytest.raises(ValueError, match="unrecorded settings"):
        db.channels("s0", 1, 8, connectivity="vertex")


def test_offline_error_says_where_to_put_the_archive(tmp_path, monkeypatch):
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(datasets.DownloadError) as info:
        datasets.public_samples(["leopard"], cache=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "porespy-3.2.0.tar.gz") in message
    assert "SRLIB_DATA" in message and datasets.PORESPY_SDIST_SHA256 in message


def test_fixtures_of_an_earlier_cache_layout_are_used_without_download(tmp_path, monkeypatch):
    import pooch

    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: pytest.fail("downloaded"))
    (tmp_path / "porespy-fixtures").mkdir()
    image = np.full((100, 100, 100), 2, np.uint8)
    image[:10] = 1
    np.save(tmp_path / "porespy-fixtures" / "image_Leopard_slice100.npy", image)
    (leopard,) = datasets.public_samples(["leopard"], cache=tmp_path)
    assert leopard.solid_fraction == pytest.approx(0.9)
