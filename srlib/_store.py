"""Chunked, compressed arrays on disk (zarr v3), each written atomically and checksummed.

Every volume of the database is one zarr array in its own folder. Arrays are cut into cubes
of :data:`CHUNK`³ voxels (the unit of reading and of compression) grouped into shards of up
to :data:`SHARD`³ voxels (the unit of files), compressed with Blosc/zstd: bit-shuffled for
binary images, byte-shuffled for float32 channels.

Why these sizes. A training cutout of the paper (24³ LR voxels, 48³-192³ HR) touches at most
2-7 chunks of 32³ per axis, so it reads at most about 1.6-8× its own size, and a chunk
decompresses in microseconds. Chunks alone would make an 800³ image 15 625 files (about a
million for the paper's database); shards of 256³ make it 64 files, with the chunks inside
still read one by one (the shard's index locates them).

Atomicity. :func:`write_array` writes into a hidden temporary folder beside the target
(named like :func:`srlib.io.atomic_path`'s files), stores a BLAKE2 digest of the content in
the array's attributes last, and renames the folder into place: a reader sees the whole
array or none, and :func:`array_ok` detects a chunk that was damaged or removed afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from srlib.io import is_temp_name, temp_prefix

logger = logging.getLogger(__name__)

#: Edge of a chunk (voxels): the unit read and decompressed.
CHUNK = 32
#: Edge of a shard (voxels, a multiple of CHUNK): the unit stored as one file.
SHARD = 256
_DIGEST = "srlib_blake2b"


def _codecs(dtype: np.dtype):
    from zarr.codecs import BloscCodec

    shuffle = "bitshuffle" if dtype == np.bool_ else "shuffle"
    return BloscCodec(cname="zstd", clevel=5, shuffle=shuffle)


def _layout(shape: tuple) -> tuple[tuple, tuple]:
    """Chunk and shard shapes: cubes over the last three axes, whole along leading ones."""
    lead, space = shape[:-3], shape[-3:]
    chunks = tuple(min(CHUNK, n) for n in space)
    shards = tuple(min(SHARD, -(-n // c) * c) for n, c in zip(space, chunks, strict=True))
    return lead + chunks, lead + shards


def _slabs(shape: tuple):
    """Region tuples covering an array in slabs of one shard along the first spatial axis."""
    lead, nz = len(shape) - 3, shape[-3]
    for z0 in range(0, nz, SHARD):
        yield (slice(None),) * lead + (slice(z0, min(z0 + SHARD, nz)),)


def _digest(slabs) -> str:
    h = hashlib.blake2b(digest_size=16)
    for slab in slabs:
        h.update(np.ascontiguousarray(slab).tobytes())
    return h.hexdigest()


def _store(path: Path):
    from zarr.storage import LocalStore

    return LocalStore(str(path))


def write_array(path, array: np.ndarray) -> Path:
    """Write ``array`` as a zarr array in folder ``path``, atomically (see the module doc).

    Parameters
    ----------
    path : path
        Target folder; an existing array there is replaced.
    array : numpy.ndarray
        At least 3D; chunked over its last three axes.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import zarr

    path = Path(path)
    array = np.asarray(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=temp_prefix(path)))
    try:
        chunks, shards = _layout(array.shape)
        arr = zarr.create_array(_store(tmp), shape=array.shape, dtype=array.dtype,
                                chunks=chunks, shards=shards,
                                compressors=_codecs(array.dtype), fill_value=0,
                                overwrite=True)
        arr[...] = array
        arr.attrs[_DIGEST] = _digest(array[r] for r in _slabs(array.shape))  # written last
        if path.exists():
            shutil.rmtree(path)
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process wrote it meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def open_array(path):
    """The zarr array in folder ``path``, read-only (lazy: nothing is read but its metadata).

    Raises
    ------
    ValueError
        If there is none, or its metadata is unreadable (names the folder).
    """
    import zarr

    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise ValueError(f"{path} is missing")
    try:
        return zarr.open_array(_store(path), mode="r")
    except Exception as err:  # zarr raises many types for damaged metadata
        raise ValueError(f"{path}: unreadable array ({type(err).__name__}: {err})") from err


def read_array(path, region=None, *, check: bool = True) -> np.ndarray:
    """Read an array, or a region of it, without reading the chunks outside the region.

    Parameters
    ----------
    path : path
        Array folder.
    region : tuple of slice, optional
        Slices of the last three axes (leading axes are read whole); default everything.
    check : bool
        For a whole read, compare the content with the digest stored at write time.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        If the array is missing, damaged, or (whole reads) differs from its digest.
    """
    arr = open_array(path)
    try:
        if region is None:
            data = arr[...]
        else:
            data = arr[(slice(None),) * (arr.ndim - 3) + tuple(region)]
    except Exception as err:  # codecs raise many types for damaged chunks
        raise ValueError(f"{path}: damaged chunk ({type(err).__name__}: {err})") from err
    if region is None and check and arr.attrs.get(_DIGEST) != _digest(
            data[r] for r in _slabs(data.shape)):
        raise ValueError(f"{path}: content differs from its digest (a damaged or missing "
                         "chunk)")
    return data


def array_ok(path, shape: tuple, dtype) -> bool:
    """True if folder ``path`` holds a complete array of ``shape`` and ``dtype``.

    Reads it slab by slab (one shard thick), so memory stays bounded for any size, and
    compares the content with its stored digest.
    """
    try:
        arr = open_array(path)
        if arr.shape != tuple(shape) or arr.dtype != np.dtype(dtype):
            return False
        return arr.attrs.get(_DIGEST) == _digest(arr[r] for r in _slabs(arr.shape))
    except Exception:  # any failure to read means: recompute it
        return False


def remove_stale_arrays(folder) -> list[Path]:
    """Remove temporary array folders left by killed writes, in ``folder`` and one level down.

    Call it when a stage starts, before its own writes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for pattern in (".*", "*/.*"):
        for p in sorted(folder.glob(pattern)):
            if p.is_dir() and is_temp_name(p.name):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    if removed:
        logger.warning("removed %d stale temporary array(s) under %s", len(removed), folder)
    return removed


def ensure_groups(root: Path, names) -> None:
    """The zarr group metadata of the database root and its scenario folders."""
    import zarr
    from zarr.storage import LocalStore

    store = LocalStore(str(root))
    if not (root / "zarr.json").exists():
        zarr.open_group(store, mode="a")
    for name in names:
        if not (root / name / "zarr.json").exists():
            zarr.open_group(store, path=name, mode="a")
