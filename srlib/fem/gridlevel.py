"""The fine level of the multigrid on the voxel grid, without a stored matrix (:mod:`srlib.fem`).

Contract. :func:`grid_system` turns the element-node table of a voxel mesh into a
:class:`GridLevel` (``12 A x`` on the padded vertex grid with a mask of regular elements, the
others element by element; Chebyshev smoothing) above the matrix :class:`Hierarchy` of its
first coarse level, summed straight from the elements.
"""

from __future__ import annotations

import numba
import numpy as np

from srlib.fem.hierarchy import Hierarchy
from srlib.fem.kernels import (
    COARSE_SCALE,
    GRID_COARSE_SWEEPS,
    aggregate,
    layer_pair,
    prolong_add,
)
from srlib.fem.mesh import voxel_layers


@numba.njit(parallel=True, fastmath=True, cache=True)
def _grid_rows(m, f, x, y):  # pragma: no cover
    """``y = 12 A x`` over the regular elements at the grid's main nodes, times the free mask.

    ``x``, ``y`` (the grid part of the combined vectors), ``m`` and ``f`` are 3D arrays over
    the padded vertex grid (one layer of zeros around the image's ``(nz+1, ny+1, nx+1)``
    points); ``m`` is 1 at the grid point of a regular element's lowest corner, ``f`` 1 at
    free main nodes. Each element contributes to its corner ``a`` ``4 x_a`` minus the values
    at its three face-diagonal and its body-diagonal corners (``12 K``). Every point is
    written by one thread and the loop runs along contiguous rows of ``x``: it vectorises.
    """
    pz, py, px = x.shape
    four = x.dtype.type(4.0)  # a float64 literal would turn float32 rows into float64 ones
    for z in numba.prange(pz):
        for yy in range(py):
            out = y[z, yy]
            if z == 0 or z == pz - 1 or yy == 0 or yy == py - 1:
                out[:] = 0.0  # the padding layer
                continue
            a_mm, a_m0, a_mp = x[z - 1, yy - 1], x[z - 1, yy], x[z - 1, yy + 1]
            a_0m, a_00, a_0p = x[z, yy - 1], x[z, yy], x[z, yy + 1]
            a_pm, a_p0, a_pp = x[z + 1, yy - 1], x[z + 1, yy], x[z + 1, yy + 1]
            m00, m01, m10, m11 = m[z - 1, yy - 1], m[z - 1, yy], m[z, yy - 1], m[z, yy]
            free = f[z, yy]
            out[0] = 0.0
            out[px - 1] = 0.0
            for i in range(1, px - 1):
                c = four * a_00[i]
                t = m00[i - 1] * (c - (a_0m[i - 1] + a_m0[i - 1] + a_mm[i] + a_mm[i - 1]))
                t += m00[i] * (c - (a_0m[i + 1] + a_m0[i + 1] + a_mm[i] + a_mm[i + 1]))
                t += m01[i - 1] * (c - (a_0p[i - 1] + a_m0[i - 1] + a_mp[i] + a_mp[i - 1]))
                t += m01[i] * (c - (a_0p[i + 1] + a_m0[i + 1] + a_mp[i] + a_mp[i + 1]))
                t += m10[i - 1] * (c - (a_0m[i - 1] + a_p0[i - 1] + a_pm[i] + a_pm[i - 1]))
                t += m10[i] * (c - (a_0m[i + 1] + a_p0[i + 1] + a_pm[i] + a_pm[i + 1]))
                t += m11[i - 1] * (c - (a_0p[i - 1] + a_p0[i - 1] + a_pp[i] + a_pp[i - 1]))
                t += m11[i] * (c - (a_0p[i + 1] + a_p0[i + 1] + a_pp[i] + a_pp[i + 1]))
                out[i] = free[i] * t


@numba.njit(parallel=True, cache=True)
def _element_matvec(elements, layers, x, y):  # pragma: no cover
    """``y += 12 K x_e`` over the irregular elements (their nodes in the combined numbering).

    ``elements[a, e]`` is corner ``a`` of element ``e`` (one table, int32 where the numbers
    fit, for float32 and float64 vectors alike: engineering notes of the book). The elements
    are in raster order of their voxels, ``layers[z]`` the first one in voxel
    layer ``z``; pairs of voxel layers run in parallel (:func:`layer_pair`): two sweeps
    through memory in increasing node order, where sorting them by voxel parity would make
    eight (slower: engineering notes of the book).
    Every node sums its elements in raster order on any number of threads. Row ``a`` of
    ``12 K`` is 4 on the diagonal and -1 at the face-diagonal corners ``a ^ 3``, ``a ^ 5``,
    ``a ^ 6`` and the body-diagonal one ``a ^ 7``. Dirichlet corners point at the sink, the
    last entry, where ``x`` is 0 and ``y`` is not written.
    """
    sink = y.shape[0] - 1
    four = x.dtype.type(4.0)
    for half in range(2):
        for j in numba.prange((layers.shape[0] + 2) // 4):
            first, stop = layer_pair(layers, half, j)
            for e in range(first, stop):
                n0, n1 = np.int64(elements[0, e]), np.int64(elements[1, e])
                n2, n3 = np.int64(elements[2, e]), np.int64(elements[3, e])
                n4, n5 = np.int64(elements[4, e]), np.int64(elements[5, e])
                n6, n7 = np.int64(elements[6, e]), np.int64(elements[7, e])
                x0, x1, x2, x3 = x[n0], x[n1], x[n2], x[n3]
                x4, x5, x6, x7 = x[n4], x[n5], x[n6], x[n7]
                # many elements share the sink: no thread writes it. The eight rows are
                # unrolled: a loop over the corners is slower (engineering notes)
                if n0 != sink:
                    y[n0] += four * x0 - (x3 + x5 + x6 + x7)
                if n1 != sink:
                    y[n1] += four * x1 - (x2 + x4 + x7 + x6)
                if n2 != sink:
                    y[n2] += four * x2 - (x1 + x7 + x4 + x5)
                if n3 != sink:
                    y[n3] += four * x3 - (x0 + x6 + x5 + x4)
                if n4 != sink:
                    y[n4] += four * x4 - (x7 + x1 + x2 + x3)
                if n5 != sink:
                    y[n5] += four * x5 - (x6 + x0 + x3 + x2)
                if n6 != sink:
                    y[n6] += four * x6 - (x5 + x3 + x0 + x1)
                if n7 != sink:
                    y[n7] += four * x7 - (x4 + x2 + x1 + x0)


@numba.njit(parallel=True, cache=True)
def _chebyshev_step(x, d, r, b, q, inv_diag, c_old, c_new, start):  # pragma: no cover
    """``r = b - q``, ``d = c_old d + c_new D^-1 r``, ``x += d``: one pass over the vectors.

    ``start`` 1: the first step (``d`` taken as 0, not read); 2: the first step from
    ``x = 0`` (``r = b``, ``x = d``; ``q`` and ``x`` not read).
    """
    c_old, c_new = x.dtype.type(c_old), x.dtype.type(c_new)  # the vectors' precision
    for i in numba.prange(x.shape[0]):
        ri = b[i] if start == 2 else b[i] - q[i]
        r[i] = ri
        di = c_new * inv_diag[i] * ri
        if start == 0:
            di = c_old * d[i] + di
        d[i] = di
        if start == 2:
            x[i] = d[i]
        else:
            x[i] += d[i]


@numba.njit(parallel=True, cache=True)
def _restrict_difference(b, q, agg, rc, plane, n_grid):  # pragma: no cover
    """``rc = P^T (b - q)``, the restricted residual, without storing ``b - q``.

    The aggregates are 2 x 2 x 2 blocks of grid points, so the padded grid planes ``2k + 1``
    and ``2k + 2`` (``plane`` entries each) feed coarse plane ``k`` only: pairs of planes run
    in parallel, then the nodes after the grid in order. Every aggregate sums its entries in
    index order on any number of threads.
    """
    for a in numba.prange(rc.shape[0]):
        rc[a] = 0.0
    for k in numba.prange(n_grid // plane // 2):
        for i in range((2 * k + 1) * plane, min((2 * k + 3) * plane, n_grid)):
            a = agg[i]
            if a >= 0:
                rc[a] += b[i] - q[i]
    for i in range(n_grid, b.shape[0]):
        a = agg[i]
        if a >= 0:
            rc[a] += b[i] - q[i]


#: Degree of the Chebyshev smoother of the fine level (before and after the coarse correction)
#: and the part of D^-1 A's spectrum it damps: [LAMBDA_MAX / CHEBYSHEV_RATIO, LAMBDA_MAX].
CHEBYSHEV_DEGREE = 2
CHEBYSHEV_RATIO = 4.0
#: An upper bound of the spectrum of D^-1 A on any voxel domain, reached on the full grid. The
#: eigenvalues of an element's ``12 K`` are 0, 2, 4 (three times) and 6 (three times), so
#: ``x^T (12 A) x = sum_e x_e^T (12 K) x_e <= 6 sum_e |x_e|^2 = 6 sum_i n_i x_i^2`` with ``n_i``
#: the elements at node ``i``, and ``12 D_ii = 4 n_i``: the Rayleigh quotient of ``A`` over
#: ``D`` is at most 1.5, on the free nodes too (a principal submatrix). Power iteration on a
#: 48³ χ² image gives 1.4965 (``tests/test_multigrid.py`` checks the bound).
LAMBDA_MAX = 1.5


class GridLevel:
    """The fine level on the voxel grid: the operator without a stored matrix, Chebyshev smoothing.

    Free nodes are numbered "combined": the main node of each grid point (its first node, the
    only one under ``"vertex"`` and away from edge/corner contacts under ``"face"``) at its
    index in the padded vertex grid, the other nodes after the grid, and one sink for the
    Dirichlet nodes at the end. An element whose eight corners are all main nodes is
    *regular* and applied by :func:`_grid_rows`; the others (around split grid points) are
    kept as an element table and applied one by one (:func:`_element_matvec`).
    """

    def __init__(self, grid_shape, shape, voxels, nodes, comb_node, is_main, n_comb, diag_comb,
                 agg_comb, coarse):
        self.grid_shape = grid_shape
        self.n_grid = int(np.prod(grid_shape))
        self.n = n_comb
        # uint8 masks: m at the lowest corner of each regular element, f at free main nodes
        self.m = np.zeros(grid_shape, dtype=np.uint8)
        self.f = np.zeros(grid_shape, dtype=np.uint8)
        self.elements, self.element_layers = _grid_masks(voxels, nodes, is_main, comb_node,
                                                         tuple(int(n) for n in shape),
                                                         self.m.reshape(-1), self.f.reshape(-1),
                                                         grid_shape)
        self.inv_diag = np.zeros(n_comb, dtype=np.float32)
        nonzero = diag_comb > 0
        self.inv_diag[nonzero] = 1.0 / diag_comb[nonzero]
        del nonzero
        self.agg = agg_comb
        self.coarse = coarse
        self._b = np.empty(n_comb, dtype=np.float32)
        self._x = np.empty(n_comb, dtype=np.float32)
        self._r = np.empty(n_comb, dtype=np.float32)
        self._d = np.empty(n_comb, dtype=np.float32)
        self._q = np.empty(n_comb, dtype=np.float32)
        self._set_chebyshev(LAMBDA_MAX)

    def matvec(self, x, y):
        """``y = 12 A x`` (free rows; zero at non-free grid points)."""
        shape = self.grid_shape
        _grid_rows(self.m, self.f, x[:self.n_grid].reshape(shape), y[:self.n_grid].reshape(shape))
        y[self.n_grid:] = 0.0
        _element_matvec(self.elements, self.element_layers, x, y)
        return y

    def _set_chebyshev(self, lam_max):
        lam_min = lam_max / CHEBYSHEV_RATIO
        self.theta = 0.5 * (lam_max + lam_min)
        self.delta = 0.5 * (lam_max - lam_min)

    def _smooth(self, x, b, from_zero):
        """``CHEBYSHEV_DEGREE`` Chebyshev steps on ``12 A x = b`` (``x`` updated in place)."""
        r, d, q = self._r, self._d, self._q
        if not from_zero:
            self.matvec(x, q)
        _chebyshev_step(x, d, r, b, q, self.inv_diag, 0.0, 1.0 / self.theta,
                        2 if from_zero else 1)
        sigma = self.theta / self.delta
        rho = 1.0 / sigma
        for _ in range(CHEBYSHEV_DEGREE - 1):
            self.matvec(d, q)
            rho_new = 1.0 / (2.0 * sigma - rho)
            _chebyshev_step(x, d, r, r, q, self.inv_diag, rho_new * rho,
                            2.0 * rho_new / self.delta, 0)
            rho = rho_new

    @property
    def rhs_vector(self) -> np.ndarray:
        """The float32 right-hand side ``b`` that :meth:`cycle_rhs` reads (filled by ``pcg``)."""
        return self._b

    def cycle_rhs(self) -> np.ndarray:
        """One symmetric cycle from a zero initial guess: ``M^-1 b``, ``b`` in :attr:`rhs_vector`.

        The result (float32) is a work vector of the level, overwritten by the next cycle.
        """
        x = self._x
        self._smooth(x, self._b, True)
        _restrict_difference(self._b, self.matvec(x, self._q), self.agg, self.coarse.rhs(0),
                             self.grid_shape[1] * self.grid_shape[2], self.n_grid)
        prolong_add(x, self.coarse.cycle(0), self.agg, COARSE_SCALE)
        self._smooth(x, self._b, False)
        return x


def grid_system(nodes, free_id, is_outlet, zyx, k12, shape, voxels, is_main):
    """The fine level and its hierarchy, the combined numbers and the right-hand side.

    Returns the :class:`GridLevel` (its coarse :class:`Hierarchy` inside), the combined
    number of each free node and the right-hand side ``12 b`` by free node.
    """
    n_free = int(zyx.shape[0])
    # The fine matrix is never stored: its diagonal, the right-hand side and the first coarse
    # level P^T A P come straight from the elements.
    agg, coarse_zyx, coarse_starts = aggregate(zyx)
    layers = voxel_layers(voxels, shape)
    n_coarse = coarse_zyx.shape[0]
    # allocated by NumPy (huge pages), filled by the kernel
    diag, b = np.zeros(n_free, dtype=np.float32), np.zeros(n_free)
    coarse_ops = (np.empty((n_coarse, 27), dtype=np.int32),
                  np.zeros((n_coarse, 27), dtype=np.float32), np.zeros(n_coarse, dtype=np.float32))
    _assemble_coarse(nodes, free_id, is_outlet, k12, _coupling_tables(k12), agg, voxels,
                     tuple(int(n) for n in shape), layers, (diag, b, *coarse_ops))
    del layers
    coarse = Hierarchy(*coarse_ops, coarse_zyx, coarse_starts,
                        first_sweeps=GRID_COARSE_SWEEPS)
    del coarse_ops, coarse_zyx, coarse_starts

    # Combined numbering of the free nodes: main nodes at their padded grid index, the others
    # after the grid; every Dirichlet node at the sink n_comb.
    grid_shape = tuple(n + 3 for n in shape)
    n_grid = int(np.prod(grid_shape))
    index = np.int32 if n_grid + n_free < np.iinfo(np.int32).max else np.int64
    comb = np.empty(n_free, dtype=index)
    comb_node = np.empty(free_id.shape[0], dtype=index)
    # n_comb: the vectors' length; the last entry is the sink of the Dirichlet nodes
    n_comb = _combined_numbering(free_id, is_main, zyx, grid_shape[1], grid_shape[2], n_grid,
                                 comb, comb_node) + 1
    diag_comb = np.zeros(n_comb, dtype=np.float32)
    diag_comb[comb] = diag
    agg_comb = np.full(n_comb, -1, dtype=np.int32)
    agg_comb[comb] = agg
    del agg, diag
    level = GridLevel(grid_shape, shape, voxels, nodes, comb_node, is_main, n_comb, diag_comb,
                       agg_comb, coarse)
    del comb_node, diag_comb, agg_comb
    return level, comb, b


def _coupling_tables(k12):
    """What :func:`_assemble_coarse` adds per element: the coupled corner pairs, by parity.

    Returns the corner pairs ``(a, b)``, ``a != b``, that ``12 K`` couples and their entries
    (for elements with a Dirichlet corner), and per parity ``p`` of an element's voxel
    (``(z & 1) << 2 | (y & 1) << 1 | x & 1``) the entries of ``P^T (12 K) P`` between its
    blocks (for elements with eight free corners): corner ``a`` lies in the block at offset
    ``a & p`` from the element's lowest block, the block of corner ``a & p`` itself. Rows
    ``(u, v, entry)`` with ``u == v`` add to the diagonal; zero sums are left out (under
    ``p = 0`` all eight corners share one block and add nothing).
    """
    a, b = np.nonzero(k12 - np.diag(np.diag(k12)))
    pairs = a.astype(np.int64), b.astype(np.int64), k12[a, b].astype(np.int64)
    entries = np.zeros((8, 64, 3), dtype=np.int64)
    counts = np.zeros(8, dtype=np.int64)
    corner = np.arange(8)
    for p in range(8):
        sums = np.zeros((8, 8), dtype=np.int64)
        np.add.at(sums, ((corner & p)[:, None], (corner & p)[None, :]), k12.astype(np.int64))
        u, v = np.nonzero(sums)
        counts[p] = u.size
        entries[p, :u.size] = np.stack([u, v, sums[u, v]], axis=1)
    return pairs, (entries, counts)


@numba.njit(cache=True)
def _add_free_element(free, p, k12, agg, parity, diag, cnbr, cval, cdiag):  # pragma: no cover
    """Add an element with eight free corners (``free``) of voxel parity ``p``."""
    entries, counts = parity
    for a in range(8):
        diag[free[a]] += k12[a, a]
    for t in range(counts[p]):
        u, v, w = entries[p, t, 0], entries[p, t, 1], entries[p, t, 2]
        cu = agg[free[u]]
        if u == v:
            cdiag[cu] += w
            continue
        s = 9 * ((v >> 2) - (u >> 2)) + 3 * (((v >> 1) & 1) - ((u >> 1) & 1)) + (v & 1) - (u & 1)
        cnbr[cu, s + 13] = agg[free[v]]
        cval[cu, s + 13] += w


@numba.njit(parallel=True, cache=True)
def _assemble_coarse(nodes, free_id, is_outlet, k12, tables, agg, voxels, shape, layers,
                     out):  # pragma: no cover
    """The fine diagonal and right-hand side, and ``P^T A P``, summed element by element.

    The same numbers as :func:`~srlib.fem.kernels.assemble_fine` followed by
    :func:`~srlib.fem.kernels.galerkin`, without the
    fine matrix (about 100 bytes an unknown), into ``out``: zeroed ``diag``, ``rhs``,
    ``cval``, ``cdiag`` and an unset ``cnbr``. ``layers[z]`` is the first element in voxel
    layer ``z`` (elements in raster order, ``voxels`` their flat index in an image of
    ``shape``). Pairs of voxel layers (:func:`layer_pair`) touch disjoint grid planes and
    coarse planes (``2j, 2j + 1`` for layers ``4j, 4j + 1``), so they are summed in parallel;
    every entry is a sum of small integers, exact in float32 in any order. A corner's block
    is half its grid point (:func:`srlib.fem.kernels.aggregate`), so the 27-point slot of a
    coupling is the difference of the two blocks' raster keys ``9 z + 3 y + x``, plus 13.
    An element with eight free corners adds its parity's block entries
    (:func:`_coupling_tables`, :func:`_add_free_element`); one with a Dirichlet corner visits
    the corner pairs that ``12 K`` couples.
    """
    diag, rhs, cnbr, cval, cdiag = out
    (pair_a, pair_b, pair_k), parity = tables
    ny, nx = shape[1], shape[2]
    for i in numba.prange(cnbr.shape[0]):
        for s in range(27):
            cnbr[i, s] = i
    for half in range(2):
        for j in numba.prange((layers.shape[0] + 2) // 4):
            first, stop = layer_pair(layers, half, j)
            free = np.empty(8, dtype=np.int64)
            cagg = np.empty(8, dtype=np.int64)
            key = np.empty(8, dtype=np.int64)
            outlet = np.empty(8, dtype=np.bool_)
            for e in range(first, stop):
                z, rest = divmod(voxels[e], ny * nx)
                y, x = divmod(rest, nx)
                all_free = True
                for a in range(8):
                    free[a] = free_id[nodes[e, a]]
                    all_free = all_free and free[a] >= 0
                if all_free:
                    p = (z & 1) << 2 | (y & 1) << 1 | (x & 1)
                    _add_free_element(free, p, k12, agg, parity, diag, cnbr, cval, cdiag)
                    continue
                # a Dirichlet corner: free number (-1, with ``outlet`` where u = 1),
                # aggregate and block key of every corner, then the coupled pairs
                for a in range(8):
                    outlet[a] = is_outlet[nodes[e, a]]
                    fa = free[a]
                    if fa >= 0:
                        cagg[a] = agg[fa]
                        diag[fa] += k12[a, a]
                        cdiag[cagg[a]] += k12[a, a]
                    key[a] = (9 * ((z + ((a >> 2) & 1)) >> 1) + 3 * ((y + ((a >> 1) & 1)) >> 1)
                              + ((x + (a & 1)) >> 1))
                for q in range(pair_a.shape[0]):
                    a, b, kab = pair_a[q], pair_b[q], pair_k[q]
                    fa = free[a]
                    if fa < 0:
                        continue
                    if free[b] < 0:
                        if outlet[b]:
                            rhs[fa] -= kab
                        continue
                    ca, cb = cagg[a], cagg[b]
                    if cb == ca:
                        cdiag[ca] += kab
                        continue
                    s = key[b] - key[a] + 13
                    cnbr[ca, s] = cb
                    cval[ca, s] += kab


@numba.njit(cache=True)
def _combined_numbering(free_id, is_main, zyx, py, px, n_grid, comb, comb_node):  # pragma: no cover
    """Fill ``comb`` (per free node) and ``comb_node`` (per node); return the vector length."""
    n_comb = n_grid
    for i in range(free_id.shape[0]):
        f = free_id[i]
        if f < 0:
            comb_node[i] = -1
            continue
        if is_main[i]:
            c = ((zyx[f, 0] + 1) * py + zyx[f, 1] + 1) * px + zyx[f, 2] + 1
        else:
            c = n_comb
            n_comb += 1
        comb[f] = c
        comb_node[i] = c
    for i in range(free_id.shape[0]):
        if comb_node[i] < 0:
            comb_node[i] = n_comb  # the sink
    return n_comb


@numba.njit(cache=True)
def _grid_masks(voxels, nodes, is_main, comb_node, shape, m, f, grid_shape):  # pragma: no cover
    """Fill the masks of :class:`GridLevel`; return its irregular elements, by voxel layer.

    ``m`` (flat) gets 1 at the padded grid point of the lowest corner of each regular element
    (all eight corners main nodes), ``f`` (flat) 1 at each free main node. The other elements
    are returned as columns of combined node numbers (``(8, n)``, corner by corner) in raster
    order (``voxels`` is), with the first one of each voxel layer (``nz + 1`` entries).
    """
    nz, ny, nx = shape
    py, px = grid_shape[1], grid_shape[2]
    n_grid = m.shape[0]
    for i in range(comb_node.shape[0]):
        if comb_node[i] < n_grid:
            f[comb_node[i]] = 1
    irregular = np.zeros(nodes.shape[0], dtype=np.bool_)
    layers = np.zeros(nz + 1, dtype=np.int64)
    for e in range(nodes.shape[0]):
        z, rest = divmod(voxels[e], ny * nx)
        y, x = divmod(rest, nx)
        regular = True
        for a in range(8):
            regular = regular and is_main[nodes[e, a]]
        if regular:
            m[((z + 1) * py + y + 1) * px + x + 1] = 1
        else:
            irregular[e] = True
            layers[z + 1] += 1
    for z in range(nz):
        layers[z + 1] += layers[z]
    elements = np.empty((8, layers[nz]), dtype=comb_node.dtype)
    k = 0
    for e in range(nodes.shape[0]):
        if irregular[e]:
            for a in range(8):
                elements[a, k] = comb_node[nodes[e, a]]
            k += 1
    return elements, layers
