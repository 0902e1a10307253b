"""Reading and writing 3D volumes, and Otsu binarisation of grayscale input.

Contract. :func:`read_volume` reads a 3D array from a multi-page TIFF, a folder of 2D TIFF
slices (sorted by name; one slice per ``z``), ``.npy``, ``.npz`` (one array or a named key) or
headerless ``.raw`` (with ``shape`` and ``dtype`` given). :func:`write_volume` writes ``.tif``,
``.npy``, ``.npz`` or ``.raw`` atomically (a temporary file renamed into place), so an
interrupted run never leaves a truncated file. :func:`binarize_otsu` turns grayscale data into
a binary image as the paper does (Otsu's threshold; bright = solid by default), and
:func:`load_binary` combines both. Errors name the file and the problem.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from srlib._checks import as_volume

__all__ = ["atomic_path", "binarize_otsu", "load_binary", "read_volume", "write_volume"]

_TIFF = (".tif", ".tiff")


class _VolumeError(ValueError):
    """A problem with a volume file that already names the file."""


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    Writers write the temporary file; a reader never sees a half-written ``path``, and an
    interruption or error leaves the previous file (if any) intact and no temporary behind.

    Parameters
    ----------
    path : str or path-like
        Final file; its folder is created when missing.

    Yields
    ------
    pathlib.Path
        The temporary file to write (same folder and suffix, hidden name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_volume(path, *, shape=None, dtype=None, key: str | None = None) -> np.ndarray:
    """Read a 3D volume from disk.

    Parameters
    ----------
    path : str or path-like
        A ``.tif``/``.tiff`` stack, a folder of 2D TIFF slices, ``.npy``, ``.npz`` or ``.raw``.
    shape : tuple of int, optional
        Shape ``(nz, ny, nx)``; required for ``.raw`` and checked for the other formats.
    dtype : numpy dtype, optional
        Element type; required for ``.raw`` (C order, native byte order unless given).
    key : str, optional
        Array name inside an ``.npz`` holding several arrays.

    Returns
    -------
    numpy.ndarray
        The 3D volume.

    Raises
    ------
    ValueError
        If the file is missing, of an unknown format, unreadable, not 3D, or of another shape.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"volume file {path} does not exist")
    suffix = path.suffix.lower()
    if not path.is_dir() and suffix not in (*_TIFF, ".npy", ".npz", ".raw"):
        raise ValueError(
            f"unknown volume format {suffix!r} for {path}; use .tif, .tiff, .npy, .npz, "
            ".raw or a folder of TIFF slices"
        )
    if suffix == ".raw":
        if shape is None or dtype is None:
            raise ValueError(f"reading raw file {path} needs shape= and dtype=")
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        size = path.stat().st_size
        if size != expected:
            raise ValueError(
                f"raw file {path} has {size} bytes, but shape {tuple(shape)} of "
                f"{np.dtype(dtype)} needs {expected}"
            )
    try:
        if path.is_dir():
            vol = _read_tiff_folder(path)
        elif suffix in _TIFF:
            import tifffile

            vol = tifffile.imread(path)
        elif suffix == ".npy":
            vol = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            vol = _read_npz(path, key)
        else:
            vol = np.fromfile(path, dtype=dtype).reshape(shape)
    except _VolumeError:
        raise
    except Exception as err:  # tifffile, zipfile and numpy raise many types
        raise ValueError(f"could not read volume {path}: {err}") from err
    vol = as_volume(vol, name=f"volume in {path}")
    if shape is not None and tuple(vol.shape) != tuple(shape):
        raise ValueError(f"volume {path} has shape {vol.shape}, expected {tuple(shape)}")
    return vol


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        names = list(data.keys())
        if key is None:
            if len(names) != 1:
                raise _VolumeError(f"{path} holds arrays {names}; choose one with key=")
            key = names[0]
        if key not in names:
            raise _VolumeError(f"{path} has no array {key!r}; it holds {names}")
        return data[key]


def _read_tiff_folder(folder: Path) -> np.ndarray:
    import tifffile

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _TIFF)
    if not files:
        raise _VolumeError(f"folder {folder} holds no .tif/.tiff slices")
    slices = [tifffile.imread(p) for p in files]
    shapes = {s.shape for s in slices}
    if len(shapes) != 1 or slices[0].ndim != 2:
        raise _VolumeError(f"slices in {folder} must all be 2D of one shape, got shapes {shapes}")
    return np.stack(slices)


def write_volume(path, image) -> Path:
    """Write a 3D volume atomically; the format follows the suffix.

    Parameters
    ----------
    path : str or path-like
        Target file ending in ``.tif``/``.tiff``, ``.npy``, ``.npz`` (array stored as
        ``image``) or ``.raw`` (C order, no header).
    image : array_like
        3D volume.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    vol = as_volume(image)
    suffix = path.suffix.lower()
    if suffix not in (*_TIFF, ".npy", ".npz", ".raw"):
        raise ValueError(f"unknown volume format {suffix!r} for {path}")
    with atomic_path(path) as tmp:
        if suffix in _TIFF:
            import tifffile

            tifffile.imwrite(tmp, vol.astype(np.uint8) if vol.dtype == bool else vol)
        elif suffix == ".npy":
            np.save(tmp, vol)
        elif suffix == ".npz":
            np.savez_compressed(tmp, image=vol)
        else:
            np.ascontiguousarray(vol).tofile(tmp)
    return path


def binarize_otsu(image, *, solid: str = "bright") -> np.ndarray:
    """Binarise a grayscale volume with Otsu's threshold.

    Parameters
    ----------
    image : array_like
        Grayscale 3D volume with at least two distinct values.
    solid : {"bright", "dark"}
        Which side of the threshold is solid.

    Returns
    -------
    numpy.ndarray
        ``bool`` image, True = solid.
    """
    from skimage.filters import threshold_otsu

    vol = as_volume(image)
    if solid not in ("bright", "dark"):
        raise ValueError(f"solid must be 'bright' or 'dark', got {solid!r}")
    if vol.dtype == bool or np.unique(vol).size < 2:
        raise ValueError("Otsu binarisation needs a grayscale image with at least two values")
    threshold = threshold_otsu(vol)
    return vol > threshold if solid == "bright" else vol <= threshold


def load_binary(path, *, solid: str = "bright", **read_kwargs) -> np.ndarray:
    """Read a volume and return it as a binary image (True = solid).

    Images with exactly the values {0, 1} (or bool) are taken as they are (1 = solid);
    anything else is binarised with :func:`binarize_otsu`.

    Parameters
    ----------
    path : str or path-like
        Any format accepted by :func:`read_volume`.
    solid : {"bright", "dark"}
        Passed to :func:`binarize_otsu` for grayscale input.
    **read_kwargs
        Passed to :func:`read_volume` (``shape``, ``dtype``, ``key``).

    Returns
    -------
    numpy.ndarray
        ``bool`` image, True = solid.
    """
    vol = read_volume(path, **read_kwargs)
    if vol.dtype == bool:
        return vol
    values = np.unique(vol)
    if values.size <= 2 and np.all(np.isin(values, (0, 1))):
        return vol.astype(bool)
    return binarize_otsu(vol, solid=solid)
