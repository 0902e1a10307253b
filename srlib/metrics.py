"""Validation metrics of a super-resolved image against its ground truth (paper, section 2.3).

Contract. Every function compares a super-resolved binary image ``sr`` with the
high-resolution ground truth ``hr`` of the same shape (True = solid, False = pore, as
everywhere in srlib); inputs are validated and never modified.

* :func:`accuracy`, Eq. (19): fraction of voxels classified correctly.
* :func:`boundary_band`, Eqs. (20)-(21): voxels of ``hr`` within distance ``0.55 alpha`` of the
  other phase, i.e. a band one low-resolution voxel thick around the phase boundary.
* :func:`surface_accuracy`, Eq. (22): :func:`accuracy` restricted to that band.
* :func:`relative_accuracy`, Eqs. (23)-(24): ``1 - |sr - hr| / hr`` for a scalar descriptor.
* :func:`evaluate`: all of the above plus the geodesic (:mod:`srlib.geodesic`) and effective
  (:mod:`srlib.transport`) tortuosities of both phases, as one :class:`Evaluation` record.

Conventions for undefined values (they matter for the box plots of Fig. 6):

* ``hr`` has no path through a phase (tortuosity ``inf``): the relative accuracy of that phase is
  undefined and is ``nan``; :func:`evaluate` leaves the phase out of the mean over the phases
  and names it in :attr:`Evaluation.geod_excluded` / :attr:`Evaluation.eff_excluded`.
* ``hr`` has a path but ``sr`` has none: the relative accuracy is ``-inf`` (the limit of the
  formula; the super-resolution broke percolation, which is worse than any finite error). It
  is kept in the mean over the phases (which is then ``-inf``) and the phase is named in
  :attr:`Evaluation.geod_lost` / :attr:`Evaluation.eff_lost`. Plotting code should show such
  cases as a count, not drop them silently.
* An empty boundary band (``hr`` of one phase only): surface accuracy is ``nan``, with a warning
  logged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from srlib._checks import as_binary, check_alpha, check_axis
from srlib.methods import check_connectivity

__all__ = [
    "BAND_RADIUS_FACTOR",
    "Evaluation",
    "accuracy",
    "band_structuring_element",
    "boundary_band",
    "evaluate",
    "reference_tortuosities",
    "relative_accuracy",
    "surface_accuracy",
]

logger = logging.getLogger(__name__)

#: Radius of the structuring ball of Eq. (20), in high-resolution voxels per unit of ``alpha``.
BAND_RADIUS_FACTOR = 0.55

_PHASES = (("solid", True), ("pore", False))


def _pair(sr, hr) -> tuple[np.ndarray, np.ndarray]:
    """Validate a super-resolved image and its ground truth: binary, 3D, same shape."""
    sr = as_binary(sr, name="sr")
    hr = as_binary(hr, name="hr")
    if sr.shape != hr.shape:
        raise ValueError(f"sr shape {sr.shape} and hr shape {hr.shape} differ; they must match")
    return sr, hr


def accuracy(sr, hr) -> float:
    """Fraction of voxels where the super-resolved image equals the ground truth, Eq. (19).

    Parameters
    ----------
    sr : array_like
        Super-resolved 3D binary image (``bool`` or 0/1), True = solid.
    hr : array_like
        Ground-truth 3D binary image of the same shape.

    Returns
    -------
    float
        Accuracy in [0, 1].

    Raises
    ------
    ValueError
        If an image is not 3D binary or the shapes differ.
    """
    sr, hr = _pair(sr, hr)
    return float(np.count_nonzero(sr == hr) / sr.size)


def band_structuring_element(alpha: int) -> np.ndarray:
    """Structuring element ``S`` of Eq. (20): lattice points of the ball of radius ``0.55 alpha``.

    The closed ball ``{y in Z^3 : |y| <= 0.55 alpha}`` is used. For ``alpha`` in {2, 4, 8} the
    squared radius (1.21, 4.84, 19.36) is not an integer, so no lattice point lies on the
    sphere and the open ball ``|y| < 0.55 alpha`` gives the same element: this is why the paper
    chose 0.55 instead of 0.5. Along an axis the element reaches ``floor(0.55 alpha) = alpha / 2``
    voxels (1, 2, 4).

    Parameters
    ----------
    alpha : int
        Scaling factor, one of 2, 4, 8.

    Returns
    -------
    numpy.ndarray
        Cubic ``bool`` array of side ``2 floor(0.55 alpha) + 1`` (7, 33 and 365 points).

    Raises
    ------
    ValueError
        If ``alpha`` is not 2, 4 or 8.
    """
    alpha = check_alpha(alpha)
    radius = BAND_RADIUS_FACTOR * alpha
    reach = int(math.floor(radius))
    grid = np.mgrid[-reach : reach + 1, -reach : reach + 1, -reach : reach + 1]
    return (grid**2).sum(axis=0) <= radius**2


def boundary_band(hr, alpha: int) -> np.ndarray:
    """Boundary region of the ground truth, Eqs. (20)-(21).

    ``band = (I - I ⊖ S) ∪ ((1 - I) - (1 - I) ⊖ S)`` with ``S`` the ball of radius
    ``0.55 alpha`` (:func:`band_structuring_element`): the solid voxels with a pore voxel within
    distance ``0.55 alpha``, and the pore voxels with a solid voxel within that distance. For a
    planar interface the band is ``alpha / 2`` voxels deep on each side, ``alpha`` in all: one
    low-resolution voxel.

    Voxels outside the window count as 1 in the erosion of the solid, as Eq. (20) states, and,
    since Eq. (21) applies "the same process" to the pore image ``1 - I``, also as 1 in the
    erosion of the pore image: the window's border never creates band voxels; only the
    interface between the two phases does.

    Parameters
    ----------
    hr : array_like
        Ground-truth 3D binary image (``bool`` or 0/1), True = solid.
    alpha : int
        Scaling factor, one of 2, 4, 8.

    Returns
    -------
    numpy.ndarray
        ``bool`` image of the band, same shape as ``hr``; empty when ``hr`` has one phase only.

    Raises
    ------
    ValueError
        If ``hr`` is not a 3D binary image or ``alpha`` is not 2, 4 or 8.
    """
    hr = as_binary(hr, name="hr")
    element = band_structuring_element(alpha)
    solid_core = ndimage.binary_erosion(hr, structure=element, border_value=1)
    pore_core = ndimage.binary_erosion(~hr, structure=element, border_value=1)
    return (hr & ~solid_core) | (~hr & ~pore_core)


def surface_accuracy(sr, hr, alpha: int) -> float:
    """Accuracy restricted to the boundary band of the ground truth, Eq. (22).

    Parameters
    ----------
    sr : array_like
        Super-resolved 3D binary image, True = solid.
    hr : array_like
        Ground-truth 3D binary image of the same shape.
    alpha : int
        Scaling factor, one of 2, 4, 8 (sets the band's width, see :func:`boundary_band`).

    Returns
    -------
    float
        Fraction of band voxels classified correctly, in [0, 1]; ``nan`` (with a warning
        logged) if the band is empty, i.e. ``hr`` has one phase only.

    Raises
    ------
    ValueError
        If an image is not 3D binary, the shapes differ, or ``alpha`` is not 2, 4 or 8.
    """
    sr, hr = _pair(sr, hr)
    band = boundary_band(hr, alpha)
    n_band = int(np.count_nonzero(band))
    if n_band == 0:
        logger.warning("surface accuracy is undefined: hr has one phase only, so no boundary band")
        return float("nan")
    return float(np.count_nonzero(sr[band] == hr[band]) / n_band)


def _as_value(value, name: str) -> float:
    """Return a descriptor value as float; raise unless it is a non-negative number or inf."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if math.isnan(out):
        raise ValueError(f"{name} is nan; a relative accuracy needs a number (or inf for no path)")
    if out < 0:
        raise ValueError(f"{name} must be non-negative (a tortuosity is >= 1), got {out}")
    return out


def relative_accuracy(value_sr, value_hr) -> float:
    """Relative accuracy ``1 - |sr - hr| / hr`` of a descriptor, Eqs. (23)-(24).

    Parameters
    ----------
    value_sr : float
        Descriptor (e.g. a tortuosity) of the super-resolved image; ``inf`` means no path.
    value_hr : float
        Descriptor of the ground truth; must be positive; ``inf`` means no path.

    Returns
    -------
    float
        ``1 - |value_sr - value_hr| / value_hr`` (1 for a perfect match, can be negative);
        ``nan`` if ``value_hr`` is ``inf`` (undefined: the ground truth has no path, whatever
        ``value_sr`` is); ``-inf`` if ``value_sr`` is ``inf`` and ``value_hr`` finite (the
        super-resolved image lost the path).

    Raises
    ------
    ValueError
        If a value is nan, negative, not a number, or ``value_hr`` is 0.
    """
    sr = _as_value(value_sr, "value_sr")
    hr = _as_value(value_hr, "value_hr")
    if hr == 0:
        raise ValueError("value_hr must be positive; the relative accuracy divides by it")
    if math.isinf(hr):
        return float("nan")
    if math.isinf(sr):
        return float("-inf")
    return 1.0 - abs(sr - hr) / hr


@dataclass(frozen=True)
class Evaluation:
    """All validation metrics of one super-resolved image (section 2.3), one table row.

    Tortuosity fields are named ``tau_<kind>_<image>_<phase>`` with kind ``geod`` (mean
    geodesic, section 2.3.3) or ``eff`` (effective, section 2.3.4), image ``sr`` or ``hr`` and
    phase ``solid`` or ``pore``; ``inf`` means no path through the phase (or the phase is
    absent). ``tau_<kind>_acc_<phase>`` is :func:`relative_accuracy` of the pair (``nan`` if
    ``hr`` has no path, ``-inf`` if only ``sr`` has none), and ``tau_<kind>_acc_mean`` its mean
    over the phases whose ground truth has a path (``nan`` if neither has). The ``eff`` fields
    are None when :func:`evaluate` gets ``effective=False``.

    Attributes
    ----------
    alpha : int
        Scaling factor.
    axis : int
        Transport axis of the tortuosities.
    accuracy : float
        Eq. (19).
    surface_accuracy : float
        Eq. (22); ``nan`` if ``hr`` has one phase only.
    tau_geod_sr_solid, tau_geod_hr_solid, tau_geod_acc_solid : float
        Mean geodesic tortuosity of the solid phase and its relative accuracy, Eq. (23).
    tau_geod_sr_pore, tau_geod_hr_pore, tau_geod_acc_pore : float
        The same for the pore phase.
    tau_geod_acc_mean : float
        Mean of the geodesic relative accuracies over the phases not in ``geod_excluded``.
    geod_excluded : tuple of str
        Phases (``'solid'``, ``'pore'``) left out of the mean: no path in ``hr``.
    geod_lost : tuple of str
        Phases with a path in ``hr`` but none in ``sr`` (relative accuracy ``-inf``).
    tau_eff_sr_solid, tau_eff_hr_solid, tau_eff_acc_solid : float or None
        Effective tortuosity (:func:`srlib.transport.effective_tortuosity`) and Eq. (24).
    tau_eff_sr_pore, tau_eff_hr_pore, tau_eff_acc_pore : float or None
        The same for the pore phase.
    tau_eff_acc_mean : float or None
        Mean over the phases not in ``eff_excluded``.
    eff_excluded : tuple of str
        Phases left out of the effective mean: no path in ``hr``.
    eff_lost : tuple of str
        Phases with an effective path in ``hr`` but none in ``sr``.
    """

    alpha: int
    axis: int
    accuracy: float
    surface_accuracy: float
    tau_geod_sr_solid: float
    tau_geod_hr_solid: float
    tau_geod_acc_solid: float
    tau_geod_sr_pore: float
    tau_geod_hr_pore: float
    tau_geod_acc_pore: float
    tau_geod_acc_mean: float
    geod_excluded: tuple[str, ...]
    geod_lost: tuple[str, ...]
    tau_eff_sr_solid: float | None = None
    tau_eff_hr_solid: float | None = None
    tau_eff_acc_solid: float | None = None
    tau_eff_sr_pore: float | None = None
    tau_eff_hr_pore: float | None = None
    tau_eff_acc_pore: float | None = None
    tau_eff_acc_mean: float | None = None
    eff_excluded: tuple[str, ...] = ()
    eff_lost: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """Return the fields as a flat dict (one table row); phase tuples become ``'a,b'``."""
        row = dataclasses.asdict(self)
        for key in ("geod_excluded", "geod_lost", "eff_excluded", "eff_lost"):
            row[key] = ",".join(row[key])
        return row


def _phase_present(image: np.ndarray, phase: bool) -> bool:
    return bool(image.any()) if phase else not bool(image.all())


def _tortuosity(func, image: np.ndarray, phase: bool, axis: int) -> float:
    """``func(image, phase)``, or ``inf`` for a phase absent from the image (no path)."""
    return float(func(image, phase, axis=axis)) if _phase_present(image, phase) else math.inf


def _tortuosities(func, sr, hr, axis: int, kind: str, hr_values: dict | None = None) -> dict:
    """Tortuosity of both phases of ``sr`` and ``hr``, relative accuracies and their mean.

    A phase absent from an image has no path: its tortuosity is ``inf`` and ``func`` is not
    called (the tortuosity functions reject absent phases). ``hr_values`` maps phase names to
    precomputed ground-truth values.
    """
    fields: dict = {}
    accs = []
    excluded = []
    lost = []
    for name, phase in _PHASES:
        tau_sr = _tortuosity(func, sr, phase, axis)
        if hr_values is not None:
            tau_hr = float(hr_values[name])
        else:
            tau_hr = _tortuosity(func, hr, phase, axis)
        acc = relative_accuracy(tau_sr, tau_hr)
        fields[f"tau_{kind}_sr_{name}"] = float(tau_sr)
        fields[f"tau_{kind}_hr_{name}"] = float(tau_hr)
        fields[f"tau_{kind}_acc_{name}"] = acc
        if math.isinf(tau_hr):
            excluded.append(name)
        else:
            accs.append(acc)
            if math.isinf(tau_sr):
                lost.append(name)
    if accs:
        mean = float(np.mean(accs))
    else:
        logger.warning("%s tortuosity: hr has no path through either phase; mean is nan", kind)
        mean = float("nan")
    fields[f"tau_{kind}_acc_mean"] = mean
    fields[f"{kind}_excluded"] = tuple(excluded)
    fields[f"{kind}_lost"] = tuple(lost)
    return fields


def _tortuosity_functions(connectivity: str) -> dict:
    """The two tortuosity functions by kind, with the same signature."""
    from srlib.geodesic import mean_geodesic_tortuosity

    def tau_eff(image, phase, *, axis):
        from srlib.transport import effective_tortuosity  # lazy: FEM stack only when needed

        return effective_tortuosity(image, phase, axis=axis, connectivity=connectivity)

    return {"geod": mean_geodesic_tortuosity, "eff": tau_eff}


def reference_tortuosities(
    hr, *, axis: int = 0, effective: bool = True, connectivity: str = "face"
) -> dict:
    """Tortuosities of a ground-truth image, to pass to :func:`evaluate` for several methods.

    Parameters
    ----------
    hr : array_like
        Ground-truth 3D binary image.
    axis : int
        Transport axis.
    effective : bool
        Also compute the effective tortuosity.
    connectivity : str
        Mesh convention of the effective tortuosity.

    Returns
    -------
    dict
        ``{"geod": {"solid": τ, "pore": τ}, "eff": {...}}`` (``inf`` where a phase has no
        path); ``"eff"`` only when ``effective``.
    """
    hr = as_binary(hr, name="hr")
    axis = check_axis(axis)
    check_connectivity(connectivity)
    funcs = _tortuosity_functions(connectivity)
    kinds = ("geod", "eff") if effective else ("geod",)
    return {kind: {name: _tortuosity(funcs[kind], hr, phase, axis) for name, phase in _PHASES}
            for kind in kinds}


def _reference_values(reference, kind: str) -> dict:
    """The ``reference[kind]`` tortuosities, checked: a number (or inf) for both phases."""
    if not isinstance(reference, dict) or kind not in reference:
        raise ValueError(f"reference has no {kind!r} tortuosities; build it with "
                         "reference_tortuosities(hr, effective=...)")
    values = reference[kind]
    if not isinstance(values, dict):
        raise ValueError(f"reference[{kind!r}] must be a dict {{'solid': tau, 'pore': tau}}, "
                         f"got {values!r}")
    missing = [name for name, _ in _PHASES if name not in values]
    if missing:
        raise ValueError(f"reference[{kind!r}] lacks the phase(s) {missing}; build it with "
                         "reference_tortuosities(hr, ...)")
    return {name: _as_value(values[name], f"reference[{kind!r}][{name!r}]")
            for name, _ in _PHASES}


def evaluate(
    sr, hr, alpha: int, *, axis: int = 0, effective: bool = True, connectivity: str = "face",
    reference: dict | None = None,
) -> Evaluation:
    """Evaluate a super-resolved image against the ground truth with every metric of section 2.3.

    Computes the accuracy (Eq. (19)), the surface accuracy (Eq. (22)) and, for each phase, the
    mean geodesic tortuosity (section 2.3.3) and the effective tortuosity (section 2.1.5) of
    both images along ``axis`` with their relative accuracies (Eqs. (23)-(24)), and the mean of
    each relative accuracy over the two phases, as in Fig. 6c-d. A phase whose ground truth has
    no path is left out of that mean and named in ``*_excluded``; a phase absent from an image
    simply has no path (tortuosity ``inf``) rather than raising. See the module docstring for
    the conventions.

    Parameters
    ----------
    sr : array_like
        Super-resolved 3D binary image, True = solid.
    hr : array_like
        Ground-truth 3D binary image of the same shape.
    alpha : int
        Scaling factor, one of 2, 4, 8 (sets the boundary band of the surface accuracy).
    axis : int
        Transport axis of both tortuosities.
    effective : bool
        Compute the effective tortuosity (a finite-element solve per phase and image, by far
        the most expensive part). If False, the ``tau_eff_*`` fields are None.
    connectivity : str
        Passed to :func:`srlib.transport.effective_tortuosity` (``"face"`` or ``"vertex"``).
    reference : dict, optional
        Ground-truth tortuosities from :func:`reference_tortuosities` (same ``axis``,
        ``effective`` and ``connectivity``), so that several methods compared against one
        ``hr`` do not recompute them.

    Returns
    -------
    Evaluation
        The record; :meth:`Evaluation.as_dict` gives a flat table row.

    Raises
    ------
    ValueError
        If an image is not 3D binary, the shapes differ, ``alpha`` is not 2, 4 or 8,
        ``axis`` is out of range, ``connectivity`` is unknown, or ``reference`` lacks a
        tortuosity.
    """
    sr, hr = _pair(sr, hr)
    alpha = check_alpha(alpha)
    axis = check_axis(axis)

    fields = {
        "alpha": alpha,
        "axis": axis,
        "accuracy": accuracy(sr, hr),
        "surface_accuracy": surface_accuracy(sr, hr, alpha),
    }
    check_connectivity(connectivity)
    funcs = _tortuosity_functions(connectivity)
    kinds = ("geod", "eff") if effective else ("geod",)
    for kind in kinds:
        hr_values = None if reference is None else _reference_values(reference, kind)
        fields.update(_tortuosities(funcs[kind], sr, hr, axis, kind, hr_values))
    return Evaluation(**fields)
