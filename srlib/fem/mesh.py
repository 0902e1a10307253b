"""The voxel mesh of one phase: clusters, node numbering, free nodes (:mod:`srlib.fem`).

Contract. One unit-cube trilinear (Q1) element per voxel of the domain, corner ``l`` at offset
``((l >> 2) & 1, (l >> 1) & 1, l & 1)``; the nodes at a grid point are shared by the voxels
around it that are connected under the mesh convention (``"face"``: voxels sharing a face,
``"vertex"``: all), see :mod:`srlib.transport`. :func:`clusters` finds the voxels to solve on,
:func:`number_mesh` numbers elements and nodes, :func:`number_free` and
:func:`free_coordinates` the free (non-Dirichlet) nodes, :func:`element_pass` the reaction and
element means of a solution. Inputs are never modified.
"""

from __future__ import annotations

import functools
import logging

import numba
import numpy as np
from scipy import ndimage

from srlib.fem.kernels import layer_pair

logger = logging.getLogger(__name__)


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
def vertex_tables(connectivity: str) -> tuple[np.ndarray, np.ndarray]:
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


def spanning_voxels(mask: np.ndarray, axis: int, connectivity: str) -> np.ndarray:
    """Voxels of ``mask`` in clusters touching both faces normal to ``axis``."""
    return clusters(mask, axis, connectivity)[0]


def clusters(mask: np.ndarray, axis: int, connectivity: str) -> tuple[np.ndarray, np.ndarray]:
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
def grid_patterns(domain, count_table, pattern, first):  # pragma: no cover
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
def fill_mesh(domain, pattern, first, count_table, local_table, voxels, nodes, node_vertex):
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


def number_mesh(domain: np.ndarray, connectivity: str):
    """Number the nodes of the voxel mesh of ``domain``.

    Returns the element voxels (flat indices), the ``(n_el, 8)`` element nodes and each node's
    grid-point index.
    """
    count_table, local_table = vertex_tables(connectivity)
    domain = np.ascontiguousarray(domain, dtype=bool)
    # Large outputs of numba kernels are allocated here, by NumPy, which advises transparent
    # huge pages for them: arrays allocated inside a kernel fault in 4 KiB pages, one page
    # fault each (engineering notes of the book).
    n_points = (domain.shape[0] + 1) * (domain.shape[1] + 1) * (domain.shape[2] + 1)
    pattern = np.empty(n_points, dtype=np.uint8)
    first = np.empty(n_points, dtype=np.int64)
    n_nodes = grid_patterns(domain, count_table, pattern, first)
    index = np.int32 if n_nodes < np.iinfo(np.int32).max else np.int64
    n_elements = int(np.count_nonzero(domain))
    voxels = np.empty(n_elements, dtype=np.int64)
    nodes = np.empty((n_elements, 8), dtype=index)
    node_vertex = np.empty(n_nodes, dtype=np.int64)
    fill_mesh(domain, pattern, first, count_table, local_table, voxels, nodes, node_vertex)
    return voxels, nodes, node_vertex


@numba.njit(cache=True)
def grid_point(g, vertex_shape):  # pragma: no cover
    """``(z, y, x)`` of the flat grid-point index ``g``."""
    return (g // (vertex_shape[2] * vertex_shape[1]), (g // vertex_shape[2]) % vertex_shape[1],
            g % vertex_shape[2])


@numba.njit(cache=True)
def number_free(node_vertex, vertex_shape, axis, plane, free_id):  # pragma: no cover
    """Mark inlet (1) and outlet (2) nodes in ``plane``, number the free ones; their count."""
    last = vertex_shape[axis] - 1
    n_free = 0
    for i in range(node_vertex.size):
        coordinate = grid_point(node_vertex[i], vertex_shape)[axis]
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
def free_coordinates(node_vertex, vertex_shape, free_id, zyx):  # pragma: no cover
    """Fill ``zyx``, the ``(n_free, 3)`` int32 grid-point coordinates of the free nodes."""
    for i in range(node_vertex.size):
        f = free_id[i]
        if f < 0:
            continue
        zyx[f, 0], zyx[f, 1], zyx[f, 2] = grid_point(node_vertex[i], vertex_shape)


def main_nodes(node_vertex: np.ndarray) -> np.ndarray:
    """Whether each node is the first of its grid point (its *main* node).

    Nodes are numbered grid point by grid point, so the first one differs from its predecessor's
    grid point; the multigrid's fine level keeps the main nodes on the grid.
    """
    is_main = np.ones(node_vertex.size, dtype=bool)
    is_main[1:] = node_vertex[1:] != node_vertex[:-1]
    return is_main


def voxel_layers(voxels: np.ndarray, shape) -> np.ndarray:
    """The first element of every voxel layer ``z`` (``nz + 1`` entries, the last the count).

    ``voxels`` are the elements' flat voxel indices in raster order (:func:`number_mesh`), so
    the elements of layer ``z`` are ``[layers[z], layers[z + 1])``: the ranges that
    :func:`~srlib.fem.kernels.layer_pair` pairs.
    """
    return np.searchsorted(voxels, np.arange(shape[0] + 1) * (shape[1] * shape[2]))


@numba.njit(parallel=True, cache=True)
def element_pass(nodes, solution, k, layers, reaction, means):  # pragma: no cover
    """Add the reaction ``K u`` at every node to ``reaction``; each element's mean in ``means``.

    ``layers[z]`` is the first element of voxel layer ``z`` (elements in raster order); pairs
    of layers run in parallel (:func:`~srlib.fem.kernels.layer_pair`), so every node sums
    its elements in the same order on any number of threads.
    """
    for half in range(2):
        for j in numba.prange((layers.shape[0] + 2) // 4):
            first, stop = layer_pair(layers, half, j)
            u = np.empty(8)
            for e in range(first, stop):
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
