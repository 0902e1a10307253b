"""Data of the study: the database of model realizations (real samples: :mod:`srlib.samples`).

Contract. :func:`public_samples` returns the real, segmented micro-CT volumes that ship in the
porespy 3.2.0 source distribution on PyPI (fetched from the package index with pooch, SHA-256
verified, cached under :func:`cache_dir`), each as a :class:`Sample` with a ``bool`` image
(True = solid); :func:`folder_samples` reads a user's own folder of volumes instead (hidden
files are ignored). The paper's FIB-SEM data is not public; these stand in as the
"tomographic set" (section 2.1.1).

:func:`build_database` creates, for a :class:`~srlib.config.Profile`, one scenario per sample
with model parameters from :func:`srlib.stochastic.calibrate`, and for each scenario the
profile's realizations (train/validation/test roles as in section 2.2.2) with their
low-resolution versions for every α (Eq. 3), as Dask tasks (:mod:`srlib.parallel`), into a
chunked, compressed zarr store, one array per image, each written atomically and checksummed
(:mod:`srlib._store`): an interrupted run resumes where it stopped, to the same data, and an
array that is damaged or has the wrong shape is recomputed; the result does not depend on the
number of workers. :func:`build_diffusion_channels` adds the diffusion channels (Eqs. 7-8) of
every low-resolution image beside them, recording the mesh connectivity and transport axis
they were computed with (``channels.json``): channels of other settings are never reused.
:class:`Database` reads it back, whole volumes or regions (reading only the chunks a region
touches); a database of the earlier ``.npz``/``.npy`` format is converted when opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlib import _store, stochastic
from srlib._checks import check_alpha, check_axis, check_choice, positive_int
from srlib.config import Profile, results_dir
from srlib.io import image_digest, is_hidden, remove_stale_temp, write_json
from srlib.methods import check_connectivity
from srlib.resample import downsample
from srlib.samples import (  # noqa: F401 (re-exported: the samples are part of the data)
    PORESPY_SDIST_SHA256,
    PORESPY_SDIST_URL,
    PORESPY_VERSION,
    PUBLIC_NAMES,
    DownloadError,
    Sample,
    cache_dir,
    crop_center,
    folder_samples,
    load_samples,
    public_samples,
    tomographic_crop,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Database",
    "DownloadError",
    "Sample",
    "build_database",
    "build_diffusion_channels",
    "cache_dir",
    "channels_task",
    "crop_center",
    "folder_samples",
    "load_samples",
    "public_samples",
    "tomographic_crop",
]



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


_KINDS = ("hr", "lr", "channels")


class Database:
    """Read access to a profile's database under ``results/<profile>/database``.

    Layout: ``scenarios.json`` and ``channels.json`` (JSON), and a zarr (v3) hierarchy with
    one group per scenario holding, per realization, the arrays ``rNN_hr`` (``bool`` HR
    image), ``rNN_lr{α}`` (its Eq. 3 down-sampling) and ``rNN_diffu{α}`` (``float32``
    diffusion channels of the LR image, ``(2, *lr.shape)``, ``[pore, solid]``), chunked in
    32³ cubes and compressed (see :mod:`srlib._store`). ``NN`` counts from 1 (realization
    ``i`` of the paper).

    :meth:`hr`, :meth:`lr` and :meth:`channels` read whole volumes (checked against their
    digests); :meth:`read_region` and :meth:`array` read only the chunks a region touches,
    for cutouts of volumes of any size.

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
        #: Content key of the database: a digest of its description (profile fields,
        #: samples' images, calibrated scenarios); networks trained on it record it.
        self.key = hashlib.sha256(meta.read_bytes()).hexdigest()[:16]
        self._arrays = {}

    def __getstate__(self):  # opened arrays are not pickled
        return self.__dict__ | {"_arrays": {}}

    @property
    def scenario_names(self) -> list[str]:
        """Names of the scenarios, in order."""
        return [s.name for s in self.scenarios]

    def path(self, scenario: str, i: int, kind: str) -> Path:
        """Folder of one array (once complete); ``kind``: 'hr', 'lr2', ..., 'diffu2', ..."""
        return self.root / scenario / f"r{i:02d}_{kind}"

    def indices(self, role: str | None = None) -> list[int]:
        """Realization numbers (1-based) of a role ('train', 'val', 'test'), or all."""
        return [i + 1 for i, r in enumerate(self.roles) if role is None or r == role]

    def hr(self, scenario: str, i: int) -> np.ndarray:
        """High-resolution realization ``i`` of a scenario."""
        return self._read("hr", scenario, i, None, None)

    def lr(self, scenario: str, i: int, alpha: int) -> np.ndarray:
        """Its low-resolution version for ``alpha`` (Eq. 3)."""
        return self._read("lr", scenario, i, alpha, None)

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
        self._check_channels(connectivity, axis)
        return self._read("channels", scenario, i, alpha, None)

    def read_region(self, kind: str, scenario: str, i: int, alpha: int | None, region, *,
                    connectivity: str | None = None, axis: int | None = None) -> np.ndarray:
        """Read a region of one volume, reading only the chunks it touches.

        Parameters
        ----------
        kind : {"hr", "lr", "channels"}
            The HR image, its LR version for ``alpha``, or the diffusion channels of that.
        scenario : str
            Scenario name.
        i : int
            Realization number (1-based).
        alpha : int or None
            Scaling factor (ignored for ``"hr"``).
        region : tuple of 3 slice
            The region ``[z, y, x]`` of the volume (for ``"channels"``, both channels of it).
        connectivity, axis : optional
            For ``"channels"``: the settings they must have been computed with, as in
            :meth:`channels`.

        Returns
        -------
        numpy.ndarray
            ``bool`` for "hr"/"lr"; ``float32`` ``(2, *region shape)`` for "channels".

        Raises
        ------
        ValueError
            On a bad kind or region, a missing or damaged array, or channels of other settings.
        """
        region = tuple(region) if isinstance(region, list) else region
        if not (isinstance(region, tuple) and len(region) == 3
                and all(isinstance(r, slice) for r in region)):
            raise ValueError(f"region must be a tuple of 3 slices, got {region!r}")
        if kind == "channels":
            self._check_channels(connectivity, axis)
        shape = self.array(kind, scenario, i, alpha).shape[-3:]
        for r, n in zip(region, shape, strict=True):
            if r.step not in (None, 1) or not (
                    0 <= (r.start or 0) <= (n if r.stop is None else r.stop) <= n):
                raise ValueError(f"region {region!r} is not a contiguous region inside the "
                                 f"volume of shape {shape}")
        return self._read(kind, scenario, i, alpha, region)

    def array(self, kind: str, scenario: str, i: int, alpha: int | None = None, *,
              connectivity: str | None = None, axis: int | None = None):
        """The stored array of one volume, lazy and read-only (a ``zarr.Array``).

        Indexing it reads only the chunks an index touches; ``.shape`` reads nothing.
        Arguments as in :meth:`read_region` (channels are checked against the settings given).
        """
        if kind == "channels":
            self._check_channels(connectivity, axis)
        key = self._name(kind, alpha)
        path = self.path(scenario, i, key)
        if path not in self._arrays:
            if scenario not in self.scenario_names:
                raise ValueError(f"unknown scenario {scenario!r}; the database has "
                                 f"{self.scenario_names}")
            if i not in self.indices():
                raise ValueError(f"realization i={i} is not among {self.indices()}")
            if not path.exists():
                raise ValueError(f"{path} is missing; run srlib.datasets.build_"
                                 f"{'diffusion_channels' if kind == 'channels' else 'database'}")
            arr = _store.open_array(path)
            # once per open, the whole content against the digest written with it: a lost
            # or damaged chunk would otherwise read as zeros or wrong values in every region
            if not _store.array_ok(path, arr.shape, arr.dtype):
                raise ValueError(f"{path}: content differs from its digest (a damaged or "
                                 "missing chunk); delete it and rebuild (build_database / "
                                 "build_diffusion_channels)")
            self._arrays[path] = arr
        return self._arrays[path]

    def _name(self, kind: str, alpha) -> str:
        check_choice(kind, _KINDS, "kind")
        if kind == "hr":
            return "hr"
        alpha = check_alpha(alpha)
        if alpha not in self.alphas:
            raise ValueError(f"alpha={alpha} is not among the database's alphas {self.alphas}")
        return f"{'lr' if kind == 'lr' else 'diffu'}{alpha}"

    def _read(self, kind, scenario, i, alpha, region) -> np.ndarray:
        arr = self.array(kind, scenario, i, alpha)
        path = self.path(scenario, i, self._name(kind, alpha))
        what = "diffusion channels" if kind == "channels" else "binary image"
        try:
            if region is None:
                return _store.read_array(path)
            return np.asarray(arr[(slice(None),) * (arr.ndim - 3) + region])
        except Exception as err:  # codecs raise many types for damaged chunks
            raise ValueError(f"cannot read {what} {path}: {err}; delete it and rebuild "
                             "(build_database / build_diffusion_channels)") from err

    def _check_channels(self, connectivity, axis) -> None:
        key = self.channels_key or {}  # {}: settings not recorded (files of another tool)
        wanted = {"connectivity": connectivity, "axis": axis}
        other = {k: v for k, v in wanted.items() if v is not None and key.get(k) != v}
        if other:
            raise ValueError(f"the channels in {self.root} were computed with "
                             f"{key or 'unrecorded settings'}, not {other}; run "
                             f"build_diffusion_channels(db, **{other})")

    def _is_complete(self, scenario: str, i: int, hr_size: int) -> bool:
        """True if realization ``i``'s HR and LR arrays are complete and of the right shapes."""
        return _store.array_ok(self.path(scenario, i, "hr"), (hr_size,) * 3, bool) and all(
            _store.array_ok(self.path(scenario, i, f"lr{a}"), (hr_size // a,) * 3, bool)
            for a in self.alphas)


def _read_json(path: Path) -> dict:
    """A JSON file written by this module; a clear error naming it when it is corrupt."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}); delete it and rebuild") from err


def _realization_task(root: str, scenario: str, i: int, shape: int, alphas: tuple,
                      nu: float, gamma: float, seed_entropy: int, spawn_key: tuple) -> str:
    """Sample realization ``i`` of a scenario and write it and its LR versions (a Dask task)."""
    from srlib import _store

    seed = np.random.SeedSequence(entropy=seed_entropy, spawn_key=spawn_key)
    hr = stochastic.sample(shape, stochastic.ModelParams(nu, gamma), seed=seed)
    folder = Path(root) / scenario
    for alpha in alphas:
        _store.write_array(folder / f"r{i:02d}_lr{alpha}", downsample(hr, alpha))
    _store.write_array(folder / f"r{i:02d}_hr", hr)
    return f"{scenario}/{i}"


def channels_task(root: str, scenario: str, i: int, source: str, target: str,
                  connectivity: str, axis: int) -> str:
    """Dask task: the diffusion channels of one stored image, written beside it.

    Reads the binary array ``rNN_<source>`` of realization ``i`` (e.g. ``lr2``, or ``hr``
    for :func:`srlib.fields.build_hr_channels`) and writes its two channels, float32, as
    ``rNN_<target>`` (e.g. ``diffu2``). Returns ``"scenario/i/target"``.
    """
    from srlib import _store, transport

    folder = Path(root) / scenario
    image = _store.read_array(folder / f"r{i:02d}_{source}")
    channels = transport.diffusion_channels(image, axis=axis, connectivity=connectivity)
    _store.write_array(folder / f"r{i:02d}_{target}", np.asarray(channels, np.float32))
    return f"{scenario}/{i}/{target}"


def _database_key(profile: Profile) -> dict:
    """The profile fields that determine the database's content, JSON-normalised."""
    keys = ("name", "hr_size", "n_realizations", "split", "alphas", "seed")
    return json.loads(json.dumps({k: getattr(profile, k) for k in keys}))


def _workers(workers, scheduler, edge: int) -> int | None:
    """Local worker processes: as asked, else one per core up to 256³ images, else one."""
    from srlib.parallel import SCHEDULER_ENV, default_workers

    if workers is not None:
        return positive_int(workers, "workers")
    if scheduler is not None or os.environ.get(SCHEDULER_ENV):
        return None
    return default_workers() if edge <= 256 else 1


def calibrate_scenarios(samples) -> list[Scenario]:
    """One scenario per sample, with parameters from :func:`srlib.stochastic.calibrate`."""
    return [
        Scenario(name=s.name, params=stochastic.calibrate(s.image),
                 measured_solid_fraction=s.solid_fraction, voxel_size_um=s.voxel_size_um)
        for s in samples
    ]


#: Lock file of a database's writer (its settings, process and host).
WRITER_LOCK = ".writer.lock"


def _holder_alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: it cannot be checked from here
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError, ValueError):
        return True
    return True


@contextlib.contextmanager
def _one_writer(root: Path, key: dict):
    """Hold ``root``'s writer lock for the settings ``key`` while the block runs.

    Writers with the same settings share the database (each array is written atomically);
    a writer with other settings is refused while the lock's holder lives. A lock left by a
    process that died on this host is taken over.
    """
    path = root / WRITER_LOCK
    mine = {"key": key, "pid": os.getpid(), "host": socket.gethostname()}
    same = json.loads(json.dumps(key))  # the key as the lock file holds it
    owner = False
    for _ in range(100):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):  # being written by its holder this very moment
                time.sleep(0.05)
                continue
            if holder.get("key") == same:
                break  # the same settings: share, and leave the lock to its holder
            if _holder_alive(holder):
                raise ValueError(
                    f"{root} is being built by process {holder.get('pid')} on "
                    f"{holder.get('host')} with other settings ({path} says which); wait "
                    "for it to end or use another root (delete the lock file only if that "
                    "process is gone)") from None
            path.unlink(missing_ok=True)  # its holder died: take it over
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(mine))
            owner = True
            break
    else:
        raise ValueError(f"{path}: cannot take the database's writer lock")
    try:
        yield
    finally:
        if owner:
            path.unlink(missing_ok=True)


def build_database(profile: Profile, *, samples=None, root=None, scheduler=None,
                   workers: int | None = None, progress: bool = True) -> Database:
    """Create (or complete) the database of model realizations for a profile.

    Each realization (its HR image and LR versions) is one Dask task (see
    :mod:`srlib.parallel`) writing its own arrays; its seed derives from the profile's seed
    and its (scenario, index), so the database is the same for any number of workers. Stored
    realizations that are complete (every array present, of the right shape, matching its
    digest) are kept; the others are recomputed. Nothing is started when none is missing.

    Parameters
    ----------
    profile : Profile
        Sizes, counts and seed.
    samples : list of Sample, optional
        Tomographic samples defining the scenarios; default :func:`public_samples` restricted to
        ``profile.samples``.
    root : path, optional
        Database folder; default ``results/<profile>/database``.
    scheduler : str or dask.distributed.Client, optional
        Existing scheduler's address, or a client (:func:`srlib.parallel.dask_client`);
        default ``$SRLIB_DASK_SCHEDULER``, else a local cluster.
    workers : int, optional
        Worker processes of the local cluster; default one per core for images up to 256³,
        else 1 (large FFTs are memory-bound and use all cores themselves).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Database
        The database, complete.
    """
    if not isinstance(profile, Profile):
        raise ValueError(f"profile must be a srlib.config.Profile, got {profile!r}")
    workers = _workers(workers, scheduler, profile.hr_size)
    root = Path(root) if root is not None else results_dir(profile) / "database"
    if samples is None:
        samples = public_samples(profile.samples)
    remove_stale_temp(root, recursive=True)
    _store.remove_stale_arrays(root)
    # the samples' images are part of the key: another --solid side, or other volumes under
    # the same names, calibrate other scenarios
    sample_keys = {s.name: image_digest(s.image) for s in samples}
    root.mkdir(parents=True, exist_ok=True)
    with _one_writer(root, {"profile": _database_key(profile), "samples": sample_keys}):
        return _build(profile, samples, root, sample_keys, scheduler=scheduler,
                      workers=workers, progress=progress)


def _build(profile, samples, root: Path, sample_keys: dict, *, scheduler, workers,
           progress) -> Database:
    """The body of :func:`build_database`, run by the database's one writer."""
    from srlib.parallel import dask_client, run_tasks

    meta = root / "scenarios.json"
    if meta.exists():
        info = _read_json(meta)
        names = [s["name"] for s in info["scenarios"]]
        if names != [s.name for s in samples] or info["profile"] != _database_key(profile):
            raise ValueError(f"{root} holds a database of another profile or sample set; "
                             "use another root or delete it")
        if info.get("samples") != sample_keys:
            raise ValueError(f"{root} holds a database calibrated on other images of the "
                             f"samples {names} (another solid side, or other volumes); use "
                             "another root or delete it")
        scenarios = Database(root).scenarios
    else:
        left = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_hidden(p)) \
            if root.is_dir() else []
        if left:  # arrays carry no key of their own: never adopt them under new settings
            raise ValueError(f"{root} holds arrays ({', '.join(left)}) but no scenarios.json "
                             "that says what made them; delete the whole folder to rebuild")
        scenarios = calibrate_scenarios(samples)
        root.mkdir(parents=True, exist_ok=True)
        info = {"profile": _database_key(profile), "samples": sample_keys,
                "roles": list(profile.roles), "alphas": list(profile.alphas),
                "scenarios": [s.as_dict() for s in scenarios]}
        write_json(meta, info)
    _store.ensure_groups(root, [s.name for s in scenarios])
    db = Database(root)
    tasks = []
    for s_index, scen in enumerate(scenarios):
        for i in range(1, profile.n_realizations + 1):
            if db._is_complete(scen.name, i, profile.hr_size):
                continue
            if db.path(scen.name, i, "hr").exists():
                logger.warning("realization %s/%d is incomplete, damaged or of another shape; "
                               "recomputing it", scen.name, i)
            tasks.append((str(root), scen.name, i, profile.hr_size, tuple(profile.alphas),
                          scen.params.nu, scen.params.gamma, profile.seed, (s_index, i)))
    if tasks:
        with dask_client(scheduler, workers=workers) as client:
            run_tasks(client, _realization_task, tasks, desc="realizations",
                      progress=progress)
    return Database(root)


def build_diffusion_channels(db: Database, *, connectivity: str = "face", axis: int = 0,
                             scheduler=None, workers: int | None = None,
                             progress: bool = True) -> None:
    """Compute and store the diffusion channels of every low-resolution image of a database.

    The settings are recorded in ``channels.json``. Stored channels of the same settings that
    are complete (right shape, matching their digest) are kept (resumable); channels of other
    settings (or of unrecorded settings, from earlier versions) are deleted and recomputed.
    Each LR image's channels are one Dask task writing its own array, atomically.

    Parameters
    ----------
    db : Database
        The database.
    connectivity : {"face", "vertex"}
        FEM mesh convention, see :mod:`srlib.transport`.
    axis : int
        Transport axis of the channels.
    scheduler : str or dask.distributed.Client, optional
        Existing scheduler's address, or a client (:func:`srlib.parallel.dask_client`);
        default ``$SRLIB_DASK_SCHEDULER``, else a local cluster.
    workers : int, optional
        Local worker processes; default one per core for LR images up to 256³, else 1.
    progress : bool
        Show a progress bar.
    """
    from srlib.parallel import dask_client, run_tasks

    if not isinstance(db, Database):
        raise ValueError(f"db must be a srlib.datasets.Database, got {db!r}")
    check_connectivity(connectivity)
    key = {"connectivity": connectivity, "axis": check_axis(axis)}
    remove_stale_temp(db.root, recursive=True)
    _store.remove_stale_arrays(db.root)
    paths = {(s, i, a): db.path(s, i, f"diffu{a}")
             for s in db.scenario_names for i in db.indices() for a in db.alphas}
    if db.channels_key != key:
        stored = [p for p in paths.values() if p.exists()]
        if stored:
            logger.warning("diffusion channels in %s were computed with %s; recomputing them "
                           "with %s", db.root, db.channels_key, key)
        for p in stored:
            shutil.rmtree(p)
        write_json(db.root / "channels.json", key, indent=None)
    db._arrays.clear()
    missing = [(s, i, a) for (s, i, a), path in paths.items()
               if not _store.array_ok(path, (2, *db.array("lr", s, i, a).shape), np.float32)]
    for s, i, a in missing:  # inputs checked before any work: a clear error here
        db.lr(s, i, a)
    todo = [(str(db.root), s, i, f"lr{a}", f"diffu{a}", connectivity, key["axis"])
            for s, i, a in missing]
    if todo:
        edge = max(n for s, i, a in paths for n in db.array("lr", s, i, a).shape)
        with dask_client(scheduler, workers=_workers(workers, scheduler, edge)) as client:
            run_tasks(client, channels_task, todo, desc="diffusion channels",
                      progress=progress)
    db._arrays.clear()
