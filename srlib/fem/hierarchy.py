"""The matrix levels of the multigrid, and preconditioned CG (:mod:`srlib.fem`).

Contract. :class:`Hierarchy` holds the coarse levels (Galerkin operators of 2 x 2 x 2
aggregation) of a matrix level and runs the symmetric cycle on them; :func:`pcg` is CG with any
preconditioner; :func:`solve_matrix` solves a system given as an ELLPACK matrix, with the
hierarchy from that level down.
"""

from __future__ import annotations

import numpy as np

from srlib.fem.kernels import (
    COARSE_SCALE,
    CYCLE_GAMMA,
    DIRECT_SIZE,
    SWEEPS,
    aggregate,
    cg_direction,
    cg_update,
    dot,
    galerkin,
    gauss_seidel,
    matvec,
    narrow,
    prolong_add,
    residual,
    restrict,
    to_dense,
)


class Hierarchy:
    """Levels ``(nbr, val, diag)``, colour ranges and aggregates, the coarsest level's inverse.

    The cycle's work vectors (right-hand side, iterate and residual of every level) are
    allocated once here, not in every cycle: a fresh 8 MB vector is a fresh set of pages to
    fault in.
    """

    def __init__(self, nbr, val, diag, zyx, starts, *, first_sweeps: int = SWEEPS):
        self.sweeps = first_sweeps  # on level 0; SWEEPS below
        self.levels = [narrow(nbr, val, diag)]
        self.starts = [starts]
        self.aggregates = []
        while self.levels[-1][0].shape[0] > DIRECT_SIZE:
            agg, zyx, starts = aggregate(zyx)
            n_coarse = zyx.shape[0]
            if n_coarse >= self.levels[-1][0].shape[0]:  # pragma: no cover - cannot coarsen
                break
            self.aggregates.append(agg)
            self.starts.append(starts)
            self.levels.append(narrow(*galerkin(*self.levels[-1], agg, zyx, n_coarse)))
        self.coarsest_inverse = np.linalg.inv(to_dense(*self.levels[-1]))
        sizes = [level[0].shape[0] for level in self.levels]
        self._b = [np.empty(n, dtype=np.float32) for n in sizes]
        self._x = [np.empty(n, dtype=np.float32) for n in sizes]
        self._r = [np.empty(n, dtype=np.float32) for n in sizes[:-1]]

    @property
    def rhs_vector(self) -> np.ndarray:
        """The float32 right-hand side ``b`` that :meth:`cycle_rhs` reads (``pcg`` fills it)."""
        return self._b[0]

    def cycle_rhs(self) -> np.ndarray:
        """One symmetric cycle from a zero initial guess: ``M^-1 b``, ``b`` in :attr:`rhs_vector`.

        The result (float32) is a work vector of the hierarchy, overwritten by the next cycle.
        """
        return self._cycle(0)

    def rhs(self, level: int) -> np.ndarray:
        """The right-hand-side work vector of ``level``, to fill before :meth:`cycle`."""
        return self._b[level]

    def cycle(self, level: int) -> np.ndarray:
        """One cycle from ``level`` down, on the right-hand side in :meth:`rhs` (float32)."""
        return self._cycle(level)

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
            gauss_seidel(nbr, val, diag, starts, b, x, True)
        for _ in range(CYCLE_GAMMA if level + 2 < len(self.levels) else 1):
            residual(nbr, val, diag, b, x, r)
            restrict(r, agg, rc)
            prolong_add(x, self._cycle(level + 1), agg, COARSE_SCALE)
        for _ in range(sweeps):
            gauss_seidel(nbr, val, diag, starts, b, x, False)
        return x


def pcg(matvec, preconditioner, x, r, q, norm_b, tol, max_iter):
    """Preconditioned CG from ``x`` with residual ``r`` (both updated); float64 vectors.

    ``preconditioner`` has a float32 ``rhs_vector`` and ``cycle_rhs()``, which returns
    ``M^-1`` of it: the residual's update fills the vector (:func:`~srlib.fem.kernels.cg_update`).
    """
    threshold = tol * norm_b
    norm_r = float(np.sqrt(dot(r, r)))
    iterations = 0
    rhs = preconditioner.rhs_vector
    rhs[:] = r
    z = preconditioner.cycle_rhs()
    p = z.astype(np.float64)
    rz = dot(r, z)
    while norm_r >= threshold and iterations < max_iter:
        matvec(p, q)
        alpha = rz / dot(p, q)
        norm_r = float(np.sqrt(cg_update(x, r, p, q, alpha, rhs)))
        iterations += 1
        if norm_r < threshold:
            break
        z = preconditioner.cycle_rhs()
        rz_new = dot(r, z)
        cg_direction(p, z, rz_new / rz)
        rz = rz_new
    return x, iterations, norm_r < threshold, norm_r / norm_b


def solve_matrix(nbr, val, diag, b, zyx, order, starts, x0, tol, max_iter):
    """CG with the matrix hierarchy as preconditioner (rows renumbered colour by colour)."""
    n_free = nbr.shape[0]
    rank = np.empty_like(order)
    rank[order] = np.arange(n_free, dtype=np.int32)
    nbr = rank[nbr[order]]
    val, diag, b = val[order], diag[order], b[order]
    hierarchy = Hierarchy(nbr, val, diag, zyx[order], starts)
    x = np.asarray(x0, dtype=np.float64)[order]
    q = np.empty_like(x)
    matvec(nbr, val, diag, x, q)
    r = b - q
    norm_b = float(np.linalg.norm(b))

    def apply(p, out):
        matvec(nbr, val, diag, p, out)
        return out

    x, iterations, converged, rel = pcg(apply, hierarchy, x, r, q, norm_b, tol,
                                         max_iter)
    out = np.empty_like(x)
    out[order] = x
    return out, iterations, converged, rel
