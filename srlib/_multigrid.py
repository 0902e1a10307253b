"""Lean solver for the voxel FEM of :mod:`srlib.transport`: CG with a geometric multigrid.

Contract. :func:`solve_free` takes the element-node table of a voxel mesh (one unit-cube
trilinear element per voxel, corner ``l`` at offset ``((l >> 2) & 1, (l >> 1) & 1, l & 1)``),
the node numbering of its free (non-Dirichlet) nodes and the outlet nodes (``u = 1``; inlet
nodes are ``u = 0``), and returns the free nodal values solving ``A_ff u_f = -A_fo 1`` to the
relative residual ``tol``, with the number of CG iterations. Nothing else is imported by other
modules; :mod:`srlib.transport` owns the mesh and the physics.

Method. The stiffness matrix is never assembled in the generic way. Every element matrix is the
same ``K`` whose entries are ``1/3`` (diagonal), ``0`` (corners on a common edge) and ``-1/12``
(the others), so ``12 A`` has small integer entries: the fine level is stored in ELLPACK form,
one row per free node with one slot per corner offset (12 face diagonals and 8 body diagonals;
a node has at most one neighbour per offset), an int32 neighbour and an int8 value per slot
(``-1`` times the number of elements sharing the pair, 1 or 2), and an exact float32 diagonal:
about 104 bytes per unknown. Missing neighbours point at the row itself with value 0, so the
kernels have no branches. The preconditioner is a multigrid V-cycle with Galerkin coarse
operators ``P^T A P`` of piecewise-constant aggregation over ``2 x 2 x 2`` blocks of grid
points (so every coarse level is a structured grid with a 27-point stencil, stored the same
way with 27 float32 slots, about 1/7 of the fine level's memory in all), ``SWEEPS`` multicolour
Gauss-Seidel sweeps before the coarse correction (colours 0..7) and as many after it (colours
7..0, so the preconditioner is symmetric), an over-relaxed coarse correction (the classical
remedy for the too-weak piecewise-constant prolongation) and a dense inverse on the coarsest
level. The colour of a node is the parity of its grid point's three coordinates; nodes of one
colour are never coupled (every coupling joins neighbouring grid points), every level is
numbered colour by colour, and each colour is relaxed in parallel (numba ``prange``). The
cycle runs in float32, CG in float64. The kernels are compiled by numba (cached on disk).
Integer entries make the stored fine matrix exact in every precision, so the solution is that
of the float64 system.
"""

from __future__ import annotations

import numba
import numpy as np

# Coarse correction scale of the V-cycle (unsmoothed aggregation under-corrects by about 2).
COARSE_SCALE = 1.5
# Solve the coarsest level directly once it has at most this many unknowns.
DIRECT_SIZE = 512
# Coarse-grid corrections per level (1: V-cycle, 2: W-cycle) and smoothing sweeps.
CYCLE_GAMMA = 1
SWEEPS = 2

_CORNERS = np.array([((c >> 2) & 1, (c >> 1) & 1, c & 1) for c in range(8)], dtype=np.int64)


def _fine_tables(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Slot of each corner pair (-1 for the diagonal and the zero entries) and ``12 K`` rounded."""
    k12 = np.rint(12.0 * k).astype(np.int64)
    if np.abs(12.0 * k - k12).max() > 1e-9:  # pragma: no cover - the trilinear cube matrix
        raise RuntimeError("12 K is not an integer matrix")
    keys = sorted(
        {
            int(((_CORNERS[b] - _CORNERS[a]) + 1) @ (9, 3, 1))
            for a in range(8)
            for b in range(8)
            if a != b and k12[a, b] != 0
        }
    )
    slot = np.full((8, 8), -1, dtype=np.int64)
    for a in range(8):
        for b in range(8):
            if a != b and k12[a, b] != 0:
                slot[a, b] = keys.index(int(((_CORNERS[b] - _CORNERS[a]) + 1) @ (9, 3, 1)))
    return slot, k12, len(keys)


@numba.njit(cache=True)
def _colour_order(zyx):  # pragma: no cover
    """Counting sort of the nodes by the parity colour of their grid point; ``order[new] = old``."""
    n = zyx.shape[0]
    colour = np.empty(n, dtype=np.int8)
    starts = np.zeros(9, dtype=np.int64)
    for i in range(n):
        c = ((zyx[i, 0] & 1) << 2) | ((zyx[i, 1] & 1) << 1) | (zyx[i, 2] & 1)
        colour[i] = c
        starts[c + 1] += 1
    for c in range(8):
        starts[c + 1] += starts[c]
    fill = starts[:8].copy()
    order = np.empty(n, dtype=np.int32)
    for i in range(n):
        c = colour[i]
        order[fill[c]] = i
        fill[c] += 1
    return order, starts


@numba.njit(cache=True)
def _assemble_fine(nodes, free_id, is_outlet, slot, k12, n_free, n_slots):  # pragma: no cover
    # A missing neighbour points at the row itself with value 0: the kernels need no branch.
    nbr = np.empty((n_free, n_slots), dtype=np.int32)
    for i in range(n_free):
        for s in range(n_slots):
            nbr[i, s] = i
    val = np.zeros((n_free, n_slots), dtype=np.int8)
    diag = np.zeros(n_free, dtype=np.float32)
    rhs = np.zeros(n_free, dtype=np.float64)
    for e in range(nodes.shape[0]):
        for a in range(8):
            fa = free_id[nodes[e, a]]
            if fa < 0:
                continue
            diag[fa] += k12[a, a]
            for b in range(8):
                s = slot[a, b]
                if s < 0:
                    continue
                nb = nodes[e, b]
                fb = free_id[nb]
                if fb >= 0:
                    nbr[fa, s] = fb
                    val[fa, s] += k12[a, b]
                elif is_outlet[nb]:
                    rhs[fa] -= k12[a, b]
    return nbr, val, diag, rhs


@numba.njit(parallel=True, cache=True)
def _matvec(nbr, val, diag, x, y):  # pragma: no cover
    for i in numba.prange(nbr.shape[0]):
        acc = diag[i] * x[i]
        for s in range(nbr.shape[1]):
            acc += val[i, s] * x[nbr[i, s]]
        y[i] = acc


@numba.njit(parallel=True, cache=True)
def _gauss_seidel(nbr, val, diag, starts, b, x, forward):  # pragma: no cover
    """One multicolour Gauss-Seidel sweep (colours 0..7, or 7..0 backward), in float32.

    Nodes of one colour (grid-point coordinate parities) are never coupled, so each colour is
    relaxed in parallel.
    """
    for t in range(8):
        c = t if forward else 7 - t
        for i in numba.prange(starts[c], starts[c + 1]):
            acc = b[i]
            for s in range(nbr.shape[1]):
                acc -= val[i, s] * x[nbr[i, s]]
            x[i] = acc / diag[i]


@numba.njit(parallel=True, cache=True)
def _residual(nbr, val, diag, b, x, r):  # pragma: no cover
    for i in numba.prange(nbr.shape[0]):
        acc = b[i] - diag[i] * x[i]
        for s in range(nbr.shape[1]):
            acc -= val[i, s] * x[nbr[i, s]]
        r[i] = acc


@numba.njit(cache=True)
def _restrict(r, agg, n_coarse):  # pragma: no cover
    rc = np.zeros(n_coarse, dtype=np.float32)
    for i in range(r.shape[0]):
        rc[agg[i]] += r[i]
    return rc


@numba.njit(parallel=True, cache=True)
def _prolong_add(x, ec, agg, scale):  # pragma: no cover
    for i in numba.prange(x.shape[0]):
        x[i] += scale * ec[agg[i]]


@numba.njit(cache=True)
def _galerkin(nbr, val, diag, agg, coarse_zyx, n_coarse):  # pragma: no cover
    """``P^T A P`` for piecewise-constant ``P``: a 27-point stencil on the coarse grid."""
    cnbr = np.empty((n_coarse, 27), dtype=np.int32)
    for i in range(n_coarse):
        for s in range(27):
            cnbr[i, s] = i
    cval = np.zeros((n_coarse, 27), dtype=np.float32)
    cdiag = np.zeros(n_coarse, dtype=np.float32)
    for i in range(nbr.shape[0]):
        ci = agg[i]
        cdiag[ci] += diag[i]
        for s in range(nbr.shape[1]):
            j = nbr[i, s]
            if val[i, s] == 0:
                continue
            cj = agg[j]
            if cj == ci:
                cdiag[ci] += val[i, s]
                continue
            key = 0
            for d in range(3):
                key = key * 3 + (coarse_zyx[cj, d] - coarse_zyx[ci, d] + 1)
            cnbr[ci, key] = cj
            cval[ci, key] += val[i, s]
    return cnbr, cval, cdiag


#: Length of the blocks of the CG reductions: each block is summed in order, then the
#: block sums in order, so a sum does not depend on the number of threads (numba's own
#: ``prange`` reductions do) and a solve gives the same bits on 1 thread or many.
_BLOCK = 1 << 14


@numba.njit(parallel=True, cache=True)
def _cg_update(x, r, p, q, alpha):  # pragma: no cover
    """``x += alpha p``, ``r -= alpha q``; returns ``||r||^2``."""
    n = x.shape[0]
    parts = np.zeros((n + _BLOCK - 1) // _BLOCK)
    for k in numba.prange(parts.shape[0]):
        acc = 0.0
        for i in range(k * _BLOCK, min(n, (k + 1) * _BLOCK)):
            x[i] += alpha * p[i]
            r[i] -= alpha * q[i]
            acc += r[i] * r[i]
        parts[k] = acc
    total = 0.0
    for k in range(parts.shape[0]):
        total += parts[k]
    return total


@numba.njit(parallel=True, cache=True)
def _dot(a, b):  # pragma: no cover
    """``a · b``, summed in fixed blocks (see :data:`_BLOCK`)."""
    n = a.shape[0]
    parts = np.zeros((n + _BLOCK - 1) // _BLOCK)
    for k in numba.prange(parts.shape[0]):
        acc = 0.0
        for i in range(k * _BLOCK, min(n, (k + 1) * _BLOCK)):
            acc += a[i] * b[i]
        parts[k] = acc
    total = 0.0
    for k in range(parts.shape[0]):
        total += parts[k]
    return total


@numba.njit(parallel=True, cache=True)
def _cg_direction(p, z, beta):  # pragma: no cover
    """``p = z + beta p``."""
    for i in numba.prange(p.shape[0]):
        p[i] = z[i] + beta * p[i]


@numba.njit(cache=True)
def _to_dense(nbr, val, diag):  # pragma: no cover
    n = nbr.shape[0]
    dense = np.zeros((n, n))
    for i in range(n):
        dense[i, i] += diag[i]
        for s in range(nbr.shape[1]):
            dense[i, nbr[i, s]] += val[i, s]
    return dense


def _aggregate(zyx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate of each node (its 2 x 2 x 2 block of grid points), the blocks, their colours.

    Returns each node's block, the blocks' coordinates and the ranges of the eight colours;
    the blocks are numbered colour by colour.
    """
    block = zyx // 2
    dims = block.max(axis=0) + 1
    flat = np.ravel_multi_index(tuple(block.T), tuple(dims))
    used = np.zeros(int(np.prod(dims)), dtype=np.int32)
    used[flat] = 1
    ids = np.cumsum(used, dtype=np.int32) - 1
    coarse_flat = np.flatnonzero(used)
    coarse_zyx = np.stack(np.unravel_index(coarse_flat, tuple(dims)), axis=1).astype(np.int32)
    order, starts = _colour_order(coarse_zyx)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size, dtype=np.int32)
    agg = rank[ids[flat]]
    return agg, coarse_zyx[order], starts


class _Hierarchy:
    """Levels ``(nbr, val, diag)``, colour ranges and aggregates, the coarsest level's inverse."""

    def __init__(self, nbr, val, diag, zyx, starts):
        self.levels = [(nbr, val, diag)]
        self.starts = [starts]
        self.aggregates = []
        while self.levels[-1][0].shape[0] > DIRECT_SIZE:
            agg, zyx, starts = _aggregate(zyx)
            n_coarse = zyx.shape[0]
            if n_coarse >= self.levels[-1][0].shape[0]:  # pragma: no cover - cannot coarsen
                break
            self.aggregates.append(agg)
            self.starts.append(starts)
            self.levels.append(_galerkin(*self.levels[-1], agg, zyx, n_coarse))
        self.coarsest_inverse = np.linalg.inv(_to_dense(*self.levels[-1]))

    def nbytes(self) -> int:
        """Memory of the stored levels and aggregates."""
        total = sum(a.nbytes for level in self.levels for a in level)
        return total + sum(a.nbytes for a in self.aggregates) + self.coarsest_inverse.nbytes

    def vcycle(self, b: np.ndarray, level: int = 0) -> np.ndarray:
        """One symmetric cycle from a zero initial guess: ``M^-1 b`` (float32)."""
        if level == len(self.levels) - 1:
            return (self.coarsest_inverse @ b).astype(np.float32)
        nbr, val, diag = self.levels[level]
        starts = self.starts[level]
        agg = self.aggregates[level]
        n_coarse = self.levels[level + 1][0].shape[0]
        b = np.asarray(b, dtype=np.float32)
        x = np.zeros_like(b)
        for _ in range(SWEEPS):
            _gauss_seidel(nbr, val, diag, starts, b, x, True)
        r = np.empty_like(b)
        for _ in range(CYCLE_GAMMA if level + 2 < len(self.levels) else 1):
            _residual(nbr, val, diag, b, x, r)
            rc = _restrict(r, agg, n_coarse)
            _prolong_add(x, self.vcycle(rc, level + 1), agg, COARSE_SCALE)
        del r
        for _ in range(SWEEPS):
            _gauss_seidel(nbr, val, diag, starts, b, x, False)
        return x


def solve_free(nodes, free_id, is_outlet, zyx, k, x0, tol, max_iter):
    """Solve the free block of the voxel FEM system by multigrid-preconditioned CG.

    Parameters
    ----------
    nodes : numpy.ndarray
        ``(n_elements, 8)`` int32 node numbers of each element.
    free_id : numpy.ndarray
        int32 number of each node among the free nodes, -1 for Dirichlet nodes.
    is_outlet : numpy.ndarray
        bool, the Dirichlet nodes with ``u = 1``.
    zyx : numpy.ndarray
        ``(n_free, 3)`` int32 grid-point coordinates of the free nodes (overwritten).
    k : numpy.ndarray
        The ``8 x 8`` element matrix.
    x0 : numpy.ndarray
        Initial guess for the free values (float64, overwritten).
    tol : float
        CG stops when ``||b - A x|| < tol ||b||``.
    max_iter : int
        Iteration limit.

    Returns
    -------
    tuple
        ``(x, iterations, converged, relative_residual)``.
    """
    slot, k12, n_slots = _fine_tables(k)
    n_free = int(zyx.shape[0])
    # Number the free nodes colour by colour (multicolour Gauss-Seidel in contiguous ranges).
    order, starts = _colour_order(zyx)
    rank = np.empty_like(order)
    rank[order] = np.arange(n_free, dtype=np.int32)
    free_id = np.where(free_id >= 0, rank[np.maximum(free_id, 0)], -1).astype(free_id.dtype)
    zyx[:] = zyx[order]  # in place: the caller's copy is not kept twice
    nbr, val, diag, b = _assemble_fine(nodes, free_id, is_outlet, slot, k12, n_free, n_slots)
    del free_id, rank
    hierarchy = _Hierarchy(nbr, val, diag, zyx, starts)
    del zyx
    x0[:] = x0[order]
    x = x0
    q = np.empty_like(x)
    _matvec(nbr, val, diag, x, q)
    r = b - q
    norm_b = float(np.linalg.norm(b))
    del b  # only its norm is needed from here on
    if norm_b == 0.0:
        return np.zeros(n_free), 0, True, 0.0
    threshold = tol * norm_b
    norm_r = float(np.linalg.norm(r))
    iterations = 0
    z = hierarchy.vcycle(r)
    p = z.astype(np.float64)
    rz = _dot(r, z)
    while norm_r >= threshold and iterations < max_iter:
        _matvec(nbr, val, diag, p, q)
        alpha = rz / _dot(p, q)
        norm_r = float(np.sqrt(_cg_update(x, r, p, q, alpha)))
        iterations += 1
        if norm_r < threshold:
            break
        z = hierarchy.vcycle(r)
        rz_new = _dot(r, z)
        _cg_direction(p, z, rz_new / rz)
        rz = rz_new
    converged = norm_r < threshold
    del hierarchy, nbr, val, diag, r, p, z
    q[order] = x
    return q, iterations, converged, norm_r / norm_b
