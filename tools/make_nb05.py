"""Write notebooks/05_results.ipynb (run from the repository root: python tools/make_nb05.py)."""

import sys

sys.path.insert(0, "tools")
from nb import write  # noqa: E402

cells = [
("md", r"""
# Results: super-resolving simulated and tomographic data

Paper section 3. We run the evaluation protocol on the test realizations of the stochastic
model (never seen in training) and on the tomographic samples: each image is down-sampled to
every $\alpha$, cut into 8 sub-images, super-resolved by $N^{\mathrm{bin},\alpha}$,
$N^{\mathrm{diffu},\alpha}$ and tri-quadratic interpolation, and scored by the metrics of
section 2.3. Figures: Fig. 5 (error maps at the largest $\alpha$) and Fig. 6 (box plots of all
metrics). The table of every score is saved as `evaluation.csv` for the next notebooks.
"""),
("code", r"""
# Parameters (papermill). Lowering the profile to "tiny" runs everything in seconds on toy sizes.
profile = None  # None: $SRLIB_PROFILE, else "quick"; or "tiny", "paper"
overrides = {}  # profile fields to change, e.g. {"alphas": [2, 4], "batch_sizes": [8, 8]}
results_root = "../results"  # outputs go to <results_root>/<profile>/
samples_folder = None  # None: the public samples; else the folder of volumes used in notebook 01
workers = 2  # processes evaluating images in parallel (each single-threaded); 1: in the kernel
effective_sub_images = None  # None: effective tortuosity on all 8 sub-images of every image;
                             # k: on the first k only (k/8 of the cost; stated in Fig. 6)
""", ["parameters"]),
("code", r"""
import time

import numpy as np
import pandas as pd
from myst_nb import glue

from srlib import config, datasets, evaluation, plotting, training

prof = config.get_profile(profile, **overrides)
out = config.results_dir(prof, root=results_root)
figures = out / "figures"
db = datasets.Database(out / "database")
networks = training.load_networks(prof, out / "networks")
print(f"profile {prof.name}: {len(networks)} networks loaded from {out / 'networks'}")
"""),
("md", r"""
## The two test sets

*Simulated*: the realizations with role 'test' of every scenario of the database (paper: one
800³ realization of each of the 5 scenarios). *Tomographic*: the real samples that the
scenarios were calibrated on, as centred crops of the profile's `tomo_size` (paper: the five
whole 416³ FIB-SEM images of NMC particles; here micro-CT volumes of sandstones, see notebook
01). Neither was used to train the networks (the tomographic samples only set the two model
parameters of their scenario).
"""),
("code", r"""
if samples_folder is None:
    samples = datasets.public_samples(prof.samples)
else:
    samples = datasets.folder_samples(samples_folder)
images = [("simulated", sc, db.hr(sc, i)) for sc in db.scenario_names for i in db.indices("test")]
images += [("tomographic", s.name, datasets.crop_center(s.image, prof.tomo_size))
           for s in samples]
pd.DataFrame([{"dataset": d, "sample": s, "shape": "×".join(map(str, hr.shape)),
               "solid fraction": round(float(hr.mean()), 4)} for d, s, hr in images])
"""),
("md", r"""
## The protocol (section 3)

For each image and each $\alpha$, the image is down-sampled by Eq. (3) and both versions are
cut into $2 \times 2 \times 2$ non-overlapping sub-images; every low-resolution sub-image is
super-resolved by each method ($N^{\mathrm{diffu},\alpha}$ gets the diffusion channels
computed on that low-resolution sub-image, the interpolation is thresholded at ½) and compared
with its high-resolution sub-image: accuracy (Eq. 19), surface accuracy (Eq. 22), and the
relative accuracies of the mean geodesic and the effective tortuosity of each phase along
the first axis (Eqs. 23–24). The high-resolution sub-images are the same for every $\alpha$,
so the ground truth's tortuosities are computed once per sub-image and shared. The effective tortuosity, a finite-element solve per phase and image, dominates the
cost. Finished (image, α) groups are stored and reused on a re-run.
"""),
("code", r"""
stored = {p.name for p in (out / "evaluation").glob("*.csv")}
glue("n_groups", len(images) * len(prof.alphas), display=False)
glue("n_groups_stored", sum(f"{d}_{s}_a{a}.csv" in stored for d, s, _ in images
                            for a in prof.alphas), display=False)
start = time.perf_counter()
table = evaluation.run_protocol(images, networks, prof.alphas, out, workers=workers,
                                effective_sub_images=effective_sub_images,
                                connectivity=prof.connectivity)
glue("eval_minutes", (time.perf_counter() - start) / 60, display=False)
glue("n_rows", len(table), display=False)
per_box = table.groupby(["dataset", "alpha", "method"]).size()
glue("n_per_box", str(per_box.min()) if per_box.min() == per_box.max()
     else f"{per_box.min()}–{per_box.max()}", display=False)
glue("eff_note", "all 8 sub-images" if effective_sub_images is None
     else f"the first {effective_sub_images} of the 8 sub-images only", display=False)
table.groupby(["dataset", "alpha", "method"])[["accuracy", "surface_accuracy"]].median().unstack()
"""),
("md", r"""
The table has {glue:text}`n_rows` rows (one per data set, sample, sub-image, $\alpha$ and
method), {glue:text}`n_per_box` per box of Fig. 6 (paper: 40). This run took
{glue:text}`eval_minutes:.1f` minutes; {glue:text}`n_groups_stored` of the
{glue:text}`n_groups` (image, $\alpha$) groups were already on disk from an earlier run and
were loaded, not recomputed. Effective tortuosities were computed on {glue:text}`eff_note` of every
image. Above: the medians of the voxel-wise metrics; notebook 07 compares them.

## Figure 5: error maps

A slice through one sub-image of each test set, super-resolved at the largest $\alpha$ by each
method, coloured by the error: correct solid white, correct pore black, voxels falsely
classified as solid magenta, falsely as pore blue. The sub-image shown is a typical one, not a
good one: of the data set's sub-images, the one whose accuracy under
$N^{\mathrm{bin},\alpha}$ is closest to the median, and of its slices, the one whose accuracy
under $N^{\mathrm{bin},\alpha}$ is closest to that of the whole sub-image.
"""),
("code", r"""
alpha = max(prof.alphas)
resolvers = evaluation.method_resolvers(alpha, networks, connectivity=prof.connectivity)
rows = []
for dataset in ("simulated", "tomographic"):
    box = table[(table.dataset == dataset) & (table.alpha == alpha) & (table.method == "bin")]
    pick = box.iloc[(box.accuracy - box.accuracy.median()).abs().argmin()]  # a median case
    sample, k = pick["sample"], int(pick.sub_image)
    hr = next(im[2] for im in images if im[:2] == (dataset, sample))
    lr_k, hr_k = evaluation.sub_image_pairs(hr, alpha)[k]
    sr = {m: f(lr_k) for m, f in resolvers.items()}
    per_slice = (sr["bin"] == hr_k).mean(axis=(1, 2))
    z = int(np.abs(per_slice - pick.accuracy).argmin())  # a slice as accurate as the whole
    acc = table[(table.dataset == dataset) & (table["sample"] == sample)
                & (table.alpha == alpha) & (table.sub_image == k)].set_index("method").accuracy
    rows.append({"label": f"{dataset}: {sample}, sub-image {k}, slice {z}", "hr": hr_k[z],
                 "sr": {m: v[z] for m, v in sr.items()}, "accuracy": acc})
fig, axes = plotting.fig5_error_maps(rows, alpha=alpha)
plotting.save(fig, "fig5_error_maps", figures);
"""),
("md", r"""
## Figure 6: box plots of the metrics

Per data set (rows) and metric (columns), one box per $\alpha$ and method over all sub-images.
As in the paper's caption, boxes span the quartiles and whiskers the minimum and maximum;
outliers by the inter-quartile-range rule (beyond 1.5 IQR from the quartiles) are marked by
circles, which therefore lie on the whiskers. We add the median (line) and the mean (diamond).
The tortuosity panels average the relative accuracies of the two phases.

Two kinds of value cannot be drawn and are counted instead. A super-resolved sub-image that
has no path through a phase whose ground truth has one gets the relative accuracy $-\infty$
(the path was lost); such values are left out of the box and their number is printed in red
under it. A phase whose ground truth has no path has no defined relative accuracy (`nan`); it
is left out of the mean over the phases, and a sub-image where neither phase has a path is
left out altogether; the panels state how many values were left out.
"""),
("code", r"""
metrics = list(plotting.FIG6_METRICS)
counts = plotting.box_counts(table, metrics)
glue("n_lost", int(counts.n_neg_inf.sum()), display=False)
glue("n_left_out", int(counts.n_nan.sum()), display=False)
glue("n_values", int(counts.n.sum()), display=False)
counts[(counts.n_neg_inf > 0) | (counts.n_nan > 0)]
"""),
("code", r"""
note = None
if effective_sub_images is not None:
    note = (f"Effective tortuosity (d) on the first {effective_sub_images} of 8 sub-images "
            "of every image only (the rest left out as nan).")
fig, axes = plotting.fig6_boxplots(table, note=note)
plotting.save(fig, "fig6_boxplots", figures);
"""),
("md", r"""
Of the {glue:text}`n_values` values in Fig. 6, {glue:text}`n_lost` are $-\infty$ (lost
paths) and {glue:text}`n_left_out` are left out as undefined; the table above lists the boxes
concerned. The comparison of the methods, per $\alpha$ and data set, is in notebook 07; the
tortuosities per phase (Fig. A2) and slices of super-resolved tomographic data (Fig. A1) are in
notebook 06.
"""),
]
write("notebooks/05_results.ipynb", cells)
