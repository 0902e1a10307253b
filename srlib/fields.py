"""Metrics of diffusion fields on the voxel grid (the paper's future work, section 4).

Contract. A *field* is a two-channel image of the kind of Eqs. (7)-(8): for each phase, the
solution u of the Laplace problem of :mod:`srlib.transport` (``u = 0`` at the inlet face,
``1`` at the outlet, no flux elsewhere) averaged over each voxel of the phase. Networks that
predict fields (and interpolations of low-resolution fields) are judged against the
finite-element solution on the true high-resolution image by:

* :func:`relative_l2`: ``||u_pred - u_true|| / ||u_true||`` over the voxels of a phase;
* :func:`tau_from_field`: the effective tortuosity a field implies. A voxel field does not
  give a flux directly: differences of voxel means across faces (a finite-volume flux) differ
  from the finite-element flux by 8-24 % in τ on χ² structures (measured, engineering notes).
  So the field is lifted to the finite-element space first: the nodal field of least
  Dirichlet energy whose voxel means are closest to the given ones,
  ``min_u  u^T A u + μ ||M u - v||²`` (``A`` the FEM matrix, ``M`` the voxel means of a nodal
  field, boundary values fixed), and ``D_eff`` is the mean flux of the lifted field: the
  integral of ``∂u/∂x`` over the domain divided by the cross-section. The FEM solution is a
  stationary point of both terms of the lift, and its mean flux equals its energy times
  ``L / area`` (Galerkin orthogonality), so a field that *is* the FEM solution returns the
  FEM's τ_eff (to the solver's tolerance); for another field the lift is the smoothest field
  consistent with it.

Only the clusters of the phase that touch both faces are meshed, as in the FEM; a phase
without such a cluster gives ``inf``. Inputs are never modified.

The targets: :func:`build_hr_channels` stores the two channels of Eqs. (7)-(8) of every
high-resolution realization of a database beside its low-resolution ones (array
``rNN_hrdiffu``, settings in ``hr_channels.json``), one Dask task per realization writing its
array atomically, resumable; :func:`hr_channels` reads them back, checked against the settings
asked for.
"""

from __future__ import annotations

import json
import shutil

import numpy as np

from srlib._checks import as_binary, check_axis, check_phase
from srlib.methods import GRIDS, check_connectivity

__all__ = ["HR_CHANNELS", "LIFT_WEIGHT", "build_hr_channels", "field_symmetries", "hr_channels",
           "interpolated_channels", "interpolated_field", "relative_l2", "tau_from_field",
           "taus_from_fields", "transform_fields"]

#: Name of a realization's HR diffusion channels in the database (``rNN_hrdiffu``).
HR_CHANNELS = "hrdiffu"
_KEY_FILE = "hr_channels.json"

#: Weight μ of the voxel means in the lift, relative to the energy (per element: the FEM
#: matrix has entries of order 1 per element, so μ = 1e3 holds the means to about 1e-3 of
#: the field's own roughness; a test checks the FEM solution is returned at any μ).
LIFT_WEIGHT = 1e3


def _field_and_mask(field, image, phase):
    img = as_binary(image)
    phase = check_phase(img, phase)
    u = np.asarray(field, dtype=np.float64)
    if u.shape != img.shape:
        raise ValueError(f"field must have the image's shape {img.shape}, got {u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("field must be finite everywhere")
    return u, img == phase


def relative_l2(predicted, true, image, phase) -> float:
    """``||predicted - true|| / ||true||`` over the voxels of ``phase`` in ``image``.

    Parameters
    ----------
    predicted, true : array_like
        Fields of one phase (3D, the image's shape).
    image : array_like
        Binary image (True = solid) whose phase is compared.
    phase : bool or int
        1/True solid, 0/False pore.

    Returns
    -------
    float
        The relative error; ``nan`` when the phase is absent or ``true`` is 0 on it.
    """
    p, mask = _field_and_mask(predicted, image, phase)
    t, _ = _field_and_mask(true, image, phase)
    norm = float(np.linalg.norm(t[mask]))
    if not mask.any() or norm == 0.0:
        return float("nan")
    return float(np.linalg.norm((p - t)[mask]) / norm)


def interpolated_field(lr_field, alpha: int, *, grid: str = "centred",
                       lr_phase=None) -> np.ndarray:
    """The baseline for a field: a low-resolution field interpolated to the HR grid.

    The tri-quadratic kernel of the morphology's baseline (:mod:`srlib.baselines`), on the
    pixel-centre grid by default: the low-resolution FEM treats LR voxel ``j`` as the block of
    HR voxels ``α j .. α j + α - 1``, so its voxel mean belongs at the block's centre. Values
    are clipped to [0, 1], the range of u.

    A diffusion channel is 0 off its phase; interpolated as it is, those zeros pull the field
    towards 0 along every wall. With ``lr_phase`` (the LR image's voxels of the channel's
    phase) each voxel off the phase first takes the value of its nearest voxel of the phase
    (Euclidean, :func:`scipy.ndimage.distance_transform_edt`), so the interpolation near a
    wall reads the phase's own values.

    Parameters
    ----------
    lr_field : array_like
        3D field of one phase on the LR grid (e.g. a channel of
        :func:`srlib.transport.diffusion_channels` of the LR image).
    alpha : int
        Scaling factor.
    grid : {"centred", "aligned"}
        Interpolation grid (:data:`srlib.methods.GRIDS`).
    lr_phase : array_like of bool, optional
        Where the field is defined (the LR phase); default everywhere.

    Returns
    -------
    numpy.ndarray
        float32 field on the HR grid (``alpha`` times the LR shape).
    """
    from scipy.ndimage import distance_transform_edt

    from srlib.baselines import interpolate_quadratic_centred
    from srlib.resample import interpolate_quadratic

    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    lr = np.asarray(lr_field, dtype=np.float32)
    if lr.ndim != 3 or not np.isfinite(lr).all():
        raise ValueError("lr_field must be a finite 3D array")
    if lr_phase is not None:
        inside = np.asarray(lr_phase, dtype=bool)
        if inside.shape != lr.shape:
            raise ValueError(f"lr_phase must have the field's shape {lr.shape}, "
                             f"got {inside.shape}")
        if inside.any() and not inside.all():
            nearest = distance_transform_edt(~inside, return_distances=False,
                                             return_indices=True)
            lr = lr[tuple(nearest)]
    func = interpolate_quadratic_centred if grid == "centred" else interpolate_quadratic
    return np.clip(func(lr, alpha), 0.0, 1.0).astype(np.float32)


def interpolated_channels(lr_channels, lr_image, alpha: int, *,
                          grid: str = "centred") -> np.ndarray:
    """:func:`interpolated_field` of both diffusion channels of an LR image, each from its phase.

    ``lr_channels`` is ``(2, *lr.shape)``, ``[pore, solid]`` (Eqs. 7-8); returns the float32
    ``(2, *(alpha * lr.shape))`` baseline of the HR channels.
    """
    img = as_binary(lr_image, name="lr_image")
    ch = np.asarray(lr_channels, dtype=np.float32)
    if ch.shape != (2, *img.shape):
        raise ValueError(f"lr_channels must have shape {(2, *img.shape)}, got {ch.shape}")
    return np.stack([interpolated_field(ch[c], alpha, grid=grid, lr_phase=img == phase)
                     for c, phase in enumerate((False, True))])


def _lift_system(nodes, free_id: np.ndarray, boundary: np.ndarray, k: np.ndarray,
                 weight: float):
    """The lift's matrix on the free nodes and the boundary values' share of its right side.

    The voxel-mean operator ``M`` has the entries ``1/8`` of an element's 8 nodes in its row,
    so ``MᵀM`` is assembled element by element like ``A``, with the element matrix
    ``J / 64`` (J the 8 x 8 matrix of ones): one assembly of ``k + μ J / 64``
    (:func:`srlib.fem.kernels.assemble_csr`).
    """
    import scipy.sparse as sp

    from srlib.fem.kernels import assemble_csr

    n_free = int(free_id.max()) + 1
    indptr, indices, data, moved = assemble_csr(nodes, free_id, boundary, k + weight / 64.0,
                                                n_free)
    return sp.csr_matrix((data, indices, indptr), shape=(n_free, n_free)), moved


def tau_from_field(field, image, phase, *, axis: int = 0, connectivity: str = "face",
                   weight: float = LIFT_WEIGHT, tol: float = 1e-10) -> float:
    """Effective tortuosity implied by a voxel field of one phase (see the module docstring).

    Parameters
    ----------
    field : array_like
        Voxel means of u in the phase (the image's shape; other voxels are ignored).
    image : array_like
        Binary image (True = solid).
    phase : bool or int
        1/True solid, 0/False pore.
    axis : int
        Transport axis (u = 0 at index 0, 1 at the last index).
    connectivity : {"face", "vertex"}
        Mesh convention, as in :func:`srlib.transport.solve_laplace`.
    weight : float
        μ, the weight of the voxel means against the energy.
    tol : float
        Relative residual of the conjugate-gradient solve of the lift.

    Returns
    -------
    float
        ``ε / D_eff``; ``inf`` when the phase has no cluster touching both faces, or when the
        lifted field's mean flux is not positive (a field that implies no transport).
    """
    return taus_from_fields([field], image, phase, axis=axis, connectivity=connectivity,
                            weight=weight, tol=tol)[0]


def taus_from_fields(fields, image, phase, *, axis: int = 0, connectivity: str = "face",
                     weight: float = LIFT_WEIGHT, tol: float = 1e-10) -> list[float]:
    """:func:`tau_from_field` of several fields of one phase of one image.

    The lift's system depends on the image alone, so it is assembled once and every field
    only changes its right-hand side.
    """
    import scipy.sparse.linalg as spla

    from srlib.fem import mesh

    fields = list(fields)
    if not fields:
        return []
    checked = [_field_and_mask(f, image, phase) for f in fields]
    mask = checked[0][1]
    axis = check_axis(axis)
    connectivity = check_connectivity(connectivity)
    if not (isinstance(weight, (int, float)) and weight > 0):
        raise ValueError(f"weight must be a positive number, got {weight!r}")
    domain, _ = mesh.clusters(mask, axis, connectivity)
    voxels, nodes, node_vertex = mesh.number_mesh(domain, connectivity)
    if voxels.size == 0:
        return [float("inf")] * len(fields)
    vertex_shape = np.array([n + 1 for n in mask.shape], dtype=np.int64)
    plane = np.zeros(node_vertex.size, dtype=np.uint8)
    free_id = np.empty(node_vertex.size, dtype=nodes.dtype)
    mesh.number_free(node_vertex, vertex_shape, axis, plane, free_id)
    free = plane == 0
    boundary = np.where(plane == 2, 1.0, 0.0)
    nodes = nodes.astype(np.int64)
    free_id = np.where(free, np.cumsum(free) - 1, -1)
    # (A + μ MᵀM) on the free nodes, the fixed nodes' values moved to the right side
    system, moved = _lift_system(nodes, free_id, boundary, mesh.element_stiffness(), weight)
    diag = system.diagonal()
    pre = spla.LinearOperator(system.shape, matvec=lambda x: x / diag)
    # The flux: the integral of du/dx_axis over the domain, divided by the cross-section
    # (per element, the mean of u on its outlet-side face minus that on its inlet-side face).
    # For the FEM solution it equals its energy times L / area (Galerkin orthogonality
    # against the test field u - x_axis / L), so the FEM's tau comes back; unlike the
    # energy it is linear in the field, so a rough field is not read as a fast one.
    outlet_side = ((np.arange(8) >> (2 - axis)) & 1).astype(bool)
    area = mask.size // mask.shape[axis]
    taus = []
    for u_vox, _ in checked:
        # μ Mᵀ v: each element's voxel value, an eighth to each of its nodes
        share = np.repeat(u_vox.ravel()[voxels] * (weight / 8.0), 8)
        rhs = np.bincount(nodes.ravel(), weights=share, minlength=node_vertex.size)[free] - moved
        sol, info = spla.cg(system, rhs, rtol=tol, maxiter=20 * system.shape[0], M=pre)
        if info != 0:
            raise RuntimeError(f"the lift of the field did not converge (cg info {info})")
        u = boundary.copy()
        u[free] = sol
        corners = u[nodes]
        flux = float((corners[:, outlet_side].mean(axis=1)
                      - corners[:, ~outlet_side].mean(axis=1)).sum())
        d_eff = flux / area
        taus.append(float(mask.mean() / d_eff) if d_eff > 0 else float("inf"))
    return taus


def _stored_key(db) -> dict | None:
    path = db.root / _KEY_FILE
    return json.loads(path.read_text()) if path.exists() else None


def build_hr_channels(db, *, connectivity: str = "face", axis: int = 0, roles=None,
                      scheduler=None, workers: int | None = None, progress: bool = True):
    """Compute and store the diffusion channels of the database's HR realizations.

    Parameters
    ----------
    db : srlib.datasets.Database
        The database.
    connectivity, axis
        FEM convention and transport axis (as for the LR channels).
    roles : sequence of str, optional
        Realizations of these roles only ("train", "val", "test"); default all.
    scheduler, workers, progress
        As for :func:`srlib.datasets.build_diffusion_channels`.

    Returns
    -------
    list of str
        The realizations computed now (``"scenario/i"``); stored ones are kept.
    """
    from srlib import _store
    from srlib.datasets import channels_task
    from srlib.io import remove_stale_temp, write_json
    from srlib.parallel import dask_client, run_tasks

    key = {"connectivity": check_connectivity(connectivity), "axis": check_axis(axis)}
    indices = sorted({i for r in (roles or ("train", "val", "test")) for i in db.indices(r)})
    paths = {(s, i): db.path(s, i, HR_CHANNELS) for s in db.scenario_names
             for i in db.indices()}
    remove_stale_temp(db.root, recursive=True)
    if _stored_key(db) != key:
        for path in paths.values():
            if path.exists():
                shutil.rmtree(path)
        write_json(db.root / _KEY_FILE, key, indent=None)
    todo = [(str(db.root), s, i, "hr", HR_CHANNELS, key["connectivity"], key["axis"])
            for (s, i), path in paths.items() if i in indices
            and not _store.array_ok(path, (2, *db.array("hr", s, i).shape), np.float32)]
    if todo:
        with dask_client(scheduler, workers=workers) as client:
            run_tasks(client, channels_task, todo, desc="HR diffusion channels",
                      progress=progress)
    return [f"{s}/{i}" for _, s, i, *_ in todo]


def hr_channels(db, scenario: str, i: int, *, connectivity: str | None = None,
                axis: int | None = None, lazy: bool = False) -> np.ndarray:
    """The stored HR diffusion channels ``(2, *hr.shape)`` (``[pore, solid]``, float32).

    With ``lazy``, the checked store as a read-only zarr array (read region by region).

    Raises
    ------
    ValueError
        If they are missing, damaged, or were computed with another ``connectivity`` or
        ``axis`` than the one given.
    """
    from srlib import _store

    key = _stored_key(db)
    asked = {"connectivity": connectivity, "axis": axis}
    for name, value in asked.items():
        if value is not None and (key is None or key[name] != value):
            raise ValueError(f"the HR channels in {db.root} were computed with "
                             f"{name}={None if key is None else key[name]!r}, not {value!r}; "
                             "rerun build_hr_channels")
    path = db.path(scenario, i, HR_CHANNELS)
    shape = (2, *db.array("hr", scenario, i).shape)
    if not _store.array_ok(path, shape, np.float32):
        raise ValueError(f"{path} is missing or damaged; run srlib.fields.build_hr_channels")
    return _store.open_array(path) if lazy else _store.read_array(path)


def field_symmetries(axis: int = 0) -> list:
    """The symmetries of the cube that keep the transport axis: 16 of the 48.

    The others turn the transport along ``axis`` into transport along another axis, whose
    field is another solution: training cutouts of fields may only be augmented by these
    (:func:`transform_fields`), not by all 48 as the morphology is.
    """
    from srlib.training.symmetry import axis_symmetries

    return axis_symmetries(check_axis(axis))


def transform_fields(channels, image, sym, *, axis: int = 0,
                     connectivity: str = "face") -> np.ndarray:
    """The diffusion channels of the transformed image, from those of the image.

    Applies ``sym`` (one of :func:`field_symmetries`) to the channels ``(2, *shape)``
    (``[pore, solid]``); where it reverses the transport axis, inlet and outlet swap and u
    becomes 1 - u, except on the clusters that touch neither face, which keep their 0 (the
    convention of Eqs. 7-8). Equal to :func:`srlib.transport.diffusion_channels` of the
    transformed image up to the solver's tolerance (a test checks every one of the 16).

    Raises
    ------
    ValueError
        If ``sym`` moves the transport axis, or the shapes disagree.
    """
    from srlib.fem import mesh
    from srlib.training.symmetry import apply_symmetry, check_symmetry

    sym = check_symmetry(sym)
    axis = check_axis(axis)
    connectivity = check_connectivity(connectivity)
    img = as_binary(image)
    ch = np.asarray(channels, dtype=np.float32)
    if ch.shape != (2, *img.shape):
        raise ValueError(f"channels must have shape {(2, *img.shape)}, got {ch.shape}")
    if sym.perm[axis] != axis:
        raise ValueError(f"{sym} moves the transport axis {axis}; use field_symmetries()")
    out = apply_symmetry(ch, sym)
    if not sym.flips[axis]:
        return out
    moved = apply_symmetry(img, sym)
    for channel, phase in enumerate((False, True)):
        mask = moved == phase
        spanning, outlet_only = mesh.clusters(mask, axis, connectivity)
        # after the mirror, clusters touching one face: the inlet-only ones (u = 0) were
        # outlet-only (u = 1) and the reverse, so 1 - u holds there as on spanning clusters
        touching = spanning | outlet_only | _inlet_only(mask, axis, connectivity)
        out[channel] = np.where(touching, 1.0 - out[channel], out[channel])
        out[channel][~mask] = 0.0
    return out


def _inlet_only(mask: np.ndarray, axis: int, connectivity: str) -> np.ndarray:
    """Voxels of ``mask`` in clusters that touch the inlet face and not the outlet face."""
    from srlib.fem import mesh

    flipped = np.flip(mask, axis=axis)
    _, outlet_only = mesh.clusters(flipped, axis, connectivity)
    return np.flip(outlet_only, axis=axis)
