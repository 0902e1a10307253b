"""Write notebooks/06_appendix.ipynb (run from the repository root: python tools/make_nb06.py)."""

import sys

sys.path.insert(0, "tools")
from nb import write  # noqa: E402

cells = [
("md", r"""
# Appendix: slices and tortuosities per phase

The paper's appendix. Fig. A1 shows slices of one tomographic sample super-resolved by each
method at each $\alpha$, beside the ground truth; Fig. A2 splits the tortuosity panels of
Fig. 6 by phase. Fig. A2 reads the results table written by notebook 05; Fig. A1
super-resolves the whole crop of the sample once more (seconds).
"""),
("code", r"""
# Parameters (papermill). Lowering the profile to "tiny" runs everything in seconds on toy sizes.
profile = None  # None: $SRLIB_PROFILE, else "quick"; or "tiny", "paper"
overrides = {}  # profile fields to change, e.g. {"alphas": [2, 4], "batch_sizes": [8, 8]}
results_root = "../results"  # outputs go to <results_root>/<profile>/
samples_folder = None  # None: the public samples; else the folder of volumes used in notebook 01
figA1_sample = None  # sample shown in Fig. A1; None: the first
""", ["parameters"]),
("code", r"""
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from srlib import config, datasets, evaluation, plotting, training
from srlib.resample import downsample

prof = config.get_profile(profile, **overrides)
out = config.results_dir(prof, root=results_root)
figures = out / "figures"
table = pd.read_csv(out / "evaluation.csv")
networks = training.load_networks(prof, out / "networks")
if samples_folder is None:
    samples = datasets.public_samples(prof.samples)
else:
    samples = datasets.folder_samples(samples_folder)
sample = samples[0] if figA1_sample is None else next(s for s in samples if s.name == figA1_sample)
print(f"profile {prof.name}: {len(table)} rows in {out / 'evaluation.csv'}; Fig. A1 from {sample.name}")
"""),
("md", r"""
## Figure A1: super-resolved tomographic data

The centred crop of the sample (the one evaluated in notebook 05) is down-sampled to each
$\alpha$ (Eq. 3) and super-resolved as a whole by each method. All panels of a row show the
same plane: low-resolution slice $k$ is high-resolution slice $\alpha k$, so the plane is
chosen at a multiple of the largest $\alpha$. Solid white, pore black.
"""),
("code", r"""
crop = datasets.crop_center(sample.image, prof.tomo_size)
z = (crop.shape[0] // 2 // max(prof.alphas)) * max(prof.alphas)
rows = []
for alpha in sorted(prof.alphas):
    lr = downsample(crop, alpha)
    resolvers = evaluation.method_resolvers(alpha, networks, connectivity=prof.connectivity)
    rows.append({"alpha": alpha, "lr": lr[z // alpha], "hr": crop[z],
                 "sr": {m: f(lr)[z] for m, f in resolvers.items()}})
fig, axes = plotting.figA1_slices(
    rows, title=f"{sample.name}: slice {z} of the centred {'×'.join(map(str, crop.shape))} crop")
plotting.save(fig, "figA1_slices", figures);
"""),
("md", r"""
## Figure A2: tortuosity accuracies per phase

The relative accuracies of the mean geodesic and the effective tortuosity (Eqs. 23–24) of the
solid and the pore phase separately, from the same sub-images as Fig. 6 and drawn the same
way: quartile boxes, min–max whiskers, IQR outliers as circles, median line and mean
diamond. Lost paths ($-\infty$) are counted in red under their box; sub-images whose ground
truth has no path through the phase (`nan`) are left out, and each panel says how many.
"""),
("code", r"""
metrics = list(plotting.FIGA2_METRICS)
counts = plotting.box_counts(table, metrics)
glue("a2_lost", int(counts.n_neg_inf.sum()), display=False)
glue("a2_left_out", int(counts.n_nan.sum()), display=False)
not_computed = int((~table.effective_computed.astype(bool)).sum())
glue("a2_eff_not_computed", not_computed, display=False)
by_phase = {phase: counts[counts.metric.str.endswith(phase)][["n_nan", "n_neg_inf"]].sum()
            for phase in ("solid", "pore")}
glue("a2_phase_text", Markdown(
    "Undefined values (no path in the ground truth) per phase, over both data sets and both "
    "tortuosities: " + ", ".join(f"{phase} {int(c.n_nan)}" for phase, c in by_phase.items())
    + "; lost paths: " + ", ".join(f"{phase} {int(c.n_neg_inf)}"
                                   for phase, c in by_phase.items()) + "."), display=False)
counts.groupby(["dataset", "metric"])[["n", "n_finite", "n_neg_inf", "n_nan"]].sum()
"""),
("code", r"""
note = None
if not_computed:
    note = (f"Effective tortuosity (c, d) not computed for {not_computed} rows (a subset of "
            "sub-images, see notebook 05); left out as nan.")
fig, axes = plotting.figA2_tortuosity(table, note=note)
plotting.save(fig, "figA2_tortuosity", figures);
"""),
("md", r"""
Over all panels of Fig. A2, {glue:text}`a2_lost` values are $-\infty$ (the super-resolution
lost every path through a phase that the ground truth crosses) and {glue:text}`a2_left_out`
are undefined (no path through the phase in the ground truth, or, for the effective
tortuosity, not computed: {glue:text}`a2_eff_not_computed` rows); the table above gives them by
data set and panel.

```{glue:md} a2_phase_text
:format: myst
```
"""),
]
write("notebooks/06_appendix.ipynb", cells)
