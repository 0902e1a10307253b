"""The methods of the study, one record each, and the conventions they are run under.

Contract. :data:`METHODS` maps each key of the results table's ``method`` column to a frozen
:class:`Method`: its plain and TeX labels, its description and colour, its family (a
``"network"``, an ``"interpolation"`` or a ``"table"``), the interpolation grid it uses, whether
something of it is fitted on validation data, a network's input channels, and whether it is one
of the paper's three methods (Fig. 6). Every module and notebook reads names, labels, colours
and families from here, so adding a method is one entry here and its implementation (a
resolver in :mod:`srlib.evaluation`). The module also owns the two sets of conventions that
methods are run under: the FEM mesh (:data:`CONNECTIVITIES`) and the interpolation grid
(:data:`GRIDS`). It imports nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BIN",
    "CONNECTIVITIES",
    "DIFFU",
    "DIFFU_TUNED",
    "FIELDS_DIFFU",
    "FIELDS_POSITION",
    "FIELD_INTERPOLATION",
    "FIELD_METHODS",
    "FIELD_PIPELINE",
    "GRIDS",
    "INTERPOLATION",
    "LOCAL_BAYES",
    "METHODS",
    "Method",
    "NETWORKS",
    "PAPER",
    "check_connectivity",
    "check_method",
    "interpolation",
]

#: FEM mesh conventions: voxels of a phase connected through shared faces, or also through
#: edges and vertices (:mod:`srlib.transport`).
CONNECTIVITIES = ("face", "vertex")
#: Interpolation grids: low-resolution voxel j at high-resolution voxel α j (Eq. 3), or at the
#: centre of its block of α voxels (image libraries' convention), :mod:`srlib.baselines`.
GRIDS = ("aligned", "centred")


@dataclass(frozen=True)
class Method:
    """One method of the study.

    Attributes
    ----------
    key : str
        Value of the ``method`` column.
    label : str
        Plain-text name for tables and prose.
    tex : str
        Name for figures (matplotlib mathtext).
    description : str
        What it is, for legends.
    colour : str
        Colour-blind-safe colour (Okabe-Ito).
    family : str
        "network", "interpolation", "table" or (a route to the field) "pipeline".
    grid : str or None
        Interpolation grid (:data:`GRIDS`), None for the others.
    fitted : bool
        Something of it is fitted on the validation realizations (a threshold by Eq. 18, or
        the local-Bayes table's counts).
    in_channels : int or None
        A network's input channels: 1 (the LR image, Eq. 11) or 3 (with the two diffusion
        channels, Eq. 13).
    paper : bool
        One of the paper's three methods (Fig. 6).
    """

    key: str
    label: str
    tex: str
    description: str
    colour: str
    family: str
    grid: str | None = None
    fitted: bool = False
    in_channels: int | None = None
    paper: bool = False

    @property
    def needs_channels(self) -> bool:
        """A network that also reads the diffusion channels of its input."""
        return (self.in_channels or 0) > 1


_ALL = (
    Method("bin", "N^bin", r"$N^{\mathrm{bin},\alpha}$", "network, binary LR input",
           "#0072B2", "network", in_channels=1, paper=True),
    Method("diffu", "N^diffu", r"$N^{\mathrm{diffu},\alpha}$",
           "network, LR input + diffusion channels", "#E69F00", "network", in_channels=3,
           paper=True),
    Method("interpolation", "interpolation (Eq. 3-aligned, threshold 0.5)",
           "tri-quadratic interpolation", "grid aligned with Eq. (3), threshold 0.5", "#999999",
           "interpolation", grid="aligned", paper=True),
    Method("interpolation_centred", "interpolation (pixel-centre, threshold 0.5)",
           "interpolation, pixel centres", "tri-quadratic on the pixel-centre grid, threshold 0.5",
           "#CC79A7", "interpolation", grid="centred"),
    Method("interpolation_fitted", "interpolation (Eq. 3-aligned, fitted threshold)",
           "interpolation, fitted threshold", "tri-quadratic, aligned grid, threshold by Eq. (18)",
           "#009E73", "interpolation", grid="aligned", fitted=True),
    Method("interpolation_centred_fitted", "interpolation (pixel-centre, fitted threshold)",
           "interpolation, pixel centres, fitted threshold",
           "tri-quadratic, threshold by Eq. (18)", "#F0E442", "interpolation", grid="centred",
           fitted=True),
    Method("local_bayes", "local Bayes (2×2×2 corner table)", "local Bayes lookup",
           "majority vote per 2³ LR pattern and HR offset (no network)", "#D55E00", "table",
           fitted=True),
)

#: Every method by key, in the order of tables and figures.
METHODS = {m.key: m for m in _ALL}

_FIELD = (
    Method("fields_diffu", "N^diffu→u (A)", r"$N^{\mathrm{diffu}\to u}$",
           "the input of the diffu network; outputs the HR image and fields (experiment A)",
           "#88CCEE", "network", in_channels=3),
    Method("fields_position", "N^pos→u (B)", r"$N^{\mathrm{pos}\to u}$",
           "LR image + position channel; outputs the HR image and fields (experiment B)",
           "#882255", "network", in_channels=2),
    Method("diffu_tuned", "N^diffu fine-tuned alone (control)", r"$N^{\mathrm{diffu}}_{w=0}$",
           "as A with field weight 0: the extra training alone; fields = its fixed upsampling",
           "#332288", "network", in_channels=3),
    Method("field_interpolation", "LR FEM, interpolated", "LR FEM + interpolation",
           "FEM on the LR image, tri-quadratic to the HR grid (pixel centres)", "#DDCC77",
           "interpolation", grid="centred"),
    Method("field_pipeline", "FEM on N^diffu's SR image", "FEM on the SR image",
           "the diffu network super-resolves, then the FEM solves at HR", "#44AA99", "pipeline"),
)
#: The routes to the HR diffusion field of the paper's future work (:mod:`srlib.fieldnets`),
#: by key of the ``method`` column of the field tables: the two field networks, their control
#: (A fine-tuned with field weight 0), the LR solution interpolated, and the FEM solved on
#: N^diffu's super-resolution.
FIELD_METHODS = {m.key: m for m in _FIELD}
(FIELDS_DIFFU, FIELDS_POSITION, DIFFU_TUNED, FIELD_INTERPOLATION,
 FIELD_PIPELINE) = FIELD_METHODS
#: The networks' keys (also their ``kind``).
NETWORKS = tuple(k for k, m in METHODS.items() if m.family == "network")
#: The paper's three methods (Fig. 6).
PAPER = tuple(k for k, m in METHODS.items() if m.paper)
BIN, DIFFU = NETWORKS
INTERPOLATION = "interpolation"
LOCAL_BAYES = "local_bayes"


def interpolation(grid: str, *, fitted: bool = False) -> str:
    """Key of the interpolation on ``grid`` (threshold 0.5, or fitted by Eq. 18)."""
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    return next(k for k, m in METHODS.items()
                if m.family == "interpolation" and m.grid == grid and m.fitted == fitted)


def check_method(key, *, family: str | None = None) -> str:
    """``key`` if it names a method (of ``family``), else a ValueError listing the choices."""
    choices = [k for k, m in METHODS.items() if family is None or m.family == family]
    if key not in choices:
        what = f"{family} method" if family else "method"
        raise ValueError(f"unknown {what} {key!r}; choose one of {choices}")
    return key


def check_connectivity(connectivity) -> str:
    """``connectivity`` if it is one of :data:`CONNECTIVITIES`, else a ValueError."""
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {CONNECTIVITIES}, got {connectivity!r}")
    return connectivity
