"""The solver's entry point: CG preconditioned by the grid level and its hierarchy."""

from __future__ import annotations

import numpy as np

from srlib.fem.gridlevel import grid_system
from srlib.fem.hierarchy import pcg, solve_matrix
from srlib.fem.kernels import DIRECT_SIZE, assemble_fine, colour_order, fine_tables


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
    slot, k12, n_slots = fine_tables(k)
    n_free = int(zyx.shape[0])
    if n_free <= DIRECT_SIZE or shape is None:
        # No grid level: CG preconditioned by the matrix hierarchy itself (dense when small).
        nbr, val, diag, b = assemble_fine(nodes, free_id, is_outlet, slot, k12, n_free, n_slots)
        if not b.any():
            return np.zeros(n_free), 0, True, 0.0
        order, starts = colour_order(zyx)
        return solve_matrix(nbr, val, diag, b, zyx, order, starts, x0, tol, max_iter)

    level, comb, b = grid_system(nodes, free_id, is_outlet, zyx, k12, shape,
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
    x, iterations, converged, rel = pcg(level.matvec, level, x, r, q, norm_b, tol,
                                         max_iter)
    return x[comb], iterations, converged, rel


