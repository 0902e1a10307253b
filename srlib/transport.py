"""Diffusive transport in one phase of a voxel image (paper, sections 2.1.4, 2.1.5 and 2.3.4).

Contract. For a binary image (``[z, y, x]``, ``True`` = solid) and one of its phases, the
Laplace problem ``-Δu = 0`` (Eq. (6)) is solved on the union of that phase's voxels, voxel
``(i, j, k)`` being the unit cube ``[i, i+1] × [j, j+1] × [k, k+1]``, with ``u = 0`` on the
box face at index 0 of ``axis`` (the *inlet*), ``u = 1`` on the opposite face (the *outlet*)
and zero flux everywhere else (the other box faces and the interface between the phases). The
discretisation is the finite element method with trilinear hexahedra (scikit-fem's
``ElementHex1``), one element per voxel. :func:`solve_laplace` returns the nodal solution, the
relative effective diffusivity ``D_eff/D`` from the reaction flux through the inlet and the
effective tortuosity ``τ_eff = ε D/D_eff`` (Eq. (9)); :func:`diffusion_channels` gives the
two-channel image of Eqs. (7)-(8) and :func:`effective_tortuosity` the scalar of Eq. (9). A
phase without a path between the two faces has ``D_eff = 0`` and ``τ_eff = inf``, never NaN.
Inputs are never modified; bad input raises :class:`ValueError`.

Two mesh conventions are supported through ``connectivity``:

``"face"`` (default)
    The PDE on the *interior* of the union of closed voxels, as Eq. (6) is written. Where two
    voxels of the phase meet only along an edge or at a corner, the interior is pinched to
    nothing, so such contacts do not conduct: at each grid point, the phase's voxels among the
    2 x 2 x 2 around it are grouped into face-connected components, and each component gets its
    own node. Clusters are 6-connected (face-adjacent voxels).
``"vertex"``
    Plain shared-node finite elements: one node per grid point, shared by every voxel of the
    phase touching it. Edge and corner contacts then conduct, through single nodes (a
    discretisation artefact that fades only slowly under refinement). Clusters are
    26-connected.

The difference matters on rough structures: on χ² excursion sets (pore phase at 30 % volume
fraction) shared nodes give a much smaller ``τ_eff`` than finite volumes, which, like
``"face"``, do not conduct through edges (chapter 2 of the book measures both).

Accuracy. Both conventions are Galerkin methods on nested spaces: splitting every voxel into
smaller ones can only raise ``τ_eff``, and the ``"face"`` value is a lower bound of the exact
``τ_eff`` of the voxel domain. Finite volumes on voxel centres (TauFactor, PoreSpy) approach it
from above on such structures. At the native resolution of a χ² image, ``"face"`` gives a pore
``τ_eff`` about 30 % below finite volumes; the gap closes under refinement (see
``tests/test_transport.py`` and ``benchmarks/bench_transport.py``).

Only clusters of the phase (with the mesh's connectivity) that touch both Dirichlet faces carry
flux and enter the linear system. The others are excluded (they would make the system singular
or have a constant solution) and get their exact value where it is determined: 1 on a cluster
touching only the outlet face, 0 on one touching only the inlet face, and 0 on one touching
neither (its solution is any constant; 0 by the convention of Eqs. (7)-(8), like the other
phase). The volume fraction ``ε`` in Eq. (9) is that of the whole phase in the whole image.

Comparisons with peers (TauFactor's finite volumes, refinement studies) live in
:mod:`srlib.comparison`; this module imports torch only when a solve is given a ``device``
(:mod:`srlib.fem.torch_cg`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from srlib import fem
from srlib._checks import as_binary, check_axis, check_phase
from srlib.fem import mesh
from srlib.methods import check_connectivity

logger = logging.getLogger(__name__)

__all__ = [
    "TransportResult",
    "diffusion_channels",
    "effective_tortuosity",
    "solve_laplace",
]


_MAX_ITER = 1000
# Jacobi-preconditioned CG (the torch path) needs iterations in proportion to the image's edge.
_MAX_ITER_JACOBI = 100_000
#: Default relative residual tolerance of the CG solves. ``D_eff`` comes from the energy, which
#: is exact to second order in the solver's error: on 48 solves of 64³ χ² images (3 parameter
#: sets, 4 seeds, both phases, both connectivities) τ_eff at 1e-6 differed from τ_eff at 1e-8
#: by at most 7.1e-9 relative, and nodal values by at most 2.7e-4, with 30 % fewer iterations
#: (``tests/test_transport.py::test_default_tolerance_keeps_tau_eff`` checks it on one image).
DEFAULT_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class TransportResult:
    """Solution of the Laplace problem in one phase of a binary image.

    Attributes
    ----------
    solution : numpy.ndarray
        Nodal values ``u`` (float64, one per mesh node, in ``[0, 1]`` up to the solver tolerance).
    element_voxels : numpy.ndarray
        Flat indices (into ``image.ravel()``) of the voxels that are elements, i.e. the phase
        voxels in clusters that touch both Dirichlet faces.
    element_nodes : numpy.ndarray
        ``(n_elements, 8)`` node numbers of each element; column ``l`` is the voxel's corner at
        offset ``((l >> 2) & 1, (l >> 1) & 1, l & 1)`` along ``(z, y, x)``.
    node_vertex : numpy.ndarray
        Flat index of each node's grid point in the ``(nz+1, ny+1, nx+1)`` vertex grid. Under
        ``"face"`` several nodes can share a grid point.
    voxel_values : numpy.ndarray
        Image-shaped float64 array: the solution at each element's voxel centre (for trilinear
        elements, the mean of its 8 nodal values), 1 at the voxels of clusters touching only the
        outlet face (their exact solution), 0 at every other voxel.
    d_eff : float
        Relative effective diffusivity ``D_eff/D = Q · L / A`` with ``L`` the thickness along
        ``axis``, ``A`` the box cross-section (voxel units, ``Δu = 1``) and ``Q = u^T K u`` the
        energy of the solution, which equals the flow through each face for the exact discrete
        solution and whose error is quadratic in the solver's (so ``τ_eff`` does not depend on
        the solver's path to ``tol``); 0 without a path.
    tau_eff : float
        Effective tortuosity ``ε D/D_eff``, Eq. (9); ``inf`` without a path.
    flux_in : float
        Flow through the inlet face (``u = 0``), from the reaction ``K u`` at its nodes.
    flux_out : float
        Flow through the outlet face (``u = 1``); equals ``flux_in`` up to the solver tolerance.
    volume_fraction : float
        ``ε``, the phase's volume fraction in the whole image.
    percolating : bool
        Whether some cluster of the phase touches both faces.
    converged : bool
        Whether the iterative solver reached ``tol`` (True when no solve was needed).
    iterations : int
        Preconditioned CG iterations (0 when no solve was needed).
    seconds : float
        Wall time of the whole computation.
    connectivity : str
        ``"face"`` or ``"vertex"``.
    axis : int
        Transport axis.
    phase : bool
        ``True`` for the solid phase, ``False`` for the pore phase.
    tol : float
        Relative residual tolerance of the solve.
    """

    solution: np.ndarray = field(repr=False)
    element_voxels: np.ndarray = field(repr=False)
    element_nodes: np.ndarray = field(repr=False)
    node_vertex: np.ndarray = field(repr=False)
    voxel_values: np.ndarray = field(repr=False)
    d_eff: float
    tau_eff: float
    flux_in: float
    flux_out: float
    volume_fraction: float
    percolating: bool
    converged: bool
    iterations: int
    seconds: float
    connectivity: str
    axis: int
    phase: bool
    tol: float


def _check_tol(tol) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    return value


def _check_device(device):
    """None (the multigrid on the CPU), or a torch device that exists here."""
    if device is None:
        return None
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is a dependency
        raise ValueError(f"device={device!r} needs PyTorch ({err})") from None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None or a torch device, got {device!r} ({err})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine")
    return dev


def _solve_free_nodes(nodes, node_vertex, voxels, shape, axis: int, tol: float, device,
                      solution: np.ndarray):
    """Number the free nodes, solve for them and write them into ``solution`` (outlet: 1).

    Returns the inlet and outlet masks of the nodes, the CG iterations and whether CG
    converged.
    """
    length = shape[axis]
    n_nodes = node_vertex.size
    vertex_shape = np.array([n + 1 for n in shape], dtype=np.int64)
    plane = np.zeros(n_nodes, dtype=np.uint8)  # 0 free, 1 inlet, 2 outlet
    free_id = np.empty(n_nodes, dtype=nodes.dtype)
    n_free = mesh.number_free(node_vertex, vertex_shape, axis, plane, free_id)
    is_inlet, is_outlet = plane == 1, plane == 2
    is_free = plane == 0
    del plane
    solution[is_outlet] = 1.0

    iterations, converged = 0, True
    if n_free:
        t0 = time.perf_counter()
        zyx = np.empty((n_free, 3), dtype=np.int32)
        mesh.free_coordinates(node_vertex, vertex_shape, free_id, zyx)
        # Start from the straight-channel solution u = coordinate / thickness.
        x0 = zyx[:, axis] / length
        if device is None:
            is_main = mesh.main_nodes(node_vertex)
            x, iterations, converged, residual = fem.solve_free(
                nodes, free_id, is_outlet, zyx, mesh.element_stiffness(), x0, tol, _MAX_ITER,
                shape=shape, voxels=voxels, is_main=is_main,
            )
            del is_main
        else:
            from srlib.fem import torch_cg

            x, iterations, converged, residual = torch_cg.solve_free(
                nodes, free_id, is_outlet, zyx, mesh.element_stiffness(), x0, tol,
                _MAX_ITER_JACOBI, device
            )
        del zyx, x0
        if not converged:
            logger.warning(
                "CG did not reach tol=%g in %d iterations (relative residual %.3g)",
                tol,
                iterations,
                residual,
            )
        logger.debug(
            "%d unknowns: multigrid-preconditioned CG %.2f s (%d iterations)",
            n_free,
            time.perf_counter() - t0,
            iterations,
        )
        solution[is_free] = x
        del x
    return is_inlet, is_outlet, iterations, converged


def _solve_phase(mask: np.ndarray, axis: int, connectivity: str, tol: float,
                 device=None) -> dict:
    """Solve on the voxels of ``mask``; return the fields of :class:`TransportResult`."""
    start = time.perf_counter()
    shape = mask.shape
    length = shape[axis]
    area = mask.size // length
    volume_fraction = float(np.count_nonzero(mask)) / mask.size
    domain, outlet_only = mesh.clusters(mask, axis, connectivity)
    voxels, nodes, node_vertex = mesh.number_mesh(domain, connectivity)
    n_nodes = node_vertex.size
    del domain
    solution = np.zeros(n_nodes)
    # voxel_values (8 bytes a voxel) is built after the solve, from outlet_only (1 byte a voxel).
    empty = {
        "solution": solution,
        "element_voxels": voxels,
        "element_nodes": nodes,
        "node_vertex": node_vertex,
        "voxel_values": None,
        "d_eff": 0.0,
        "tau_eff": float("inf"),
        "flux_in": 0.0,
        "flux_out": 0.0,
        "volume_fraction": volume_fraction,
        "percolating": False,
        "converged": True,
        "iterations": 0,
    }
    if voxels.size == 0:
        logger.info("phase has no path between the faces along axis %d", axis)
        empty["voxel_values"] = outlet_only.astype(np.float64)  # their exact solution u = 1
        empty["seconds"] = time.perf_counter() - start
        return empty

    is_inlet, is_outlet, iterations, converged = _solve_free_nodes(
        nodes, node_vertex, voxels, shape, axis, tol, device, solution)

    # Reaction K u at the Dirichlet nodes: the flow through each face.
    reaction, means = np.zeros(n_nodes), np.empty(nodes.shape[0])
    layers = mesh.voxel_layers(voxels, shape)
    mesh.element_pass(nodes, solution, mesh.element_stiffness(), layers, reaction, means)
    flux_in = float(-reaction[is_inlet].sum())
    flux_out = float(reaction[is_outlet].sum())
    # The energy u^T K u = flux_out - u_f . r = flux_in + (1 - u_f) . r (r the free residual)
    # is exact to second order in the solver's error, where each face's reaction is first order.
    energy = float(solution @ reaction)
    d_eff = energy * length / area
    voxel_values = outlet_only.astype(np.float64)  # their exact solution u = 1
    del outlet_only
    voxel_values.ravel()[voxels] = means
    del means
    result = dict(empty)
    result.update(
        solution=solution,
        voxel_values=voxel_values,
        d_eff=d_eff,
        tau_eff=volume_fraction / d_eff if d_eff > 0 else float("inf"),
        flux_in=flux_in,
        flux_out=flux_out,
        percolating=True,
        converged=converged,
        iterations=iterations,
        seconds=time.perf_counter() - start,
    )
    return result


def solve_laplace(
    image, phase, *, axis: int = 0, connectivity: str = "face", tol: float = DEFAULT_TOL,
    device=None,
) -> TransportResult:
    """Solve the Laplace problem, Eq. (6), in one phase of a binary image.

    ``u = 0`` on the phase's voxel faces lying on the box face at index 0 of ``axis``, ``u = 1``
    on those at the opposite face, zero flux elsewhere. Trilinear hexahedral finite elements on
    the voxels, a single 8 x 8 element matrix (from scikit-fem) applied element by element on
    the voxel grid without a stored matrix, and conjugate gradients preconditioned by a
    geometric multigrid V-cycle (Chebyshev smoothing on the grid, 2 x 2 x 2 aggregation with
    Galerkin coarse operators, :mod:`srlib.fem`).
    Only clusters of the phase touching both faces are solved; clusters touching only the
    outlet get their exact value 1, the others (inlet only, or neither face) 0. See
    the module docstring for the two ``connectivity`` conventions.

    Parameters
    ----------
    image : array_like
        Binary 3D image, ``[z, y, x]``, ``True``/1 = solid, ``False``/0 = pore.
    phase : bool, int or str
        ``True``/1/``"solid"`` or ``False``/0/``"pore"``.
    axis : int
        Transport axis (0, 1 or 2, negative values allowed).
    connectivity : {"face", "vertex"}
        ``"face"``: the PDE on the interior of the union of voxels; edge and corner contacts do
        not conduct (nodes are split there). ``"vertex"``: shared-node elements; they do.
    tol : float
        Relative tolerance of the solve: CG stops when ``||b - A x|| < tol ||b||``. The
        default :data:`DEFAULT_TOL` keeps τ_eff within 1e-8 relative of a 1e-8 solve.
    device : str or torch.device, optional
        None (default): the multigrid-preconditioned CG on the CPU. A torch device (e.g.
        ``"cuda"``): the same system by Jacobi-preconditioned CG with PyTorch on that device
        (:mod:`srlib.fem.torch_cg`), many cheap iterations that suit a GPU; the solution agrees
        with the CPU's to the tolerance.

    Returns
    -------
    TransportResult
        Nodal solution and mesh numbering, voxel-centre values, ``d_eff``, ``tau_eff``, both
        face fluxes and diagnostics. Without a path between the faces ``d_eff = 0``,
        ``tau_eff = inf`` and ``percolating`` is False.

    Raises
    ------
    ValueError
        If ``image`` is not a binary 3D image, ``phase`` is invalid or absent from the image,
        ``axis`` is out of range, ``connectivity`` is unknown, ``tol`` is not in (0, 1) or
        ``device`` is not an available torch device.
    """
    img = as_binary(image)
    phase = check_phase(img, phase)
    axis = check_axis(axis)
    connectivity = check_connectivity(connectivity)
    tol = _check_tol(tol)
    device = _check_device(device)
    mask = img if phase else ~img
    fields = _solve_phase(mask, axis, connectivity, tol, device)
    result = TransportResult(**fields, connectivity=connectivity, axis=axis, phase=phase, tol=tol)
    logger.debug(
        "%s phase, axis %d, %s: tau_eff=%.4g, D_eff/D=%.4g, %d CG iterations, %.2f s",
        "solid" if phase else "pore",
        axis,
        connectivity,
        result.tau_eff,
        result.d_eff,
        result.iterations,
        result.seconds,
    )
    return result


def diffusion_channels(image, *, axis: int = 0, connectivity: str = "face",
                       device=None) -> np.ndarray:
    """Two-channel image of the transport solutions in both phases, Eqs. (7)-(8).

    Channel 0 is the pore solution, channel 1 the solid solution, each evaluated at the voxel
    centres of its phase and 0 elsewhere. Clusters that do not touch both faces along ``axis``
    are not solved: those touching only the outlet face (``u = 1``) get their exact value 1,
    those touching only the inlet face or neither face 0. A channel whose phase is absent is 0.

    Parameters
    ----------
    image : array_like
        Binary 3D image, ``[z, y, x]``, ``True``/1 = solid, ``False``/0 = pore.
    axis : int
        Transport axis.
    connectivity : {"face", "vertex"}
        Mesh convention, see :func:`solve_laplace`.
    device : str or torch.device, optional
        Where to solve, see :func:`solve_laplace`.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(2, *image.shape)`` with values in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``image`` is not a binary 3D image, ``axis`` is out of range or ``connectivity`` is
        unknown.
    """
    img = as_binary(image)
    axis = check_axis(axis)
    connectivity = check_connectivity(connectivity)
    device = _check_device(device)
    channels = np.zeros((2, *img.shape), dtype=np.float32)
    for channel, mask in enumerate((~img, img)):
        if not mask.any():
            continue
        fields = _solve_phase(mask, axis, connectivity, DEFAULT_TOL, device)
        channels[channel] = np.clip(fields["voxel_values"], 0.0, 1.0)
    return channels


def effective_tortuosity(image, phase, *, axis: int = 0, connectivity: str = "face",
                         device=None) -> float:
    """Effective tortuosity ``τ_eff = ε D/D_eff`` of one phase, Eq. (9).

    ``ε`` is the phase's volume fraction in the whole image and ``D_eff/D`` comes from
    :func:`solve_laplace` (flux through the inlet face times thickness over cross-section).

    Parameters
    ----------
    image : array_like
        Binary 3D image, ``[z, y, x]``, ``True``/1 = solid, ``False``/0 = pore.
    phase : bool, int or str
        ``True``/1/``"solid"`` or ``False``/0/``"pore"``.
    axis : int
        Transport axis.
    connectivity : {"face", "vertex"}
        Mesh convention, see :func:`solve_laplace`.
    device : str or torch.device, optional
        Where to solve, see :func:`solve_laplace`.

    Returns
    -------
    float
        ``τ_eff`` (1 for straight channels); ``inf`` when the phase has no path between the
        two faces normal to ``axis``.

    Raises
    ------
    ValueError
        As :func:`solve_laplace`.
    """
    return solve_laplace(image, phase, axis=axis, connectivity=connectivity,
                         device=device).tau_eff
