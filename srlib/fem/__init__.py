"""The voxel finite-element solver behind :mod:`srlib.transport`: mesh, CG, geometric multigrid.

Contract. :func:`solve_free` takes the element-node table of a voxel mesh (one unit-cube
trilinear element per voxel, corner ``l`` at offset ``((l >> 2) & 1, (l >> 1) & 1, l & 1)``),
the node numbering of its free (non-Dirichlet) nodes and the outlet nodes (``u = 1``; inlet
nodes are ``u = 0``), and returns the free nodal values solving ``A_ff u_f = -A_fo 1`` to the
relative residual ``tol``, with the number of CG iterations. Nothing else is imported by other
modules; :mod:`srlib.transport` owns the mesh and the physics.

Method. CG (float64) preconditioned by a symmetric multigrid cycle (float32). Every element
matrix is the same ``K`` whose entries are ``1/3`` (diagonal), ``0`` (corners on a common edge)
and ``-1/12`` (the others), so ``12 A`` has small integer entries, exact in every precision.

*Fine level, on the voxel grid, without a stored matrix* (:mod:`srlib.fem.gridlevel`). The free
nodes are numbered "combined": the main node of a grid point (its first node: the only one
under ``"vertex"``, and away from edge and corner contacts under ``"face"``) sits at the grid
point's index in the padded vertex grid; the few other nodes follow the grid. An element whose
eight corners are main nodes is *regular*: ``A x`` over those is one pass along contiguous
rows of the grid with a uint8 mask of the regular elements (``gridlevel._grid_rows``, vectorised,
about ten times faster than gathering 20 neighbours per row from an ELLPACK matrix); the other
elements (around split grid points: 6 % of the solid's elements and 13 % of the pore's on a
128³ χ² image) are applied one by one from their node table (``gridlevel._element_matvec``). The
smoother is Chebyshev of degree ``CHEBYSHEV_DEGREE`` in ``D^-1 A`` on
``[LAMBDA_MAX / CHEBYSHEV_RATIO, LAMBDA_MAX]`` (constants of that module), with the exact bound
``LAMBDA_MAX = 1.5``
from the element matrix (no eigenvalue estimate needed), the same polynomial before and after
the coarse correction (so the cycle is symmetric).

*Coarse levels, matrices* (:class:`srlib.fem.hierarchy.Hierarchy`). Galerkin operators
``P^T A P`` of piecewise-constant aggregation over ``2 x 2 x 2`` blocks of grid points: every coarse
level is a structured grid with a 27-point stencil, stored in ELLPACK form (an int32 neighbour
and a value per slot, the value in the narrowest integer type that holds the level's entries
exactly, :func:`srlib.fem.kernels.narrow`: int8 on the first coarse level). The first one is
summed straight from the elements (``gridlevel._assemble_coarse``): the fine matrix is never
stored. ``SWEEPS`` multicolour Gauss-Seidel sweeps (``GRID_COARSE_SWEEPS`` on the first coarse
level under the grid level) before the coarse correction (colours 0..7) and after it (colours
7..0); the colour of a node is the parity of its grid point's coordinates, nodes of one colour
are never coupled, each level is numbered colour by colour and each colour relaxed in parallel
(numba ``prange``). The coarse correction is over-relaxed by ``COARSE_SCALE`` (the classical
remedy for the too-weak piecewise-constant prolongation); the coarsest level is inverted.

Small systems (at most ``DIRECT_SIZE`` unknowns), and callers that give no grid, use the matrix
hierarchy from the fine level down (:func:`srlib.fem.kernels.assemble_fine`: ELLPACK with 20
slots of an int32 neighbour and an int8 value, about 104 bytes an unknown). Every parallel loop
writes each entry from one thread and the CG reductions are summed in fixed blocks, so a solve
gives the same bits on one thread or many. The kernels are compiled by numba (cached on disk).
"""

from srlib.fem.solve import solve_free

__all__ = ["solve_free"]
