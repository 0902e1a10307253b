"""The free block of the voxel FEM system solved with PyTorch, on any torch device (a GPU).

Contract. :func:`solve_free` has the arguments and results of
:func:`srlib.fem.solve_free` plus a torch ``device``; :mod:`srlib.transport` calls it
when ``solve_laplace(..., device=...)`` names one (and only then imports torch).

Method. The fine matrix is the exact ELLPACK form of :func:`srlib.fem.kernels.assemble_fine`
(int32 neighbours and int8 values of ``12 A`` per slot, float32 diagonal), copied to the device;
the matrix-vector product is a gather and a sum over the 20 slots, in row chunks that bound the
temporary memory. CG in float64 with the Jacobi (diagonal) preconditioner: a GPU does thousands
of such cheap iterations in the time a CPU does a few multigrid cycles. The iterations grow with
the edge of the image (about 1,700 at 128³ for a pore phase), each one streams the matrix once
(about 105 bytes per unknown).
"""

from __future__ import annotations

import numpy as np

from srlib.fem.kernels import assemble_fine, fine_tables

# Rows per chunk of the matrix-vector product (bounds its float64 temporary to ~320 MB).
_CHUNK = 1 << 21


def _matvec(nbr, val, diag, x, out):
    for start in range(0, x.shape[0], _CHUNK):
        stop = min(start + _CHUNK, x.shape[0])
        rows = slice(start, stop)
        out[rows] = diag[rows] * x[rows] + (val[rows] * x[nbr[rows]]).sum(dim=1)
    return out


def solve_free(nodes, free_id, is_outlet, zyx, k, x0, tol, max_iter, device):
    """Solve the free block of the voxel FEM system by Jacobi-preconditioned CG with torch.

    Parameters
    ----------
    nodes, free_id, is_outlet, zyx, k, x0, tol, max_iter
        As :func:`srlib.fem.solve_free` (``zyx`` is not used: no grid hierarchy).
    device : str or torch.device
        Where to solve, e.g. ``"cuda"``; ``"cpu"`` runs the same iterations on the CPU.

    Returns
    -------
    tuple
        ``(x, iterations, converged, relative_residual)``, ``x`` a float64 NumPy array.
    """
    import torch

    device = torch.device(device)
    slot, k12, n_slots = fine_tables(k)
    n_free = int(free_id.max()) + 1 if free_id.size else 0
    nbr, val, diag, b = assemble_fine(nodes, free_id, is_outlet, slot, k12, n_free,
                                                  n_slots)
    # The system is 12 A x = 12 b: the integer matrix and right-hand side of the assembly.
    nbr_t = torch.from_numpy(nbr).to(device)  # int32: 80 bytes a row
    del nbr
    val_t = torch.from_numpy(val).to(device)  # int8: 20 bytes a row
    del val
    diag_t = torch.from_numpy(diag).to(device=device, dtype=torch.float64)
    inv_diag = 1.0 / diag_t
    b_t = torch.from_numpy(b).to(device)
    x = torch.from_numpy(np.asarray(x0, dtype=np.float64)).to(device)
    q = torch.empty_like(x)
    r = b_t - _matvec(nbr_t, val_t, diag_t, x, q)
    norm_b = float(torch.linalg.vector_norm(b_t))
    del b_t
    if norm_b == 0.0:
        return np.zeros(n_free), 0, True, 0.0
    threshold = tol * norm_b
    norm_r = float(torch.linalg.vector_norm(r))
    z = inv_diag * r
    p = z.clone()
    rz = float(torch.dot(r, z))
    iterations = 0
    while norm_r >= threshold and iterations < max_iter:
        _matvec(nbr_t, val_t, diag_t, p, q)
        alpha = rz / float(torch.dot(p, q))
        x.add_(p, alpha=alpha)
        r.add_(q, alpha=-alpha)
        norm_r = float(torch.linalg.vector_norm(r))
        iterations += 1
        if norm_r < threshold:
            break
        torch.mul(inv_diag, r, out=z)
        rz_new = float(torch.dot(r, z))
        p.mul_(rz_new / rz).add_(z)
        rz = rz_new
    return x.cpu().numpy(), iterations, norm_r < threshold, norm_r / norm_b
