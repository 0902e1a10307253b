"""Comparisons of the FEM of :mod:`srlib.transport` with its peers (paper, section 2.1.4).

Contract. Nothing here is needed to build the database or to evaluate a method: these functions
put the FEM's ``τ_eff`` beside the finite-volume value of TauFactor and follow both under
refinement, for the book's discussion of discretisation (notebook 02) and for
``benchmarks/bench_transport.py``. :func:`refine_voxels` splits every voxel into ``factor³``
smaller ones (the same domain on a finer grid); :func:`taufactor_tortuosity` gives TauFactor's
finite-volume ``τ_eff`` (TauFactor is an optional dependency imported only when called; it
brings torch, which is why this module is separate from :mod:`srlib.transport`);
:func:`compare_tortuosity` and :func:`refinement_study` collect ``τ_eff`` by both FEM
conventions and by finite volumes, with wall times, as :class:`TortuosityEstimate` rows. The
conventions (``[z, y, x]`` binary images, ``True`` = solid, ``ε`` of the whole phase in Eq. (9),
``inf`` without a path) are those of :mod:`srlib.transport`. Inputs are never modified; bad
input raises :class:`ValueError`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from typing import NamedTuple

import numpy as np

from srlib._checks import as_binary, check_axis, check_phase
from srlib.fem.mesh import element_stiffness, spanning_voxels
from srlib.methods import CONNECTIVITIES, check_connectivity
from srlib.transport import DEFAULT_TOL, solve_laplace

logger = logging.getLogger(__name__)

__all__ = [
    "FINITE_VOLUMES",
    "TortuosityEstimate",
    "compare_tortuosity",
    "refine_voxels",
    "refinement_study",
    "taufactor_tortuosity",
]

#: Method name of TauFactor's finite-volume value in :class:`TortuosityEstimate` rows.
FINITE_VOLUMES = "finite volumes (TauFactor)"

_BOTH_PHASES = np.array([False, True])


class TortuosityEstimate(NamedTuple):
    """``τ_eff`` of one phase of an image by one method (a row of a comparison table).

    Attributes
    ----------
    phase : str
        ``"pore"`` or ``"solid"``.
    method : str
        ``"FEM face"``, ``"FEM vertex"`` or :data:`FINITE_VOLUMES`.
    tau_eff : float
        Effective tortuosity, Eq. (9); ``inf`` when the phase has no path between the faces.
    seconds : float
        Wall time of the solve.
    volume_fraction : float
        ``ε``, the phase's volume fraction in the whole image.
    converged : bool
        Whether the solver reached its stopping criterion.
    refinement : int
        Each voxel of the original image was split into ``refinement³`` voxels.
    """

    phase: str
    method: str
    tau_eff: float
    seconds: float
    volume_fraction: float
    converged: bool = True
    refinement: int = 1


def refine_voxels(image, factor: int) -> np.ndarray:
    """Split every voxel into ``factor³`` voxels: the same domain on a ``factor`` times finer grid.

    Parameters
    ----------
    image : array_like
        3D image (any dtype).
    factor : int
        Positive integer; 1 returns a copy.

    Returns
    -------
    numpy.ndarray
        Array of shape ``factor * image.shape``, each input voxel repeated as a
        ``factor x factor x factor`` block.

    Raises
    ------
    ValueError
        If ``image`` is not 3D or ``factor`` is not a positive integer.
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    img = np.asarray(image)
    if img.ndim != 3:
        raise ValueError(f"image must be a 3D array, got shape {img.shape}")
    out = img
    for ax in range(3):
        out = np.repeat(out, int(factor), axis=ax)
    return out if factor > 1 else out.copy()


def _taufactor(mask: np.ndarray, axis: int, conv_crit: float, device: str):
    """TauFactor's τ on the conducting ``mask``; returns ``(tau, converged)``."""
    try:
        import taufactor
    except ImportError as err:  # pragma: no cover - taufactor is in the test extra
        raise ImportError(
            "taufactor_tortuosity needs the optional package taufactor (pip install taufactor)"
        ) from err
    if not spanning_voxels(mask, axis, "face").any():
        # TauFactor's own answer is inf too, but its check for it can miss (a layer with a
        # transient negative flux) and leave it iterating to its limit on a meaningless value.
        logger.info("no face-connected path along axis %d: tau = inf without TauFactor", axis)
        return float("inf"), True
    labels = np.ascontiguousarray(np.moveaxis(mask, axis, 0)).astype(np.uint8)
    printed = io.StringIO()  # TauFactor prints its warnings; log them instead
    # without a path TauFactor divides by zero fluxes on its way to tau = inf: silence NumPy
    with contextlib.redirect_stdout(printed), np.errstate(divide="ignore", invalid="ignore"):
        solver = taufactor.Solver(labels, device=device)
        solver.solve(verbose=False, conv_crit=conv_crit)
    for line in printed.getvalue().splitlines():
        logger.info("TauFactor: %s", line)
    tau = float(np.asarray(solver.tau).ravel()[0])
    converged = bool(solver.converged)
    if converged and (tau == 0.0 or not math.isfinite(tau)):
        tau = float("inf")  # TauFactor's value for a phase without a percolating path
    if not converged:
        logger.warning("TauFactor did not converge (conv_crit=%g); tau=%.4g", conv_crit, tau)
    return tau, converged


def taufactor_tortuosity(
    image, phase, *, axis: int = 0, conv_crit: float = 1e-3, device: str = "cpu"
) -> float:
    """Finite-volume ``τ_eff`` of one phase by TauFactor, for comparison with the FEM.

    TauFactor solves the same problem (Dirichlet faces normal to ``axis``, zero flux elsewhere)
    with unknowns at voxel centres and conductances between face neighbours only, by
    over-relaxed Gauss-Seidel (``taufactor.Solver(labels, device=device)``, the conducting phase
    labelled 1, ``solve(verbose=False, conv_crit=conv_crit)``). Its ``ε`` is the whole phase's
    volume fraction, as in Eq. (9).

    Parameters
    ----------
    image : array_like
        Binary 3D image, ``[z, y, x]``, ``True``/1 = solid, ``False``/0 = pore.
    phase : bool, int or str
        ``True``/1/``"solid"`` or ``False``/0/``"pore"``.
    axis : int
        Transport axis.
    conv_crit : float
        TauFactor's stopping criterion: the relative spread of the flux through the layers.
    device : str
        Torch device for TauFactor ("cpu" or "cuda").

    Returns
    -------
    float
        ``τ_eff``; ``inf`` when the phase has no face-connected path between the two faces
        (checked before TauFactor runs). A run that hits TauFactor's iteration limit logs a
        warning and returns its last value.

    Raises
    ------
    ValueError
        If ``image`` is not a binary 3D image, ``phase`` is invalid or absent, or ``axis`` is
        out of range.
    ImportError
        If taufactor is not installed.
    """
    img = as_binary(image)
    phase = check_phase(img, phase)
    axis = check_axis(axis)
    return _taufactor(img if phase else ~img, axis, conv_crit, device)[0]


def compare_tortuosity(
    image,
    phases=(False, True),
    *,
    axis: int = 0,
    connectivities=CONNECTIVITIES,
    finite_volumes: bool = True,
    tol: float = DEFAULT_TOL,
    conv_crit: float = 1e-3,
    device: str = "cpu",
) -> list[TortuosityEstimate]:
    """``τ_eff`` of each phase by the FEM under each convention and by finite volumes.

    Phases absent from the image are skipped. Each solve is timed on its own (one-off imports
    and set-up happen before the clocks start). The FEM uses :func:`solve_laplace`, the finite
    volumes :func:`taufactor_tortuosity`.

    Parameters
    ----------
    image : array_like
        Binary 3D image, ``[z, y, x]``, ``True``/1 = solid, ``False``/0 = pore.
    phases : sequence of bool, int or str
        Phases to solve; default pore, then solid.
    axis : int
        Transport axis.
    connectivities : sequence of str
        FEM conventions to run, a subset of :data:`CONNECTIVITIES`.
    finite_volumes : bool
        Also run TauFactor.
    tol : float
        Relative residual tolerance of the FEM solves (:func:`solve_laplace`); default
        :data:`srlib.transport.DEFAULT_TOL`.
    conv_crit : float
        TauFactor's stopping criterion.
    device : str
        Torch device for TauFactor.

    Returns
    -------
    list of TortuosityEstimate
        One row per phase and method, FEM conventions first.

    Raises
    ------
    ValueError
        As :func:`solve_laplace`.
    """
    img = as_binary(image)
    axis = check_axis(axis)
    connectivities = [check_connectivity(c) for c in connectivities]
    element_stiffness()  # scikit-fem's one-off assembly, outside the timings
    if finite_volumes:
        _taufactor(np.ones((2, 2, 2), bool), 0, conv_crit, device)  # import torch untimed
    rows = []
    for phase in phases:
        phase = check_phase(_BOTH_PHASES, phase)  # validates and canonicalises
        if not np.any(img == phase):
            continue
        name = "solid" if phase else "pore"
        fraction = float(np.count_nonzero(img == phase)) / img.size
        for connectivity in connectivities:
            start = time.perf_counter()
            result = solve_laplace(img, phase, axis=axis, connectivity=connectivity, tol=tol)
            rows.append(TortuosityEstimate(name, f"FEM {connectivity}", result.tau_eff,
                                           time.perf_counter() - start, fraction,
                                           result.converged))
        if finite_volumes:
            start = time.perf_counter()
            tau, converged = _taufactor(img if phase else ~img, axis, conv_crit, device)
            rows.append(TortuosityEstimate(name, FINITE_VOLUMES, tau,
                                           time.perf_counter() - start, fraction, converged))
    return rows


def refinement_study(
    image, *, factors=(1, 2, 3), phases=(False, True), axis: int = 0, **options
) -> list[TortuosityEstimate]:
    """:func:`compare_tortuosity` on the image refined by each factor (voxels split into r³).

    Refinement keeps the domain (the union of voxels) and hence the exact ``τ_eff`` of Eq. (9);
    only the discretisation changes. The FEM spaces are nested, so the FEM values can only rise
    with ``r`` (``"face"`` from below towards the exact value), while finite volumes on rough
    voxel structures typically come down towards it from above.

    Parameters
    ----------
    image : array_like
        Binary 3D image (keep it small: ``r = 3`` multiplies the unknowns by 27).
    factors : sequence of int
        Refinement factors.
    phases : sequence of bool, int or str
        Phases to solve.
    axis : int
        Transport axis.
    **options
        Passed to :func:`compare_tortuosity` (``connectivities``, ``finite_volumes``, ``tol``,
        ``conv_crit``, ``device``).

    Returns
    -------
    list of TortuosityEstimate
        The rows of :func:`compare_tortuosity` for each factor, with ``refinement`` set.

    Raises
    ------
    ValueError
        As :func:`refine_voxels` and :func:`compare_tortuosity`.
    """
    img = as_binary(image)
    rows = []
    for factor in factors:
        fine = refine_voxels(img, factor)
        logger.info("refinement %d: %s voxels", factor, "x".join(map(str, fine.shape)))
        rows += [row._replace(refinement=int(factor))
                 for row in compare_tortuosity(fine, phases, axis=axis, **options)]
    return rows
