"""Write notebooks/02_transport.ipynb (run from the repository root: python tools/make_nb02.py)."""

import sys

sys.path.insert(0, "tools")
from nb import write  # noqa: E402

cells = [
("md", r"""
# Transport simulations and effective tortuosity

Paper sections 2.1.4–2.1.5. We solve the Laplace equation in the pore and in the solid phase of
every low-resolution image of the database (the diffusion channels, the extra input of the
networks $N^{\mathrm{diffu},\alpha}$), complete Fig. 2 with them, render the solution in 3D
(Fig. 3), and compute the effective tortuosity of the tomographic samples and of model
realizations by two finite-element conventions and by finite volumes (TauFactor), with a small
refinement study that shows how the three approach the same value.
"""),
("code", r"""
# Parameters (papermill). Lowering the profile to "tiny" runs everything in seconds on toy sizes.
profile = None  # None: $SRLIB_PROFILE, else "quick"; or "tiny", "paper"
overrides = {}  # profile fields to change, e.g. {"alphas": [2, 4], "batch_sizes": [8, 8]}
samples_folder = None  # None: the public samples; else the folder of volumes notebook 01 used
results_root = "../results"  # reads <results_root>/<profile>/database, writes figures there
refinement_size = None  # edge of the crop refined below; None: 24 voxels (12 at "tiny")
refinements = [1, 2, 3]  # each voxel split into r³ elements. The cost grows like
# (refinement_size * r)³: a smaller crop or dropping r = 3 runs faster, with less clear trends.
table_size = None  # edge of the images in the τ_eff table; None: the profile's tomo_size for the
# samples, whole HR realizations. The table is this notebook's costliest step, growing like size³.
""", ["parameters"]),
("code", r"""
import time

import numpy as np
import pandas as pd
from myst_nb import glue
from tqdm import tqdm

from srlib import config, datasets, plotting, transport

prof = config.get_profile(profile, **overrides)
out = config.results_dir(prof, root=results_root)
figures = out / "figures"
db = datasets.Database(out / "database")
if samples_folder is None:
    samples = datasets.public_samples(prof.samples)
else:
    samples = datasets.folder_samples(samples_folder)
print(f"profile {prof.name}: {len(db.scenarios)} scenarios, mesh convention {prof.connectivity!r}")
"""),
("md", r"""
## Diffusive transport in each phase (2.1.4)

Each phase $i$ of a binary image is the union $\Omega_{\mathrm{ref},i}$ of its closed unit-cube
voxels (Eqs. 4–5). On its interior we solve $-\Delta u = 0$ (Eq. 6) with $u = 0$ on the box face
$z = 0$, $u = 1$ on the opposite face, and zero flux on the other box faces and on the interface
between the phases, by finite elements: one trilinear hexahedron per voxel, conjugate gradients
with an algebraic-multigrid preconditioner (`srlib.transport.solve_laplace`). The solution at the
voxel centres of each phase, 0 in the other phase, gives the two-channel image
$\mathrm{Diffu}(I)$ of Eqs. (7)–(8) (`diffusion_channels`). Clusters of a phase that do not
connect the two Dirichlet faces carry no flux (and would make the linear system singular); they
get the value 0 too.

We compute these channels for every low-resolution image of the database (all scenarios,
realizations and $\alpha$), one file beside each image; files already on disk are kept.
"""),
("code", r"""
todo = [(s, i, a) for s in db.scenario_names for i in db.indices() for a in db.alphas
        if not db.path(s, i, f"diffu{a}").exists()]
start = time.perf_counter()
datasets.build_diffusion_channels(db, connectivity=prof.connectivity)
diffu_seconds = time.perf_counter() - start
glue("diffu_seconds", float(diffu_seconds), display=False)
glue("diffu_computed", len(todo), display=False)
glue("diffu_total", len(db.scenario_names) * len(db.indices()) * len(db.alphas), display=False)
print(f"{len(todo)} channel files computed in {diffu_seconds:.1f} s")
"""),
("md", r"""
This run computed {glue:text}`diffu_computed` of the {glue:text}`diffu_total` channel files
in {glue:text}`diffu_seconds:.1f` s (the others were already on disk).

## Figure 2

Per scenario: a slice of the tomographic sample, of a high-resolution model realization, of its
low-resolution version for $\alpha = 2$, and of the two diffusion channels of that
low-resolution image (solid, then pore; grey value = $u$, black outside the phase and in
clusters without a path). The slices are normal to $x$ and contain the transport direction $z$
(top to bottom), so the last two columns show $u$ rising from 0 at the top to 1 at the bottom.
"""),
("code", r"""
alpha = 2 if 2 in db.alphas else db.alphas[0]
x_hr = (prof.hr_size // 2 // alpha) * alpha  # LR slice x_hr / alpha is HR slice x_hr (Eq. 3)
rows = []
for s, sc in zip(samples, db.scenarios):
    tomo = datasets.crop_center(s.image, min(min(s.image.shape), prof.hr_size))
    channels = db.channels(sc.name, 1, alpha)[..., x_hr // alpha]
    rows.append({"name": sc.name, "alpha": alpha, "tomographic": tomo[:, :, tomo.shape[2] // 2],
                 "hr": db.hr(sc.name, 1)[:, :, x_hr],
                 "lr": db.lr(sc.name, 1, alpha)[:, :, x_hr // alpha],
                 "solid": channels[1], "pore": channels[0]})
fig, axes = plotting.fig2_scenarios(rows, channels=True)
plotting.save(fig, "fig2_scenarios_full", figures);
"""),
("md", r"""
## Figure 3

The same solutions in 3D, for the low-resolution realization of the first scenario: the surface
of (a) the pore phase and (b) the solid phase, each face coloured by $u$ in the voxel of that
phase beside it. Transport runs along $z$; the faces of the box are cuts through the phase.
Clusters without a path between $z = 0$ and the far face are grey.
"""),
("code", r"""
name = db.scenario_names[0]
lr = db.lr(name, 1, alpha)
fig, axes = plotting.fig3_diffusion_3d(lr, db.channels(name, 1, alpha), size=48)
fig.suptitle(f"{name}, LR realization 1 (α = {alpha}), {lr.shape[0]}³ voxels"
             + (", 48³ corner" if max(lr.shape) > 48 else ""), fontsize=10, y=0.9)
plotting.save(fig, "fig3_diffusion_3d", figures);
"""),
("md", r"""
## Two ways to mesh a voxel domain

Eq. (6) holds in the *interior* of $\Omega_{\mathrm{ref},i}$. Two voxels of a phase that share
only an edge or a corner touch along a segment or at a point, and the interior of their union is
two open cubes: nothing flows between them. Finite elements can respect this or not
(`connectivity` in `srlib.transport`):

* **`"face"`** (the default of this book, `Profile.connectivity`): at each grid point, the
  phase's voxels among the eight around it are grouped into face-connected sets, and each set
  gets its own node. Only shared faces conduct, as in the PDE, and as in finite-volume codes such
  as TauFactor (unknowns at voxel centres, conductances between face neighbours).
* **`"vertex"`**: plain finite elements with one node per grid point, shared by every voxel of
  the phase touching it. An edge contact then conducts through two shared nodes, a corner through
  one: short circuits that the PDE does not have, and that fade only slowly under refinement.

Both are Galerkin methods, and the `"vertex"` space is the `"face"` space with split nodes tied
together. A smaller space conducts better, so $\tau_{\mathrm{eff}}^{\mathrm{vertex}} \le
\tau_{\mathrm{eff}}^{\mathrm{face}}$, and both lie below the exact $\tau_{\mathrm{eff}}$ of the
voxel domain. On the rough χ² structures, with many edge and corner contacts, the difference is
large; the diffusion channels and every $\tau_{\mathrm{eff}}$ in this book use `"face"`.

## Effective tortuosity (2.1.5)

$\tau_{\mathrm{eff}} = \varepsilon D / D_{\mathrm{eff}}$ (Eq. 9), with $\varepsilon$ the phase's
volume fraction in the whole image and $D_{\mathrm{eff}}/D$ the flux through the inlet face times
the thickness over the cross-section (`effective_tortuosity`). A phase without a path between the
two faces has $D_{\mathrm{eff}} = 0$ and $\tau_{\mathrm{eff}} = \infty$. We compute it for centred
crops of the tomographic samples (the profile's `tomo_size`; the whole sample at the paper's
profile) and for the first high-resolution realization of each scenario, both phases, by both
conventions and by TauFactor's finite volumes (CPU, `conv_crit=1e-3`). Each cell of the table
gives $\tau_{\mathrm{eff}}$ and, in brackets, the wall time of that solve.
"""),
("code", r"""
images = {("tomographic", s.name): datasets.crop_center(s.image, table_size or prof.tomo_size)
          for s in samples}
images |= {("model, HR 1", n): datasets.crop_center(db.hr(n, 1), table_size)
           for n in db.scenario_names}
rows = []
for (kind, name), image in tqdm(images.items(), desc="τ_eff"):
    rows += [{"image": kind, "scenario": name, "size": f"{image.shape[0]}³", **r._asdict()}
             for r in transport.compare_tortuosity(image, axis=0)]
taus = pd.DataFrame(rows).rename(columns={"volume_fraction": "ε"}).round({"ε": 3})
"""),
("code", r"""
shown = taus.assign(cell=[("∞ (no path)" if np.isinf(r.tau_eff) else f"{r.tau_eff:.3f}")
                          + f"  ({r.seconds:.1f} s)" + ("" if r.converged else " not converged")
                          for r in taus.itertuples()])
shown.pivot(index=["image", "scenario", "size", "phase", "ε"], columns="method", values="cell")
"""),
("code", r"""
keys = {"FEM face": "face", "FEM vertex": "vertex", transport.FINITE_VOLUMES: "fv"}
for r in taus[taus.image != "tomographic"].itertuples():
    if r.scenario == db.scenario_names[0]:
        glue(f"tau_model_first_{r.phase}_{keys[r.method]}", float(r.tau_eff), display=False)
tau = taus.pivot_table(index=["image", "scenario", "phase"], columns="method", values="tau_eff")
gap = pd.DataFrame({"vertex below face [%]": 100 * (1 - tau["FEM vertex"] / tau["FEM face"]),
                    "finite volumes above face [%]":
                        100 * (tau[transport.FINITE_VOLUMES] / tau["FEM face"] - 1)})
gap = gap.replace([np.inf, -np.inf], np.nan).groupby(level=["image", "phase"]).mean()
for (kind, phase), row in gap.iterrows():
    kind = "tomo" if kind == "tomographic" else "model"
    glue(f"gap_vertex_{kind}_{phase}", float(row.iloc[0]), display=False)
    glue(f"gap_fv_{kind}_{phase}", float(row.iloc[1]), display=False)
seconds = taus.groupby("method").seconds.sum()
for method, key in keys.items():
    glue(f"seconds_{key}", float(seconds[method]), display=False)
glue("n_no_path", int(np.isinf(taus.tau_eff).sum()), display=False)
gap.round(1)
"""),
("md", r"""
Above: the mean gaps between the methods, in percent of the `"face"` value, over the
scenarios (infinite values left out). On the χ² model realizations, whose interfaces are rough
at every scale, `"vertex"` is on average {glue:text}`gap_vertex_model_pore:.0f` % below
`"face"` in the pore phase and finite volumes are {glue:text}`gap_fv_model_pore:+.0f` % off it
(solid phase: {glue:text}`gap_vertex_model_solid:.0f` % and
{glue:text}`gap_fv_model_solid:+.0f` %). For example, the pore phase of the first scenario's
realization has $\tau_{\mathrm{eff}}$ = {glue:text}`tau_model_first_pore_face:.2f` by `"face"`,
{glue:text}`tau_model_first_pore_vertex:.2f` by `"vertex"` and
{glue:text}`tau_model_first_pore_fv:.2f` by TauFactor. On the segmented sandstones, packs of
smooth grains, the pore-phase gaps are {glue:text}`gap_vertex_tomo_pore:.1f` % and
{glue:text}`gap_fv_tomo_pore:+.0f` %. {glue:text}`n_no_path` of the entries have no path
($\tau_{\mathrm{eff}} = \infty$). On this machine the solves took
{glue:text}`seconds_face:.0f` s (`"face"`), {glue:text}`seconds_vertex:.0f` s (`"vertex"`) and
{glue:text}`seconds_fv:.0f` s (TauFactor) in all. Which of the three values is right? The
refinement study answers it.

## Refinement study

Splitting every voxel into $r^3$ smaller ones keeps the domain, and so the exact
$\tau_{\mathrm{eff}}$, and changes only the discretisation. The finite-element spaces are
nested, so both FEM values can only rise with $r$, `"face"` towards the exact value from below;
`"vertex"` stays below `"face"`. Finite volumes with unknowns at voxel centres are no Galerkin
method and give no bound; on such structures they typically come down towards the exact value
from above. We take a
centred crop of a high-resolution realization, from the scenario whose crop has the phase
fractions closest to ½ (so that both phases percolate).
"""),
("code", r"""
size = refinement_size or (12 if prof.name == "tiny" else 24)
crops = {n: datasets.crop_center(db.hr(n, 1), min(size, prof.hr_size)) for n in db.scenario_names}
name = min(crops, key=lambda n: abs(crops[n].mean() - 0.5))
crop = crops[name]
print(f"{name}, HR realization 1, centred {crop.shape[0]}³ crop, solid fraction {crop.mean():.3f}")
study = pd.DataFrame(transport.refinement_study(crop, factors=refinements))
study.pivot_table(index=["phase", "method"], columns="refinement", values="tau_eff",
                  sort=False).round(3)
"""),
("code", r"""
fig, axes = plotting.fig_refinement(study)
fig.suptitle(f"{name}: {crop.shape[0]}³ crop of a χ² realization, each voxel split into r³",
             fontsize=10, y=1.02)
plotting.save(fig, "fig02_refinement", figures);
"""),
("code", r"""
r_first, r_last = min(refinements), max(refinements)
glue("ref_first", int(r_first), display=False)
glue("ref_last", int(r_last), display=False)
checks = []
for (phase, method), line in study.groupby(["phase", "method"], sort=False):
    tau = line.sort_values("refinement").tau_eff.to_numpy()
    glue(f"ref_{phase}_{keys[method]}_first", float(tau[0]), display=False)
    glue(f"ref_{phase}_{keys[method]}_last", float(tau[-1]), display=False)
    trend = np.sign(np.diff(tau)) if np.isfinite(tau).all() else None
    checks.append({"phase": phase, "method": method, "trend": "no path" if trend is None else
                   "rises" if (trend >= 0).all() else "falls" if (trend <= 0).all() else "mixed"})
lowest = study.loc[study.groupby(["phase", "refinement"]).tau_eff.idxmin(), "method"]
glue("vertex_lowest", int((lowest == "FEM vertex").sum()), display=False)
glue("n_cases", len(lowest), display=False)
spread = study.pivot_table(index=["phase", "refinement"], columns="method", values="tau_eff")
spread = 100 * (spread[transport.FINITE_VOLUMES] / spread["FEM face"] - 1)
for phase in ("pore", "solid"):
    for which, r in (("first", r_first), ("last", r_last)):
        glue(f"ref_{phase}_spread_{which}", float(spread.get((phase, r), np.nan)), display=False)
pd.DataFrame(checks).set_index(["phase", "method"])
"""),
("md", r"""
From $r$ = {glue:text}`ref_first` to $r$ = {glue:text}`ref_last`, the pore phase's
$\tau_{\mathrm{eff}}$ goes from {glue:text}`ref_pore_face_first:.3f` to
{glue:text}`ref_pore_face_last:.3f` with `"face"`, from {glue:text}`ref_pore_fv_first:.3f` to
{glue:text}`ref_pore_fv_last:.3f` with finite volumes and from
{glue:text}`ref_pore_vertex_first:.3f` to {glue:text}`ref_pore_vertex_last:.3f` with
`"vertex"`; the solid phase's from {glue:text}`ref_solid_face_first:.3f` to
{glue:text}`ref_solid_face_last:.3f` (`"face"`), {glue:text}`ref_solid_fv_first:.3f` to
{glue:text}`ref_solid_fv_last:.3f` (finite volumes) and {glue:text}`ref_solid_vertex_first:.3f`
to {glue:text}`ref_solid_vertex_last:.3f` (`"vertex"`). `"vertex"` gives the lowest value in
{glue:text}`vertex_lowest` of the {glue:text}`n_cases` (phase, $r$) cases, and the table above
says which sequences rise and which fall in this run. Finite volumes exceed `"face"` by
{glue:text}`ref_pore_spread_first:.1f` % at $r$ = {glue:text}`ref_first` and by
{glue:text}`ref_pore_spread_last:.1f` % at $r$ = {glue:text}`ref_last` in the pore phase
({glue:text}`ref_solid_spread_first:.1f` % and {glue:text}`ref_solid_spread_last:.1f` % in the
solid). `"face"` is a lower bound of the exact value at every $r$ (a property of the method, not
of this run); finite volumes are no bound, but on such structures they approach it from above.
`"vertex"` reaches it only slowly, since its edge contacts survive every refinement. This is why
the book uses `"face"`.
"""),
]
write("notebooks/02_transport.ipynb", cells)
