"""Reading and writing 3D volumes, and Otsu binarisation of grayscale input.

Contract. :func:`read_volume` reads a 3D array from a multi-page TIFF, a folder of 2D TIFF
slices (in natural order of their names, ``s2`` before ``s10``; one slice per ``z``; hidden
files are ignored), ``.npy``, ``.npz`` (one array or a named key) or headerless ``.raw`` (with
``shape`` and ``dtype`` given). Colour (RGB) TIFFs are refused rather than read as a volume.
:func:`write_volume` writes ``.tif``, ``.npy``, ``.npz`` or ``.raw`` atomically through
:func:`atomic_path` (a hidden temporary file, flushed to disk, renamed into place; the file's
mode follows the umask), so an interrupted run never leaves a truncated file; a killed write may
leave its hidden temporary file behind, which :func:`remove_stale_temp` removes when a stage
starts. :func:`binarize_otsu` turns grayscale data into a binary image as the paper does
(Otsu's threshold; bright = solid by default), and :func:`load_binary` combines both. Errors
name the file and the problem.

Stored results and their settings. Everything the study stores carries the settings that
made it, and is reused for those settings only. Two policies, by cost: what is derived
(tables, records, the field networks fine-tuned from trained ones) is computed again when its
settings differ (:func:`read_current` for JSON records; the protocol's table parts compare
their rows' settings columns and the image's :func:`image_digest`); the study's trained
networks, hours of training at the paper's scale, are refused with the differing settings
named (:func:`srlib.training.load_networks`), never silently retrained.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from srlib._checks import as_binary, as_dtype, as_volume

__all__ = [
    "atomic_path",
    "binarize_otsu",
    "image_digest",
    "is_hidden",
    "is_temp_name",
    "load_binary",
    "natural_key",
    "read_volume",
    "remove_stale_temp",
    "temp_prefix",
    "read_current",
    "write_json",
    "write_volume",
]

logger = logging.getLogger(__name__)

_TIFF = (".tif", ".tiff")


class _VolumeError(ValueError):
    """A problem with a volume file that already names the file."""


#: Marker between the target's name and the random part of a temporary file's name.
_TMP_MARK = ".srlibtmp"
# ".<target>.srlibtmp<8 random>[<suffix>]": the suffix repeats the target's. Only this exact
# form is ever removed as stale, so a user's hidden files (".env.defaults", ".notes.20240101")
# are never taken for one.
_TEMP_NAME = re.compile(
    r"^\.(?P<target>.+)\.srlibtmp[a-z0-9_]{8}(?P<suffix>(?:\.[^.]+)?)$")


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, brief)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk, where the system supports it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success flush it to disk and rename it.

    Writers write the temporary file; a reader never sees a half-written ``path``, and an
    interruption or error leaves the previous file (if any) intact. An exception removes the
    temporary file; a killed process can leave it behind, under a hidden name that
    :func:`remove_stale_temp` recognises. The written file gets the mode ``0o666`` less the
    umask (0644 under the usual umask 022), like a file written by any other tool, also when
    it replaces a file of another mode.

    Parameters
    ----------
    path : str or path-like
        Final file; its folder is created when missing.

    Yields
    ------
    pathlib.Path
        The temporary file to write (same folder and suffix, hidden name).

    Raises
    ------
    OSError
        If the folder cannot be created or written; the error's ``filename`` is ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path),
                                   suffix=path.suffix)
        os.close(fd)
    except OSError as err:
        raise type(err)(err.errno, f"cannot write {path}: {err.strerror}", str(path)) from err
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_json(path, data, *, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (:func:`atomic_path`); returns the path."""
    import json

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent))
    return path


def read_current(path, settings) -> dict | None:
    """The JSON record at ``path`` if it was stored with ``settings``, else None.

    The one rule by which stored results are reused: a record written as
    ``{..., "settings": settings}`` (:func:`write_json`) is current when its settings equal
    the ones asked for, compared as JSON. A missing or damaged file, or one of other
    settings, is None: compute again. The record is returned without its settings.
    """
    import json

    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    stored = record.pop("settings", None)
    return record if stored == json.loads(json.dumps(settings)) else None


def temp_prefix(path) -> str:
    """Name prefix of the temporary files and folders written for ``path`` (hidden, marked).

    :func:`atomic_path` and the database's array writes name their temporaries
    ``<prefix><8 random characters><suffix>``; :func:`is_temp_name` recognises exactly those.
    """
    return f".{Path(path).name}{_TMP_MARK}"


def is_temp_name(name: str) -> bool:
    """True if ``name`` is that of a temporary file of :func:`atomic_path`."""
    match = _TEMP_NAME.match(name)
    return bool(match) and Path(match["target"]).suffix == match["suffix"]


def remove_stale_temp(folder, *, recursive: bool = False) -> list[Path]:
    """Remove the temporary files that killed writes of :func:`atomic_path` left in a folder.

    Call it when a stage starts, before its own writes: a temporary file of a write still in
    progress (another process writing into the same folder) would be removed too. Only files
    named as :func:`atomic_path` names them (``.<name>.tmpXXXXXXXX<suffix>``, and the
    ``.<name>.XXXXXXXX<suffix>`` of earlier versions) are touched.

    Parameters
    ----------
    folder : str or path-like
        Folder to clean; nothing happens if it does not exist.
    recursive : bool
        Also clean its sub-folders.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*") if recursive else folder.glob(".*")
    removed = []
    for p in sorted(candidates):
        if p.is_file() and is_temp_name(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
    if removed:
        logger.warning("removed %d stale temporary file(s) under %s", len(removed), folder)
    return removed


def image_digest(image) -> str:
    """Content key of a binary image (its shape and bits): what a stored result was made from.

    Parameters
    ----------
    image : array_like
        3D binary image.

    Returns
    -------
    str
        16 hexadecimal digits of a SHA-256 over the shape and the packed bits.
    """
    image = as_binary(image, name="image")
    h = hashlib.sha256(repr(image.shape).encode())
    h.update(np.packbits(image).tobytes())
    return h.hexdigest()[:16]


def is_hidden(path) -> bool:
    """True for a hidden file or folder (name starting with a dot): never read as data."""
    return Path(path).name.startswith(".")


def natural_key(name: str) -> tuple:
    """Sort key ordering digit runs by value: ``s2`` before ``s10``, ``s01`` equal to ``s1``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def natural_sorted(paths, *, what: str = "files") -> list[Path]:
    """Paths in natural order of their names; raise if two names share one position.

    Parameters
    ----------
    paths : iterable of path
        Files to order.
    what : str
        What they are, for the error message.

    Returns
    -------
    list of pathlib.Path
        The ordered paths.
    """
    paths = [Path(p) for p in paths]
    keyed = sorted(paths, key=lambda p: (natural_key(p.name), p.name))
    for a, b in zip(keyed, keyed[1:], strict=False):
        if natural_key(a.name) == natural_key(b.name):
            raise ValueError(f"the order of {what} {a.name!r} and {b.name!r} in {a.parent} is "
                             "ambiguous (same numbers, written differently); rename them")
    return keyed


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
    if dtype is not None:
        dtype = as_dtype(dtype)
    if shape is not None:
        shape = _check_shape_arg(shape)
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
            vol = _read_tiff(path)
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


def _check_shape_arg(shape) -> tuple[int, ...]:
    from srlib._checks import positive_int

    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"shape must be 3 positive integers (nz, ny, nx), got {shape!r}")
    return tuple(positive_int(n, "shape") for n in shape)


def _read_tiff(path: Path) -> np.ndarray:
    """One TIFF file as an array; colour (RGB) images are refused, not read as a volume."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        if "S" in series.axes:
            raise _VolumeError(
                f"{path} is a colour image (axes {series.axes!r}, shape {series.shape}); "
                "srlib reads grayscale or binary volumes: convert it to grayscale first"
            )
        return series.asarray()


def _read_tiff_folder(folder: Path) -> np.ndarray:
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in _TIFF and not is_hidden(p) and p.is_file()]
    if not files:
        raise _VolumeError(f"folder {folder} holds no .tif/.tiff slices")
    files = natural_sorted(files, what="slices")
    slices = [_read_tiff(p) for p in files]
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
    if vol.dtype != bool and vol.dtype.kind not in "iuf":
        raise ValueError(f"image must be a bool, integer or float volume to write {path}, "
                         f"got dtype {vol.dtype}")
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
    if vol.dtype.kind not in "iuf":
        raise ValueError("Otsu binarisation needs a numeric grayscale image, "
                         f"got dtype {vol.dtype}")
    if vol.dtype.kind == "f" and not np.all(np.isfinite(vol)):
        bad = int(np.count_nonzero(~np.isfinite(vol)))
        raise ValueError(f"the grayscale image holds {bad} NaN or infinite value(s); "
                         "replace them before binarisation")
    if np.unique(vol).size < 2:
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
    try:
        return binarize_otsu(vol, solid=solid)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
