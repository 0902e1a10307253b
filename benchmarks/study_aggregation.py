"""Study: what the solver's coarse space costs in CG iterations (issue 19, item 5).

The solver (:mod:`srlib.fem`) aggregates 2 x 2 x 2 blocks of grid points, whatever the
geometry inside a block: where a block holds pieces of the phase that do not touch inside
it, the piecewise-constant coarse function ties them together. This script measures what
splitting each block into its connected pieces (nodes joined by a negative coupling inside
the block) would buy, with one prototype for every variant, written with SciPy for clarity,
not speed:

* the fine matrix ``12 A`` of :mod:`srlib.fem` on the free nodes of one phase of the χ²
  image of ``bench_transport.py``;
* levels by aggregation and Galerkin products ``P^T A P`` until 200 unknowns, then a dense
  inverse;
* a V-cycle with two Chebyshev steps (Jacobi-preconditioned, over ``[λ/4, λ]``, λ by power
  iteration) before and after the correction, the correction scaled by 1.5 (the solver's
  ``COARSE_SCALE``);
* CG from the straight-channel start ``u = z / length`` to the solver's relative residual
  (:data:`srlib.transport.DEFAULT_TOL`).

Variants: ``geometric`` (the solver's aggregates), ``split`` (every level's blocks split),
``split-first`` (the first level only), ``split-below`` (every level but the first). It prints
the unknowns and stored entries per row of each level and the CG iterations; the real
solver's own iterations on the same phase are printed beside them for reference. Only the
iteration counts are compared: the prototype's time says nothing about the solver's.

Run: ``python benchmarks/study_aggregation.py [--size 128] [--phase solid]``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from srlib import transport
from srlib.fem import kernels, mesh
from srlib.stochastic import ModelParams, sample

VARIANTS = ("geometric", "split", "split-first", "split-below")


def fine_system(mask: np.ndarray, connectivity: str = "face"):
    """``12 A`` (CSR) on the free nodes, ``12 b``, the nodes' grid points and the start."""
    domain, _ = mesh.clusters(mask, 0, connectivity)
    _, nodes, node_vertex = mesh.number_mesh(domain, connectivity)
    vertex_shape = np.array([n + 1 for n in mask.shape], dtype=np.int64)
    plane = np.zeros(node_vertex.size, np.uint8)
    free_id = np.empty(node_vertex.size, nodes.dtype)
    n_free = mesh.number_free(node_vertex, vertex_shape, 0, plane, free_id)
    zyx = np.empty((n_free, 3), np.int32)
    mesh.free_coordinates(node_vertex, vertex_shape, free_id, zyx)
    slot, k12, n_slots = kernels.fine_tables(mesh.element_stiffness())
    nbr, val, diag, b = kernels.assemble_fine(nodes, free_id, plane == 2, slot, k12, n_free,
                                              n_slots)
    rows = np.repeat(np.arange(n_free), n_slots)
    a = sp.csr_matrix((val.ravel().astype(float), (rows, nbr.ravel())), shape=(n_free,) * 2)
    a = (a + sp.diags(diag.astype(float))).tocsr()
    a.eliminate_zeros()
    return a, b.astype(float), zyx.astype(np.int64), zyx[:, 0] / mask.shape[0]


def aggregates(a, zyx, split: bool):
    """Each node's aggregate: its 2 x 2 x 2 block, or the block's connected piece."""
    block = zyx // 2
    _, agg = np.unique(block, axis=0, return_inverse=True)
    agg = agg.ravel()
    if split:
        c = a.tocoo()
        inside = (agg[c.row] == agg[c.col]) & (c.data < 0)
        graph = sp.csr_matrix((np.ones(inside.sum()), (c.row[inside], c.col[inside])),
                              shape=a.shape)
        agg = connected_components(graph, directed=False)[1]
    coarse = np.zeros((agg.max() + 1, 3), np.int64)
    coarse[agg] = block
    return agg, coarse


def hierarchy(a, zyx, variant: str, smallest: int = 200):
    """``[(A_0, P_0), ..., (A_L, None)]`` for one variant."""
    levels, depth = [], 0
    while a.shape[0] > smallest:
        depth += 1
        split = {"geometric": False, "split": True, "split-first": depth == 1,
                 "split-below": depth > 1}[variant]
        agg, zyx = aggregates(a, zyx, split)
        if zyx.shape[0] == a.shape[0]:  # nothing merged: this level is the coarsest
            break
        p = sp.csr_matrix((np.ones(a.shape[0]), (np.arange(a.shape[0]), agg)))
        levels.append((a, p))
        a = (p.T @ a @ p).tocsr()
    levels.append((a, None))
    return levels


def vcycle(levels, scale: float = 1.5, degree: int = 2):
    """The preconditioner ``r -> M^-1 r`` of the prototype."""
    smoothers = []
    for a, _ in levels[:-1]:
        inv_diag = 1.0 / a.diagonal()
        v = np.random.default_rng(0).random(a.shape[0])
        for _ in range(30):
            v = inv_diag * (a @ v)
            lam = np.linalg.norm(v)
            v /= lam
        smoothers.append((inv_diag, 1.1 * lam))
    coarsest = np.linalg.inv(levels[-1][0].toarray())

    def chebyshev(a, inv_diag, lam, x, b):
        theta, delta = 0.625 * lam, 0.375 * lam
        r = b - a @ x
        d = inv_diag * r / theta
        x = x + d
        sigma = theta / delta
        rho = 1.0 / sigma
        for _ in range(degree - 1):
            r = r - a @ d
            rho_new = 1.0 / (2.0 * sigma - rho)
            d = rho_new * rho * d + 2.0 * rho_new / delta * inv_diag * r
            x = x + d
            rho = rho_new
        return x

    def cycle(level, b):
        a, p = levels[level]
        if p is None:
            return coarsest @ b
        inv_diag, lam = smoothers[level]
        x = chebyshev(a, inv_diag, lam, np.zeros_like(b), b)
        x = x + scale * (p @ cycle(level + 1, p.T @ (b - a @ x)))
        return chebyshev(a, inv_diag, lam, x, b)

    return lambda r: cycle(0, r)


def pcg_iterations(a, b, x, precondition, tol: float, max_iter: int = 500) -> int:
    r = b - a @ x
    threshold = tol * np.linalg.norm(b)
    z = precondition(r)
    p, rz = z.copy(), r @ z
    for iteration in range(1, max_iter + 1):
        q = a @ p
        alpha = rz / (p @ q)
        x += alpha * p
        r -= alpha * q
        if np.linalg.norm(r) < threshold:
            return iteration
        z = precondition(r)
        rz_new = r @ z
        p = z + rz_new / rz * p
        rz = rz_new
    return max_iter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phase", choices=("solid", "pore"), default="solid")
    args = parser.parse_args()
    params = ModelParams.from_solid_fraction(0.7, gamma=1.0 / math.sqrt(10.0))
    image = sample((args.size,) * 3, params, seed=args.seed)
    phase = args.phase == "solid"
    a, b, zyx, x0 = fine_system(image == phase)
    solver = transport.solve_laplace(image, phase)
    print(f"{args.phase}, {args.size}^3: {a.shape[0]} unknowns; srlib's solver: "
          f"{solver.iterations} CG iterations")
    for variant in VARIANTS:
        levels = hierarchy(a, zyx, variant)
        its = pcg_iterations(a, b, x0.copy(), vcycle(levels), transport.DEFAULT_TOL)
        sizes = " ".join(f"{m.shape[0]}({m.nnz / m.shape[0]:.1f})" for m, _ in levels)
        print(f"{variant:12s} {its:3d} iterations  levels: unknowns(entries a row) {sizes}")


if __name__ == "__main__":
    main()
