"""Data of the study: real tomographic samples and the database of model realizations.

Contract. :func:`public_samples` returns the real, segmented micro-CT volumes that ship in the
porespy 3.2.0 source distribution on PyPI (obtained with ``pip download``, SHA-256 verified,
cached under :func:`cache_dir`), each as a :class:`Sample` with a ``bool`` image (True = solid);
:func:`folder_samples` reads a user's own folder of volumes instead. The paper's FIB-SEM data is
not public; these stand in as the "tomographic set" (section 2.1.1).

:func:`build_database` creates, for a :class:`~srlib.config.Profile`, one scenario per sample
with model parameters from :func:`srlib.stochastic.calibrate`, and for each scenario the
profile's realizations (train/validation/test roles as in section 2.2.2) with their
low-resolution versions for every α (Eq. 3), one file per image, written atomically: an
interrupted run resumes where it stopped. :func:`build_diffusion_channels` adds the diffusion
channels (Eqs. 7-8) of every low-resolution image beside them. :class:`Database` reads it back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from srlib import stochastic
from srlib._checks import as_binary, check_alpha
from srlib.config import Profile, results_dir
from srlib.io import atomic_path, load_binary
from srlib.resample import downsample

logger = logging.getLogger(__name__)

__all__ = [
    "Database",
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _porespy_sdist(cache: Path) -> Path:
    """Path to the verified porespy sdist, downloading it with pip when missing."""
    target = cache / _SDIST
    if target.exists() and _sha256(target) == PORESPY_SDIST_SHA256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"porespy=={PORESPY_VERSION}", "-d", tmp, "--quiet"]
        logger.info("downloading %s with pip", _SDIST)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / _SDIST
        if proc.returncode != 0 or not got.exists():
            raise RuntimeError(
                f"could not download the porespy {PORESPY_VERSION} source distribution with "
                f"pip (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
            )
        digest = _sha256(got)
        if digest != PORESPY_SDIST_SHA256:
            raise RuntimeError(
                f"{_SDIST} has SHA-256 {digest}, expected {PORESPY_SDIST_SHA256}; refusing it"
            )
        os.replace(got, target)
    return target


def _fixture(name: str, cache: Path) -> Path:
    """Path of one extracted porespy test fixture, extracting it when needed."""
    out = cache / "porespy-fixtures" / name
    if out.exists():
        return out
    sdist = _porespy_sdist(cache)
    out.parent.mkdir(parents=True, exist_ok=True)
    member = f"porespy-{PORESPY_VERSION}/test/fixtures/{name}"
    with tarfile.open(sdist, "r:gz") as tar:
        src = tar.extractfile(member)
        if src is None:
            raise RuntimeError(f"{member} is missing from {sdist}")
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            shutil.copyfileobj(src, fh)
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

    On first use the porespy 3.2.0 source distribution (66 MB) is downloaded with pip, its
    SHA-256 checked, and the three test fixtures extracted into the cache.

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
    read with :func:`srlib.io.load_binary` (grayscale data is Otsu-binarised, ``solid`` side
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
        One sample per volume, named after the file stem, sorted by name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"sample folder {folder} does not exist or is not a folder")
    entries = sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in (".tif", ".tiff", ".npy", ".npz") or p.is_dir()
    )
    if not entries:
        raise ValueError(f"folder {folder} holds no .tif/.tiff/.npy/.npz volumes")
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
    """Load a binary image written by :func:`save_bits`."""
    with np.load(path) as data:
        shape = tuple(int(n) for n in data["shape"])
        return np.unpackbits(data["bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)


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
        info = json.loads(meta.read_text())
        self.profile = info["profile"]["name"]
        self.roles = tuple(info["roles"])
        self.alphas = tuple(info["alphas"])
        self.scenarios = [
            Scenario(name=s["name"], params=stochastic.ModelParams(s["nu"], s["gamma"]),
                     measured_solid_fraction=s["measured_solid_fraction"],
                     voxel_size_um=s["voxel_size_um"])
            for s in info["scenarios"]
        ]

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

    def channels(self, scenario: str, i: int, alpha: int) -> np.ndarray:
        """Diffusion channels ``(2, *lr.shape)`` of the LR image (Eqs. 7-8)."""
        path = self.path(scenario, i, f"diffu{check_alpha(alpha)}")
        if not path.exists():
            raise ValueError(f"{path} is missing; run srlib.datasets.build_diffusion_channels")
        return np.load(path)


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
    root = Path(root) if root is not None else results_dir(profile) / "database"
    if samples is None:
        samples = public_samples(profile.samples)
    meta = root / "scenarios.json"
    if meta.exists():
        info = json.loads(meta.read_text())
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
                continue
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


def build_diffusion_channels(db: Database, *, connectivity: str = "face",
                             progress: bool = True) -> None:
    """Compute and store the diffusion channels of every low-resolution image of a database.

    Files that exist are kept (resumable); each is written atomically.

    Parameters
    ----------
    db : Database
        The database.
    connectivity : {"face", "vertex"}
        FEM mesh convention, see :mod:`srlib.transport`.
    progress : bool
        Show a progress bar.
    """
    from srlib.transport import diffusion_channels

    todo = [(s, i, a) for s in db.scenario_names for i in db.indices() for a in db.alphas
            if not db.path(s, i, f"diffu{a}").exists()]
    for s, i, a in tqdm(todo, desc="diffusion channels", disable=not progress or not todo):
        channels = diffusion_channels(db.lr(s, i, a), axis=0, connectivity=connectivity)
        _save_array(db.path(s, i, f"diffu{a}"), channels.astype(np.float32))
