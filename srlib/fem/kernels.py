"""Matrix kernels of the solver: ELLPACK levels, Gauss-Seidel, aggregation, CG vector steps.

Contract. Numba kernels on the levels ``(nbr, val, diag)`` (an int32 neighbour and a value per
slot, the diagonal apart) and the tables of the fine element matrix; the method is described in
:mod:`srlib.fem`. Every parallel loop writes each entry from one thread and the reductions are
summed in fixed blocks (``BLOCK``), so a kernel gives the same bits on one thread or many.
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
# Sweeps on the first coarse level under the grid level: the largest matrix level, whose
# sweeps cost most, where one sweep costs a CG iteration or three and saves more time than
# they take (engineering notes of the book).
GRID_COARSE_SWEEPS = 1

CORNERS = np.array([((c >> 2) & 1, (c >> 1) & 1, c & 1) for c in range(8)], dtype=np.int64)


def fine_tables(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Slot of each corner pair (-1 for the diagonal and the zero entries) and ``12 K`` rounded."""
    k12 = np.rint(12.0 * k).astype(np.int64)
    if np.abs(12.0 * k - k12).max() > 1e-9:  # pragma: no cover - the trilinear cube matrix
        raise RuntimeError("12 K is not an integer matrix")
    keys = sorted(
        {
            int(((CORNERS[b] - CORNERS[a]) + 1) @ (9, 3, 1))
            for a in range(8)
            for b in range(8)
            if a != b and k12[a, b] != 0
        }
    )
    slot = np.full((8, 8), -1, dtype=np.int64)
    for a in range(8):
        for b in range(8):
            if a != b and k12[a, b] != 0:
                slot[a, b] = keys.index(int(((CORNERS[b] - CORNERS[a]) + 1) @ (9, 3, 1)))
    return slot, k12, len(keys)


@numba.njit(cache=True)
def colour_order(zyx):  # pragma: no cover
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
def assemble_fine(nodes, free_id, is_outlet, slot, k12, n_free, n_slots):  # pragma: no cover
    """The fine level ``12 A`` in ELLPACK form and its right-hand side ``12 b``."""
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


@numba.njit(cache=True)
def assemble_csr(nodes, free_id, boundary, k, n_free):  # pragma: no cover
    """A float element matrix summed over the elements on the free nodes, as CSR arrays.

    Returns ``(indptr, indices, data, moved)``: each row's columns sorted and unique (a grid
    point split between several nodes gives each its own column), and ``moved[i]`` the sum
    over fixed neighbours ``j`` of ``K[i, j] boundary[j]``. Used by the lift of
    :func:`srlib.fields.taus_from_fields`.
    """
    # each free corner's row gets one entry per free corner of its element
    start = np.zeros(n_free + 1, dtype=np.int64)
    for e in range(nodes.shape[0]):
        n = 0
        for b in range(8):
            n += free_id[nodes[e, b]] >= 0
        for a in range(8):
            fa = free_id[nodes[e, a]]
            if fa >= 0:
                start[fa + 1] += n
    for i in range(n_free):
        start[i + 1] += start[i]
    cols = np.empty(start[n_free], dtype=np.int64)
    vals = np.empty(start[n_free])
    moved = np.zeros(n_free)
    fill = start[:n_free].copy()
    for e in range(nodes.shape[0]):
        for a in range(8):
            fa = free_id[nodes[e, a]]
            if fa < 0:
                continue
            for b in range(8):
                nb = nodes[e, b]
                fb = free_id[nb]
                if fb >= 0:
                    cols[fill[fa]] = fb
                    vals[fill[fa]] = k[a, b]
                    fill[fa] += 1
                else:
                    moved[fa] += k[a, b] * boundary[nb]
    # Each row's entries sorted by column (insertion sort: at most 64), duplicates summed and
    # the row moved down to the end of the previous one (never past its own entries).
    indptr = np.zeros(n_free + 1, dtype=np.int64)
    w = 0
    for i in range(n_free):
        s, t = start[i], start[i + 1]
        for j in range(s + 1, t):
            c, v, m = cols[j], vals[j], j - 1
            while m >= s and cols[m] > c:
                cols[m + 1] = cols[m]
                vals[m + 1] = vals[m]
                m -= 1
            cols[m + 1] = c
            vals[m + 1] = v
        first = w
        for j in range(s, t):
            if w > first and cols[w - 1] == cols[j]:
                vals[w - 1] += vals[j]
            else:
                cols[w] = cols[j]
                vals[w] = vals[j]
                w += 1
        indptr[i + 1] = w
    return indptr, cols[:w].copy(), vals[:w].copy(), moved


# The three sweeps over a level's rows may reassociate each row's sum (``fastmath``: the
# 20 or 27 products are added in a vectorised order); a row's result still does not depend on
# the number of threads.
@numba.njit(parallel=True, fastmath=True, cache=True)
def matvec(nbr, val, diag, x, y):  # pragma: no cover
    """``y = A x`` on one level."""
    for i in numba.prange(nbr.shape[0]):
        acc = diag[i] * x[i]
        for s in range(nbr.shape[1]):
            acc += val[i, s] * x[nbr[i, s]]
        y[i] = acc


@numba.njit(parallel=True, fastmath=True, cache=True)
def gauss_seidel(nbr, val, diag, starts, b, x, forward):  # pragma: no cover
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
def residual(nbr, val, diag, b, x, r):  # pragma: no cover
    """``r = b - A x`` on one level."""
    for i in numba.prange(nbr.shape[0]):
        acc = b[i] - diag[i] * x[i]
        for s in range(nbr.shape[1]):
            acc -= val[i, s] * x[nbr[i, s]]
        r[i] = acc


@numba.njit(cache=True)
def restrict(r, agg, rc):  # pragma: no cover
    """``rc = P^T r`` (into ``rc``); entries whose aggregate is -1 (not free nodes) are skipped."""
    rc[:] = 0.0
    for i in range(r.shape[0]):
        a = agg[i]
        if a >= 0:
            rc[a] += r[i]


@numba.njit(parallel=True, cache=True)
def prolong_add(x, ec, agg, scale):  # pragma: no cover
    """``x += scale P ec``; entries whose aggregate is -1 are left as they are."""
    scale = x.dtype.type(scale)
    for i in numba.prange(x.shape[0]):
        a = agg[i]
        if a >= 0:
            x[i] += scale * ec[a]


@numba.njit(cache=True)
def galerkin(nbr, val, diag, agg, coarse_zyx, n_coarse):  # pragma: no cover
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


@numba.njit(cache=True)
def layer_pair(layers, half, j):  # pragma: no cover
    """The elements ``[first, stop)`` of voxel layers ``4j + 2 half`` and ``4j + 2 half + 1``.

    ``layers[z]`` is the first element of voxel layer ``z`` (elements in raster order). The
    pairs ``4j, 4j + 1`` touch grid planes ``4j .. 4j + 2`` only, so a kernel that writes to
    the corners of its elements runs the pairs of ``half = 0`` in parallel (``j`` in
    ``range((len(layers) + 2) // 4)``), then those of ``half = 1``. Empty past the last layer.
    """
    n_layers = layers.shape[0] - 1
    z0 = 4 * j + 2 * half
    if z0 >= n_layers:
        return 0, 0
    return layers[z0], layers[min(z0 + 2, n_layers)]


#: Length of the blocks of the CG reductions: each block is summed in order, then the
#: block sums in order, so a sum does not depend on the number of threads (numba's own
#: ``prange`` reductions do) and a solve gives the same bits on 1 thread or many.
BLOCK = 1 << 14


@numba.njit(parallel=True, cache=True)
def cg_update(x, r, p, q, alpha, r32):  # pragma: no cover
    """``x += alpha p``, ``r -= alpha q``, ``r32 = r`` rounded to float32; returns ``||r||^2``.

    ``r32`` is the right-hand side the preconditioner reads next: written here, in the pass
    that updates ``r``, not copied in a pass of its own.
    """
    n = x.shape[0]
    parts = np.zeros((n + BLOCK - 1) // BLOCK)
    for k in numba.prange(parts.shape[0]):
        acc = 0.0
        for i in range(k * BLOCK, min(n, (k + 1) * BLOCK)):
            x[i] += alpha * p[i]
            ri = r[i] - alpha * q[i]
            r[i] = ri
            r32[i] = ri
            acc += ri * ri
        parts[k] = acc
    total = 0.0
    for k in range(parts.shape[0]):
        total += parts[k]
    return total


@numba.njit(parallel=True, cache=True)
def dot(a, b):  # pragma: no cover
    """``a · b``, summed in fixed blocks (see :data:`BLOCK`)."""
    n = a.shape[0]
    parts = np.zeros((n + BLOCK - 1) // BLOCK)
    for k in numba.prange(parts.shape[0]):
        acc = 0.0
        for i in range(k * BLOCK, min(n, (k + 1) * BLOCK)):
            acc += a[i] * b[i]
        parts[k] = acc
    total = 0.0
    for k in range(parts.shape[0]):
        total += parts[k]
    return total


@numba.njit(parallel=True, cache=True)
def cg_direction(p, z, beta):  # pragma: no cover
    """``p = z + beta p``."""
    for i in numba.prange(p.shape[0]):
        p[i] = z[i] + beta * p[i]


@numba.njit(cache=True)
def to_dense(nbr, val, diag):  # pragma: no cover
    """The level as a dense matrix (the coarsest level, to invert)."""
    n = nbr.shape[0]
    dense = np.zeros((n, n))
    for i in range(n):
        dense[i, i] += diag[i]
        for s in range(nbr.shape[1]):
            dense[i, nbr[i, s]] += val[i, s]
    return dense


@numba.njit(cache=True)
def aggregate(zyx):  # pragma: no cover
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


def narrow(nbr, val, diag):
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
