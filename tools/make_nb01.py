import sys; sys.path.insert(0, "tools")  # run from the repository root
from nb import write
cells = [
("md", r"""
# Tomographic data, the stochastic model and the database

Paper sections 2.1.1–2.1.3. We load the real tomographic samples (here: public micro-CT
volumes of sandstones standing in for the paper's non-public FIB-SEM data), calibrate one
χ² excursion-set model per sample (a *scenario*), and draw the database of high- and
low-resolution model realizations used to train the networks. Figures: the samples (slices and
a 3D view), the fitted two-point probabilities, and the first three columns of Fig. 2.
"""),
("code", r"""
# Parameters (papermill). Lowering the profile to "tiny" runs everything in seconds on toy sizes.
profile = None  # None: $SRLIB_PROFILE, else "quick"; or "tiny", "paper"
overrides = {}  # profile fields to change, e.g. {"alphas": [2, 4], "batch_sizes": [8, 8]}
samples_folder = None  # None: the public samples; else a folder of your own volumes
results_root = "../results"  # outputs go to <results_root>/<profile>/
""", ["parameters"]),
("code", r"""
import numpy as np
import pandas as pd
from myst_nb import glue

from srlib import config, datasets, plotting, stochastic
from srlib.resample import downsample

prof = config.get_profile(profile, **overrides)
out = config.results_dir(prof, root=results_root)
figures = out / "figures"
print(f"profile {prof.name}: HR realizations {prof.hr_size}³, {prof.n_realizations} per scenario")
"""),
("md", r"""
## The tomographic samples (2.1.1)

The paper uses five FIB-SEM images (416³ voxels, 10 nm/voxel) of NMC111 cathode particles,
binarised with Otsu's method. That data is not public; we use the segmented micro-CT volumes
that ship with the porespy 3.2.0 source distribution instead (downloaded with pip on first use
and verified by SHA-256). Solid is white, pore black.
"""),
("code", r"""
if samples_folder is None:
    samples = datasets.public_samples(prof.samples)
else:
    samples = datasets.folder_samples(samples_folder)
pd.DataFrame([{"sample": s.name, "shape": s.image.shape, "voxel size [µm]": s.voxel_size_um,
               "solid fraction": round(s.solid_fraction, 4), "source": s.source}
              for s in samples]).set_index("sample")
"""),
("code", r"""
fig, axes = plotting.fig_sample_slices(samples, views=3)
plotting.save(fig, "fig01_samples", figures);
"""),
("code", r"""
import matplotlib.pyplot as plt

fig = plt.figure(figsize=(3.6 * len(samples), 3.6))
for k, s in enumerate(samples):
    ax = fig.add_subplot(1, len(samples), k + 1, projection="3d")
    plotting.volume_view(~s.image, ax=ax, size=48, color="tab:blue",
                         title=f"{s.name}: pore space, 48³ corner")
plotting.save(fig, "fig01_samples_3d", figures);
"""),
("md", r"""
## Calibrating the stochastic model (2.1.2)

The model's solid phase is the excursion set $\Xi = \{Y \ge \nu\}$ of $Y = X_1^2 + X_2^2$, where
$X_1, X_2$ are independent Gaussian random fields with covariance $\rho(h) = e^{-\gamma^2 h}$.
Its solid fraction is $e^{-\nu/2}$, so $\nu$ follows from the measured solid fraction; $\gamma$ is
fitted by least squares to the empirical two-point probability along the three axes
(`srlib.stochastic.calibrate`). The model's two-point probability has a closed form through
Kibble's bivariate exponential distribution {cite}`kibble1941bivariate`
(`two_point_probability`). Realizations are drawn exactly by circulant embedding
{cite}`dietrich1997fast`: both Gaussian fields from one complex FFT (`sample`).
"""),
("code", r"""
scenarios = datasets.calibrate_scenarios(samples)
table = pd.DataFrame([{"scenario": sc.name, "nu": sc.params.nu, "gamma": sc.params.gamma,
                       "correlation length 1/gamma² [voxels]": sc.params.correlation_length,
                       "measured solid fraction": sc.measured_solid_fraction,
                       "model solid fraction exp(-nu/2)": sc.params.solid_fraction}
                      for sc in scenarios]).set_index("scenario")
for sc in scenarios:
    glue(f"corr_{sc.name}", sc.params.correlation_length, display=False)
table.round(4)
"""),
("code", r"""
curves = [stochastic.calibration_curves(s.image, sc.params, max_lag=60)
          for s, sc in zip(samples, scenarios)]
for c, s in zip(curves, samples):
    c["name"] = s.name
fig, axes = plotting.fig_two_point(curves)
plotting.save(fig, "fig01_two_point", figures);
"""),
("md", r"""
The fit uses lags up to the calibration's `max_lag` (30 voxels, or a third of the sample);
beyond it the curves show how well the exponential covariance extrapolates. The sandstones are
packs of smooth grains, while the exponential covariance makes the model's interfaces rough at
every scale (compare the slices below): the model matches the samples' two-point statistics,
not their look. The paper notes the opposite mismatch for its NMC particles, whose primary
particles leave rough edges that the model smooths.
"""),
("md", r"""
## The database of model realizations (2.1.3)

For every scenario we draw the profile's realizations (paper: ten of 800³, split 7/2/1 into
training, validation and test) and down-sample each by deleting slices (Eq. 3, no blurring)
to α = 2, 4, 8. One file per image, written atomically, so an interrupted run resumes.
"""),
("code", r"""
db = datasets.build_database(prof, samples=samples, root=out / "database")
rows = []
for sc in db.scenarios:
    fractions = [db.hr(sc.name, i).mean() for i in db.indices()]
    rows.append({"scenario": sc.name, "realizations": len(fractions),
                 "model solid fraction": sc.params.solid_fraction,
                 "mean realization solid fraction": np.mean(fractions),
                 "std over realizations": np.std(fractions)})
pd.DataFrame(rows).set_index("scenario").round(4)
"""),
("md", r"""
## Figure 2 (first three columns)

A slice of each tomographic sample, of a high-resolution model realization of its scenario, and
of the realization's low-resolution version for α = 2 (the same plane: LR slice $k$ is HR slice
$2k$).
"""),
("code", r"""
alpha = prof.alphas[0]
z_hr = (prof.hr_size // 2 // alpha) * alpha
rows = []
for s, sc in zip(samples, db.scenarios):
    tomo = datasets.crop_center(s.image, min(min(s.image.shape), prof.hr_size))
    rows.append({"name": sc.name, "alpha": alpha, "tomographic": tomo[tomo.shape[0] // 2],
                 "hr": db.hr(sc.name, 1)[z_hr], "lr": db.lr(sc.name, 1, alpha)[z_hr // alpha]})
fig, axes = plotting.fig2_scenarios(rows)
plotting.save(fig, "fig2_scenarios", figures);
"""),
]
write("notebooks/01_data_and_model.ipynb", cells)
