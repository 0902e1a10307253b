import numpy as np
import pytest
import tifffile

from srlib import io


@pytest.fixture
def volume(rng):
    return rng.integers(0, 255, size=(6, 7, 8), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".tif", ".npy", ".npz"])
def test_roundtrip(tmp_path, volume, suffix):
    path = io.write_volume(tmp_path / f"v{suffix}", volume)
    assert np.array_equal(io.read_volume(path), volume)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_raw_roundtrip_needs_shape_and_dtype(tmp_path, volume):
    path = io.write_volume(tmp_path / "v.raw", volume)
    assert np.array_equal(io.read_volume(path, shape=volume.shape, dtype=np.uint8), volume)
    with pytest.raises(ValueError, match="shape= and dtype="):
        io.read_volume(path)
    with pytest.raises(ValueError, match="bytes"):
        io.read_volume(path, shape=(6, 7, 9), dtype=np.uint8)


def test_tiff_folder(tmp_path, volume):
    for z, sl in enumerate(volume):
        tifffile.imwrite(tmp_path / f"slice_{z:03d}.tif", sl)
    assert np.array_equal(io.read_volume(tmp_path), volume)


def test_errors(tmp_path, volume):
    with pytest.raises(ValueError, match="does not exist"):
        io.read_volume(tmp_path / "missing.npy")
    (tmp_path / "v.xyz").write_bytes(b"12")
    with pytest.raises(ValueError, match="unknown volume format"):
        io.read_volume(tmp_path / "v.xyz")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="could not read"):
        io.read_volume(tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="3D"):
        io.read_volume(tmp_path / "flat.npy")
    path = io.write_volume(tmp_path / "v.npy", volume)
    with pytest.raises(ValueError, match="expected"):
        io.read_volume(path, shape=(1, 2, 3))


def test_npz_with_several_arrays(tmp_path, volume):
    np.savez(tmp_path / "two.npz", a=volume, b=volume + 1)
    with pytest.raises(ValueError, match="key="):
        io.read_volume(tmp_path / "two.npz")
    assert np.array_equal(io.read_volume(tmp_path / "two.npz", key="b"), volume + 1)


def test_otsu_separates_two_levels(rng):
    truth = rng.random((16, 16, 16)) < 0.4
    gray = np.where(truth, 200, 60) + rng.normal(0, 10, truth.shape)
    assert np.array_equal(io.binarize_otsu(gray), truth)
    assert np.array_equal(io.binarize_otsu(gray, solid="dark"), ~truth)


def test_otsu_rejects_constant():
    with pytest.raises(ValueError, match="two values"):
        io.binarize_otsu(np.ones((4, 4, 4)))


def test_load_binary(tmp_path, rng):
    truth = rng.random((8, 8, 8)) < 0.5
    io.write_volume(tmp_path / "b.npy", truth.astype(np.uint8))
    assert np.array_equal(io.load_binary(tmp_path / "b.npy"), truth)
    gray = np.where(truth, 180, 20).astype(np.uint8)
    io.write_volume(tmp_path / "g.tif", gray)
    assert np.array_equal(io.load_binary(tmp_path / "g.tif"), truth)


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "sub" / "x.txt"
    with io.atomic_path(target) as tmp:
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["x.txt"]


# ----------------------------------------------------------------------------- issue 12


def _slices(folder, names, rng):
    import tifffile

    folder.mkdir()
    planes = {}
    for name in names:
        planes[name] = rng.integers(0, 255, (4, 5), dtype=np.uint8)
        tifffile.imwrite(folder / name, planes[name])
    return planes


def test_slice_folder_skips_hidden_files_and_sorts_naturally(tmp_path, rng):
    names = ["s1.tif", "s2.tif", "s10.tif", ".s2.tif.srlibtmpab12cd34.tif", ".hidden.tif"]
    planes = _slices(tmp_path / "stack", names, rng)
    vol = io.read_volume(tmp_path / "stack")
    assert vol.shape == (3, 4, 5)
    for z, name in enumerate(["s1.tif", "s2.tif", "s10.tif"]):
        assert np.array_equal(vol[z], planes[name])


def test_slice_folder_refuses_ambiguous_order(tmp_path, rng):
    _slices(tmp_path / "stack", ["s1.tif", "s01.tif", "s2.tif"], rng)
    with pytest.raises(ValueError, match="ambiguous"):
        io.read_volume(tmp_path / "stack")


def test_rgb_tiff_is_refused(tmp_path, rng):
    import tifffile

    tifffile.imwrite(tmp_path / "rgb.tif", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                     photometric="rgb")
    with pytest.raises(ValueError, match="colour image"):
        io.read_volume(tmp_path / "rgb.tif")


def test_grayscale_with_nan_names_the_file(tmp_path, rng):
    gray = rng.random((6, 6, 6)).astype(np.float32)
    gray[2, 2, 2] = np.nan
    io.write_volume(tmp_path / "g.tif", gray)
    with pytest.raises(ValueError, match=r"g\.tif: .*1 NaN or infinite"):
        io.load_binary(tmp_path / "g.tif")


@pytest.mark.parametrize("old_mode", [0o600, 0o644, 0o640])
def test_written_files_follow_the_umask(tmp_path, old_mode):
    import os

    target = tmp_path / "v.npy"
    target.write_bytes(b"old")
    target.chmod(old_mode)
    mask = os.umask(0o022)
    try:
        io.write_volume(target, np.zeros((2, 2, 2)))
        assert target.stat().st_mode & 0o777 == 0o644
        io.write_volume(tmp_path / "new.tif", np.zeros((2, 2, 2), np.uint8))
        assert (tmp_path / "new.tif").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        io.write_volume(target, np.zeros((2, 2, 2)))
        assert target.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(mask)


def test_atomic_path_fsyncs_before_rename(tmp_path, monkeypatch):
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"),
                                                     real_replace(a, b))[1])
    io.write_volume(tmp_path / "v.npy", np.zeros((2, 2, 2)))
    assert events[:2] == ["fsync", "replace"]


def test_remove_stale_temp_removes_only_srlib_temporaries(tmp_path):
    sub = tmp_path / "scen"
    sub.mkdir()
    stale = [tmp_path / ".r01_hr.npz.srlibtmpab_12cd3.npz",
             sub / ".r01_lr2.npz.srlibtmpk2j4l9x_.npz",
             tmp_path / ".evaluation.csv.srlibtmpqwertyui.csv",
             tmp_path / ".meta.srlibtmp12345678"]              # target without suffix
    kept = [tmp_path / "r01_hr.npz", tmp_path / ".gitignore", tmp_path / ".hidden.npz",
            tmp_path / ".r01_hr.npz.srlibtmpab_12cd3.npy",     # suffix differs from the target's
            sub / ".notes.txt",
            # a user's hidden files, which the earlier pattern (".<name>.<8 characters>")
            # took for temporaries and deleted
            tmp_path / ".env.defaults", tmp_path / ".notes.20240101",
            tmp_path / ".README.markdown", sub / ".r01_lr2.npz.k2j4l9x_.npz",
            tmp_path / ".meta.tmp12345678"]
    for p in stale + kept:
        p.write_text("x")
    assert io.remove_stale_temp(tmp_path) == sorted(p for p in stale if p.parent == tmp_path)
    assert sorted(io.remove_stale_temp(tmp_path, recursive=True)) == [stale[1]]
    assert all(p.exists() for p in kept)
    assert io.remove_stale_temp(tmp_path / "missing") == []


def test_a_killed_write_leaves_a_temp_file_that_remove_stale_temp_finds(tmp_path):
    import os
    import subprocess
    import sys

    target = str(tmp_path / "v.npy")
    code = ("import os, numpy as np; from srlib import io\n"
            f"with io.atomic_path({target!r}) as tmp:\n"
            "    tmp.write_bytes(b'half'); os._exit(9)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ)
    assert proc.returncode == 9
    left = [p for p in tmp_path.iterdir()]
    assert len(left) == 1 and io.is_temp_name(left[0].name)
    assert io.remove_stale_temp(tmp_path) == left
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_into_unwritable_folder_names_the_file(tmp_path, monkeypatch):
    import tempfile

    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied", kwargs["dir"])

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as info:
        io.write_volume(tmp_path / "out.tif", np.zeros((2, 2, 2), np.uint8))
    assert info.value.filename == str(tmp_path / "out.tif")
    assert "cannot write" in str(info.value)


def test_read_current_returns_a_record_only_for_its_settings(tmp_path):
    from srlib.io import read_current, write_json

    path = tmp_path / "run.json"
    assert read_current(path, {"a": 1}) is None  # missing
    write_json(path, {"accuracy": 0.9, "settings": {"a": 1, "b": (2, 3)}})
    assert read_current(path, {"a": 1, "b": (2, 3)}) == {"accuracy": 0.9}  # tuples as JSON
    assert read_current(path, {"a": 2, "b": (2, 3)}) is None
    path.write_text("{half")
    assert read_current(path, {"a": 1}) is None  # damaged: compute again
