import pickle
import shutil

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


def _arrays(db):
    """Every array of a database, read through its public API."""
    out = {}
    for s in db.scenario_names:
        for i in db.indices():
            out[(s, i, "hr")] = db.hr(s, i)
            for a in db.alphas:
                out[(s, i, f"lr{a}")] = db.lr(s, i, a)
                if db.path(s, i, f"diffu{a}").exists():
                    out[(s, i, f"diffu{a}")] = db.channels(s, i, a)
    return out


def _shard(folder):
    """The first shard file of an array folder."""
    return next(p for p in sorted((folder / "c").rglob("*")) if p.is_file())


def _same(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(
        first[k].dtype == second[k].dtype and np.array_equal(first[k], second[k])
        for k in first)


def test_build_database_and_resume(tmp_path, small_samples):
    profile = get_profile("tiny")
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                 progress=False)
    assert db.scenario_names == ["s0", "s1"]
    assert db.indices("train") == [1] and db.indices("val") == [2] and db.indices("test") == [3]
    hr = db.hr("s1", 2)
    assert hr.shape == (32,) * 3 and hr.dtype == bool
    for a in profile.alphas:
        assert np.array_equal(db.lr("s1", 2, a), downsample(hr, a))
    # realizations differ across scenarios and indices
    assert not np.array_equal(db.hr("s0", 1), db.hr("s0", 2))
    # an interrupted run resumes: a deleted realization is regenerated identically
    shutil.rmtree(db.path("s1", 2, "hr"))
    db2 = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                  progress=False)
    assert np.array_equal(db2.hr("s1", 2), hr)
    # a different profile must not reuse this database
    with pytest.raises(ValueError, match="another profile"):
        datasets.build_database(get_profile("tiny", seed=5), samples=small_samples, root=tmp_path,
                                progress=False)


def test_read_region_equals_slicing_the_whole_volume(tmp_path, small_samples, monkeypatch):
    from srlib import transport

    monkeypatch.setattr(transport, "diffusion_channels",
                        lambda image, *, axis=0, connectivity="face":
                        np.stack([image, ~image]).astype(np.float32) * np.float32(0.5))
    profile = get_profile("tiny")
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                 progress=False)
    datasets.build_diffusion_channels(db, workers=1, progress=False)
    region = (slice(3, 30), slice(0, 7), slice(17, 32))
    assert np.array_equal(db.read_region("hr", "s1", 3, None, region), db.hr("s1", 3)[region])
    lr_region = (slice(1, 9), slice(2, 3), slice(0, 16))
    assert np.array_equal(db.read_region("lr", "s0", 2, 2, lr_region),
                          db.lr("s0", 2, 2)[lr_region])
    got = db.read_region("channels", "s0", 2, 2, lr_region, connectivity="face", axis=0)
    assert got.dtype == np.float32 and got.shape == (2, 8, 1, 16)
    assert np.array_equal(got, db.channels("s0", 2, 2)[(slice(None), *lr_region)])
    assert db.array("lr", "s1", 1, 4).shape == (8, 8, 8)
    copy = pickle.loads(pickle.dumps(db))  # DataLoader workers get a copy of the database
    assert np.array_equal(copy.read_region("hr", "s1", 3, None, region), db.hr("s1", 3)[region])
    with pytest.raises(ValueError, match="region"):
        db.read_region("hr", "s0", 1, None, (slice(0, 4),) * 2)
    with pytest.raises(ValueError, match="kind"):
        db.read_region("mask", "s0", 1, None, (slice(0, 4),) * 3)
    with pytest.raises(ValueError, match="alpha"):
        db.read_region("lr", "s0", 1, 3, (slice(0, 4),) * 3)
    with pytest.raises(ValueError, match="computed with"):
        db.read_region("channels", "s0", 1, 2, (slice(0, 4),) * 3, connectivity="vertex")
    with pytest.raises(ValueError, match="unknown scenario"):
        db.read_region("hr", "s9", 1, None, (slice(0, 4),) * 3)


def test_a_region_read_reads_only_the_chunks_it_touches(tmp_path, rng, monkeypatch):
    import tracemalloc

    from zarr.storage import LocalStore

    from srlib import _store

    image = rng.random((128, 128, 128)) < 0.5        # 64 chunks of 32³, one shard file
    _store.write_array(tmp_path / "hr", image)
    stored = sum(p.stat().st_size for p in (tmp_path / "hr").rglob("*") if p.is_file())
    read = []
    get = LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        buffer = await get(self, key, *args, **kwargs)
        read.append(0 if buffer is None else len(buffer.to_bytes()))
        return buffer

    monkeypatch.setattr(LocalStore, "get", counting_get)
    tracemalloc.start()
    region = _store.read_array(tmp_path / "hr", (slice(32, 64), slice(64, 96), slice(0, 32)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.array_equal(region, image[32:64, 64:96, 0:32])
    assert sum(read) < 3 * stored / 64               # one chunk, the shard index, metadata
    assert peak < image.nbytes / 8                   # never the whole volume in memory
    read.clear()
    assert np.array_equal(_store.read_array(tmp_path / "hr"), image)
    assert sum(read) >= stored - 4096                # a whole read reads everything


# ----------------------------------------------------------------------------- issue 12


def test_folder_samples_ignore_hidden_files(tmp_path, rng):
    truth = rng.random((8, 8, 8)) < 0.5
    np.save(tmp_path / "s10.npy", truth)
    np.save(tmp_path / "s2.npy", ~truth)
    np.save(tmp_path / ".s2.npy.srlibtmpab12cd34.npy", truth)  # a killed write's leftover
    np.save(tmp_path / ".other.npy", truth)
    samples = datasets.folder_samples(tmp_path)
    assert [s.name for s in samples] == ["s2", "s10"]


def test_build_database_recomputes_damaged_arrays(tmp_path, small_samples):
    profile = get_profile("tiny")
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                 progress=False)
    before = _arrays(db)
    hr_shard = _shard(db.path("s0", 1, "hr"))
    hr_shard.write_bytes(hr_shard.read_bytes()[:100])    # truncated externally
    lr_shard = _shard(db.path("s1", 3, "lr4"))
    lr_shard.unlink()                                     # a chunk file lost: reads as zeros
    stale = tmp_path / "s0" / ".r02_hr.srlibtmpab12cd34"       # a killed write's temporary array
    stale.mkdir()
    (stale / "zarr.json").write_text("{")
    legacy_stale = tmp_path / "s0" / ".r02_hr.npz.srlibtmpab12cd34.npz"
    legacy_stale.write_bytes(b"half")
    with pytest.raises(ValueError, match=r"cannot read binary image .*r01_hr"):
        db.hr("s0", 1)
    with pytest.raises(ValueError, match=r"r03_lr4.*digest"):
        db.lr("s1", 3, 4)
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                 progress=False)
    assert _same(_arrays(db), before)
    assert not stale.exists() and not legacy_stale.exists()


def test_corrupt_scenarios_json_names_the_file(tmp_path, small_samples):
    profile = get_profile("tiny")
    datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                            progress=False)
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
    db = datasets.build_database(profile, samples=small_samples[:1], root=tmp_path, workers=1,
                                 progress=False)
    datasets.build_diffusion_channels(db, connectivity="face", workers=1, progress=False)
    assert calls == ["face"] * 3
    datasets.build_diffusion_channels(db, connectivity="face", workers=1, progress=False)
    assert calls == ["face"] * 3  # resumed: nothing recomputed
    assert db.channels("s0", 1, 8, connectivity="face", axis=0)[0, 0, 0, 0] == 0.25
    datasets.build_diffusion_channels(db, connectivity="vertex", workers=1, progress=False)
    assert calls == ["face"] * 3 + ["vertex"] * 3
    assert db.channels("s0", 1, 8)[0, 0, 0, 0] == 0.75
    with pytest.raises(ValueError, match="computed with"):
        db.channels("s0", 1, 8, connectivity="face")
    datasets.build_diffusion_channels(db, connectivity="vertex", axis=1, workers=1,
                                      progress=False)
    assert db.channels("s0", 2, 8, connectivity="vertex", axis=1)[1, 0, 0, 0] == 1.75
    shard = _shard(db.path("s0", 2, "diffu8"))
    shard.write_bytes(shard.read_bytes()[:-8])  # truncated
    datasets.build_diffusion_channels(db, connectivity="vertex", axis=1, workers=1,
                                      progress=False)
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


def test_a_database_is_never_reused_for_other_sample_images(tmp_path, small_samples):
    """`srlib generate --solid dark` after `--solid bright` kept the bright database."""
    import dataclasses

    profile = get_profile("tiny")
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                 progress=False)
    flipped = [dataclasses.replace(s, image=~s.image) for s in small_samples]  # other solid
    with pytest.raises(ValueError, match="calibrated on other images"):
        datasets.build_database(profile, samples=flipped, root=tmp_path, workers=1,
                                progress=False)
    again = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                    progress=False)
    assert again.key == db.key


def test_arrays_without_their_description_are_not_adopted(tmp_path, small_samples):
    """Deleting scenarios.json and rebuilding with another seed kept the old arrays."""
    profile = get_profile("tiny")
    datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                            progress=False)
    (tmp_path / "scenarios.json").unlink()
    with pytest.raises(ValueError, match="no scenarios.json that says what made them"):
        datasets.build_database(get_profile("tiny", seed=7), samples=small_samples,
                                root=tmp_path, workers=1, progress=False)


def test_region_reads_verify_what_they_read(tmp_path, small_samples):
    """A lost shard read as zeros, a flipped byte as wrong values; out-of-range regions were
    silently cut."""
    profile = get_profile("tiny")
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                 progress=False)
    region = (slice(0, 8), slice(0, 8), slice(0, 8))
    assert db.read_region("hr", "s0", 1, None, region).shape == (8, 8, 8)
    with pytest.raises(ValueError, match="not a contiguous region inside"):
        db.read_region("hr", "s0", 1, None, (slice(0, 40), slice(0, 8), slice(0, 8)))
    _shard(db.path("s0", 2, "hr")).unlink()
    shard = _shard(db.path("s1", 1, "hr"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    fresh = datasets.Database(tmp_path)
    for scenario, i in (("s0", 2), ("s1", 1)):
        with pytest.raises(ValueError, match="differs from its digest"):
            fresh.read_region("hr", scenario, i, None, region)
        with pytest.raises(ValueError, match="differs from its digest"):
            fresh.array("hr", scenario, i)


def test_one_writer_at_a_time(tmp_path, small_samples):
    """Two builds with other settings on one root both reported success, mixing sizes."""
    import json
    import os
    import socket
    import subprocess
    import sys

    profile = get_profile("tiny")
    lock = tmp_path / datasets.WRITER_LOCK
    other = {"key": {"profile": {"name": "tiny", "hr_size": 48}}, "pid": os.getpid(),
             "host": socket.gethostname()}   # a live writer (this process) of other settings
    lock.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="being built by process .* with other settings"):
        datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                progress=False)
    assert not (tmp_path / "scenarios.json").exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    lock.write_text(json.dumps({**other, "pid": int(gone.stdout)}))  # its writer died
    db = datasets.build_database(profile, samples=small_samples, root=tmp_path, workers=1,
                                 progress=False)
    assert db.profile == "tiny" and not lock.exists()


def test_bad_sample_files_are_named(tmp_path):
    """A one-phase volume said "image has no pore voxels", a garbage TIFF "list index out of
    range", neither naming the file."""
    np.save(tmp_path / "solid.npy", np.ones((8, 8, 8), dtype=bool))
    with pytest.raises(ValueError, match=r"solid\.npy.*no pore voxels"):
        datasets.folder_samples(tmp_path)
    (tmp_path / "solid.npy").unlink()
    (tmp_path / "garbage.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"garbage\.tif"):
        datasets.folder_samples(tmp_path)
