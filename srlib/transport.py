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
fraction) DESIGN.md measured ``τ_eff ≈ 2.8`` with shared nodes against ``≈ 5.4`` with finite
volumes, which, like ``"face"``, do not conduct through edges.

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
(:mod:`srlib._torch_fem`).
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import ndimage

from srlib import _multigrid
from srlib._checks import as_binary, check_axis, check_phase

logger = logging.getLogger(__name__)

__all__ = [
    "CONNECTIVITIES",
    "TransportResult",
    "diffusion_channels",
    "effective_tortuosity",
    "element_stiffness",
    "solve_laplace",
]

#: The supported mesh conventions (see the module docstring).
CONNECTIVITIES = ("face", "vertex")

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


@functools.lru_cache(maxsize=1)
def element_stiffness() -> np.ndarray:
    """Return the stiffness matrix of the trilinear element on the unit cube.

    Assembled once with scikit-fem (a one-element ``MeshHex``, ``ElementHex1``, the ``laplace``
    form, ``intorder=2``, which integrates it exactly) and reordered to this module's corner
    numbering: corner ``l`` is at offset ``((l >> 2) & 1, (l >> 1) & 1, l & 1)``.

    Returns
    -------
    numpy.ndarray
        ``(8, 8)`` float64 array, read-only. Its entries are ``1/3`` on the diagonal, ``0``
        between corners sharing an edge and ``-1/12`` between the others.
    """
    import skfem
    from skfem.models.poisson import laplace

    mesh = skfem.MeshHex()
    basis = skfem.Basis(mesh, skfem.ElementHex1(), intorder=2)
    k_mesh = laplace.assemble(basis).toarray()
    # ElementHex1 numbers its dofs like the mesh vertices; map vertex coordinates to corners.
    corner = np.rint(mesh.p[0] * 4 + mesh.p[1] * 2 + mesh.p[2]).astype(int)
    k = np.empty((8, 8))
    k[np.ix_(corner, corner)] = k_mesh
    k[np.abs(k) < 1e-12 * np.abs(k).max()] = 0.0  # exact zeros instead of round-off
    k.setflags(write=False)
    return k


@functools.lru_cache(maxsize=2)
def _vertex_tables(connectivity: str) -> tuple[np.ndarray, np.ndarray]:
    """Node tables over the 256 occupancy patterns of the 2 x 2 x 2 voxels around a grid point.

    Bit ``o`` of a pattern says whether the voxel in octant ``o`` (offset ``((o >> 2) & 1,
    (o >> 1) & 1, o & 1)`` from the grid point minus one) belongs to the domain. Returns the
    number of nodes at the grid point and, per octant, the local node number of that voxel's
    corner (-1 for an empty octant). Under ``"face"`` the octants are grouped into components of
    face-adjacent voxels (octant indices differing in one bit), one node each; under
    ``"vertex"`` all octants share one node.
    """
    count = np.zeros(256, dtype=np.int64)
    local = np.full((256, 8), -1, dtype=np.int64)
    for pattern in range(1, 256):
        present = [o for o in range(8) if pattern >> o & 1]
        if connectivity == "vertex":
            local[pattern, present] = 0
            count[pattern] = 1
            continue
        n = 0
        for start in present:
            if local[pattern, start] >= 0:
                continue
            stack = [start]
            local[pattern, start] = n
            while stack:
                o = stack.pop()
                for bit in (1, 2, 4):
                    q = o ^ bit
                    if pattern >> q & 1 and local[pattern, q] < 0:
                        local[pattern, q] = n
                        stack.append(q)
            n += 1
        count[pattern] = n
    count.setflags(write=False)
    local.setflags(write=False)
    return count, local


def _check_connectivity(connectivity) -> str:
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}")
    return connectivity


def _check_tol(tol) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError):
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    return value


def _spanning_voxels(mask: np.ndarray, axis: int, connectivity: str) -> np.ndarray:
    """Voxels of ``mask`` in clusters touching both faces normal to ``axis``."""
    return _clusters(mask, axis, connectivity)[0]


def _clusters(mask: np.ndarray, axis: int, connectivity: str) -> tuple[np.ndarray, np.ndarray]:
    """Voxels of ``mask`` in clusters touching both faces, and in clusters touching the outlet only.

    Clusters are 6-connected under ``"face"`` and 26-connected under ``"vertex"``. The exact
    solution is 1 on a cluster touching only the outlet (``u = 1`` there, no flux elsewhere),
    0 on one touching only the inlet, and undetermined (0 by the convention of Eqs. (7)-(8))
    on one touching neither face. ``porespy.filters.trim_nonpercolating_paths`` finds the
    spanning clusters alone; the solver also needs the outlet-only ones (their value is 1),
    so one ``scipy.ndimage.label`` serves both here.
    """
    rank = 1 if connectivity == "face" else 3
    structure = ndimage.generate_binary_structure(3, rank)
    labels, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return np.zeros_like(mask), np.zeros_like(mask)
    first = np.zeros(n + 1, dtype=bool)
    last = np.zeros(n + 1, dtype=bool)
    first[labels.take(0, axis=axis)] = True
    last[labels.take(-1, axis=axis)] = True
    first[0] = last[0] = False
    spanning = first & last
    outlet_only = last & ~first
    logger.debug(
        "%d clusters, %d touch both faces, %d the outlet only",
        n,
        np.count_nonzero(spanning),
        np.count_nonzero(outlet_only),
    )
    return spanning[labels], outlet_only[labels]


@numba.njit(cache=True)
def _grid_patterns(domain, count_table, pattern, first):  # pragma: no cover
    """Occupancy pattern of every grid point and the number of its first node (filled in)."""
    nz, ny, nx = domain.shape
    gy, gx = ny + 1, nx + 1
    total = 0
    for z in range(nz + 1):
        for y in range(gy):
            for x in range(gx):
                bits = 0
                for o in range(8):
                    vz, vy, vx = z - 1 + ((o >> 2) & 1), y - 1 + ((o >> 1) & 1), x - 1 + (o & 1)
                    if 0 <= vz < nz and 0 <= vy < ny and 0 <= vx < nx and domain[vz, vy, vx]:
                        bits |= 1 << o
                g = (z * gy + y) * gx + x
                pattern[g] = bits
                first[g] = total
                total += count_table[bits]
    return total


@numba.njit(cache=True)
def _fill_mesh(domain, pattern, first, count_table, local_table, voxels, nodes, node_vertex):
    # pragma: no cover
    """Each node's grid point, each element's voxel and its 8 corner nodes."""
    nz, ny, nx = domain.shape
    gy, gx = ny + 1, nx + 1
    for g in range(pattern.size):
        for k in range(count_table[pattern[g]]):
            node_vertex[first[g] + k] = g
    e = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if not domain[z, y, x]:
                    continue
                voxels[e] = (z * ny + y) * nx + x
                for c in range(8):
                    g = ((z + ((c >> 2) & 1)) * gy + y + ((c >> 1) & 1)) * gx + x + (c & 1)
                    # the voxel lies in the octant opposite its corner, seen from the point
                    nodes[e, c] = first[g] + local_table[pattern[g], 7 - c]
                e += 1


def _mesh(domain: np.ndarray, connectivity: str):
    """Number the nodes of the voxel mesh of ``domain``.

    Returns the element voxels (flat indices), the ``(n_el, 8)`` element nodes and each node's
    grid-point index.
    """
    count_table, local_table = _vertex_tables(connectivity)
    domain = np.ascontiguousarray(domain, dtype=bool)
    # Large outputs of numba kernels are allocated here, by NumPy, which advises transparent
    # huge pages for them: arrays allocated inside a kernel fault in 4 KiB pages (about 50,000
    # page faults, 0.3-0.4 s of system time, in a 128³ solve before this).
    n_points = (domain.shape[0] + 1) * (domain.shape[1] + 1) * (domain.shape[2] + 1)
    pattern = np.empty(n_points, dtype=np.uint8)
    first = np.empty(n_points, dtype=np.int64)
    n_nodes = _grid_patterns(domain, count_table, pattern, first)
    index = np.int32 if n_nodes < np.iinfo(np.int32).max else np.int64
    n_elements = int(np.count_nonzero(domain))
    voxels = np.empty(n_elements, dtype=np.int64)
    nodes = np.empty((n_elements, 8), dtype=index)
    node_vertex = np.empty(n_nodes, dtype=np.int64)
    _fill_mesh(domain, pattern, first, count_table, local_table, voxels, nodes, node_vertex)
    return voxels, nodes, node_vertex


@numba.njit(cache=True)
def _grid_point(g, vertex_shape):  # pragma: no cover
    """``(z, y, x)`` of the flat grid-point index ``g``."""
    return (g // (vertex_shape[2] * vertex_shape[1]), (g // vertex_shape[2]) % vertex_shape[1],
            g % vertex_shape[2])


@numba.njit(cache=True)
def _number_free(node_vertex, vertex_shape, axis, plane, free_id):  # pragma: no cover
    """Mark inlet (1) and outlet (2) nodes in ``plane``, number the free ones; their count."""
    last = vertex_shape[axis] - 1
    n_free = 0
    for i in range(node_vertex.size):
        coordinate = _grid_point(node_vertex[i], vertex_shape)[axis]
        if coordinate == 0:
            plane[i] = 1
            free_id[i] = -1
        elif coordinate == last:
            plane[i] = 2
            free_id[i] = -1
        else:
            free_id[i] = n_free
            n_free += 1
    return n_free


@numba.njit(cache=True)
def _free_coordinates(node_vertex, vertex_shape, free_id, zyx):  # pragma: no cover
    """Fill ``zyx``, the ``(n_free, 3)`` int32 grid-point coordinates of the free nodes."""
    for i in range(node_vertex.size):
        f = free_id[i]
        if f < 0:
            continue
        zyx[f, 0], zyx[f, 1], zyx[f, 2] = _grid_point(node_vertex[i], vertex_shape)


def _main_nodes(node_vertex: np.ndarray) -> np.ndarray:
    """Whether each node is the first of its grid point (its *main* node).

    Nodes are numbered grid point by grid point, so the first one differs from its predecessor's
    grid point; the multigrid's fine level keeps the main nodes on the grid.
    """
    is_main = np.ones(node_vertex.size, dtype=bool)
    is_main[1:] = node_vertex[1:] != node_vertex[:-1]
    return is_main


@numba.njit(cache=True)
def _element_pass(nodes, solution, k, reaction, means):  # pragma: no cover
    """Add the reaction ``K u`` at every node to ``reaction``; each element's mean in ``means``."""
    u = np.empty(8)
    for e in range(nodes.shape[0]):
        total = 0.0
        for a in range(8):
            u[a] = solution[nodes[e, a]]
            total += u[a]
        means[e] = total / 8.0
        for a in range(8):
            acc = 0.0
            for b in range(8):
                acc += k[a, b] * u[b]
            reaction[nodes[e, a]] += acc


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


def _solve_phase(mask: np.ndarray, axis: int, connectivity: str, tol: float,
                 device=None) -> dict:
    """Solve on the voxels of ``mask``; return the fields of :class:`TransportResult`."""
    start = time.perf_counter()
    shape = mask.shape
    length = shape[axis]
    area = mask.size // length
    volume_fraction = float(np.count_nonzero(mask)) / mask.size
    domain, outlet_only = _clusters(mask, axis, connectivity)
    voxels, nodes, node_vertex = _mesh(domain, connectivity)
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

    vertex_shape = np.array([n + 1 for n in shape], dtype=np.int64)
    plane = np.zeros(n_nodes, dtype=np.uint8)  # 0 free, 1 inlet, 2 outlet
    free_id = np.empty(n_nodes, dtype=nodes.dtype)
    n_free = _number_free(node_vertex, vertex_shape, axis, plane, free_id)
    is_inlet, is_outlet = plane == 1, plane == 2
    is_free = plane == 0
    del plane
    solution[is_outlet] = 1.0

    iterations, converged = 0, True
    if n_free:
        t0 = time.perf_counter()
        zyx = np.empty((n_free, 3), dtype=np.int32)
        _free_coordinates(node_vertex, vertex_shape, free_id, zyx)
        # Start from the straight-channel solution u = coordinate / thickness.
        x0 = zyx[:, axis] / length
        if device is None:
            is_main = _main_nodes(node_vertex)
            x, iterations, converged, residual = _multigrid.solve_free(
                nodes, free_id, is_outlet, zyx, element_stiffness(), x0, tol, _MAX_ITER,
                shape=shape, voxels=voxels, is_main=is_main,
            )
            del is_main
        else:
            from srlib import _torch_fem

            x, iterations, converged, residual = _torch_fem.solve_free(
                nodes, free_id, is_outlet, zyx, element_stiffness(), x0, tol,
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

    # Reaction K u at the Dirichlet nodes: the flow through each face.
    reaction, means = np.zeros(n_nodes), np.empty(nodes.shape[0])
    _element_pass(nodes, solution, element_stiffness(), reaction, means)
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
    Galerkin coarse operators, :mod:`srlib._multigrid`).
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
        (:mod:`srlib._torch_fem`), many cheap iterations that suit a GPU; the solution agrees
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
    connectivity = _check_connectivity(connectivity)
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
    connectivity = _check_connectivity(connectivity)
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


# Names that lived here before :mod:`srlib.comparison` existed: still importable, with a warning.
_MOVED_TO_COMPARISON = frozenset(
    {
        "FINITE_VOLUMES",
        "TortuosityEstimate",
        "compare_tortuosity",
        "refine_voxels",
        "refinement_study",
        "taufactor_tortuosity",
    }
)


def __getattr__(name):
    """Deprecation alias: the peer comparisons moved to :mod:`srlib.comparison`."""
    if name in _MOVED_TO_COMPARISON:
        warnings.warn(
            f"srlib.transport.{name} moved to srlib.comparison.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        from srlib import comparison

        return getattr(comparison, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
