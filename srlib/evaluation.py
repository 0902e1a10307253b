"""The evaluation protocol of section 3: every method, every metric, on sub-images.

Contract. For a high-resolution image (a simulated test realization or a tomographic sample)
and each scaling factor α, :func:`evaluate_image` down-samples it by Eq. (3), splits both the
HR image and its LR version into 8 non-overlapping sub-images (:func:`srlib.resample.subdivide`),
super-resolves every LR sub-image with every method, and scores the result against the HR
sub-image with :func:`srlib.metrics.evaluate` (accuracy, surface accuracy, geodesic and effective
tortuosity accuracies per phase). The ground truth's tortuosities are computed once per
sub-image and reused for all methods and all α (:func:`sub_image_tortuosities`).

Methods (:data:`METHODS`, labels in :data:`METHOD_LABELS`): the networks N^bin (the LR image
alone) and N^diffu (the LR image and its diffusion channels, Eqs. 7-8 and 13), and the methods
that are not networks (:mod:`srlib.baselines`): tri-quadratic interpolation aligned to Eq. (3)
(``interpolation``, the paper's baseline) and on the pixel-centre grid
(``interpolation_centred``), each thresholded at 0.5 or at a threshold fitted by Eq. (18) on the
validation realizations (``*_fitted``), and the ``local_bayes`` table (the local headroom).
The fitted thresholds and tables come from :func:`srlib.baselines.fit_baselines`, once per α.

N^diffu's input. By default (``channels="whole"``) the diffusion channels are computed once
on the whole LR test image and split with it, as training takes cutouts of whole-image
channels; ``channels="sub_image"`` recomputes them on each LR sub-image (a sub-image's own
boundary conditions). Protocol variant: by default (``variant="sub_image"``) each LR sub-image
is super-resolved on its own, as in the paper; ``variant="whole_image"`` super-resolves the
whole LR image and cuts the same HR sub-images from the result, which removes the border
effect of small sub-images (at ``quick``, an α = 8 LR sub-image is 6³ voxels).

:func:`run_protocol` does this for the whole study of a profile and writes one table with a
row per dataset, sample, sub-image, α and method to ``<out>/evaluation.csv``
(``evaluation_whole_image.csv``, ``evaluation_sub_image_channels.csv`` for the options); each
(dataset, sample, α) group is written to its own file first (atomically), so an interrupted
run resumes where it stopped. A stored row is reused only if it was computed by the same
network or fitted baseline (``network_id``) with the same connectivity, axis, channel
definition, variant and effective-tortuosity set; methods missing from a stored group are
computed and added. The groups run as Dask tasks (:mod:`srlib.parallel`): in this process, on
a local cluster of ``workers`` processes, or on an existing cluster (``scheduler``); the
networks and fitted baselines are sent to the workers once, the ground truth's tortuosities
of an image are one task whose result its α groups share, and the table is the same for any
number of workers. The effective tortuosity (a finite-element solve per phase and image)
dominates the cost; ``effective_sub_images=k`` computes it on the first ``k`` sub-images of every
image only (column ``effective_computed`` says where), so that a smaller budget is visible in
the table rather than silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srlib import methods as method_registry
from srlib import metrics
from srlib import resolvers as resolution
from srlib._checks import as_binary, check_alpha, check_axis, check_choice, positive_int
from srlib.io import atomic_path, image_digest, remove_stale_temp
from srlib.parallel import SCHEDULER_ENV, dask_client, run_tasks, share, submit
from srlib.resample import downsample, subdivide
from srlib.samples import tomographic_crop

logger = logging.getLogger(__name__)

__all__ = [
    "CHANNELS",
    "METHODS",
    "METHOD_LABELS",
    "N_SUB_IMAGES",
    "PAPER_METHODS",
    "ProtocolSettings",
    "VARIANTS",
    "evaluate_image",
    "protocol_images",
    "run_protocol",
    "sub_image_pairs",
    "sub_image_tortuosities",
]

#: Method names in the results table (:mod:`srlib.methods`): the networks, the interpolation
#: baselines (aligned to Eq. 3 or pixel-centre; threshold 0.5 or fitted by Eq. 18) and the
#: local-Bayes table.
METHODS = tuple(method_registry.METHODS)
#: The paper's three methods (Fig. 6).
PAPER_METHODS = method_registry.PAPER
#: Plain-text names of the methods for tables and prose.
METHOD_LABELS = {k: m.label for k, m in method_registry.METHODS.items()}
#: Definitions of N^diffu's diffusion channels at test time.
CHANNELS = ("whole", "sub_image")
#: Protocol variants: sub-images super-resolved on their own, or cut from the whole SR image.
VARIANTS = ("sub_image", "whole_image")
#: Sub-images per image (2 × 2 × 2, :func:`srlib.resample.subdivide`).
N_SUB_IMAGES = 8
_NETWORK_METHODS = method_registry.NETWORKS


def _effective_here(k: int, effective: bool, effective_sub_images: int | None) -> bool:
    """Whether the effective tortuosity is computed for sub-image ``k``."""
    return effective and (effective_sub_images is None or k < effective_sub_images)


def _check_effective_sub_images(effective_sub_images) -> int | None:
    if effective_sub_images is None:
        return None
    if (isinstance(effective_sub_images, bool) or not isinstance(effective_sub_images, int)
            or not 0 <= effective_sub_images <= N_SUB_IMAGES):
        raise ValueError(f"effective_sub_images must be None or an int in 0..{N_SUB_IMAGES}, "
                         f"got {effective_sub_images!r}")
    return effective_sub_images


def sub_image_tortuosities(hr, *, axis: int = 0, effective: bool = True,
                           effective_sub_images: int | None = None,
                           connectivity: str = "face") -> list[dict]:
    """Tortuosities of the 8 HR sub-images of an image (the same for every α).

    It calls :func:`srlib.metrics.reference_tortuosities`, of one image, per sub-image.

    Parameters
    ----------
    hr : array_like
        Binary HR image, every extent even.
    axis : int
        Transport axis.
    effective : bool
        Also compute effective tortuosities.
    effective_sub_images : int, optional
        Compute them only for the first ``k`` sub-images (None: all).
    connectivity : str
        FEM mesh convention.

    Returns
    -------
    list of dict
        :func:`srlib.metrics.reference_tortuosities` of sub-image ``k``, for ``k = 0..7``.
    """
    hr = as_binary(hr, name="hr")
    effective_sub_images = _check_effective_sub_images(effective_sub_images)
    return [metrics.reference_tortuosities(
                hr_k, axis=axis, connectivity=connectivity,
                effective=_effective_here(k, effective, effective_sub_images))
            for k, hr_k in enumerate(subdivide(hr))]


def sub_image_pairs(hr, alpha: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 8 pairs (LR sub-image, HR sub-image) of an image at scaling factor ``alpha``.

    Parameters
    ----------
    hr : array_like
        Binary HR image, every extent divisible by ``2 * alpha``.
    alpha : int
        Scaling factor.

    Returns
    -------
    list of tuple
        ``(lr_k, hr_k)`` for ``k = 0..7``, with ``lr_k == downsample(hr_k, alpha)``.
    """
    hr = as_binary(hr, name="hr")
    alpha = check_alpha(alpha)
    if any(n % (2 * alpha) for n in hr.shape):
        raise ValueError(f"hr shape {hr.shape} must be divisible by 2 * alpha = {2 * alpha}")
    return list(zip(subdivide(downsample(hr, alpha)), subdivide(hr), strict=True))


def _split_channels(channels: np.ndarray) -> list[np.ndarray]:
    """The 8 sub-images of a ``(2, *shape)`` channel image, split as :func:`subdivide`."""
    return [np.stack(parts) for parts in zip(*(subdivide(c) for c in channels), strict=True)]


def evaluate_image(hr, *, alpha: int, resolvers: dict, dataset: str, sample: str,
                   axis: int = 0, effective: bool = True, connectivity: str = "face",
                   effective_sub_images: int | None = None, references: list | None = None,
                   channels: str = "whole", variant: str = "sub_image",
                   effective_methods=None) -> list[dict]:
    """Score every method on the 8 sub-images of one HR image at one scaling factor.

    Parameters
    ----------
    hr : array_like
        Binary HR image.
    alpha : int
        Scaling factor.
    resolvers : dict
        Method name -> function mapping a binary LR image to a binary SR image; one with a
        true ``needs_channels`` attribute (N^diffu,
        :func:`srlib.resolvers.network_resolver`) is also given the keyword ``channels``.
    dataset : str
        Label of the data set ("simulated" or "tomographic").
    sample : str
        Label of the image (scenario or sample name).
    axis : int
        Transport axis of the tortuosities.
    effective : bool
        Compute effective tortuosities (FEM).
    connectivity : str
        FEM mesh convention (metrics and diffusion channels).
    effective_sub_images : int, optional
        Compute effective tortuosities only on the first ``k`` sub-images (None: all); the
        others get None in the ``tau_eff_*`` fields and ``effective_computed`` False.
    references : list of dict, optional
        :func:`sub_image_tortuosities` of ``hr`` (same ``axis``, ``effective``,
        ``effective_sub_images`` and ``connectivity``), to share them between α.
    channels : {"whole", "sub_image"}
        N^diffu's diffusion channels: computed once on the whole LR image and split with it
        (default, as in training), or recomputed on each LR sub-image.
    variant : {"sub_image", "whole_image"}
        Super-resolve each LR sub-image on its own (the paper), or the whole LR image once
        and cut the SR sub-images from it (with the whole image's channels).

    Returns
    -------
    list of dict
        One row per sub-image and method: labels, the fields of
        :class:`srlib.metrics.Evaluation`, ``effective_computed``, the SR time in seconds
        (whole-image work divided by 8), the HR sub-image's solid fraction, and the settings
        ``variant``, ``channels`` ("-" for methods without channels), ``connectivity`` and
        ``axis``.
    """
    from srlib.transport import diffusion_channels

    alpha = check_alpha(alpha)
    axis = check_axis(axis)
    channels = check_choice(channels, CHANNELS, "channels")
    variant = check_choice(variant, VARIANTS, "variant")
    effective_sub_images = _check_effective_sub_images(effective_sub_images)
    pairs = sub_image_pairs(hr, alpha)
    if references is None:
        references = sub_image_tortuosities(hr, axis=axis, effective=effective,
                                            effective_sub_images=effective_sub_images,
                                            connectivity=connectivity)
    if len(references) != N_SUB_IMAGES:
        raise ValueError(f"references must hold {N_SUB_IMAGES} entries, got {len(references)}")
    needs = {m for m, r in resolvers.items() if getattr(r, "needs_channels", False)}
    lr = downsample(hr, alpha)
    whole, split, channel_s = None, [None] * N_SUB_IMAGES, 0.0
    if needs and (variant == "whole_image" or channels == "whole"):
        t0 = time.perf_counter()
        whole = diffusion_channels(lr, connectivity=connectivity)
        split = _split_channels(whole)
        channel_s = (time.perf_counter() - t0) / N_SUB_IMAGES
    srs, seconds = {}, {}
    for method, resolve in resolvers.items():
        extra = channel_s if method in needs else 0.0
        if variant == "whole_image":
            t0 = time.perf_counter()
            sr = resolve(lr, channels=whole) if method in needs else resolve(lr)
            srs[method] = subdivide(sr)
            seconds[method] = [(time.perf_counter() - t0) / N_SUB_IMAGES + extra] * N_SUB_IMAGES
            continue
        srs[method], seconds[method] = [], []
        for k, (lr_k, _) in enumerate(pairs):
            t0 = time.perf_counter()
            sr_k = resolve(lr_k, channels=split[k]) if method in needs else resolve(lr_k)
            seconds[method].append(time.perf_counter() - t0 + extra)
            srs[method].append(sr_k)
    rows = []
    for k, (_, hr_k) in enumerate(pairs):
        for method in resolvers:
            eff_k = _effective_here(k, effective, effective_sub_images) and (
                effective_methods is None or method in effective_methods)
            ev = metrics.evaluate(srs[method][k], hr_k, alpha, axis=axis, effective=eff_k,
                                  connectivity=connectivity, reference=references[k])
            rows.append({"dataset": dataset, "sample": sample, "sub_image": k, "method": method,
                         **ev.as_dict(), "effective_computed": eff_k,
                         "sr_seconds": seconds[method][k],
                         "hr_solid_fraction": float(hr_k.mean()), "variant": variant,
                         "channels": channels if method in needs else "-",
                         "connectivity": connectivity, "axis": axis})
    return rows


def protocol_images(db, samples, profile) -> list[tuple[str, str, np.ndarray]]:
    """The protocol's test images (section 3), as ``(dataset, sample, HR image)``.

    Every simulated test realization of the database, then the tomographic crop of every
    sample (:func:`srlib.samples.tomographic_crop`).
    """
    images = [("simulated", sc, db.hr(sc, i)) for sc in db.scenario_names
              for i in db.indices("test")]
    return images + [("tomographic", s.name, tomographic_crop(s.image, profile))
                     for s in samples]


def _write_csv(frame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


_KEY_COLUMNS = ("method", "sub_image", "network_id", "effective_computed", "variant", "channels",
                "connectivity", "axis", "image")
#: Columns of a stored part read as text (identities and digests, never numbers).
_PART_DTYPES = {"network_id": str, "channels": str, "image": str}



def _current_methods(frame, ids: dict, *, effective: bool, effective_sub_images,
                     settings: dict, effective_methods=None) -> set:
    """Methods of ``ids`` whose 8 stored rows match their identity and every setting."""
    if any(c not in frame for c in _KEY_COLUMNS):
        return set()
    current = set()
    for method, rows in frame.groupby("method"):
        if method not in ids or sorted(rows["sub_image"]) != list(range(N_SUB_IMAGES)):
            continue
        wanted = {**settings, "network_id": ids[method],
                  "channels": (settings["channels"]
                               if method_registry.METHODS[method].needs_channels else "-")}
        if any(str(v) != str(wanted[c]) for c in wanted for v in rows[c]):
            continue
        here = effective and (effective_methods is None or method in effective_methods)
        expected = [_effective_here(int(k), here, effective_sub_images)
                    for k in rows["sub_image"]]
        if [bool(v) for v in rows["effective_computed"]] == expected:
            current.add(method)
    return current


def _reference_task(hr, axis: int, effective: bool, effective_sub_images,
                    connectivity: str) -> list[dict]:
    """Dask task: :func:`sub_image_tortuosities` of one image, shared by its α groups."""
    return sub_image_tortuosities(hr, axis=axis, effective=effective,
                                  effective_sub_images=effective_sub_images,
                                  connectivity=connectivity)


@contextlib.contextmanager
def _torch_threads(active: bool):
    """One intra-op thread for torch while ``active`` (network inference; restored after)."""
    if not active:
        yield
        return
    from srlib.devices import torch_threads

    with torch_threads(1):
        yield


def _group_task(dataset: str, sample: str, alpha: int, wanted: list, part: str, hr, references,
                shared: dict, digest: str) -> int:
    """Dask task: evaluate one image at one α with the methods ``wanted``; write its part.

    The part's stored rows of the other requested methods are kept (the caller found them
    current). ``shared`` holds what every task uses, computed once by the caller: the
    networks, the fitted baselines, the identities of :func:`srlib.resolvers.network_ids` per
    α, the device and the :class:`ProtocolSettings`. Returns the number of rows computed.
    """
    import pandas as pd

    part = Path(part)
    ps = shared["settings"]
    rows = []
    if wanted:
        resolvers = resolution.method_resolvers(alpha, shared["networks"], methods=wanted,
                                                baselines=shared["baselines"],
                                                connectivity=ps.connectivity,
                                                device=shared["device"])
        with _torch_threads(any(m in _NETWORK_METHODS for m in resolvers)):
            rows = evaluate_image(hr, alpha=alpha, resolvers=resolvers, dataset=dataset,
                                  sample=sample, axis=ps.axis, effective=ps.effective,
                                  connectivity=ps.connectivity,
                                  effective_sub_images=ps.effective_sub_images,
                                  references=references, channels=ps.channels,
                                  variant=ps.variant, effective_methods=ps.effective_methods)
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["network_id"] = frame["method"].map(shared["ids"][alpha])
        frame["image"] = digest
    if part.exists():
        stored = pd.read_csv(part, dtype=_PART_DTYPES)
        keep = stored[stored["method"].isin(ps.methods) & ~stored["method"].isin(wanted)]
        if len(keep):
            frame = pd.concat([keep, frame], ignore_index=True) if len(frame) else keep
    if len(frame):
        order = {m: i for i, m in enumerate(ps.methods)}
        frame = frame.sort_values(["sub_image", "method"], key=lambda c: c.map(order)
                                  if c.name == "method" else c, kind="stable")
    _write_csv(frame.reset_index(drop=True), part)
    return len(rows)


@dataclass(frozen=True)
class ProtocolSettings:
    """The options of :func:`run_protocol` that decide its rows, checked once.

    Attributes are the keyword arguments of :func:`run_protocol` with the same names.
    :attr:`suffix` names the table (``evaluation<suffix>.csv``) and its parts;
    :meth:`row_settings` is what a stored row must match, beside its method's identity.
    """

    methods: tuple = METHODS
    effective: bool = True
    effective_sub_images: int | None = None
    effective_methods: tuple | None = None
    connectivity: str = "face"
    axis: int = 0
    channels: str = "whole"
    variant: str = "sub_image"

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
        put("methods", tuple(self.methods))
        put("effective_sub_images", _check_effective_sub_images(self.effective_sub_images))
        if self.effective_methods is not None:
            put("effective_methods", tuple(self.effective_methods))
            if any(m not in METHODS for m in self.effective_methods):
                raise ValueError(f"effective_methods must be methods of {METHODS}, "
                                 f"got {self.effective_methods!r}")
        put("channels", check_choice(self.channels, CHANNELS, "channels"))
        put("variant", check_choice(self.variant, VARIANTS, "variant"))
        put("axis", check_axis(self.axis))

    @property
    def suffix(self) -> str:
        """``""``, ``"_whole_image"``, ``"_sub_image_channels"`` or both."""
        return ("" if self.variant == "sub_image" else f"_{self.variant}") + (
            "" if self.channels == "whole" else f"_{self.channels}_channels")

    def row_settings(self) -> dict:
        """The settings columns of a row."""
        return {"variant": self.variant, "channels": self.channels,
                "connectivity": self.connectivity, "axis": self.axis}


def run_protocol(images, networks: dict, alphas, out_dir, *, methods=METHODS,
                 baselines: dict | None = None, effective: bool = True,
                 effective_sub_images: int | None = None, effective_methods=None,
                 connectivity: str = "face", axis: int = 0, channels: str = "whole",
                 variant: str = "sub_image", device=None, workers: int | None = None,
                 scheduler=None, progress: bool = True,
                 settings: ProtocolSettings | None = None):
    """Run the protocol of section 3 on a set of images and write the results table.

    Parameters
    ----------
    images : sequence of tuple
        ``(dataset, sample, hr)``: e.g. ``("simulated", "berea", test_realization)`` and
        ``("tomographic", "berea", crop)``.
    networks : dict
        ``(kind, alpha) -> srlib.training.TrainedNetwork`` (from
        :func:`srlib.training.load_networks`); a method without a network for some α is
        skipped there with a warning.
    alphas : sequence of int
        Scaling factors (the paper's variant: all; ``variant="whole_image"``: e.g. ``(8,)``).
    out_dir : path
        Folder for ``evaluation.csv`` and its per-group parts (``evaluation/``); a non-default
        variant or channel definition gets its own files, ``evaluation_whole_image.csv`` and
        ``evaluation_sub_image_channels.csv``, so both sit beside the default. Temporary
        files that killed writes of these files left behind are removed at the start.
    methods : sequence of str
        Subset of :data:`METHODS` (default all).
    baselines : dict, optional
        ``{alpha: srlib.baselines.Baselines}`` from :func:`srlib.baselines.fit_baselines`
        (computed once per α from the database's train and validation realizations and
        handed to the workers); without it the fitted interpolations and ``local_bayes`` are
        skipped with a warning.
    effective : bool
        Compute effective tortuosities.
    effective_sub_images : int, optional
        Compute them only on the first ``k`` of the 8 sub-images of every image (None: all).
        Rows without them have ``effective_computed`` False and empty ``tau_eff_*`` fields.
    effective_methods : sequence of str, optional
        Compute effective tortuosities only for these methods (None: every method); the others'
        rows have ``effective_computed`` False. The FEM solves dominate the protocol's cost, so
        e.g. ``PAPER_METHODS`` keeps Fig. 6 complete while the extra baselines are scored on
        the other metrics.
    connectivity : str
        FEM mesh convention (transport metrics and N^diffu's input).
    axis : int
        Transport axis.
    channels : {"whole", "sub_image"}
        N^diffu's diffusion channels: of the whole LR image, split (default), or of each LR
        sub-image. See :func:`evaluate_image`.
    variant : {"sub_image", "whole_image"}
        The paper's protocol (default) or the SR sub-images cut from the SR whole image.
    device : str, optional
        Torch device for the networks.
    workers : int, optional
        Worker processes of the local Dask cluster evaluating the (image, α) groups in
        parallel, one thread each; default (and ``1``) in this process. Not used with a
        ``scheduler``.
    scheduler : str or dask.distributed.Client, optional
        Existing Dask scheduler's address, or a client, to run the groups on instead
        (:func:`srlib.parallel.dask_client`); default the environment variable
        ``SRLIB_DASK_SCHEDULER``, and when that is unset a local cluster of ``workers``.
    progress : bool
        Show a progress bar over the (image, α) groups.
    settings : ProtocolSettings, optional
        The options that decide the rows, as one record, instead of the keywords ``methods``
        to ``variant`` (which must then keep their defaults).

    Returns
    -------
    pandas.DataFrame
        The whole table (also written to ``<out_dir>/evaluation.csv``, or the variant's file),
        rows ordered by image, then α, sub-image and method.
        A stored row is reused only if its method's network or fitted baseline, the
        connectivity, axis, channel definition, variant and ``effective_sub_images`` are the
        same; otherwise, and for methods missing from a stored group, it is computed.
    """
    import pandas as pd

    given = ProtocolSettings(methods=methods, effective=effective,
                             effective_sub_images=effective_sub_images,
                             effective_methods=effective_methods, connectivity=connectivity,
                             axis=axis, channels=channels, variant=variant)
    if settings is not None and given != ProtocolSettings():
        raise ValueError("give the protocol's options either as settings=ProtocolSettings(...) "
                         "or as keywords, not both")
    if settings is not None and not isinstance(settings, ProtocolSettings):
        raise ValueError(f"settings must be a ProtocolSettings, got {type(settings).__name__}")
    ps = given if settings is None else settings
    if workers is not None:
        workers = positive_int(workers, "workers")
    elif scheduler is None and not os.environ.get(SCHEDULER_ENV):
        workers = 1
    out_dir = Path(out_dir)
    parts = out_dir / "evaluation"
    alphas = [check_alpha(a) for a in alphas]
    if len(set(alphas)) != len(alphas):
        raise ValueError(f"alphas must be distinct, got {alphas}")
    labels = [(d, s) for d, s, _ in images]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ValueError(f"images must have distinct (dataset, sample) labels: {twice} "
                         "appear more than once (their results would overwrite each other)")
    # a stage's start: the temporary files of killed writes of this stage's files only
    # (out_dir may hold other stages' folders, e.g. a profile's results folder)
    remove_stale_temp(out_dir)
    remove_stale_temp(parts, recursive=True)

    def part_path(dataset, sample, alpha):
        return parts / f"{dataset}_{sample}_a{alpha}{ps.suffix}.csv"

    ids = {alpha: resolution.network_ids(networks, alpha, ps.methods, baselines=baselines)
           for alpha in alphas}
    digests = [image_digest(hr) for _, _, hr in images]  # a part is reused for its image only
    groups = _missing_groups(images, alphas, ps, ids, part_path, digests)
    if groups:
        shared = {"networks": networks, "baselines": baselines or {}, "ids": ids,
                  "device": device, "settings": ps}
        _run_groups(groups, images, shared, part_path, digests, scheduler=scheduler,
                    workers=workers, progress=progress)
    frames = [pd.read_csv(part_path(d, s, a), dtype=_PART_DTYPES)
              for d, s, _ in images for a in alphas]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(table):
        table = table[table["method"].isin(ps.methods)].reset_index(drop=True)
    _write_csv(table, out_dir / f"evaluation{ps.suffix}.csv")
    return table


def _missing_groups(images, alphas, ps: ProtocolSettings, ids, part_path, digests) -> list:
    """``(image index, alpha, methods to compute)`` of every group without current rows."""
    import pandas as pd

    groups = []
    for i, (dataset, sample, _) in enumerate(images):
        for alpha in alphas:
            wanted = [m for m in ps.methods if m in ids[alpha]]
            path = part_path(dataset, sample, alpha)
            current = set()
            if path.exists():
                stored = pd.read_csv(path, dtype=_PART_DTYPES)
                current = _current_methods(stored, ids[alpha], effective=ps.effective,
                                           effective_sub_images=ps.effective_sub_images,
                                           settings={**ps.row_settings(), "image": digests[i]},
                                           effective_methods=ps.effective_methods)
            missing = [m for m in wanted if m not in current]
            if missing or not path.exists():
                if path.exists():
                    logger.warning("%s lacks current rows of %s; computing them", path, missing)
                groups.append((i, alpha, missing))
    return groups


def _run_groups(groups, images, shared, part_path, digests, *, scheduler, workers, progress):
    """Compute the groups as Dask tasks; each writes its part file."""
    ps = shared["settings"]
    with dask_client(scheduler, workers=workers) as client:
        # computed once, shipped once: the shared objects and each image to the workers,
        # the ground truth's tortuosities of each image to its α groups (Dask dependencies)
        shared_future = share(client, shared)
        used = sorted({i for i, _, wanted in groups if wanted})
        hrs = {i: share(client, as_binary(images[i][2], name="images")) for i in used}
        references = {i: submit(client, _reference_task, hrs[i], ps.axis, ps.effective,
                                ps.effective_sub_images, ps.connectivity)
                      for i in used}
        tasks = [(images[i][0], images[i][1], alpha, wanted,
                  str(part_path(images[i][0], images[i][1], alpha)),
                  hrs.get(i), references.get(i), shared_future, digests[i])
                 for i, alpha, wanted in groups]
        run_tasks(client, _group_task, tasks, desc="evaluation (image, α)", progress=progress)
