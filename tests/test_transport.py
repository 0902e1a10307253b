"""Tests of srlib.transport on tiny volumes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage, sparse
from scipy.sparse.linalg import spsolve

from srlib import transport
from srlib.fem import mesh
from srlib.transport import diffusion_channels, effective_tortuosity, solve_laplace

CONNECTIVITIES = ("face", "vertex")


def smooth_structure(shape, porosity, *, sigma=2.0, seed=0):
    """Seeded random two-phase structure: a thresholded smoothed Gaussian noise (True = solid)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field > np.quantile(field, porosity)


def refine(image, factor):
    """Split every voxel into factor^3 voxels: the same union of voxels on a finer grid."""
    return image.repeat(factor, 0).repeat(factor, 1).repeat(factor, 2)


def finite_volume_tau(image, phase, *, axis=0):
    """Independent reference: two-point-flux finite volumes on voxel centres (TauFactor's scheme).

    Unknowns at the centres of the phase's voxels, conductance 1 between face neighbours,
    Dirichlet u = 0 / 1 on the two box faces at half a voxel from the first / last centres.
    Clusters not touching both faces are dropped; ε is the whole phase's volume fraction.
    """
    mask = np.moveaxis(np.asarray(image) == phase, axis, 0)
    labels, _ = ndimage.label(mask)
    spanning = np.intersect1d(labels[0], labels[-1])
    domain = np.isin(labels, spanning[spanning > 0])
    if not domain.any():
        return math.inf
    index = np.full(mask.shape, -1)
    index[domain] = np.arange(np.count_nonzero(domain))
    n = np.count_nonzero(domain)
    rows, cols = [], []
    diagonal = np.zeros(n)
    for ax in range(3):
        lo = tuple(slice(0, -1) if a == ax else slice(None) for a in range(3))
        hi = tuple(slice(1, None) if a == ax else slice(None) for a in range(3))
        both = domain[lo] & domain[hi]
        i, j = index[lo][both], index[hi][both]
        rows += [i, j]
        cols += [j, i]
        np.add.at(diagonal, i, 1.0)
        np.add.at(diagonal, j, 1.0)
    inlet, outlet = index[0][domain[0]], index[-1][domain[-1]]
    np.add.at(diagonal, inlet, 2.0)
    np.add.at(diagonal, outlet, 2.0)
    rhs = np.zeros(n)
    np.add.at(rhs, outlet, 2.0)
    r, c = np.concatenate(rows), np.concatenate(cols)
    matrix = sparse.csr_matrix(
        (np.r_[-np.ones(r.size), diagonal], (np.r_[r, np.arange(n)], np.r_[c, np.arange(n)])),
        shape=(n, n),
    )
    u = spsolve(matrix.tocsc(), rhs)
    d_eff = 2.0 * u[inlet].sum() * mask.shape[0] / mask[0].size
    return mask.mean() / d_eff


@pytest.fixture(scope="module")
def structure():
    """32^3, porosity 0.6, both phases percolate along every axis."""
    return smooth_structure((32, 32, 32), 0.6, seed=7)


# --- the element matrix ---------------------------------------------------------------------


def test_element_stiffness_is_the_trilinear_cube_matrix():
    k = mesh.element_stiffness()
    corners = np.array([((c >> 2) & 1, (c >> 1) & 1, c & 1) for c in range(8)])
    differing = np.abs(corners[:, None, :] - corners[None, :, :]).sum(axis=2)
    expected = np.select([differing == 0, differing == 1], [1 / 3, 0.0], -1 / 12)
    assert k == pytest.approx(expected, abs=1e-14)
    assert not k.flags.writeable


# --- known answers --------------------------------------------------------------------------


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("phase", [True, False])
def test_full_block_has_tortuosity_one(connectivity, axis, phase):
    image = np.full((6, 5, 4), phase)
    result = solve_laplace(image, phase, axis=axis, connectivity=connectivity)
    length = image.shape[axis]
    assert result.percolating
    assert result.volume_fraction == 1.0
    assert result.d_eff == pytest.approx(1.0, rel=1e-10)
    assert result.tau_eff == pytest.approx(1.0, rel=1e-10)
    assert result.flux_in == pytest.approx(image.size / length**2, rel=1e-10)
    assert result.flux_out == pytest.approx(result.flux_in, rel=1e-10)
    # The solution is linear: voxel centres at (i + 1/2) / L along the axis.
    centres = (np.arange(length) + 0.5) / length
    profile = np.moveaxis(result.voxel_values, axis, 0).reshape(length, -1)
    assert profile == pytest.approx(np.repeat(centres[:, None], profile.shape[1], 1), abs=1e-9)


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_single_slice_thickness(connectivity):
    # L = 1: every node is a Dirichlet node, nothing to solve, still tau = 1.
    result = solve_laplace(np.ones((1, 4, 3), bool), True, connectivity=connectivity)
    assert result.iterations == 0
    assert result.tau_eff == pytest.approx(1.0, rel=1e-12)
    assert result.voxel_values == pytest.approx(np.full((1, 4, 3), 0.5))


def channels_image(shape, axis, positions):
    """Solid image with straight pore channels (1 voxel wide) running along ``axis``."""
    image = np.ones(shape, dtype=bool)
    for a, b in positions:
        index = [a, b]
        index.insert(axis, slice(None))
        image[tuple(index)] = False
    return image


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_straight_channels_along_the_axis_have_tortuosity_one(connectivity, axis):
    # Two separate channels, one 2-voxel-wide channel pair touching along faces, and a
    # channel touching another only along an edge: all straight, so tau = 1 for both phases.
    image = channels_image((7, 7, 7), axis, [(1, 1), (1, 2), (4, 4), (5, 5), (2, 5)])
    for phase in (False, True):
        result = solve_laplace(image, phase, axis=axis, connectivity=connectivity)
        assert result.tau_eff == pytest.approx(1.0, rel=1e-8)
        assert result.d_eff == pytest.approx(result.volume_fraction, rel=1e-8)
        assert effective_tortuosity(
            image, phase, axis=axis, connectivity=connectivity
        ) == pytest.approx(1.0, rel=1e-8)


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_channels_across_the_axis_do_not_percolate(connectivity, axis):
    across = (axis + 1) % 3
    image = channels_image((6, 6, 6), across, [(1, 1), (3, 3)])
    result = solve_laplace(image, False, axis=axis, connectivity=connectivity)
    assert not result.percolating
    assert result.d_eff == 0.0
    assert result.tau_eff == math.inf
    assert result.flux_in == 0.0 and result.flux_out == 0.0
    assert not np.isnan(result.voxel_values).any()
    assert np.all(result.voxel_values == 0.0)
    assert effective_tortuosity(image, 0, axis=axis, connectivity=connectivity) == math.inf
    channels = diffusion_channels(image, axis=axis, connectivity=connectivity)
    assert np.all(channels[0] == 0.0)
    # the solid around them percolates
    assert channels[1].max() > 0.5


def staircase(n, *, corner=False):
    """Voxels touching the next one only along an edge (or only at a corner) along axis 0."""
    image = np.zeros((n, n, n if corner else 3), dtype=bool)
    for i in range(n):
        image[i, i, i if corner else 1] = True
    return image


@pytest.mark.parametrize("corner", [False, True])
def test_staircase_conducts_only_with_vertex_connectivity(corner):
    image = staircase(5, corner=corner)
    face = solve_laplace(image, True, connectivity="face")
    assert not face.percolating
    assert face.tau_eff == math.inf
    vertex = solve_laplace(image, True, connectivity="vertex")
    assert vertex.percolating
    assert math.isfinite(vertex.tau_eff) and vertex.tau_eff > 1.0
    assert vertex.flux_out == pytest.approx(vertex.flux_in, rel=1e-6)
    # The pore around the chain: at every grid point its voxels in the 2 x 2 x 2 block are
    # face-connected (through the neighbouring layers), so no node is split: same mesh.
    assert effective_tortuosity(image, False, connectivity="face") == pytest.approx(
        effective_tortuosity(image, False, connectivity="vertex"), rel=1e-9
    )


def test_face_connectivity_splits_nodes_at_an_edge_contact():
    # Two voxels sharing only an edge: 16 nodes under "face", 14 under "vertex".
    image = np.zeros((2, 2, 1), dtype=bool)
    image[0, 0, 0] = image[1, 1, 0] = True
    face = solve_laplace(image, True, connectivity="face")
    vertex = solve_laplace(image, True, connectivity="vertex")
    assert not face.percolating and face.element_nodes.shape[0] == 0  # nothing spans
    assert vertex.percolating
    assert vertex.element_nodes.shape == (2, 8)
    assert np.unique(vertex.element_nodes).size == 14
    # under "face" with a spanning block underneath, the pinched edge still gets two nodes
    image2 = np.zeros((2, 2, 2), dtype=bool)
    image2[0, 0, 0] = image2[1, 1, 0] = True
    image2[:, 0, 1] = image2[:, 1, 1] = True  # a solid wall at x = 1 joins both by faces
    face2 = solve_laplace(image2, True, connectivity="face")
    vertex2 = solve_laplace(image2, True, connectivity="vertex")
    assert np.unique(face2.element_nodes).size == np.unique(vertex2.element_nodes).size + 1


def test_clusters_not_touching_both_faces_get_their_exact_value():
    image = np.ones((8, 8, 8), dtype=bool)
    image[:, 0, 0] = False  # spanning pore channel
    image[3:5, 4:6, 4:6] = False  # isolated pore cluster
    image[0:3, 6, 6] = False  # touches the inlet only
    image[5:8, 3, 6] = False  # touches the outlet only
    result = solve_laplace(image, False)
    # only the straight channel conducts: flux 1/8 through area 1, D_eff/D = (1/8) * 8 / 64
    assert result.volume_fraction == 22 / 512
    assert result.tau_eff == pytest.approx(result.volume_fraction * 64, rel=1e-8)
    values = result.voxel_values
    assert np.all(values[3:5, 4:6, 4:6] == 0.0)
    assert np.all(values[0:3, 6, 6] == 0.0)
    assert np.all(values[5:8, 3, 6] == 1.0)
    assert values[:, 0, 0] == pytest.approx((np.arange(8) + 0.5) / 8, abs=1e-9)
    assert result.element_voxels.size == 8


def four_clusters_image():
    """Solid 10^3 with pore clusters: spanning, inlet-only, outlet-only, isolated, edge-joined.

    The last one, ``[7:10, 2, 2]``, touches the outlet and meets the spanning channel
    ``[:, 1, 1]`` only along an edge: outlet-only under ``"face"``, part of the spanning cluster
    under ``"vertex"``.
    """
    image = np.ones((10, 10, 10), dtype=bool)
    image[:, 1, 1] = False  # spans
    image[0:4, 1, 7] = False  # inlet only
    image[6:10, 7, 7] = False  # outlet only
    image[4:6, 7, 2] = False  # neither face
    image[7:10, 2, 2] = False  # outlet, and an edge contact with the spanning channel
    return image


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_outlet_only_clusters_have_the_exact_solution_one(connectivity):
    image = four_clusters_image()
    result = solve_laplace(image, "pore", connectivity=connectivity)
    channel = diffusion_channels(image, connectivity=connectivity)[0]
    for values in (result.voxel_values, channel):
        assert np.all(values[0:4, 1, 7] == 0.0)  # inlet only: exact solution 0
        assert np.all(values[6:10, 7, 7] == 1.0)  # outlet only: exact solution 1
        assert np.all(values[4:6, 7, 2] == 0.0)  # neither face: 0 by convention
        assert np.all(values[image] == 0.0)  # the other phase
    edge = result.voxel_values[7:10, 2, 2]
    if connectivity == "face":
        # the edge contact does not conduct: a separate outlet-only cluster, and the spanning
        # channel alone is straight, D_eff/D = (1/10) * 10 / 100
        assert np.all(edge == 1.0)
        assert result.voxel_values[:, 1, 1] == pytest.approx((np.arange(10) + 0.5) / 10)
        assert result.tau_eff == pytest.approx(result.volume_fraction * 100, rel=1e-8)
        assert result.element_voxels.size == 10
    else:
        # joined to the spanning channel through the edge's nodes: solved with it
        assert np.all((edge > 0.0) & (edge < 1.0))
        assert result.element_voxels.size == 13
        assert result.tau_eff < result.volume_fraction * 100
    # the solid phase is one spanning cluster in both conventions: nothing left at 0 or 1
    solid = diffusion_channels(image, connectivity=connectivity)[1][image]
    assert np.all((solid > 0.0) & (solid < 1.0))


# --- the solve on random structures ---------------------------------------------------------


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_inlet_and_outlet_flux_agree(structure, connectivity):
    for phase in (False, True):
        result = solve_laplace(structure, phase, connectivity=connectivity, tol=1e-8)
        assert result.percolating and result.converged
        assert 0 < result.iterations < 100
        # Summed over all nodes K u vanishes (constant null space), so the imbalance is the
        # sum of the CG residual over the free nodes: about sqrt(n) * tol * |b| at most.
        assert result.flux_out == pytest.approx(result.flux_in, rel=1e-6)
        assert result.d_eff == pytest.approx(result.flux_in * 32 / 32**2, rel=1e-6)
        assert result.d_eff == pytest.approx(result.flux_out * 32 / 32**2, rel=1e-6)
        assert result.tau_eff == pytest.approx(result.volume_fraction / result.d_eff)
        assert result.volume_fraction == pytest.approx(np.mean(structure == phase))


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_d_eff_is_the_energy_and_insensitive_to_the_tolerance(structure, connectivity):
    """``D_eff`` comes from ``u^T K u``, whose error is quadratic in the solver's."""
    tight = solve_laplace(structure, False, connectivity=connectivity, tol=1e-10)
    loose = solve_laplace(structure, False, connectivity=connectivity, tol=1e-5)
    assert loose.iterations < tight.iterations
    nodal = tight.solution[tight.element_nodes]
    energy = np.einsum("ea,ab,eb->", nodal, mesh.element_stiffness(), nodal)
    assert tight.d_eff == pytest.approx(energy * 32 / 32**2, rel=1e-12)
    assert loose.d_eff == pytest.approx(tight.d_eff, rel=1e-7)


def test_default_tolerance_keeps_tau_eff():
    """DEFAULT_TOL (1e-6) gives τ_eff within 1e-6 of a 1e-8 solve, in fewer iterations."""
    from srlib.stochastic import ModelParams, sample

    assert transport.DEFAULT_TOL == 1e-6
    image = sample((40, 40, 40), ModelParams.from_solid_fraction(0.7, gamma=10**-0.5), seed=3)
    for phase in (False, True):
        default = solve_laplace(image, phase)
        strict = solve_laplace(image, phase, tol=1e-8)
        assert default.tol == transport.DEFAULT_TOL and np.isfinite(strict.tau_eff)
        assert default.iterations < strict.iterations
        assert default.tau_eff == pytest.approx(strict.tau_eff, rel=1e-6)


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_solution_satisfies_the_generically_assembled_system(structure, connectivity):
    """Re-assemble K from the element matrix by plain COO summation and check K u = 0 inside."""
    result = solve_laplace(structure[:16, :16, :16], True, connectivity=connectivity)
    nodes = result.element_nodes
    k = mesh.element_stiffness()
    n = result.solution.size
    rows = np.repeat(nodes, 8, axis=1).ravel()
    cols = np.tile(nodes, (1, 8)).ravel()
    matrix = sparse.coo_matrix((np.tile(k.ravel(), len(nodes)), (rows, cols)), shape=(n, n))
    reaction = matrix.tocsr() @ result.solution
    plane = np.unravel_index(result.node_vertex, (17, 17, 17))[0]
    free = (plane > 0) & (plane < 16)
    assert np.abs(reaction[free]).max() < 1e-6 * result.flux_in
    assert -reaction[plane == 0].sum() == pytest.approx(result.flux_in, rel=1e-12)
    assert reaction[plane == 16].sum() == pytest.approx(result.flux_out, rel=1e-12)
    assert result.solution.min() >= -1e-8 and result.solution.max() <= 1 + 1e-8


def test_transport_axis_follows_the_image_axes(structure):
    image = structure[:16, :20, :12]
    for axis in (1, 2):
        moved = np.moveaxis(image, axis, 0)
        for connectivity in CONNECTIVITIES:
            assert effective_tortuosity(
                image, False, axis=axis, connectivity=connectivity
            ) == pytest.approx(
                effective_tortuosity(moved, False, axis=0, connectivity=connectivity), rel=1e-6
            )


def test_vertex_conducts_at_least_as_well_as_face(structure):
    # The "vertex" space is the "face" space with split nodes tied together: a subspace, so
    # its Dirichlet energy (the conductance) is larger or equal, tau smaller or equal.
    for phase in (False, True):
        face = effective_tortuosity(structure, phase, connectivity="face")
        vertex = effective_tortuosity(structure, phase, connectivity="vertex")
        assert vertex <= face * (1 + 1e-6)


# --- diffusion channels ---------------------------------------------------------------------


def test_diffusion_channels_shape_range_and_support(structure):
    channels = diffusion_channels(structure)
    assert channels.shape == (2, *structure.shape)
    assert channels.dtype == np.float32
    assert channels.min() >= 0.0 and channels.max() <= 1.0
    assert np.all(channels[0][structure] == 0.0)  # pore channel is 0 in the solid
    assert np.all(channels[1][~structure] == 0.0)  # solid channel is 0 in the pore
    for channel, phase in ((0, False), (1, True)):
        expected = solve_laplace(structure, phase).voxel_values
        assert channels[channel] == pytest.approx(expected.astype(np.float32), abs=1e-6)


@pytest.mark.parametrize("axis", [0, 2])
def test_diffusion_channel_profile_rises_from_inlet_to_outlet(structure, axis):
    channels = diffusion_channels(structure, axis=axis)
    for channel, phase in ((0, False), (1, True)):
        values = np.moveaxis(channels[channel], axis, 0)
        mask = np.moveaxis(structure == phase, axis, 0) & (values > 0)
        profile = np.array([values[i][mask[i]].mean() for i in range(values.shape[0])])
        assert np.all(np.diff(profile) > 0)
        assert profile[0] < 0.1
        assert profile[-1] > 0.9


def test_diffusion_channels_of_a_single_phase_image():
    solid = np.ones((4, 3, 5), dtype=bool)
    channels = diffusion_channels(solid)
    assert np.all(channels[0] == 0.0)
    expected = ((np.arange(4) + 0.5) / 4)[:, None, None] * np.ones((4, 3, 5))
    assert channels[1] == pytest.approx(expected.astype(np.float32), abs=1e-6)
    pore = np.zeros((4, 3, 5), dtype=np.uint8)
    channels = diffusion_channels(pore)
    assert np.all(channels[1] == 0.0)
    assert channels[0] == pytest.approx(expected.astype(np.float32), abs=1e-6)


def test_inputs_are_not_modified(structure):
    image = structure.astype(np.uint8)
    before = image.copy()
    diffusion_channels(image)
    solve_laplace(image, 1, axis=1)
    assert np.array_equal(image, before)


# --- independent checks ---------------------------------------------------------------------


def test_finite_volume_reference_knows_the_answers():
    assert finite_volume_tau(np.ones((5, 4, 3), bool), True) == pytest.approx(1.0)
    image = channels_image((6, 6, 6), 0, [(1, 1), (4, 2)])
    assert finite_volume_tau(image, False) == pytest.approx(1.0)
    assert finite_volume_tau(staircase(5), True) == math.inf


def test_refinement_brackets_the_finite_volume_value():
    """FEM and finite volumes converge to the same τ_eff from opposite sides under refinement.

    Refining by splitting voxels keeps the domain, and the coarse FE space is a subspace of the
    refined one (for both conventions), so FEM τ_eff can only grow (a theorem of Galerkin
    energy minimisation). On rough voxel structures finite volumes overestimate τ at the
    native resolution and come down; the gap between the two methods must shrink.
    """
    image = smooth_structure((12, 12, 12), 0.45, sigma=1.5, seed=3)
    for phase in (False, True):
        face = [effective_tortuosity(refine(image, r), phase) for r in (1, 2)]
        vertex = [
            effective_tortuosity(refine(image, r), phase, connectivity="vertex") for r in (1, 2)
        ]
        fv = [finite_volume_tau(refine(image, r), phase) for r in (1, 2)]
        assert face[1] >= face[0] * (1 - 1e-6)
        assert vertex[1] >= vertex[0] * (1 - 1e-6)
        assert abs(face[1] - fv[1]) < abs(face[0] - fv[0])
        assert face[1] == pytest.approx(fv[1], rel=0.15)


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_raises_value_error():
    image = smooth_structure((6, 6, 6), 0.5)
    with pytest.raises(ValueError, match="binary"):
        solve_laplace(image.astype(float) * 2, True)
    with pytest.raises(ValueError, match="binary"):
        diffusion_channels(np.full((4, 4, 4), 0.5))
    with pytest.raises(ValueError, match="3D"):
        effective_tortuosity(image[0], True)
    with pytest.raises(ValueError, match="absent"):
        solve_laplace(np.ones((4, 4, 4), bool), False)
    with pytest.raises(ValueError, match="absent"):
        effective_tortuosity(np.zeros((4, 4, 4), bool), "solid")
    with pytest.raises(ValueError, match="phase"):
        solve_laplace(image, 2)
    with pytest.raises(ValueError, match="axis"):
        solve_laplace(image, True, axis=3)
    with pytest.raises(ValueError, match="axis"):
        diffusion_channels(image, axis=1.0)
    with pytest.raises(ValueError, match="connectivity"):
        effective_tortuosity(image, True, connectivity="edge")
    with pytest.raises(ValueError, match="connectivity"):
        diffusion_channels(image, connectivity="26")
    with pytest.raises(ValueError, match="tol"):
        solve_laplace(image, True, tol=0)


def test_torch_path_agrees_with_the_multigrid(structure):
    """``device=...`` solves the same system by Jacobi-CG with torch (here on the CPU)."""
    pytest.importorskip("torch")
    for phase in (False, True):
        cpu = solve_laplace(structure, phase, tol=1e-8)
        torch_cpu = solve_laplace(structure, phase, tol=1e-8, device="cpu")
        assert torch_cpu.converged and torch_cpu.iterations > cpu.iterations
        assert torch_cpu.tau_eff == pytest.approx(cpu.tau_eff, rel=1e-8)
        np.testing.assert_allclose(torch_cpu.voxel_values, cpu.voxel_values, atol=1e-5)
    channels = transport.diffusion_channels(structure, device="cpu")
    np.testing.assert_allclose(channels, transport.diffusion_channels(structure), atol=1e-3)
    assert transport.effective_tortuosity(structure, True, device="cpu") == pytest.approx(
        cpu.tau_eff, rel=1e-6)


def test_bad_device_is_refused(structure):
    with pytest.raises(ValueError, match="torch device"):
        solve_laplace(structure, True, device="nonsense")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            solve_laplace(structure, True, device="cuda")
