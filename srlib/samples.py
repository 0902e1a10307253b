"""Real tomographic samples: the public micro-CT volumes, or the user's own folder of volumes.

Contract. :func:`public_samples` returns the real, segmented micro-CT volumes that ship in the
porespy 3.2.0 source distribution on PyPI (fetched from the package index with pooch, SHA-256
verified, cached under :func:`cache_dir`), each as a :class:`Sample` with a ``bool`` image
(True = solid); :func:`folder_samples` reads a user's own folder of volumes instead (hidden
files are ignored). The paper's FIB-SEM data is not public; these stand in as the
"tomographic set" (section 2.1.1). :mod:`srlib.datasets` re-exports these names.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srlib._checks import check_two_phases
from srlib.io import is_hidden, load_binary, natural_sorted

logger = logging.getLogger(__name__)

__all__ = [
    "PUBLIC_NAMES",
    "PUBLIC_SHAPES",
    "DownloadError",
    "Sample",
    "cache_dir",
    "crop_center",
    "folder_samples",
    "load_samples",
    "public_samples",
    "tomographic_crop",
]

PORESPY_VERSION = "3.2.0"
PORESPY_SDIST_SHA256 = "c61b1ce119e6cd4881164cbd9981196d3991e1ac8adc067c6ae0aca2342ee3f9"
_SDIST = f"porespy-{PORESPY_VERSION}.tar.gz"
#: Where the package index serves the archive (PyPI's address of this exact file).
PORESPY_SDIST_URL = ("https://files.pythonhosted.org/packages/4e/8b/"
                     "17dfdcd0bcec5436f6164b6cf0e18d053b7a90c39961505a471d0ea1ce35/" + _SDIST)


class DownloadError(OSError):
    """The public data could not be fetched (offline, or a file that fails its checksum)."""


@dataclass(frozen=True)
class Sample:
    """A real (tomographic) binary volume.

    Attributes
    ----------
    name : str
        Short name, used as scenario name.
    image : numpy.ndarray
        ``bool`` volume, True = solid.
    voxel_size_um : float or None
        Edge length of a voxel in micrometres, when known.
    source : str
        Where the data comes from and how it was segmented.
    """

    name: str
    image: np.ndarray = field(repr=False)
    voxel_size_um: float | None
    source: str

    @property
    def solid_fraction(self) -> float:
        """Fraction of solid voxels."""
        return float(np.count_nonzero(self.image)) / self.image.size


# name -> (file inside test/fixtures, how to decode it, voxel size in µm, source text)
_PUBLIC = {
    "berea": (
        "test_berea.zip",
        5.345,
        "Berea sandstone, micro-CT, segmented (200³ centre crop, 0 = pore, 255 = solid); "
        "porespy 3.2.0 test fixture Berea_center_cropped_200_200.raw (MIT).",
    ),
    "bentheimer": (
        "bentheimer.npz",
        None,
        "Bentheimer sandstone, micro-CT, segmented (500³, stored True = pore); porespy 3.2.0 "
        "test fixture bentheimer.npz (MIT). Voxel size not recorded with the fixture.",
    ),
    "leopard": (
        "image_Leopard_slice100.npy",
        2.25,
        "Leopard sandstone, micro-CT, segmented (100³, 1 = pore); porespy 3.2.0 test fixture "
        "image_Leopard_slice100.npy (MIT), from the '11 Sandstones' data set.",
    ),
}
PUBLIC_NAMES = tuple(_PUBLIC)
#: Shape of each public sample (tests check them against the decoded fixtures), for planning
#: a study without downloading the samples.
PUBLIC_SHAPES = {"berea": (200, 200, 200), "bentheimer": (500, 500, 500),
                 "leopard": (100, 100, 100)}


def cache_dir() -> Path:
    """Folder caching downloaded data: ``$SRLIB_DATA``, else ``~/.cache/srlib`` (XDG)."""
    if os.environ.get("SRLIB_DATA"):
        return Path(os.environ["SRLIB_DATA"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "srlib"


def _pooch():
    """pooch, imported without the warning of its tqdm.auto import in a kernel.

    Without ipywidgets tqdm.auto warns once per kernel, a library warning on every page that
    loads the samples; pooch shows no progress bar here.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import pooch
    return pooch


def _porespy_sdist(cache: Path, processor=None):
    """Fetch (or find in ``cache``) the porespy sdist with pooch, verified by its SHA-256."""
    pooch = _pooch()

    cache.mkdir(parents=True, exist_ok=True)
    try:
        return pooch.retrieve(PORESPY_SDIST_URL, known_hash=f"sha256:{PORESPY_SDIST_SHA256}",
                              fname=_SDIST, path=cache, processor=processor)
    except Exception as err:  # requests, pooch and the file system raise many types
        raise DownloadError(
            f"could not fetch {_SDIST} into {cache} ({type(err).__name__}: {err}). Offline, "
            f"download it on another machine (`pip download --no-deps --no-binary :all: "
            f"porespy=={PORESPY_VERSION}`, or {PORESPY_SDIST_URL}) and copy it to "
            f"{cache / _SDIST}, or set SRLIB_DATA to a folder holding it; its SHA-256 must be "
            f"{PORESPY_SDIST_SHA256}"
        ) from err


def _fixture(name: str, cache: Path) -> Path:
    """Path of one porespy test fixture, extracting it from the sdist when needed.

    The fixtures live in ``<cache>/porespy-fixtures/<name>`` (the layout of earlier versions,
    so a filled cache stays valid); each is extracted by pooch into a hidden folder and moved
    into place, so an interrupted extraction never leaves a partial fixture.
    """
    pooch = _pooch()

    out = cache / "porespy-fixtures" / name
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(".porespy-extract-*"):  # left by a killed extraction
        shutil.rmtree(stale, ignore_errors=True)
    member = f"porespy-{PORESPY_VERSION}/test/fixtures/{name}"
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".porespy-extract-"))
    try:
        files = _porespy_sdist(cache, pooch.Untar(members=[member], extract_dir=str(tmp)))
        if not files:
            raise DownloadError(f"{member} is missing from {cache / _SDIST}")
        os.replace(files[0], out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _decode(name: str, path: Path) -> np.ndarray:
    if name == "berea":
        with zipfile.ZipFile(path) as zf:
            raw = zf.read("Berea_center_cropped_200_200.raw")
        return np.frombuffer(raw, dtype=np.uint8).reshape(200, 200, 200) != 0
    if name == "bentheimer":
        with np.load(path) as data:
            return ~data["arr_0"].astype(bool)
    if name == "leopard":
        return np.load(path) != 1
    raise ValueError(f"unknown public sample {name!r}")


def public_samples(names=None, *, cache: str | os.PathLike | None = None) -> list[Sample]:
    """The public segmented micro-CT samples (the tomographic set of this project).

    On first use the porespy 3.2.0 source distribution (66 MB) is fetched from the package
    index with pooch, its SHA-256 checked, and the three test fixtures extracted into the cache.
    Offline, put the archive into the cache by hand (the error says where).

    Parameters
    ----------
    names : sequence of str, optional
        Subset of ``("berea", "bentheimer", "leopard")``; default all, in that order.
    cache : path, optional
        Cache folder; default :func:`cache_dir`.

    Returns
    -------
    list of Sample
        The samples, images ``bool`` with True = solid.

    Raises
    ------
    DownloadError
        If the archive is not cached and cannot be fetched, or fails its checksum.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    names = PUBLIC_NAMES if names is None else tuple(names)
    unknown = [n for n in names if n not in _PUBLIC]
    if unknown:
        raise ValueError(f"unknown public sample(s) {unknown}; choose from {PUBLIC_NAMES}")
    samples = []
    for name in names:
        filename, voxel, source = _PUBLIC[name]
        image = _decode(name, _fixture(filename, cache))
        samples.append(Sample(name=name, image=np.ascontiguousarray(image), voxel_size_um=voxel,
                              source=source))
    return samples


def folder_samples(folder, *, solid: str = "bright") -> list[Sample]:
    """Read every volume in a folder as a sample (your own tomographic data).

    Files ending in ``.tif``, ``.tiff``, ``.npy`` or ``.npz`` and sub-folders of TIFF slices are
    read (hidden ones, whose names start with a dot, are ignored) with
    :func:`srlib.io.load_binary` (grayscale data is Otsu-binarised, ``solid`` side
    bright or dark; 0/1 data is taken as 1 = solid).

    Parameters
    ----------
    folder : path
        Folder of volumes.
    solid : {"bright", "dark"}
        Solid side for grayscale data.

    Returns
    -------
    list of Sample
        One sample per volume, named after the file stem, in natural order of the names.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"sample folder {folder} does not exist or is not a folder")
    entries = [
        p for p in folder.iterdir()
        if not is_hidden(p) and (p.suffix.lower() in (".tif", ".tiff", ".npy", ".npz")
                                 or p.is_dir())
    ]
    if not entries:
        raise ValueError(f"folder {folder} holds no .tif/.tiff/.npy/.npz volumes")
    entries = natural_sorted(entries, what="volumes")
    stems = [p.stem for p in entries]
    twins = sorted({n for n in stems if stems.count(n) > 1})
    if twins:
        raise ValueError(f"folder {folder} holds several volumes named {twins} (different "
                         "suffixes); scenario names must be unique")
    samples = []
    for p in entries:
        try:
            image = load_binary(p, solid=solid)
            check_two_phases(image, name=f"volume {p}")
        except ValueError as err:
            raise ValueError(str(err) if str(p) in str(err) else f"{p}: {err}") from err
        except (IndexError, KeyError, TypeError, OSError) as err:  # a reader's own failure
            raise ValueError(f"{p}: not a readable volume ({type(err).__name__}: {err})") \
                from err
        samples.append(Sample(name=p.stem, image=image, voxel_size_um=None,
                              source=f"user volume {p}"))
    return samples


def load_samples(profile, folder=None) -> list[Sample]:
    """The tomographic samples of a study: the public ones the profile names, or a folder's.

    Parameters
    ----------
    profile : srlib.config.Profile
        Its ``samples`` select the public samples (None: all of them).
    folder : path, optional
        A folder of the user's own segmented volumes (:func:`folder_samples`), used instead.
    """
    return public_samples(profile.samples) if folder is None else folder_samples(folder)


def tomographic_crop(image, profile) -> np.ndarray:
    """The centred crop of a tomographic sample that a profile evaluates (section 3).

    Its edge is :meth:`srlib.config.Profile.tomo_edge`: the profile's ``tomo_size``, or the
    largest edge divisible by ``2 * max(alphas)`` that fits the sample.
    """
    return crop_center(image, profile.tomo_edge(np.shape(image)))


def crop_center(image, size: int | None) -> np.ndarray:
    """Centred cubic crop of edge ``size`` (the whole image when None)."""
    img = np.asarray(image)
    if size is None:
        return img
    if any(n < size for n in img.shape):
        raise ValueError(f"cannot crop {size}³ from an image of shape {img.shape}")
    starts = [(n - size) // 2 for n in img.shape]
    return np.ascontiguousarray(img[tuple(slice(s, s + size) for s in starts)])
