"""How each method super-resolves at a scaling factor, and what identifies it.

Contract. :func:`method_resolvers` returns, for every method of :mod:`srlib.methods` that can
run at an α, a function mapping a binary low-resolution image to its binary super-resolution:
the networks with their threshold μ* (:func:`network_resolver`), the interpolations on their
grid at 0.5 or at a fitted threshold, the local-Bayes table. :func:`network_ids` gives each
one's identity (a network's weights and μ*, a fitted threshold, a table's counts), which the
protocol stores with its rows so that results of another network are never reused.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from srlib._checks import check_alpha
from srlib.baselines import interpolate
from srlib.methods import METHODS, PAPER, check_method
from srlib.resample import interpolate_quadratic_binary

logger = logging.getLogger(__name__)

__all__ = ["method_resolvers", "network_id", "network_ids", "network_resolver"]


def network_resolver(network, *, connectivity: str = "face", device=None):
    """A function ``lr -> bool SR image`` applying a trained network with its threshold μ*.

    The function takes an optional keyword ``channels``: N^diffu's diffusion channels
    ``(2, *lr.shape)`` of ``lr`` (e.g. a piece of the whole image's channels); without it they
    are computed on ``lr`` itself (along axis 0, as in the database). Its attribute
    ``needs_channels`` is True for N^diffu.

    Parameters
    ----------
    network : srlib.training.TrainedNetwork
        The network (kind "bin" or "diffu") and its threshold.
    connectivity : str
        Mesh convention of the diffusion channels of N^diffu's input.
    device : str, optional
        Torch device for inference.

    Returns
    -------
    callable
        Maps a binary LR image to the thresholded SR image (Eq. 17 with μ*).
    """
    from srlib.inference import super_resolve
    from srlib.transport import diffusion_channels

    def resolve(lr: np.ndarray, *, channels=None) -> np.ndarray:
        x = lr.astype(np.float32)[None]
        if METHODS[network.kind].needs_channels:
            if channels is None:
                channels = diffusion_channels(lr, connectivity=connectivity)
            channels = np.asarray(channels, dtype=np.float32)
            if channels.shape != (2, *lr.shape):
                raise ValueError(f"channels must have shape {(2, *lr.shape)}, "
                                 f"got {channels.shape}")
            x = np.concatenate([x, channels])
        return super_resolve(network.model, x, threshold=network.threshold, device=device,
                             progress=False)

    resolve.needs_channels = METHODS[network.kind].needs_channels
    return resolve


def _interpolator(alpha: int, grid: str, threshold: float | None = None):
    """The interpolation baseline on ``grid``, thresholded at 0.5 or at ``threshold``."""
    if threshold is None and grid == "aligned":
        return lambda lr: interpolate_quadratic_binary(lr, alpha)
    if threshold is None:
        return lambda lr: interpolate(lr, alpha, convention=grid)
    return lambda lr: interpolate(lr, alpha, convention=grid, threshold=threshold)


def method_resolvers(alpha: int, networks: dict, *, methods=PAPER,
                     baselines: dict | None = None, connectivity: str = "face",
                     device=None) -> dict:
    """The super-resolution function of every method at one scaling factor.

    Parameters
    ----------
    alpha : int
        Scaling factor.
    networks : dict
        ``(kind, alpha) -> srlib.training.TrainedNetwork``.
    methods : sequence of str
        Keys of :data:`srlib.methods.METHODS` (default the paper's three); a network
        method without a network at ``alpha``, or a fitted method without ``baselines`` at
        ``alpha``, is skipped with a warning.
    baselines : dict, optional
        ``{alpha: srlib.baselines.Baselines}`` from :func:`srlib.baselines.fit_baselines`:
        the fitted thresholds and the local-Bayes table.
    connectivity : str
        Mesh convention of N^diffu's diffusion channels.
    device : str, optional
        Torch device.

    Returns
    -------
    dict
        Method name -> function mapping a binary LR image to the binary SR image.
    """
    alpha = check_alpha(alpha)
    fitted = (baselines or {}).get(alpha)
    resolvers = {}
    for method in methods:
        m = METHODS[check_method(method)]
        if m.family == "interpolation" and not m.fitted:
            resolvers[method] = _interpolator(alpha, m.grid)
        elif m.family == "network" and (method, alpha) in networks:
            resolvers[method] = network_resolver(networks[(method, alpha)],
                                                 connectivity=connectivity, device=device)
        elif m.family == "interpolation" and fitted is not None:
            resolvers[method] = _interpolator(alpha, m.grid, fitted.thresholds[m.grid])
        elif m.family == "table" and fitted is not None:
            resolvers[method] = fitted.local_bayes.predict
        else:
            what = "trained network" if m.family == "network" else "fitted baseline"
            logger.warning("no %s %s for alpha=%d; skipped", what, method, alpha)
    return resolvers


def network_ids(networks: dict, alpha: int, methods, *, baselines: dict | None = None) -> dict:
    """Identity of each method at ``alpha``: its network's weights and μ*, or fitted baseline.

    Stored rows carry it (column ``network_id``), so results of networks that were retrained
    (or baselines fitted again on other data) are recomputed rather than reused. A network's
    identity is a SHA-256 prefix of its parameter names, shapes, dtypes and values (not the
    weights file, whose bytes differ between saves of the same weights) and μ*; a fitted
    interpolation's is its threshold, the local-Bayes table's the digest of its counts; the
    fixed interpolations' is ``"-"``. Methods that cannot run at ``alpha`` (no network, no
    fitted baseline) are left out.
    """
    fitted = (baselines or {}).get(alpha)
    ids = {}
    for method in methods:
        m = METHODS[check_method(method)]
        if m.family == "interpolation" and not m.fitted:
            ids[method] = "-"
        elif m.family == "interpolation":
            if fitted is not None:
                ids[method] = f"mu:{fitted.thresholds[m.grid]:.6f}"
        elif m.family == "table":
            if fitted is not None:
                ids[method] = f"table:{fitted.local_bayes.digest}"
        elif (method, alpha) in networks:
            ids[method] = network_id(networks[(method, alpha)])
    return ids


def network_id(net) -> str:
    """SHA-256 prefix of a network's parameter names, shapes, dtypes and values, and μ*.

    ``net`` has ``model`` (a torch module) and ``threshold``: a trained network of the study or
    a field network (:mod:`srlib.fieldnets`).
    """
    import torch  # only with a network

    digest = hashlib.sha256()
    for name, tensor in net.model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{digest.hexdigest()[:16]}:{net.threshold:.6f}"
