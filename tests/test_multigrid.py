"""Tests of the finite-element solver behind srlib.transport (srlib.fem)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from srlib import fem
from srlib.fem import gridlevel, kernels, mesh


def _structure(shape, porosity, seed):
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5, mode="wrap")
    return field > np.quantile(field, porosity)


def _system(image, phase, connectivity, axis=0):
    """The inputs of ``solve_free`` for one phase, as ``transport`` builds them."""
    mask = np.asarray(image) == phase
    domain, _ = mesh.clusters(mask, axis, connectivity)
    voxels, nodes, node_vertex = mesh.number_mesh(domain, connectivity)
    vertex_shape = np.array([n + 1 for n in image.shape], dtype=np.int64)
    plane = np.zeros(node_vertex.size, dtype=np.uint8)
    free_id = np.empty(node_vertex.size, dtype=nodes.dtype)
    n_free = mesh.number_free(node_vertex, vertex_shape, axis, plane, free_id)
    zyx = np.empty((n_free, 3), dtype=np.int32)
    mesh.free_coordinates(node_vertex, vertex_shape, free_id, zyx)
    is_main = mesh.main_nodes(node_vertex)
    x0 = zyx[:, axis] / image.shape[axis]
    return dict(nodes=nodes, free_id=free_id, is_outlet=plane == 2, zyx=zyx, x0=x0,
                voxels=voxels, is_main=is_main)


@pytest.mark.parametrize("connectivity", ["face", "vertex"])
@pytest.mark.parametrize("phase", [False, True])
def test_grid_level_applies_the_assembled_matrix(connectivity, phase):
    """The matrix-free fine level equals the ELLPACK assembly (12 A), split nodes included."""
    image = _structure((14, 17, 12), 0.55, seed=3)
    s = _system(image, phase, connectivity)
    slot, k12, n_slots = kernels.fine_tables(mesh.element_stiffness())
    n_free = s["zyx"].shape[0]
    nbr, val, diag, b = kernels.assemble_fine(s["nodes"], s["free_id"], s["is_outlet"], slot,
                                                  k12, n_free, n_slots)
    level, comb, b_grid = gridlevel.grid_system(s["nodes"], s["free_id"], s["is_outlet"],
                                                  s["zyx"].copy(), k12, image.shape,
                                                  s["voxels"], s["is_main"])
    if connectivity == "face":
        assert level.elements.shape[1] > 0  # the test covers split grid points
    np.testing.assert_array_equal(b_grid, b)
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        u = rng.standard_normal(n_free).astype(dtype)
        expected = np.empty_like(u)
        kernels.matvec(nbr, val, diag, u, expected)
        x = np.zeros(level.n, dtype=dtype)
        x[comb] = u
        y = level.matvec(x, np.full(level.n, np.nan, dtype=dtype))
        np.testing.assert_allclose(y[comb], expected, rtol=1e-5, atol=1e-4)
        # every other entry (padding, non-free grid points, the sink) is exactly zero
        rest = np.ones(level.n, dtype=bool)
        rest[comb] = False
        assert not np.any(y[rest])
        assert 1.0 / level.inv_diag[comb] == pytest.approx(diag)
    # the first coarse level, summed from the elements, is exactly P^T A P of the assembly
    agg, coarse_zyx, _ = kernels.aggregate(s["zyx"])
    galerkin = kernels.galerkin(nbr, val, diag, agg, coarse_zyx, coarse_zyx.shape[0])
    np.testing.assert_array_equal(kernels.to_dense(*level.coarse.levels[0]),
                                  kernels.to_dense(*galerkin))
    # stored as int8: the entries of the first coarse level lie in [-20, 0] on any domain
    coarse_val = level.coarse.levels[0][1]
    assert coarse_val.dtype == np.int8 and -20 <= coarse_val.min() and coarse_val.max() <= 0


def test_levels_are_narrowed_only_where_exact():
    """Off-diagonal values take the narrowest integer type that holds them, else stay float32."""
    nbr, diag = np.zeros((3, 2), dtype=np.int32), np.ones(3, dtype=np.float32)
    for values, dtype in (([-20, 0], np.int8), ([-300, 0], np.int16), ([-40000, 0], np.float32)):
        val = np.array([values] * 3, dtype=np.float32)
        narrowed = kernels.narrow(nbr, val, diag)[1]
        assert narrowed.dtype == dtype
        np.testing.assert_array_equal(narrowed, val)


def test_chebyshev_bound_holds_and_is_tight():
    """LAMBDA_MAX = 1.5 bounds the spectrum of D^-1 A (from the element matrix) and is reached."""
    from srlib.stochastic import ModelParams, sample

    image = sample((32, 32, 32), ModelParams.from_solid_fraction(0.7, gamma=10**-0.5), seed=1)
    s = _system(image, True, "face")
    _, k12, _ = kernels.fine_tables(mesh.element_stiffness())
    level, comb, _ = gridlevel.grid_system(s["nodes"], s["free_id"], s["is_outlet"],
                                             s["zyx"].copy(), k12, image.shape, s["voxels"],
                                             s["is_main"])
    v = np.zeros(level.n)
    v[comb] = np.random.default_rng(0).standard_normal(comb.size)
    lam = 0.0
    for _ in range(200):
        v /= np.linalg.norm(v)
        w = level.inv_diag * level.matvec(v, np.empty(level.n))
        lam = float(v @ w)
        v = w
    assert 1.4 < lam <= gridlevel.LAMBDA_MAX * (1 + 1e-9)


def test_cycles_are_symmetric_positive_definite():
    """CG needs a symmetric positive definite preconditioner: the grid level's cycle and the
    matrix hierarchy's, with their smoothers mirrored around the coarse correction, are
    (up to float32 rounding), and a cycle depends only on its right-hand side."""
    from srlib.fem.hierarchy import Hierarchy

    image = _structure((20, 18, 16), 0.45, seed=7)
    s = _system(image, True, "face")
    slot, k12, n_slots = kernels.fine_tables(mesh.element_stiffness())
    level, comb, _ = gridlevel.grid_system(s["nodes"], s["free_id"], s["is_outlet"],
                                             s["zyx"].copy(), k12, image.shape, s["voxels"],
                                             s["is_main"])
    n_free = comb.size
    nbr, val, diag, _ = kernels.assemble_fine(s["nodes"], s["free_id"], s["is_outlet"], slot,
                                              k12, n_free, n_slots)
    order, starts = kernels.colour_order(s["zyx"])
    rank = np.empty_like(order)
    rank[order] = np.arange(n_free, dtype=order.dtype)
    hierarchy = Hierarchy(rank[nbr[order]], val[order], diag[order], s["zyx"][order], starts)
    rng = np.random.default_rng(1)
    def apply(precondition, b):
        precondition.rhs_vector[:] = b
        return precondition.cycle_rhs().astype(np.float64)

    for name, precondition, n in (("grid", level, level.n), ("matrix", hierarchy, n_free)):
        u, v = np.zeros(n), np.zeros(n)
        rows = comb if name == "grid" else np.arange(n_free)
        u[rows], v[rows] = rng.standard_normal((2, rows.size))
        mu = apply(precondition, u)
        mv = apply(precondition, v)
        assert abs(u @ mv - v @ mu) < 1e-4 * np.sqrt((u @ mu) * (v @ mv)), name
        assert u @ mu > 0 and v @ mv > 0, name
        # a cycle depends on its right-hand side alone, not on what the last one left
        np.testing.assert_array_equal(apply(precondition, u), mu)


@pytest.mark.parametrize("connectivity", ["face", "vertex"])
def test_grid_and_matrix_fine_levels_give_the_same_solution(connectivity):
    """The matrix-free fine level and the ELLPACK hierarchy solve the same system."""
    image = _structure((24, 20, 22), 0.5, seed=5)
    s = _system(image, False, connectivity, axis=1)
    k = mesh.element_stiffness()
    grid = fem.solve_free(s["nodes"], s["free_id"], s["is_outlet"], s["zyx"].copy(), k,
                                 s["x0"].copy(), 1e-10, 1000, shape=image.shape,
                                 voxels=s["voxels"], is_main=s["is_main"])
    matrix = fem.solve_free(s["nodes"], s["free_id"], s["is_outlet"], s["zyx"].copy(), k,
                                   s["x0"].copy(), 1e-10, 1000)
    assert grid[2] and matrix[2]
    np.testing.assert_allclose(grid[0], matrix[0], atol=1e-8)


def test_float32_kernels_compute_in_float32():
    """No float32 kernel of the cycle widens its arithmetic to float64 (a float64 literal or
    coefficient would; it made the grid rows several times slower)."""
    import numba

    f32 = "float32"
    kernels_and_signatures = [
        (gridlevel._grid_rows, f"(uint8[:, :, ::1], uint8[:, :, ::1], {f32}[:, :, ::1], "
                               f"{f32}[:, :, ::1])"),
        (gridlevel._element_matvec, f"(int32[:, ::1], int64[::1], {f32}[::1], {f32}[::1])"),
        (gridlevel._chebyshev_step, f"({f32}[::1], {f32}[::1], {f32}[::1], {f32}[::1], "
                                    f"{f32}[::1], {f32}[::1], float64, float64, int64)"),
        (kernels.prolong_add, f"({f32}[::1], {f32}[::1], int32[::1], float64)"),
    ]
    def llvm_ir(kernel, signature):
        # compiled afresh: numba returns no IR for code loaded from its cache
        options = {k: v for k, v in kernel.targetoptions.items()
                   if k not in ("cache", "nopython")}
        fresh = numba.njit(**options)(kernel.py_func)
        fresh.compile(signature)
        return "".join(fresh.inspect_llvm().values())

    def widened(x):
        return 4.0 * x[0]

    # the check sees a widening where there is one
    assert "fpext float" in llvm_ir(numba.njit(widened), f"({f32}[::1],)")
    for kernel, signature in kernels_and_signatures:
        assert "fpext float" not in llvm_ir(kernel, signature), kernel.py_func.__name__
