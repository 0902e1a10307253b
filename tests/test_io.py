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
