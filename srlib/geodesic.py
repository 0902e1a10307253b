"""Mean geodesic tortuosity of one phase of a binary image (paper, section 2.3.3).

Contract. For a binary image (True = solid, False = pore), a phase and a transport axis, the
geodesic tortuosity of a phase voxel in the start plane (index 0 along ``axis``) is the length
of a shortest path inside the phase to the opposite plane (index ``n - 1``), divided by the
thickness ``n - 1``. Paths run from voxel centre to voxel centre over the 26-neighbourhood, with
step lengths 1, √2 and √3 for face, edge and corner neighbours. The mean geodesic tortuosity is
the mean over the start voxels that reach the opposite plane; it is ``inf`` when none does.

Conventions:

* Thickness ``n - 1``, the centre-to-centre distance of the two planes, so a straight channel
  along the axis has tortuosity exactly 1 (and so does a full block); ``n >= 2`` is required.
* Start voxels that do not reach the opposite plane (dead ends, isolated clusters) are left out
  of the mean; :func:`geodesic_tortuosity` reports how many did reach
  (:attr:`GeodesicResult.connected_fraction`).
* Paths on the 26-neighbourhood overestimate Euclidean lengths of oblique straight lines
  slightly (a digital metric); this is the usual voxel-based estimator, and it is what the
  paper's "shortest path ... within a given phase" measures on voxel data.

Implementation: one multi-source Dijkstra search (:class:`skimage.graph.MCP_Geometric`, fully
connected, cost 1 in the phase and ``inf``, i.e. impassable, elsewhere) started from all phase
voxels of the *target* plane; the distance of every start voxel to its nearest target voxel is
then read off the start plane. For unit costs MCP_Geometric's step cost is the Euclidean step
length. Inputs are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.graph import MCP_Geometric

from srlib._checks import as_binary, check_axis, check_phase

__all__ = ["GeodesicResult", "geodesic_tortuosity", "mean_geodesic_tortuosity"]


@dataclass(frozen=True)
class GeodesicResult:
    """Geodesic tortuosity of one phase along one axis.

    Attributes
    ----------
    mean : float
        Mean geodesic tortuosity over the start voxels that reach the opposite plane;
        ``inf`` if none does.
    connected_fraction : float
        ``n_connected / n_start``; 0.0 when the phase has no voxel in the start plane.
    n_start : int
        Number of phase voxels in the start plane (index 0 along ``axis``).
    n_connected : int
        Number of those that reach the opposite plane inside the phase.
    phase : bool
        The phase, True = solid, False = pore.
    axis : int
        The transport axis.
    tortuosity_map : numpy.ndarray
        2D float array over the start plane (``image`` with ``axis`` removed): the geodesic
        tortuosity of each start voxel, ``inf`` where it does not reach the opposite plane,
        ``nan`` where the voxel is not in the phase.
    """

    mean: float
    connected_fraction: float
    n_start: int
    n_connected: int
    phase: bool
    axis: int
    tortuosity_map: np.ndarray = field(repr=False, compare=False)


def geodesic_tortuosity(image, phase, *, axis: int = 0) -> GeodesicResult:
    """Geodesic tortuosity of every start voxel of a phase, with mean and connected fraction.

    See the module docstring for the definition and conventions (section 2.3.3 of the paper).

    Parameters
    ----------
    image : array_like
        3D binary image (``bool`` or 0/1), True = solid.
    phase : bool, int or str
        True/1/``'solid'`` or False/0/``'pore'``.
    axis : int
        Transport axis; paths run from index 0 to index ``n - 1`` along it.

    Returns
    -------
    GeodesicResult
        Mean, connected fraction, counts and the per-voxel map of the start plane.

    Raises
    ------
    ValueError
        If ``image`` is not a 3D binary image, ``phase`` is not a valid phase or is absent from
        the image, ``axis`` is out of range, or the image has fewer than 2 voxels along ``axis``.
    """
    img = as_binary(image)
    value = check_phase(img, phase)
    axis = check_axis(axis)
    n = img.shape[axis]
    if n < 2:
        raise ValueError(
            f"image must have at least 2 voxels along axis {axis} to measure a path between "
            f"opposite planes, got shape {img.shape}"
        )
    mask = img if value else ~img
    mask = np.moveaxis(mask, axis, 0)  # a view; transport along the first axis from here on
    start = mask[0]
    target = mask[-1]
    n_start = int(np.count_nonzero(start))

    tau_map = np.full(start.shape, np.nan)
    if n_start and target.any():
        costs = np.where(mask, 1.0, np.inf)
        sources = np.argwhere(target)
        sources = np.column_stack([np.full(len(sources), n - 1), sources])
        mcp = MCP_Geometric(costs, fully_connected=True)
        distance, _ = mcp.find_costs(sources)
        tau_map[start] = distance[0][start] / (n - 1)
    else:
        tau_map[start] = np.inf

    reached = np.isfinite(tau_map)
    n_connected = int(np.count_nonzero(reached))
    mean = float(tau_map[reached].mean()) if n_connected else float("inf")
    fraction = n_connected / n_start if n_start else 0.0
    return GeodesicResult(
        mean=mean,
        connected_fraction=fraction,
        n_start=n_start,
        n_connected=n_connected,
        phase=value,
        axis=axis,
        tortuosity_map=tau_map,
    )


def mean_geodesic_tortuosity(image, phase, *, axis: int = 0) -> float:
    """Mean geodesic tortuosity of a phase along an axis, section 2.3.3 (``inf`` if no path).

    Shortest paths inside the phase over the 26-neighbourhood from each phase voxel of the
    start plane to the opposite plane, divided by the thickness ``n - 1`` (a straight channel
    gives exactly 1), averaged over the start voxels that reach it. Use
    :func:`geodesic_tortuosity` for the fraction of start voxels that reach it.

    Parameters
    ----------
    image : array_like
        3D binary image (``bool`` or 0/1), True = solid.
    phase : bool, int or str
        True/1/``'solid'`` or False/0/``'pore'``.
    axis : int
        Transport axis.

    Returns
    -------
    float
        The mean geodesic tortuosity (>= 1), or ``inf`` if no start voxel reaches the
        opposite plane.

    Raises
    ------
    ValueError
        As :func:`geodesic_tortuosity`.
    """
    return geodesic_tortuosity(image, phase, axis=axis).mean
