"""Data of the study: real tomographic samples and the database of model realizations.

Contract. :func:`public_samples` returns the real, segmented micro-CT volumes that ship in the
porespy 3.2.0 source distribution on PyPI (fetched from the package index with pooch, SHA-256
verified, cached under :func:`cache_dir`), each as a :class:`Sample` with a ``bool`` image
(True = solid); :func:`folder_samples` reads a user's own folder of volumes instead (hidden
files are ignored). The paper's FIB-SEM data is
not public; these stand in as the "tomographic set" (section 2.1.1).

:func:`build_database` creates, for a :class:`~srlib.config.Profile`, one scenario per sample
with model parameters from :func:`srlib.stochastic.calibrate`, and for each scenario the
profile's realizations (train/validation/test roles as in section 2.2.2) with their
low-resolution versions for every α (Eq. 3), one file per image, written atomically: an
interrupted run resumes where it stopped, to the same files, and a stored file that cannot be
read or has the wrong shape is recomputed. :func:`build_diffusion_channels` adds the diffusion
channels (Eqs. 7-8) of every low-resolution image beside them, recording the mesh connectivity
and transport axis they were computed with (``channels.json``): channels of other settings are
never reused. :class:`Database` reads it back.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from srlib import stochastic
from srlib._checks import as_binary, check_alpha, check_axis, check_choice, positive_int
from srlib.config import Profile, results_dir
from srlib.io import atomic_path, is_hidden, load_binary, natural_sorted, remove_stale_temp
from srlib.resample import downsample

logger = logging.getLogger(__name__)

__all__ = [
    "Database",
    "DownloadError",
    "Sample",
    "build_database",
    "build_diffusion_channels",
    "cache_dir",
    "crop_center",
    "folder_samples",
    "load_bits",
    "public_samples",
    "save_bits",
]

PORESPY_VERSION = "3.2.0"
PORESPY_SDIST_SHA256 = "c61b1ce119e6cd4881164cbd9981196d3991e1ac8adc067c6ae0aca2342ee3f9"
_SDIST = f"porespy-{PORESPY_VERSION}.tar.gz"
#: Where the package index serves the archive (PyPI's address of this exact file).
PORESPY_SDIST_URL = ("https://files.pythonhosted.org/packages/4e/8b/"
                     "17dfdcd0bcec5436f6164b6cf0e18d053b7a90c39961505a471d0ea1ce35/" + _SDIST)
_CONNECTIVITIES = ("face", "vertex")


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


def cache_dir() -> Path:
    """Folder caching downloaded data: ``$SRLIB_DATA``, else ``~/.cache/srlib`` (XDG)."""
    if os.environ.get("SRLIB_DATA"):
        return Path(os.environ["SRLIB_DATA"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "srlib"


def _porespy_sdist(cache: Path, processor=None):
    """Fetch (or find in ``cache``) the porespy sdist with pooch, verified by its SHA-256."""
    import pooch

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
    import pooch

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
    return [
        Sample(name=p.stem, image=load_binary(p, solid=solid), voxel_size_um=None,
               source=f"user volume {p}")
        for p in entries
    ]


def crop_center(image, size: int | None) -> np.ndarray:
    """Centred cubic crop of edge ``size`` (the whole image when None)."""
    img = np.asarray(image)
    if size is None:
        return img
    if any(n < size for n in img.shape):
        raise ValueError(f"cannot crop {size}³ from an image of shape {img.shape}")
    starts = [(n - size) // 2 for n in img.shape]
    return np.ascontiguousarray(img[tuple(slice(s, s + size) for s in starts)])


# ----------------------------------------------------------------------------- binary files


def save_bits(path, image) -> Path:
    """Save a binary 3D image bit-packed (8× smaller than bool), atomically.

    Parameters
    ----------
    path : path
        Target ``.npz`` file.
    image : array_like
        Binary image.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    img = as_binary(image)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, bits=np.packbits(img, axis=None), shape=np.array(img.shape))
    return path


def load_bits(path) -> np.ndarray:
    """Load a binary image written by :func:`save_bits`.

    Raises
    ------
    ValueError
        If the file is missing, truncated or not written by :func:`save_bits` (names the file).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            shape = tuple(int(n) for n in data["shape"])
            bits = data["bits"]
            n = int(np.prod(shape))
            if len(shape) != 3 or bits.size != (n + 7) // 8:
                raise ValueError(f"holds {bits.size} bytes for shape {shape}")
            return np.unpackbits(bits, count=n).reshape(shape).astype(bool)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read binary image {path}: {err or type(err).__name__}; "
                         "delete it and rebuild") from err


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


# ----------------------------------------------------------------------------- database


@dataclass(frozen=True)
class Scenario:
    """A scenario: a tomographic sample and the model calibrated on it."""

    name: str
    params: stochastic.ModelParams
    measured_solid_fraction: float
    voxel_size_um: float | None

    def as_dict(self) -> dict:
        """Plain-dict form for JSON."""
        return {"name": self.name, "nu": self.params.nu, "gamma": self.params.gamma,
                "measured_solid_fraction": self.measured_solid_fraction,
                "model_solid_fraction": self.params.solid_fraction,
                "voxel_size_um": self.voxel_size_um}


class Database:
    """Read access to a profile's database under ``results/<profile>/database``.

    Layout: ``scenarios.json``; per scenario ``<name>/rNN_hr.npz`` (bit-packed HR image),
    ``<name>/rNN_lr{α}.npz`` (its Eq. 3 down-sampling) and ``<name>/rNN_diffu{α}.npy``
    (float32 diffusion channels of the LR image, ``[pore, solid]``). ``NN`` counts from 1
    (realization ``i`` of the paper).

    Parameters
    ----------
    root : path
        The database folder.
    """

    def __init__(self, root):
        self.root = Path(root)
        meta = self.root / "scenarios.json"
        if not meta.exists():
            raise ValueError(f"{self.root} holds no database (scenarios.json missing); "
                             "run srlib.datasets.build_database first")
        info = _read_json(meta)
        try:
            self.profile = info["profile"]["name"]
            self.roles = tuple(info["roles"])
            self.alphas = tuple(info["alphas"])
            self.scenarios = [
                Scenario(name=s["name"], params=stochastic.ModelParams(s["nu"], s["gamma"]),
                         measured_solid_fraction=s["measured_solid_fraction"],
                         voxel_size_um=s["voxel_size_um"])
                for s in info["scenarios"]
            ]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{meta} is not a database description ({type(err).__name__}: "
                             f"{err}); delete the database folder and rebuild it") from err

    @property
    def scenario_names(self) -> list[str]:
        """Names of the scenarios, in order."""
        return [s.name for s in self.scenarios]

    def path(self, scenario: str, i: int, kind: str) -> Path:
        """Path of one file; ``kind`` is 'hr', 'lr2', 'lr4', 'lr8', 'diffu2', ..."""
        suffix = ".npy" if kind.startswith("diffu") else ".npz"
        return self.root / scenario / f"r{i:02d}_{kind}{suffix}"

    def indices(self, role: str | None = None) -> list[int]:
        """Realization numbers (1-based) of a role ('train', 'val', 'test'), or all."""
        return [i + 1 for i, r in enumerate(self.roles) if role is None or r == role]

    def hr(self, scenario: str, i: int) -> np.ndarray:
        """High-resolution realization ``i`` of a scenario."""
        return load_bits(self.path(scenario, i, "hr"))

    def lr(self, scenario: str, i: int, alpha: int) -> np.ndarray:
        """Its low-resolution version for ``alpha`` (Eq. 3)."""
        return load_bits(self.path(scenario, i, f"lr{check_alpha(alpha)}"))

    @property
    def channels_key(self) -> dict | None:
        """Settings of the stored diffusion channels, ``{"connectivity", "axis"}``, or None."""
        path = self.root / "channels.json"
        return _read_json(path) if path.exists() else None

    def channels(self, scenario: str, i: int, alpha: int, *, connectivity: str | None = None,
                 axis: int | None = None) -> np.ndarray:
        """Diffusion channels ``(2, *lr.shape)`` of the LR image (Eqs. 7-8).

        Parameters
        ----------
        scenario : str
            Scenario name.
        i : int
            Realization number (1-based).
        alpha : int
            Scaling factor.
        connectivity : {"face", "vertex"}, optional
            When given, the stored channels must have been computed with it (as recorded by
            :func:`build_diffusion_channels`); callers that know their settings pass them.
        axis : int, optional
            When given, the stored channels must have been computed along it.

        Returns
        -------
        numpy.ndarray
            ``float32`` array ``[pore, solid]``.

        Raises
        ------
        ValueError
            If the channels are missing, unreadable, or were computed with other settings.
        """
        path = self.path(scenario, i, f"diffu{check_alpha(alpha)}")
        if not path.exists():
            raise ValueError(f"{path} is missing; run srlib.datasets.build_diffusion_channels")
        key = self.channels_key or {}  # {}: settings not recorded (files of another tool)
        wanted = {"connectivity": connectivity, "axis": axis}
        other = {k: v for k, v in wanted.items() if v is not None and key.get(k) != v}
        if other:
            raise ValueError(f"the channels in {self.root} were computed with "
                             f"{key or 'unrecorded settings'}, not {other}; run "
                             f"build_diffusion_channels(db, **{other})")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"cannot read diffusion channels {path}: {err}; delete it and "
                             "run build_diffusion_channels") from err

    def _is_complete(self, scenario: str, i: int, hr_size: int) -> bool:
        """True if realization ``i``'s HR and LR files are readable and of the right shapes."""
        try:
            if self.hr(scenario, i).shape != (hr_size,) * 3:
                return False
            return all(self.lr(scenario, i, a).shape == (hr_size // a,) * 3
                       for a in self.alphas)
        except ValueError:
            return False


def _read_json(path: Path) -> dict:
    """A JSON file written by this module; a clear error naming it when it is corrupt."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}); delete it and rebuild") from err


def _channels_ok(path: Path, shape: tuple) -> bool:
    """True if a stored channels file is readable (header and length) and of ``shape``."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return arr.shape == shape and arr.dtype == np.float32


def _realization_task(path_hr: str, paths_lr: dict, shape: int, nu: float, gamma: float,
                      seed_entropy: int, spawn_key: tuple) -> str:
    seed = np.random.SeedSequence(entropy=seed_entropy, spawn_key=spawn_key)
    hr = stochastic.sample(shape, stochastic.ModelParams(nu, gamma), seed=seed)
    for alpha, path in paths_lr.items():
        save_bits(path, downsample(hr, alpha))
    save_bits(path_hr, hr)  # written last: its presence marks the realization as complete
    return path_hr


def _database_key(profile: Profile) -> dict:
    """The profile fields that determine the database's content, JSON-normalised."""
    keys = ("name", "hr_size", "n_realizations", "split", "alphas", "seed")
    return json.loads(json.dumps({k: getattr(profile, k) for k in keys}))


def calibrate_scenarios(samples) -> list[Scenario]:
    """One scenario per sample, with parameters from :func:`srlib.stochastic.calibrate`."""
    return [
        Scenario(name=s.name, params=stochastic.calibrate(s.image),
                 measured_solid_fraction=s.solid_fraction, voxel_size_um=s.voxel_size_um)
        for s in samples
    ]


def build_database(profile: Profile, *, samples=None, root=None, workers: int | None = None,
                   progress: bool = True) -> Database:
    """Create (or complete) the database of model realizations for a profile.

    Parameters
    ----------
    profile : Profile
        Sizes, counts and seed.
    samples : list of Sample, optional
        Tomographic samples defining the scenarios; default :func:`public_samples` restricted to
        ``profile.samples``.
    root : path, optional
        Database folder; default ``results/<profile>/database``.
    workers : int, optional
        Parallel processes for the realizations; default 2 for images up to 256³, else 1
        (large FFTs are memory-bound and use all cores themselves).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Database
        The database, complete.
    """
    if not isinstance(profile, Profile):
        raise ValueError(f"profile must be a srlib.config.Profile, got {profile!r}")
    if workers is not None:
        workers = positive_int(workers, "workers")
    root = Path(root) if root is not None else results_dir(profile) / "database"
    if samples is None:
        samples = public_samples(profile.samples)
    remove_stale_temp(root, recursive=True)
    meta = root / "scenarios.json"
    if meta.exists():
        info = _read_json(meta)
        names = [s["name"] for s in info["scenarios"]]
        if names != [s.name for s in samples] or info["profile"] != _database_key(profile):
            raise ValueError(f"{root} holds a database of another profile or sample set; "
                             "use another root or delete it")
        scenarios = Database(root).scenarios
    else:
        scenarios = calibrate_scenarios(samples)
        root.mkdir(parents=True, exist_ok=True)
        info = {"profile": _database_key(profile), "roles": list(profile.roles),
                "alphas": list(profile.alphas), "scenarios": [s.as_dict() for s in scenarios]}
        with atomic_path(meta) as tmp:
            tmp.write_text(json.dumps(info, indent=2))
    db = Database(root)
    tasks = []
    for s_index, scen in enumerate(scenarios):
        for i in range(1, profile.n_realizations + 1):
            path_hr = db.path(scen.name, i, "hr")
            if path_hr.exists():
                if db._is_complete(scen.name, i, profile.hr_size):
                    continue
                logger.warning("realization %s/%d is unreadable or of another shape; "
                               "recomputing it", scen.name, i)
            paths_lr = {a: str(db.path(scen.name, i, f"lr{a}")) for a in profile.alphas}
            tasks.append((str(path_hr), paths_lr, profile.hr_size, scen.params.nu,
                          scen.params.gamma, profile.seed, (s_index, i)))
    if workers is None:
        workers = 2 if profile.hr_size <= 256 else 1
    bar = tqdm(total=len(tasks), desc="realizations", disable=not progress or not tasks)
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for fut in as_completed([pool.submit(_realization_task, *t) for t in tasks]):
                fut.result()
                bar.update()
    else:
        for t in tasks:
            _realization_task(*t)
            bar.update()
    bar.close()
    return db


def build_diffusion_channels(db: Database, *, connectivity: str = "face", axis: int = 0,
                             progress: bool = True) -> None:
    """Compute and store the diffusion channels of every low-resolution image of a database.

    The settings are recorded in ``channels.json``. Stored channels of the same settings that
    are readable and of the right shape are kept (resumable); channels of other settings (or
    of unrecorded settings, from earlier versions) are deleted and recomputed. Each file is
    written atomically.

    Parameters
    ----------
    db : Database
        The database.
    connectivity : {"face", "vertex"}
        FEM mesh convention, see :mod:`srlib.transport`.
    axis : int
        Transport axis of the channels.
    progress : bool
        Show a progress bar.
    """
    from srlib.transport import diffusion_channels

    check_choice(connectivity, _CONNECTIVITIES, "connectivity")
    key = {"connectivity": connectivity, "axis": check_axis(axis)}
    remove_stale_temp(db.root, recursive=True)
    paths = {(s, i, a): db.path(s, i, f"diffu{a}")
             for s in db.scenario_names for i in db.indices() for a in db.alphas}
    if db.channels_key != key:
        stored = [p for p in paths.values() if p.exists()]
        if stored:
            logger.warning("diffusion channels in %s were computed with %s; recomputing them "
                           "with %s", db.root, db.channels_key, key)
        for p in stored:
            p.unlink()
        with atomic_path(db.root / "channels.json") as tmp:
            tmp.write_text(json.dumps(key))
    todo = []
    for (s, i, a), path in paths.items():
        lr_shape = db.lr(s, i, a).shape
        if not (path.exists() and _channels_ok(path, (2, *lr_shape))):
            todo.append((s, i, a))
    for s, i, a in tqdm(todo, desc="diffusion channels", disable=not progress or not todo):
        channels = diffusion_channels(db.lr(s, i, a), axis=key["axis"],
                                      connectivity=connectivity)
        _save_array(db.path(s, i, f"diffu{a}"), channels.astype(np.float32))
