"""Field metrics (srlib.fields): known answers and the FEM's own solutions."""

import numpy as np
import pytest

from srlib import fields, stochastic
from srlib.transport import diffusion_channels, solve_laplace


def _chi2(shape, solid, seed):
    params = stochastic.ModelParams.from_solid_fraction(solid, gamma=0.3)
    return stochastic.sample(shape, params, seed=seed)


def test_a_straight_channel_has_tau_one_from_its_linear_field():
    image = np.ones((12, 10, 10), dtype=bool)
    image[:, 3:6, 4:7] = False  # a pore channel along axis 0
    z = (np.arange(12) + 0.5) / 12  # the exact voxel means of u = z / L
    field = np.broadcast_to(z[:, None, None], image.shape)
    assert fields.tau_from_field(field, image, 0) == pytest.approx(1.0, rel=1e-8)
    assert fields.relative_l2(field, field, image, 0) == 0.0


@pytest.mark.parametrize("solid, seed", [(0.5, 1), (0.7, 2)])
@pytest.mark.parametrize("phase", [0, 1])
def test_the_fem_solution_gives_back_the_fem_tau_within_one_percent(solid, seed, phase):
    """Differences of voxel means across faces are 8-24 % off here; the lift is not."""
    image = _chi2((24, 24, 24), solid, seed)
    fem = solve_laplace(image, phase)
    channel = diffusion_channels(image)[1 if phase else 0]  # float32, as stored
    tau = fields.tau_from_field(channel, image, phase)
    assert tau == pytest.approx(fem.tau_eff, rel=0.01)
    assert tau == pytest.approx(fem.tau_eff, rel=1e-4)  # in fact to the storage precision


def test_a_wrong_field_gives_another_tau_and_a_relative_error():
    image = _chi2((20, 20, 20), 0.5, 3)
    channel = diffusion_channels(image)[0]
    tau = fields.tau_from_field(channel, image, 0)
    noisy = channel + np.random.default_rng(0).normal(0, 0.05, channel.shape)
    assert fields.tau_from_field(noisy, image, 0) != pytest.approx(tau, rel=1e-3)
    err = fields.relative_l2(noisy, channel, image, 0)
    assert 0.0 < err < 1.0


def test_no_path_and_bad_input():
    image = np.zeros((8, 8, 8), dtype=bool)
    image[4] = True  # a solid wall across the pore
    assert fields.tau_from_field(np.zeros(image.shape), image, 0) == np.inf
    with pytest.raises(ValueError, match="shape"):
        fields.tau_from_field(np.zeros((4, 4, 4)), image, 0)
    with pytest.raises(ValueError, match="finite"):
        fields.tau_from_field(np.full(image.shape, np.nan), image, 0)
    with pytest.raises(ValueError, match="weight"):
        fields.tau_from_field(np.zeros(image.shape), image, 1, weight=0)
    assert np.isnan(fields.relative_l2(np.zeros(image.shape), np.zeros(image.shape), image, 1))


def test_hr_channels_are_the_direct_solve_stored_resumably_and_checked(tmp_path):
    from srlib import datasets
    from srlib.config import get_profile

    params = stochastic.ModelParams.from_solid_fraction(0.7, gamma=0.4)
    samples = [datasets.Sample(name="s0", image=stochastic.sample(32, params, seed=0),
                               voxel_size_um=None, source="test")]
    db = datasets.build_database(get_profile("tiny"), samples=samples, root=tmp_path / "db",
                                 workers=1, progress=False)
    done = fields.build_hr_channels(db, roles=("test",), workers=1, progress=False)
    (test,) = db.indices("test")
    assert done == [f"s0/{test}"]
    stored = fields.hr_channels(db, "s0", test, connectivity="face", axis=0)
    np.testing.assert_array_equal(stored, diffusion_channels(db.hr("s0", test)))
    assert stored.dtype == np.float32 and stored.shape == (2, 32, 32, 32)
    # a second call finds them: nothing recomputed; the other roles are added
    assert fields.build_hr_channels(db, roles=("test",), workers=1, progress=False) == []
    assert len(fields.build_hr_channels(db, workers=1, progress=False)) == 2
    with pytest.raises(ValueError, match="connectivity='face', not 'vertex'"):
        fields.hr_channels(db, "s0", test, connectivity="vertex")
    # other settings: every stored array is dropped and the asked ones recomputed
    fields.build_hr_channels(db, connectivity="vertex", roles=("test",), workers=1,
                             progress=False)
    train = db.indices("train")[0]
    with pytest.raises(ValueError, match="missing"):
        fields.hr_channels(db, "s0", train)
    np.testing.assert_array_equal(
        fields.hr_channels(db, "s0", test, connectivity="vertex"),
        diffusion_channels(db.hr("s0", test), connectivity="vertex"))


def test_interpolated_field_keeps_a_linear_field_and_its_range():
    """On the pixel-centre grid the kernel reproduces a linear field away from the borders."""
    n, alpha = 8, 2
    lr = np.broadcast_to(((np.arange(n) + 0.5) / n)[:, None, None], (n, n, n))
    hr = fields.interpolated_field(lr, alpha)
    assert hr.shape == (16, 16, 16) and hr.dtype == np.float32
    exact = ((np.arange(16) + 0.5) / 16)[:, None, None]
    np.testing.assert_allclose(hr[3:-3], np.broadcast_to(exact, hr.shape)[3:-3], atol=1e-6)
    assert float(hr.min()) >= 0.0 and float(hr.max()) <= 1.0
    with pytest.raises(ValueError, match="grid"):
        fields.interpolated_field(lr, alpha, grid="nearest")
    with pytest.raises(ValueError, match="finite"):
        fields.interpolated_field(np.full((4, 4, 4), np.nan), alpha)


def test_only_16_symmetries_keep_the_transport_axis_and_they_map_solutions_to_solutions():
    """Field targets cannot be augmented by all 48 symmetries: a field is tied to its axis,
    and the mirror along it turns u into 1 - u (but not on clusters touching neither face)."""
    from srlib.training.symmetry import apply_symmetry, cube_symmetries

    image = _chi2((16, 18, 18), 0.55, 4)
    image[5:8, 2:5, 2:5] = ~image[5:8, 2:5, 2:5]  # more small clusters: 81 + 27 voxels isolated
    channels = diffusion_channels(image)
    keep = fields.field_symmetries(0)
    assert len(keep) == 16 and all(s.perm[0] == 0 for s in keep)
    for sym in keep:
        moved = apply_symmetry(image, sym)
        expected = diffusion_channels(moved)
        got = fields.transform_fields(channels, image, sym)
        # to the solver's tolerance (nodal values within 2.7e-4, transport.DEFAULT_TOL);
        # 1 - u on the isolated clusters as well would be off by 1 there
        np.testing.assert_allclose(got, expected, atol=3e-4)
    other = next(s for s in cube_symmetries() if s.perm[0] != 0)
    with pytest.raises(ValueError, match="transport axis"):
        fields.transform_fields(channels, image, other)


def test_the_lift_matrix_is_the_element_by_element_sum():
    """The CSR assembly of ``k + mu J / 64`` equals SciPy's sum of the elements' entries,
    split grid points included (under "face" connectivity, voxels that meet only at an edge
    or a corner give that grid point several nodes)."""
    import scipy.sparse as sp

    from srlib.fem import mesh

    for connectivity in ("face", "vertex"):
        image = _chi2((10, 9, 8), 0.6, 3)
        domain, _ = mesh.clusters(image, 0, connectivity)
        assert domain.any()
        voxels, nodes, node_vertex = mesh.number_mesh(domain, connectivity)
        if connectivity == "face":
            assert not mesh.main_nodes(node_vertex).all()  # the test covers split points
        plane = np.zeros(node_vertex.size, dtype=np.uint8)
        free_id = np.empty(node_vertex.size, dtype=nodes.dtype)
        mesh.number_free(node_vertex, np.array([11, 10, 9]), 0, plane, free_id)
        free = plane == 0
        boundary = np.where(plane == 2, 1.0, 0.0)
        nodes = nodes.astype(np.int64)
        free_id = np.where(free, np.cumsum(free) - 1, -1)
        k = mesh.element_stiffness()
        system, moved = fields._lift_system(nodes, free_id, boundary, k, 1e3)
        k_lift = k + 1e3 / 64.0
        fid = free_id[nodes]
        n = int(free.sum())
        rows, cols, vals = [], [], []
        expected_moved = np.zeros(n)
        for a in range(8):
            for b in range(8):
                both = (fid[:, a] >= 0) & (fid[:, b] >= 0)
                rows.append(fid[both, a])
                cols.append(fid[both, b])
                vals.append(np.full(int(both.sum()), k_lift[a, b]))
                fixed = (fid[:, a] >= 0) & (fid[:, b] < 0)
                np.add.at(expected_moved, fid[fixed, a],
                          k_lift[a, b] * boundary[nodes[fixed, b]])
        expected = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                         np.concatenate(cols))),
                                 shape=(n, n)).tocsr()
        assert system.has_canonical_format
        assert system.nnz == expected.nnz
        assert abs(system - expected).max() < 1e-9
        np.testing.assert_allclose(moved, expected_moved, rtol=1e-12, atol=1e-12)
        assert moved.any() and (system != system.T).nnz == 0
