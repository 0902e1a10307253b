r"""The study's networks: seeded construction and transfer learning α/2 → α (section 2.2.3).

Contract. :func:`make_model` builds an :class:`~srlib.network.SRResNet3d` whose initial
weights come from a seed alone (torch's global random state is left as it was);
:func:`transfer_model` builds the α network from a trained α/2 one, copying every layer that
coincides. The source network is never modified.
"""

from __future__ import annotations

import torch

from srlib._checks import check_alpha
from srlib.network import SRResNet3d, transfer_weights

__all__ = ["make_model", "transfer_model"]


def make_model(in_channels: int, alpha: int, *, seed: int = 0, **kwargs) -> SRResNet3d:
    """Build an :class:`~srlib.network.SRResNet3d` with weights initialised from ``seed``.

    Torch's global random state is left as it was (the layers draw their initial weights
    from it, so it is forked and seeded for the construction).

    Parameters
    ----------
    in_channels : int
        1 (binary input) or 3 (binary and diffusion channels).
    alpha : int
        Scaling factor, 2, 4 or 8.
    seed : int
        Seed of the initialisation.
    **kwargs
        Further arguments of :class:`~srlib.network.SRResNet3d` (``features``, ``blocks``,
        kernel sizes).

    Returns
    -------
    SRResNet3d
        The network, on the CPU.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SRResNet3d(in_channels, alpha, **kwargs)


def transfer_model(src: SRResNet3d, alpha: int | None = None, *, seed: int = 0) -> SRResNet3d:
    """Build the network for ``alpha`` initialised from the trained network ``src``.

    Transfer learning of section 2.2.3: the new network has the architecture of ``src``
    except for the scaling factor, and every layer that coincides (same name and shape) is
    copied from ``src`` by :func:`~srlib.network.transfer_weights`; the additional upsampling
    stage keeps its random initialisation (from ``seed``). ``src`` is not modified.

    Parameters
    ----------
    src : SRResNet3d
        Trained network, usually with scaling factor ``alpha / 2``.
    alpha : int, optional
        Scaling factor of the new network; default ``2 * src.alpha``.
    seed : int
        Seed of the initialisation of the layers that are not copied.

    Returns
    -------
    SRResNet3d
        The new network, on the CPU.
    """
    if not isinstance(src, SRResNet3d):
        raise ValueError(f"src must be an SRResNet3d, got {type(src).__name__}")
    config = dict(src.config)
    config["alpha"] = check_alpha(2 * src.alpha if alpha is None else alpha)
    dst = make_model(config.pop("in_channels"), config.pop("alpha"), seed=seed, **config)
    transfer_weights(src, dst)
    return dst
