"""Write notebooks/04_training.ipynb (run from the repository root: python tools/make_nb04.py)."""

import sys

sys.path.insert(0, "tools")
from nb import write  # noqa: E402

cells = [
("md", r"""
# Training the networks

Paper sections 2.2.2–2.2.3. We train the six networks $N^{\mathrm{bin},\alpha}$ and
$N^{\mathrm{diffu},\alpha}$ on pairs of low- and high-resolution model realizations from the
database of the first notebook, with transfer learning along $\alpha = 2 \to 4 \to 8$ and early
stopping on validation data, and fit the threshold $\mu^*$ of Eq. (18) for each. Figures: the
training and validation loss curves, and a table of the runs (saved as `training.csv`). The
trained networks are saved under `<results>/<profile>/networks/` and reused by the later
notebooks and by re-runs; delete that folder to train again.
"""),
("code", r"""
# Parameters (papermill). Lowering the profile to "tiny" runs everything in seconds on toy sizes.
profile = None  # None: $SRLIB_PROFILE, else "quick"; or "tiny", "paper"
overrides = {}  # profile fields to change, e.g. {"alphas": [2, 4], "batch_sizes": [8, 8]}
results_root = "../results"  # outputs go to <results_root>/<profile>/
num_threads = None  # torch CPU threads; None: torch's default (all cores). On a machine shared
                    # with other jobs, 1 can be several times faster than 2.
""", ["parameters"]),
("code", r"""
import pandas as pd
from myst_nb import glue

from srlib import config, datasets, plotting, training

prof = config.get_profile(profile, **overrides)
paper = config.get_profile("paper")
out = config.results_dir(prof, root=results_root)
figures = out / "figures"
db = datasets.Database(out / "database")
print(f"profile {prof.name}: {len(db.scenarios)} scenarios, database in {db.root}")
"""),
("md", r"""
## Training, validation and test pairs (2.2.2)

Each realization of a scenario gives one pair for every $\alpha$: the target is the
high-resolution realization, the input its low-resolution version (Eq. 3) alone for
$N^{\mathrm{bin},\alpha}$ (Eq. 11), or together with the two diffusion channels of the
low-resolution image for $N^{\mathrm{diffu},\alpha}$ (Eq. 13). The realizations are split by
role as in the paper (7/2/1 of 10 per scenario): training pairs to fit the weights,
validation pairs for early stopping and $\mu^*$, test pairs for the evaluation in the next
notebooks. The diffusion channels (Eqs. 7–8, `srlib.transport`) are computed here for every
low-resolution image of the database unless an earlier notebook already stored them.
"""),
("code", r"""
datasets.build_diffusion_channels(db, connectivity=prof.connectivity)
pd.DataFrame([{"role": role, "realizations per scenario": len(db.indices(role)),
               "pairs per network": len(db.indices(role)) * len(db.scenarios),
               **{f"LR size, α = {a}": f"{prof.hr_size // a}³" for a in prof.alphas}}
              for role in ("train", "val", "test")]).set_index("role")
"""),
("md", r"""
## Training (2.2.3)

Each training step draws a batch of random cutouts of the training inputs with their
$\alpha$-times larger targets, applies a random element of the cube's symmetry group (mirror
with probability ½, then one of the 24 rotations; the same to every channel and to the
target) and takes one Adam step on the binary cross-entropy (Eqs. 14–16). After every epoch
the loss on a fixed set of validation cutouts decides on early stopping; the network keeps
the weights of its best epoch. The $\alpha = 4$ and $\alpha = 8$ networks start from the
trained $\alpha/2$ network of the same type (transfer learning); only their additional
upsampling stage starts from random weights. $N^{\mathrm{bin},\alpha}$ and
$N^{\mathrm{diffu},\alpha}$ see the same cutouts, augmentations and validation cutouts, so their
curves differ only by the input channels. The profile's settings beside the paper's:
"""),
("code", r"""
keys = ["features", "blocks", "cutout", "batch_sizes", "steps_per_epoch", "max_epochs",
        "epochs_per_alpha", "patience", "val_cutouts", "learning_rate", "lr_schedule",
        "train_budget_s", "device"]
pd.DataFrame({p.name: [str(getattr(p, k)) for k in keys] for p in (prof, paper)}, index=keys)
"""),
("md", r"""
`epochs_per_alpha` caps the epochs of each α (the `quick` profile gives the costly α = 8
networks fewer epochs than α = 2); a step budget gives the same networks
on every machine, for a given seed. The paper states no learning-rate schedule; `quick`
anneals the rate along a cosine from `learning_rate` to 1 % of it over each network's epoch
cap (`lr_schedule`), because its short runs with small batches otherwise end on noisy
weights (in a development run at α = 8, the annealed network reached a lower validation loss
than the same steps at a constant rate). The annealing helps most in the last epochs, so the
`quick` patience is as long as the α = 4 and α = 8 epoch caps: a patience of 10 had stopped an
α = 8 network at epoch 18 of 24 on a noisy validation estimate. An optional wall-clock budget per network
(`train_budget_s`; off in every profile, none in the paper) would stop training after the epoch
in which it runs out, at the price of machine-dependent results. A checkpoint is written after
every epoch, so an interrupted run resumes where it stopped. Networks whose weights are on disk
are loaded instead of trained.
"""),
("code", r"""
networks = training.train_networks(db, prof, out / "networks", num_threads=num_threads)
"""),
("code", r"""
histories = [{"kind": n.kind, "alpha": n.alpha, "best_epoch": n.result.best_epoch,
              **n.result.history} for n in networks.values()]
fig, axes = plotting.fig_training_curves(histories, steps_per_epoch=prof.steps_per_epoch)
plotting.save(fig, "fig_training_curves", figures);
"""),
("md", r"""
Dashed: mean training loss of each epoch (on augmented cutouts); solid: loss on the fixed
validation cutouts; the star marks the epoch whose weights are kept.
$N^{\mathrm{bin},\alpha}$ and $N^{\mathrm{diffu},\alpha}$ draw the same training cutouts, so
their training losses rise and fall together.

## The threshold μ* (Eq. 18)

The networks output probabilities; a binary image needs a threshold. For each network,
$\mu^*$ minimises the mean absolute difference between the porosity of the thresholded output
and that of the target over the non-overlapping cutouts of the validation pairs (the paper
takes all 24³ cutouts). The runs, with their thresholds:
"""),
("code", r"""
table = pd.DataFrame([n.summary() for n in networks.values()]).set_index("network")
table.to_csv(out / "training.csv")
for name, row in table.iterrows():
    glue(f"mu_{name}", float(row.mu_star), display=False)
    glue(f"val_loss_{name}", float(row.best_val_loss), display=False)
table.round(4)
"""),
("code", r"""
best = table.pivot(index="alpha", columns="kind", values="best_val_loss")
glue("train_minutes", float(table.wall_time_s.sum() / 60), display=False)
glue("n_budget", int((table.stop_reason == "time_budget").sum()), display=False)
glue("n_early", int((table.stop_reason == "early_stopping").sum()), display=False)
glue("n_networks", len(table), display=False)
glue("n_diffu_better", int((best["diffu"] < best["bin"]).sum()), display=False)
glue("n_alphas", len(best), display=False)
glue("mu_min", float(table.mu_star.min()), display=False)
glue("mu_max", float(table.mu_star.max()), display=False)
"""),
("md", r"""
Training took {glue:text}`train_minutes:.1f` minutes in all (without fitting $\mu^*$). Of the
{glue:text}`n_networks` networks, {glue:text}`n_early` stopped early (no improvement of the
validation loss for `patience` epochs) and {glue:text}`n_budget` ran out of their time
budget. $N^{\mathrm{diffu},\alpha}$ reached a lower validation loss than
$N^{\mathrm{bin},\alpha}$ for {glue:text}`n_diffu_better` of the {glue:text}`n_alphas`
scaling factors. The thresholds range from {glue:text}`mu_min:.3f` to
{glue:text}`mu_max:.3f`. The next notebooks load these networks and thresholds with
`srlib.training.load_networks`.
"""),
]
write("notebooks/04_training.ipynb", cells)
