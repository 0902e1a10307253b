"""Write notebooks/03_network.ipynb (run from the repository root: python tools/make_nb03.py)."""

import sys

sys.path.insert(0, "tools")
from nb import write  # noqa: E402

cells = [
("md", r"""
# The network architecture

Paper section 2.2.1. The super-resolution networks $N^{\mathrm{bin},\alpha}$ and
$N^{\mathrm{diffu},\alpha}$ are a 3D version of SRResNet. We draw Fig. 4, the network
diagram, from the model itself (layer by layer, with the tensor shapes for the paper's
24³ input cutout), and tabulate the parameter counts of the six networks at this profile's
size and at the paper's.
"""),
("code", r"""
# Parameters (papermill). The profile only sets the feature and block counts drawn here;
# everything in this notebook runs in seconds at any profile.
profile = None  # None: $SRLIB_PROFILE, else "quick"; or "tiny", "paper"
overrides = {}  # profile fields to change, e.g. {"alphas": [2, 4], "batch_sizes": [8, 8]}
results_root = "../results"  # outputs go to <results_root>/<profile>/
""", ["parameters"]),
("code", r"""
import pandas as pd
from myst_nb import glue

from srlib import config, network, plotting

prof = config.get_profile(profile, **overrides)
paper = config.get_profile("paper")
figures = config.results_dir(prof, root=results_root) / "figures"
print(f"profile {prof.name}: {prof.features} features, {prof.blocks} residual blocks "
      f"(paper: {paper.features}, {paper.blocks})")
"""),
("md", r"""
## Layers (2.2.1)

`srlib.network.SRResNet3d` maps a low-resolution input with $c = 1$ channel (the binary
image, Eq. 11) or $c = 3$ channels (the binary image and the two diffusion channels,
Eq. 13) to an $\alpha$-times larger image of probabilities that a voxel is solid:

* a *head*: convolution with a 9³ kernel and PReLU;
* the paper's 8 *residual blocks*, each conv, BatchNorm, PReLU, conv, BatchNorm and the
  block's skip connection;
* a *trunk*: convolution and BatchNorm, whose output is added to the head's output (the long
  skip connection of SRResNet);
* $\log_2 \alpha$ *upsampling stages*, each a convolution to eight times the features, a
  PixelShuffle3d that moves each group of 8 channels into a 2 × 2 × 2 block of voxels, and a
  ReLU;
* an output convolution to one channel and a sigmoid.

The paper names the components but not the kernel sizes (its Fig. 4 is the only place they
would appear). We keep SRResNet's 9³ head, which runs at low resolution, and use 3³ for the
output convolution, which runs at high resolution where a 9³ kernel would cost 27 times as
much per voxel. The two network types differ only in the input channels of the head. The
stages of the largest network of this profile, for a 24³ input:
"""),
("code", r"""
alpha = max(prof.alphas)
model = network.SRResNet3d(1, alpha, features=prof.features, blocks=prof.blocks)
shape = (1, paper.cutout, paper.cutout, paper.cutout)
layers = network.describe(model, shape)
pd.DataFrame(layers).set_index("name")
"""),
("code", r"""
title = (f"$N^{{\\mathrm{{bin}},{alpha}}}$ at {prof.features} features and {prof.blocks} "
         f"residual blocks, for a {paper.cutout}³ input")
kernels = (model.head_kernel, model.body_kernel, model.tail_kernel)
fig, ax = plotting.fig4_network(layers, shape, kernels=kernels, title=title)
plotting.save(fig, "fig4_network", figures);
"""),
("md", r"""
The network is fully convolutional, so it super-resolves inputs of any size. An output voxel
depends on the input within {glue:text}`receptive_radius` low-resolution voxels along each
axis ({glue:text}`lr_radius` from the head, the residual blocks and the trunk, the rest from
the upsampling stages and the output convolution). `srlib.inference.super_resolve` uses this
radius to cut large volumes into tiles whose seams do not change the result.
"""),
("code", r"""
glue("receptive_radius", model.receptive_radius, display=False)
glue("lr_radius", model.lr_radius, display=False)
"""),
("md", r"""
## Parameter counts

The parameters of the six networks, at this profile's feature and block counts and at the
paper's (64 features, 8 residual blocks):
"""),
("code", r"""
def n_params(p, alpha, channels):
    return network.count_parameters(
        network.SRResNet3d(channels, alpha, features=p.features, blocks=p.blocks))


rows = [{"size": f"{p.name}: {p.features} features, {p.blocks} blocks", "input": kind,
         "alpha": a, "parameters": n_params(p, a, c)}
        for p in dict.fromkeys([prof, paper]) for a in paper.alphas
        for kind, c in (("bin", 1), ("diffu", 3))]
counts = pd.DataFrame(rows).pivot(index="size", columns=["input", "alpha"], values="parameters")
counts.sort_index(axis=1)
"""),
("code", r"""
big = {k: n_params(paper, 8, c) for k, c in (("bin", 1), ("diffu", 3))}
upsampling = sum(r.parameters for r in network.describe(
    network.SRResNet3d(1, 8, features=paper.features, blocks=paper.blocks), shape)
    if r.name.startswith("upsample"))
glue("params_paper_bin8", big["bin"], display=False)
glue("params_paper_diffu_extra", big["diffu"] - big["bin"], display=False)
glue("upsampling_share_paper8", float(100 * upsampling / big["bin"]), display=False)
glue("params_profile_bin8", n_params(prof, 8, 1), display=False)
"""),
("md", r"""
At the paper's size $N^{\mathrm{bin},8}$ has {glue:text}`params_paper_bin8:,` parameters,
{glue:text}`upsampling_share_paper8:.0f` % of them in its three upsampling stages (each a
3³ convolution from 64 to 512 channels). At this profile's size it has
{glue:text}`params_profile_bin8:,`. The head of $N^{\mathrm{diffu},\alpha}$ has two more
input channels, which adds {glue:text}`params_paper_diffu_extra:,` parameters at the paper's
size, the same for every $\alpha$. Transfer learning (section 2.2.3) copies every layer of the
trained $\alpha/2$ network into the $\alpha$ network; only the additional upsampling stage
starts from random weights.
"""),
]
write("notebooks/03_network.ipynb", cells)
