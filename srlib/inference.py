"""Super-resolving whole volumes of any size with a trained network (paper, section 3).

Contract. :func:`super_resolve` takes a low-resolution input, ``(D, H, W)`` (a binary image,
bool or 0/1) or ``(C, D, H, W)`` (channel 0 the binary image, then e.g. the diffusion
channels), and returns the network's probabilities that each high-resolution voxel is solid,
float32 of shape ``(αD, αH, αW)``, or the binary image thresholded at μ (Eq. (17), True =
solid). Low-resolution voxel ``j`` corresponds to high-resolution voxel ``α j`` (Eq. (3)).

Tiling. Large volumes do not fit through the network at once, so the volume is cut into
tiles whose outputs are computed independently and pasted together. Each tile is extended
by a halo at least the network's receptive radius (:attr:`SRResNet3d.receptive_radius`), so
the pasted result equals a single pass over the whole volume up to floating-point rounding;
no overlap blending is needed. Tiling works in two stages: the low-resolution part of the
network (head, residual blocks, trunk; radius 21 LR voxels for 8 blocks) runs on a tile plus
the full halo, whose memory is modest (features × LR voxels); its features are then upsampled
in sub-tiles, each extended only by the small halo of the upsampling part (2 LR voxels), so
the expensive high-resolution tensors are barely larger than the sub-tile's output and the
wide low-resolution halo is not paid for at high resolution. The model is used in eval
mode under :func:`torch.no_grad`; its mode and device are restored afterwards. The input is
never modified.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import torch

from srlib._checks import positive_int
from srlib._heap import keep_freed_memory
from srlib._progress import progress_bar
from srlib.devices import resolve_device, torch_threads
from srlib.network import SRResNet3d

__all__ = ["DEFAULT_TILE_BYTES", "auto_tile", "super_resolve"]

logger = logging.getLogger(__name__)

#: Default bound on the estimated peak memory of one tile (bytes).
DEFAULT_TILE_BYTES = 1 << 30


def _lr_bytes(model: SRResNet3d, tile: int, shape) -> int:
    """Estimated peak memory (bytes) of the low-resolution stage for a tile of edge ``tile``."""
    voxels = int(np.prod([min(tile + 2 * model.receptive_radius, n) for n in shape]))
    # input, head output, block intermediates and sum: about 4 feature maps
    return 4 * 4 * model.features * voxels


def _hr_bytes(model: SRResNet3d, tile: int, shape) -> int:
    """Estimated peak memory (bytes) of the upsampling stage for a sub-tile of edge ``tile``."""
    a = model.alpha
    voxels = int(np.prod([a * min(tile + 2 * model.hr_radius, n) for n in shape]))
    # the last conv output (8f channels at half the final resolution: as many values as f
    # channels at full resolution), its shuffled copy and the activation: about 3
    return 4 * 3 * model.features * voxels


def _largest(fits, upper: int) -> int:
    t = upper
    while t > 1 and not fits(t):
        t -= max(1, t // 16)
    return t


def auto_tile(model: SRResNet3d, shape, *, max_bytes: int = DEFAULT_TILE_BYTES
              ) -> tuple[int, int]:
    """Largest tile edges (LR voxels) whose estimated peak memory stays under ``max_bytes``.

    Parameters
    ----------
    model : SRResNet3d
        The network.
    shape : tuple of int
        Spatial shape of the low-resolution input.
    max_bytes : int
        Memory bound for the tensors of one tile.

    Returns
    -------
    tile : int
        Edge of the tiles of the low-resolution stage, at most ``max(shape)`` (one pass).
    upsample_tile : int
        Edge of the sub-tiles of the upsampling stage, at most ``tile``.
    """
    tile = _largest(lambda t: _lr_bytes(model, t, shape) <= max_bytes, max(shape))
    sub = _largest(lambda t: _hr_bytes(model, t, shape) <= max_bytes, tile)
    return tile, sub


def _as_input(lr_input, in_channels: int) -> np.ndarray:
    arr = np.asarray(lr_input)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(
            "lr_input must be a 3D image (D, H, W) or a channel-first 4D array (C, D, H, W), "
            f"got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"lr_input is empty (shape {arr.shape})")
    if arr.shape[0] != in_channels:
        raise ValueError(
            f"lr_input has {arr.shape[0]} channel(s) (shape {arr.shape}), but the network "
            f"expects in_channels={in_channels}"
        )
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"lr_input must be numeric or bool, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("lr_input contains NaN or infinite values")
    if not np.all((arr[0] == 0) | (arr[0] == 1)):
        values = np.unique(arr[0])[:4]
        raise ValueError("the first channel of lr_input must be a binary image (0/1 or bool, "
                         f"True = solid), got values such as {values.tolist()}; binarise "
                         "grayscale input first (srlib.io.load_binary)")
    return arr


def _split(lo: int, hi: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(s + step, hi)) for s in range(lo, hi, step)]


def super_resolve(
    model: SRResNet3d,
    lr_input,
    *,
    threshold: float | None = None,
    device=None,
    tile: int | None = None,
    upsample_tile: int | None = None,
    max_tile_bytes: int = DEFAULT_TILE_BYTES,
    num_threads: int | None = None,
    progress: bool = True,
    all_channels: bool = False,
) -> np.ndarray:
    """Super-resolve a low-resolution volume of any size with a trained network.

    Parameters
    ----------
    model : SRResNet3d
        Trained network; its mode and device are restored afterwards.
    lr_input : array_like
        ``(D, H, W)`` single-channel input (bool or 0/1 binary image) or ``(C, D, H, W)`` with
        ``C == model.in_channels`` (channel 0 the binary image, then the diffusion channels).
    threshold : float, optional
        μ in (0, 1). If given, return the binary image ``P ≥ μ`` (Eq. (17)), True = solid.
    device : str, torch.device or None
        See :func:`~srlib.devices.resolve_device` (CUDA when available, else the CPU).
    tile : int, optional
        Edge, in LR voxels and without halo, of the cubic tiles passed through the
        low-resolution stage of the network. Default: the largest whose estimated memory
        stays under ``max_tile_bytes`` (:func:`auto_tile`); a tile at least as large as the
        volume gives a single pass.
    upsample_tile : int, optional
        Edge of the sub-tiles of each tile passed through the upsampling stage (capped at
        ``tile``). Default: the largest whose estimated memory stays under ``max_tile_bytes``.
    max_tile_bytes : int
        Memory bound used to choose the default tile sizes.
    num_threads : int, optional
        Torch CPU threads (restored afterwards).
    progress : bool
        Show a tqdm progress bar over the tiles.
    all_channels : bool
        Return every output channel, ``(out_channels, αD, αH, αW)`` float32: channel 0 the
        probabilities, the others the network's raw outputs (e.g. the fields of a field
        network, :mod:`srlib.training.targets`). Not with ``threshold``.

    Returns
    -------
    numpy.ndarray
        float32 probabilities in (0, 1) of shape ``(αD, αH, αW)``, or bool if ``threshold``
        is given (see ``all_channels`` for the other outputs). The result does not depend on
        the tile sizes (up to floating-point rounding).

    Raises
    ------
    ValueError
        If ``model`` is not an SRResNet3d, ``lr_input`` is not 3D/4D, has the wrong number
        of channels or non-finite values, or ``threshold`` or a tile size is invalid.
    """
    if not isinstance(model, SRResNet3d):
        raise ValueError(f"model must be an SRResNet3d, got {type(model).__name__}")
    x = _as_input(lr_input, model.in_channels)
    if threshold is not None and not (
        isinstance(threshold, (int, float, np.floating)) and 0 < threshold < 1
    ):
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    if all_channels and threshold is not None:
        raise ValueError("all_channels returns probabilities and raw outputs; "
                         "threshold channel 0 afterwards")
    shape = x.shape[1:]
    if tile is None:
        tile, auto_sub = auto_tile(model, shape, max_bytes=max_tile_bytes)
    else:
        tile = positive_int(tile, "tile")
        auto_sub = _largest(lambda t: _hr_bytes(model, t, shape) <= max_tile_bytes, tile)
    upsample_tile = min(
        auto_sub if upsample_tile is None else positive_int(upsample_tile, "upsample_tile"), tile
    )
    a = model.alpha
    r_all = model.receptive_radius
    lead = (model.out_channels,) if all_channels else ()
    out = np.empty((*lead, *(a * n for n in shape)),
                   dtype=bool if threshold is not None else np.float32)

    tiles = list(itertools.product(*(_split(0, n, tile) for n in shape)))
    logger.info(
        "super_resolve: input %s, %d tile(s) of %d (upsampled in sub-tiles of %d), "
        "halo %d LR voxels", shape, len(tiles), tile, upsample_tile, r_all,
    )

    dev = resolve_device(device)
    keep_freed_memory()  # tiles reuse the heap's pages (srlib._heap): speed only
    device_before = next(model.parameters()).device
    was_training = model.training
    if num_threads is not None:
        num_threads = positive_int(num_threads, "num_threads")
    with torch_threads(num_threads):
        model.to(dev).eval()
        try:
            with torch.no_grad():
                _tiles(model, x, out, tiles, dev, upsample_tile=upsample_tile,
                       threshold=threshold, progress=progress)
        finally:
            model.to(device_before).train(was_training)
    return out


def _tiles(model, x, out, tiles, dev, *, upsample_tile: int, threshold, progress: bool) -> None:
    """Super-resolve ``x`` tile by tile into ``out`` (see :func:`super_resolve`)."""
    shape, a = x.shape[1:], model.alpha
    r_all, r_hr = model.receptive_radius, model.hr_radius
    for core in progress_bar(tiles, desc="tiles",
                             disable=not progress or len(tiles) == 1):
        # Low-resolution stage on the tile plus the full halo; its features are
        # exact on the tile plus the upsampling halo (ext).
        src = [(max(lo - r_all, 0), min(hi + r_all, n))
               for (lo, hi), n in zip(core, shape, strict=True)]
        ext = [(max(lo - r_hr, 0), min(hi + r_hr, n))
               for (lo, hi), n in zip(core, shape, strict=True)]
        xt = x[(slice(None), *(slice(lo, hi) for lo, hi in src))]
        feats = model.features_lr(torch.from_numpy(np.ascontiguousarray(xt))[None].to(dev))
        for sub in itertools.product(*(_split(lo, hi, upsample_tile) for lo, hi in core)):
            # Upsampling stage on the sub-tile plus the upsampling halo.
            sub_ext = [(max(lo - r_hr, e[0]), min(hi + r_hr, e[1]))
                       for (lo, hi), e in zip(sub, ext, strict=True)]
            crop = tuple(slice(lo - s[0], hi - s[0])
                         for (lo, hi), s in zip(sub_ext, src, strict=True))
            logits = model.logits_from_features(feats[(slice(None), slice(None), *crop)])
            keep = tuple(slice(a * (lo - e[0]), a * (hi - e[0]))
                         for (lo, hi), e in zip(sub, sub_ext, strict=True))
            probs = model.output(logits[(0, 0, *keep)]).float().cpu().numpy()
            dst = tuple(slice(a * lo, a * hi) for lo, hi in sub)
            if out.ndim == 4:  # all channels: the probabilities, then the raw outputs
                fields = logits[:, 1:].float()
                if model.field_skip is not None:  # a local upsampling: exact on the sub-tile
                    xs = x[(slice(None), *(slice(lo, hi) for lo, hi in sub_ext))]
                    fields = fields + model.field_baseline(
                        torch.from_numpy(np.ascontiguousarray(xs))[None].to(dev))
                out[(0, *dst)] = probs
                out[(slice(1, None), *dst)] = fields[(0, slice(None), *keep)].cpu()
                continue
            out[dst] = probs >= threshold if threshold is not None else probs
        del feats
