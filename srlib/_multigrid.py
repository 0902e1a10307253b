"""Lean solver for the voxel FEM of :mod:`srlib.transport`: CG with a geometric multigrid.

Contract. :func:`solve_free` takes the element-node table of a voxel mesh (one unit-cube
trilinear element per voxel, corner ``l`` at offset ``((l >> 2) & 1, (l >> 1) & 1, l & 1)``),
the node numbering of its free (non-Dirichlet) nodes and the outlet nodes (``u = 1``; inlet
nodes are ``u = 0``), and returns the free nodal values solving ``A_ff u_f = -A_fo 1`` to the
relative residual ``tol``, with the number of CG iterations. Nothing else is imported by other
modules; :mod:`srlib.transport` owns the mesh and the physics.

Method. CG (float64) preconditioned by a symmetric multigrid cycle (float32). Every element
matrix is the same ``K`` whose entries are ``1/3`` (diagonal), ``0`` (corners on a common edge)
and ``-1/12`` (the others), so ``12 A`` has small integer entries, exact in every precision.

*Fine level, on the voxel grid, without a stored matrix* (:mod:`srlib._gridlevel`). The free
nodes are numbered "combined": the main node of a grid point (its first node: the only one
under ``"vertex"``, and away from edge and corner contacts under ``"face"``) sits at the grid
point's index in the padded vertex grid; the few other nodes follow the grid. An element whose
eight corners are main nodes is *regular*: ``A x`` over those is one pass along contiguous
rows of the grid with a uint8 mask of the regular elements (:func:`_grid_rows`, vectorised,
about ten times faster than gathering 20 neighbours per row from an ELLPACK matrix); the other
elements (around split grid points: 6 % of the solid's elements and 13 % of the pore's on a
128³ χ² image) are applied one by one from their node table (:func:`_element_matvec`). The
smoother is Chebyshev of degree ``CHEBYSHEV_DEGREE`` in ``D^-1 A`` on
``[LAMBDA_MAX / CHEBYSHEV_RATIO, LAMBDA_MAX]`` (constants of that module), with the exact bound
``LAMBDA_MAX = 1.5``
from the element matrix (no eigenvalue estimate needed), the same polynomial before and after
the coarse correction (so the cycle is symmetric).

*Coarse levels, matrices* (:class:`_Hierarchy`). Galerkin operators ``P^T A P`` of
piecewise-constant aggregation over ``2 x 2 x 2`` blocks of grid points: every coarse level is
a structured grid with a 27-point stencil, stored in ELLPACK form (an int32 neighbour and a
value per slot, the value in the narrowest integer type that holds the level's entries
exactly, :func:`_narrow`: int8 on the first coarse level). The first one is summed straight
from the elements (:func:`_assemble_coarse`): the fine matrix is never stored. ``SWEEPS``
multicolour Gauss-Seidel sweeps (``GRID_COARSE_SWEEPS`` on the first coarse level under the
grid level) before the coarse correction (colours 0..7) and after it (colours 7..0);
the colour of a node is the parity of its grid point's coordinates, nodes of one colour are
never coupled, each level is numbered colour by colour and each colour relaxed in parallel
(numba ``prange``). The coarse correction is over-relaxed by ``COARSE_SCALE`` (the classical
remedy for the too-weak piecewise-constant prolongation); the coarsest level is inverted.

Small systems (at most ``DIRECT_SIZE`` unknowns), and callers that give no grid, use the
matrix hierarchy from the fine level down (:func:`_assemble_fine`: ELLPACK with 20 slots of an
int32 neighbour and an int8 value, about 104 bytes an unknown). Every parallel loop writes
each entry from one thread and the CG reductions are summed in fixed blocks, so a solve gives
the same bits on one thread or many. The kernels are compiled by numba (cached on disk).
"""

from __future__ import annotations

import numba
import numpy as np

# Coarse correction scale of the V-cycle (unsmoothed aggregation under-corrects by about 2).
COARSE_SCALE = 1.5
# Solve the coarsest level directly once it has at most this many unknowns.
DIRECT_SIZE = 512
# Coarse-grid corrections per level (1: V-cycle, 2: W-cycle) and the Gauss-Seidel sweeps
# before and after each correction on the matrix levels.
CYCLE_GAMMA = 1
SWEEPS = 2
# Sweeps on the first coarse level under the grid level (the largest matrix level, whose
# sweeps cost most): one instead of SWEEPS took a 128³ χ² solid from 24 to 25 CG iterations
# and its solve from 1.93-2.28 s to 1.67-1.90 s; the pore phase 37 -> 40 iterations, same time.
GRID_COARSE_SWEEPS = 1

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


# The three sweeps over a level's rows may reassociate each row's sum (``fastmath``: the
# 20 or 27 products are added in a vectorised order); a row's result still does not depend on
# the number of threads.
@numba.njit(parallel=True, fastmath=True, cache=True)
def _matvec(nbr, val, diag, x, y):  # pragma: no cover
    for i in numba.prange(nbr.shape[0]):
        acc = diag[i] * x[i]
        for s in range(nbr.shape[1]):
            acc += val[i, s] * x[nbr[i, s]]
        y[i] = acc


@numba.njit(parallel=True, fastmath=True, cache=True)
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


@numba.njit(parallel=True, fastmath=True, cache=True)
def _residual(nbr, val, diag, b, x, r):  # pragma: no cover
    for i in numba.prange(nbr.shape[0]):
        acc = b[i] - diag[i] * x[i]
        for s in range(nbr.shape[1]):
            acc -= val[i, s] * x[nbr[i, s]]
        r[i] = acc


@numba.njit(cache=True)
def _restrict(r, agg, rc):  # pragma: no cover
    """``rc = P^T r`` (into ``rc``); entries whose aggregate is -1 (not free nodes) are skipped."""
    rc[:] = 0.0
    for i in range(r.shape[0]):
        a = agg[i]
        if a >= 0:
            rc[a] += r[i]


@numba.njit(parallel=True, cache=True)
def _prolong_add(x, ec, agg, scale):  # pragma: no cover
    """``x += scale P ec``; entries whose aggregate is -1 are left as they are."""
    for i in numba.prange(x.shape[0]):
        a = agg[i]
        if a >= 0:
            x[i] += scale * ec[a]


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


@numba.njit(cache=True)
def _aggregate(zyx):  # pragma: no cover
    """Aggregate of each node (its 2 x 2 x 2 block of grid points), the blocks, their colours.

    Returns each node's block, the blocks' coordinates and the ranges of the eight colours;
    the blocks are numbered colour by colour (parity of the block's coordinates), each colour
    in raster order.
    """
    dz, dy, dx = 0, 0, 0
    for i in range(zyx.shape[0]):
        dz = max(dz, zyx[i, 0] // 2 + 1)
        dy = max(dy, zyx[i, 1] // 2 + 1)
        dx = max(dx, zyx[i, 2] // 2 + 1)
    ids = np.full(dz * dy * dx, -1, dtype=np.int32)
    for i in range(zyx.shape[0]):
        ids[((zyx[i, 0] // 2) * dy + zyx[i, 1] // 2) * dx + zyx[i, 2] // 2] = 0
    starts = np.zeros(9, dtype=np.int64)
    for flat in range(ids.size):
        if ids[flat] == 0:
            z, rest = divmod(flat, dy * dx)
            y, x = divmod(rest, dx)
            starts[((z & 1) << 2 | (y & 1) << 1 | (x & 1)) + 1] += 1
    for c in range(8):
        starts[c + 1] += starts[c]
    fill = starts[:8].copy()
    coarse_zyx = np.empty((starts[8], 3), dtype=np.int32)
    for flat in range(ids.size):
        if ids[flat] == 0:
            z, rest = divmod(flat, dy * dx)
            y, x = divmod(rest, dx)
            c = (z & 1) << 2 | (y & 1) << 1 | (x & 1)
            ids[flat] = fill[c]
            coarse_zyx[fill[c], 0], coarse_zyx[fill[c], 1], coarse_zyx[fill[c], 2] = z, y, x
            fill[c] += 1
    agg = np.empty(zyx.shape[0], dtype=np.int32)
    for i in range(zyx.shape[0]):
        agg[i] = ids[((zyx[i, 0] // 2) * dy + zyx[i, 1] // 2) * dx + zyx[i, 2] // 2]
    return agg, coarse_zyx, starts


def _narrow(nbr, val, diag):
    """The level with its off-diagonal values in the narrowest integer type that holds them.

    Every entry of ``12 A`` and of its Galerkin products is an integer (exact in float32), so
    the cast is exact. The first coarse level's entries lie in [-20, 0] on any voxel domain
    (-20 between two face-adjacent 2 x 2 x 2 blocks of the full grid; a domain has a subset
    of its elements, each adding the same non-positive couplings, split nodes or not): int8,
    a quarter of the float32 bytes that every Gauss-Seidel sweep streams. Deeper levels grow
    (down to -2,820 on the fourth level of a 96³ χ² image) and take int16, or stay float32.
    """
    low, high = (float(val.min()), float(val.max())) if val.size else (0.0, 0.0)
    for dtype in (np.int8, np.int16):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return nbr, val.astype(dtype, copy=False), diag
    return nbr, val, diag


class _Hierarchy:
    """Levels ``(nbr, val, diag)``, colour ranges and aggregates, the coarsest level's inverse.

    The cycle's work vectors (right-hand side, iterate and residual of every level) are
    allocated once here, not in every cycle: a fresh 8 MB vector is a fresh set of pages to
    fault in.
    """

    def __init__(self, nbr, val, diag, zyx, starts, *, first_sweeps: int = SWEEPS):
        self.sweeps = first_sweeps  # on level 0; SWEEPS below
        self.levels = [_narrow(nbr, val, diag)]
        self.starts = [starts]
        self.aggregates = []
        while self.levels[-1][0].shape[0] > DIRECT_SIZE:
            agg, zyx, starts = _aggregate(zyx)
            n_coarse = zyx.shape[0]
            if n_coarse >= self.levels[-1][0].shape[0]:  # pragma: no cover - cannot coarsen
                break
            self.aggregates.append(agg)
            self.starts.append(starts)
            self.levels.append(_narrow(*_galerkin(*self.levels[-1], agg, zyx, n_coarse)))
        self.coarsest_inverse = np.linalg.inv(_to_dense(*self.levels[-1]))
        sizes = [level[0].shape[0] for level in self.levels]
        self._b = [np.empty(n, dtype=np.float32) for n in sizes]
        self._x = [np.empty(n, dtype=np.float32) for n in sizes]
        self._r = [np.empty(n, dtype=np.float32) for n in sizes[:-1]]

    def vcycle(self, b: np.ndarray) -> np.ndarray:
        """One symmetric cycle from a zero initial guess: ``M^-1 b`` (float32).

        The result is a work vector of the hierarchy, overwritten by the next cycle.
        """
        self._b[0][:] = b
        return self._cycle(0)

    def _cycle(self, level: int) -> np.ndarray:
        b, x = self._b[level], self._x[level]
        if level == len(self.levels) - 1:
            x[:] = self.coarsest_inverse @ b
            return x
        nbr, val, diag = self.levels[level]
        starts = self.starts[level]
        agg = self.aggregates[level]
        r, rc = self._r[level], self._b[level + 1]
        x[:] = 0.0
        sweeps = self.sweeps if level == 0 else SWEEPS
        for _ in range(sweeps):
            _gauss_seidel(nbr, val, diag, starts, b, x, True)
        for _ in range(CYCLE_GAMMA if level + 2 < len(self.levels) else 1):
            _residual(nbr, val, diag, b, x, r)
            _restrict(r, agg, rc)
            _prolong_add(x, self._cycle(level + 1), agg, COARSE_SCALE)
        for _ in range(sweeps):
            _gauss_seidel(nbr, val, diag, starts, b, x, False)
        return x


def solve_free(nodes, free_id, is_outlet, zyx, k, x0, tol, max_iter, *, shape=None,
               voxels=None, is_main=None):
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
        ``(n_free, 3)`` int32 grid-point coordinates of the free nodes.
    k : numpy.ndarray
        The ``8 x 8`` element matrix.
    x0 : numpy.ndarray
        Initial guess for the free values (float64).
    tol : float
        CG stops when ``||b - A x|| < tol ||b||``.
    max_iter : int
        Iteration limit.
    shape : tuple of int
        The image's shape; with ``voxels`` and ``is_main``, the fine level runs on the grid.
    voxels : numpy.ndarray
        Flat image index of each element's voxel.
    is_main : numpy.ndarray
        bool per node: the first node of its grid point.

    Returns
    -------
    tuple
        ``(x, iterations, converged, relative_residual)``.
    """
    slot, k12, n_slots = _fine_tables(k)
    n_free = int(zyx.shape[0])
    if n_free <= DIRECT_SIZE or shape is None:
        # No grid level: CG preconditioned by the matrix hierarchy itself (dense when small).
        nbr, val, diag, b = _assemble_fine(nodes, free_id, is_outlet, slot, k12, n_free, n_slots)
        if not b.any():
            return np.zeros(n_free), 0, True, 0.0
        order, starts = _colour_order(zyx)
        return _solve_matrix(nbr, val, diag, b, zyx, order, starts, x0, tol, max_iter)

    from srlib import _gridlevel  # the fine level builds on this module's hierarchy

    level, comb, b = _gridlevel.grid_system(nodes, free_id, is_outlet, zyx, k12, shape,
                                            voxels, is_main)
    norm_b = float(np.linalg.norm(b))
    if norm_b == 0.0:
        return np.zeros(n_free), 0, True, 0.0
    n_comb = level.n
    x = np.zeros(n_comb)
    x[comb] = x0
    r = np.zeros(n_comb)
    r[comb] = b
    del b
    q = np.empty(n_comb)
    r -= level.matvec(x, q)
    x, iterations, converged, rel = _pcg(level.matvec, level.vcycle, x, r, q, norm_b, tol,
                                         max_iter)
    return x[comb], iterations, converged, rel


def _pcg(matvec, precondition, x, r, q, norm_b, tol, max_iter):
    """Preconditioned CG from ``x`` with residual ``r`` (both updated); float64 vectors."""
    threshold = tol * norm_b
    norm_r = float(np.sqrt(_dot(r, r)))
    iterations = 0
    z = precondition(r)
    p = z.astype(np.float64)
    rz = _dot(r, z)
    while norm_r >= threshold and iterations < max_iter:
        matvec(p, q)
        alpha = rz / _dot(p, q)
        norm_r = float(np.sqrt(_cg_update(x, r, p, q, alpha)))
        iterations += 1
        if norm_r < threshold:
            break
        z = precondition(r)
        rz_new = _dot(r, z)
        _cg_direction(p, z, rz_new / rz)
        rz = rz_new
    return x, iterations, norm_r < threshold, norm_r / norm_b


def _solve_matrix(nbr, val, diag, b, zyx, order, starts, x0, tol, max_iter):
    """CG with the matrix hierarchy as preconditioner (rows renumbered colour by colour)."""
    n_free = nbr.shape[0]
    rank = np.empty_like(order)
    rank[order] = np.arange(n_free, dtype=np.int32)
    nbr = rank[nbr[order]]
    val, diag, b = val[order], diag[order], b[order]
    hierarchy = _Hierarchy(nbr, val, diag, zyx[order], starts)
    x = np.asarray(x0, dtype=np.float64)[order]
    q = np.empty_like(x)
    _matvec(nbr, val, diag, x, q)
    r = b - q
    norm_b = float(np.linalg.norm(b))

    def matvec(p, out):
        _matvec(nbr, val, diag, p, out)
        return out

    x, iterations, converged, rel = _pcg(matvec, hierarchy.vcycle, x, r, q, norm_b, tol,
                                         max_iter)
    out = np.empty_like(x)
    out[order] = x
    return out, iterations, converged, rel
