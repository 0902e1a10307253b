r"""The super-resolution network: a 3D version of SRResNet (paper, section 2.2.1).

Contract. :class:`SRResNet3d` maps a low-resolution input of shape ``(N, C, D, H, W)``
(``C = 1`` for :math:`N^{bin,\alpha}`, the binary image; ``C = 3`` for
:math:`N^{diffu,\alpha}`, the binary image and the two diffusion channels, Eq. (13)) to
probabilities of shape ``(N, 1, αD, αH, αW)`` in (0, 1) that a voxel is solid. Low-resolution
voxel ``j`` corresponds to high-resolution voxel ``α j`` (Eq. (3)). The network is fully
convolutional, so any input size works; :attr:`SRResNet3d.receptive_radius` says how far (in
low-resolution voxels) an output depends on its input, which :mod:`srlib.inference` uses to
tile large volumes exactly. :func:`transfer_weights` initialises a network from a trained one
with half the scaling factor (transfer learning along α = 2 → 4 → 8, section 2.2.3).

Torch is imported only by this module, its layers (:mod:`srlib.layers`), :mod:`srlib.devices`,
:mod:`srlib.training` and :mod:`srlib.inference`.
"""

from __future__ import annotations

import copy
import logging
import pickle
import zipfile
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from srlib._checks import check_alpha, positive_int
from srlib.devices import resolve_device
from srlib.io import atomic_path
from srlib.layers import (
    SHUFFLE_ORDERS,
    PixelShuffle3d,
    ResidualBlock3d,
    UpsampleBlock3d,
    check_kernel,
    conv3d,
    is_channels_last,
)

__all__ = [
    "FIELD_SKIPS",
    "LayerInfo",
    "PixelShuffle3d",
    "SRResNet3d",
    "atomic_torch_save",
    "count_parameters",
    "describe",
    "load_model",
    "save_model",
    "transfer_weights",
]

logger = logging.getLogger(__name__)


#: The upsamplings a field network's field channels correct (:attr:`SRResNet3d.field_skip`).
FIELD_SKIPS = (None, "diffu", "position")


class SRResNet3d(nn.Module):
    r"""The paper's modified SRResNet in 3D, :math:`N^{bin,\alpha}` or :math:`N^{diffu,\alpha}`.

    Layers, in order (names as in :meth:`torch.nn.Module.named_parameters`):

    ``head``
        Convolution ``in_channels → features`` with kernel ``head_kernel`` and PReLU.
    ``body``
        ``blocks`` residual blocks, each conv, BatchNorm3d, PReLU, conv, BatchNorm3d, plus
        the block's skip connection.
    ``trunk``
        Convolution and BatchNorm3d; its output is added to the output of ``head`` (the long
        skip connection).
    ``upsample``
        log₂ α stages of convolution ``features → 8 features``, :class:`PixelShuffle3d` (2),
        ReLU.
    ``tail``
        Convolution ``features → 1`` at high resolution, giving logits; ``output`` applies
        the sigmoid.

    Kernel sizes. SRResNet uses 9 for its first and last convolutions and 3 elsewhere. The
    paper's Fig. 4 (the architecture diagram) is not part of our text, so we keep the 9 for
    the head, which runs at low resolution, but use 3 for the tail by default: the tail runs
    at high resolution, where a 9³ kernel costs 27 times a 3³ one per voxel, and α³ times
    as many voxels as the head. Both are keyword arguments. The upsampling convolutions use
    ``body_kernel``. Convolutions followed by BatchNorm have no bias (it would be redundant);
    PReLU has one slope per feature channel.

    Parameters
    ----------
    in_channels : int
        Input channels: 1 (binary image) or 3 (binary image and two diffusion channels).
    alpha : int
        Scaling factor, one of 2, 4, 8.
    features : int
        Feature channels (the paper gives none; the ``paper`` profile: 64, SRResNet's).
    blocks : int
        Residual blocks (paper: 8).
    out_channels : int
        Output channels: 1, the probability that a voxel is solid (the paper); 3 for the
        field networks of the paper's future work (:mod:`srlib.training.targets`): channel 0
        that probability, channels 1-2 the HR diffusion fields ``[pore, solid]`` (raw
        values; :meth:`forward` applies the sigmoid to channel 0 only).
    field_skip : {None, "diffu", "position"}
        For field networks: channels 1-2 are predicted as corrections to a fixed upsampling
        of the input (:meth:`field_baseline`), as SR networks learn the residual to an
        interpolation: "diffu", the input's two LR diffusion channels, each upsampled
        trilinearly from its own phase's voxels; "position", the position channel (input
        channel 1) upsampled, the linear profile x/L.
    head_kernel, body_kernel, tail_kernel : int
        Odd kernel sizes of the first, inner and last convolutions.
    padding_mode : str
        Padding mode of every convolution ("zeros", "replicate", "reflect" or "circular").
    shuffle_order : {"offset", "channel"}
        Channel order of the pixel shuffles (:class:`PixelShuffle3d`): the same networks up to
        a permutation of the upsampling convolutions' output channels. "offset" is faster;
        "channel" is the order of the networks saved before it existed (:func:`load_model`
        reads them as such).

    Raises
    ------
    ValueError
        If ``alpha`` is not 2, 4 or 8, ``in_channels``, ``features`` or ``blocks`` is not a
        positive integer, or a kernel size is not a positive odd integer.

    Examples
    --------
    >>> model = SRResNet3d(1, 2, features=4, blocks=1)
    >>> model(torch.zeros(1, 1, 8, 8, 8)).shape
    torch.Size([1, 1, 16, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        alpha: int,
        *,
        features: int = 64,
        blocks: int = 8,
        head_kernel: int = 9,
        body_kernel: int = 3,
        tail_kernel: int = 3,
        padding_mode: str = "zeros",
        shuffle_order: str = "offset",
        out_channels: int = 1,
        field_skip: str | None = None,
    ):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        if field_skip not in FIELD_SKIPS:
            raise ValueError(f"field_skip must be one of {FIELD_SKIPS}, got {field_skip!r}")
        if field_skip is not None and (self.out_channels, self.in_channels) != (
                3, 3 if field_skip == "diffu" else 2):
            raise ValueError(f"field_skip={field_skip!r} needs out_channels=3 and in_channels="
                             f"{3 if field_skip == 'diffu' else 2}, got {self.out_channels} and "
                             f"{self.in_channels}")
        self.field_skip = field_skip
        self.alpha = check_alpha(alpha)
        self.features = positive_int(features, "features")
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ValueError(f"blocks must be a non-negative integer, got {blocks!r}")
        self.blocks = blocks
        self.head_kernel = check_kernel(head_kernel, "head_kernel")
        self.body_kernel = check_kernel(body_kernel, "body_kernel")
        self.tail_kernel = check_kernel(tail_kernel, "tail_kernel")
        if padding_mode not in ("zeros", "replicate", "reflect", "circular"):
            raise ValueError(
                "padding_mode must be 'zeros', 'replicate', 'reflect' or 'circular', "
                f"got {padding_mode!r}"
            )
        self.padding_mode = padding_mode
        if shuffle_order not in SHUFFLE_ORDERS:
            raise ValueError(f"shuffle_order must be 'offset' or 'channel', got {shuffle_order!r}")
        self.shuffle_order = shuffle_order
        pm = padding_mode
        f = self.features

        self.head = nn.Sequential(
            conv3d(self.in_channels, f, head_kernel, bias=True, padding_mode=pm), nn.PReLU(f)
        )
        self.body = nn.Sequential(
            *(ResidualBlock3d(f, body_kernel, padding_mode=pm) for _ in range(blocks))
        )
        self.trunk = nn.Sequential(
            conv3d(f, f, body_kernel, bias=False, padding_mode=pm), nn.BatchNorm3d(f)
        )
        self.upsample = nn.Sequential(
            *(
                UpsampleBlock3d(f, body_kernel, padding_mode=pm, shuffle_order=shuffle_order)
                for _ in range(self.alpha.bit_length() - 1)
            )
        )
        self.tail = conv3d(f, self.out_channels, tail_kernel, bias=True, padding_mode=pm)
        self.output = nn.Sigmoid()
        # Channels-last weights and activations let oneDNN (CPU) and cuDNN use their fast 3D
        # kernels: a training step at alpha = 8 is ~1.5x faster on two CPU cores, at alpha = 2
        # no faster (benchmarks/bench_training.py). The layout follows
        # the weights, so ``model.to(memory_format=torch.contiguous_format)`` switches back
        # (same results up to rounding).
        self.to(memory_format=torch.channels_last_3d)

    @property
    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the architecture.

        ``out_channels`` is listed only when it is not 1 and ``field_skip`` only when set,
        so the configuration of a network of the paper's kind is the same whether or not
        they are named.
        """
        extra = {"out_channels": self.out_channels} if self.out_channels != 1 else {}
        if self.field_skip is not None:
            extra["field_skip"] = self.field_skip
        return {
            "in_channels": self.in_channels,
            "alpha": self.alpha,
            "features": self.features,
            "blocks": self.blocks,
            "head_kernel": self.head_kernel,
            "body_kernel": self.body_kernel,
            "tail_kernel": self.tail_kernel,
            "padding_mode": self.padding_mode,
            "shuffle_order": self.shuffle_order,
            **extra,
        }

    @property
    def lr_radius(self) -> int:
        """Receptive radius of the low-resolution part (head, body, trunk), in LR voxels."""
        rb = self.body_kernel // 2
        return self.head_kernel // 2 + 2 * rb * self.blocks + rb

    @property
    def hr_radius(self) -> int:
        """Receptive radius of the upsampling part (upsample, tail), in LR voxels.

        Computed exactly for outputs starting on the HR voxel α j of an LR voxel j (which is
        how tiles are cut): going back through the tail and each ×2 stage, a radius of
        ``r`` voxels at one level needs ``ceil(r / 2)`` voxels at the level below, plus the
        radius of that level's convolution.
        """
        r = self.tail_kernel // 2
        for _ in range(self.alpha.bit_length() - 1):
            r = -(-r // 2) + self.body_kernel // 2
        return r

    @property
    def receptive_radius(self) -> int:
        """How far an output depends on the input, in LR voxels.

        The output on the HR block of LR voxels ``[a, b)`` (HR voxels ``[α a, α b)``) depends
        only on the input on ``[a - R, b + R)`` with ``R = lr_radius + hr_radius``, per axis;
        zero padding at a cut edge affects outputs no further in. With the defaults (kernels
        9, 3, 3) this is ``4 + 2 blocks + 1 + 2``, i.e. 23 for 8 blocks.
        """
        return self.lr_radius + self.hr_radius

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5:
            raise ValueError(
                f"input must be a 5D tensor (N, C, D, H, W), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"input has {x.shape[1]} channels, but the network expects "
                f"in_channels={self.in_channels}"
            )

    def features_lr(self, x: torch.Tensor) -> torch.Tensor:
        """Low-resolution features: head, body, trunk and the long skip connection."""
        self._check_input(x)
        layout = (torch.channels_last_3d if is_channels_last(self.trunk[0].weight)
                  else torch.contiguous_format)
        h = self.head(x.contiguous(memory_format=layout))
        return h + self.trunk(self.body(h))

    def logits_from_features(self, f: torch.Tensor) -> torch.Tensor:
        """High-resolution logits from :meth:`features_lr`: upsampling stages and tail."""
        return self.tail(self.upsample(f))

    def field_baseline(self, x: torch.Tensor) -> torch.Tensor:
        """The upsampling of the input that the field channels correct (``field_skip``).

        Trilinear upsampling on the pixel-centre grid (``align_corners=False``: LR voxel
        ``j`` covers HR voxels ``α j .. α j + α - 1``, as in the LR FEM). For "diffu" each
        diffusion channel is 0 off its phase, so it is upsampled from its phase's voxels
        only (the upsampled channel times the phase, divided by the upsampled phase; 0 where
        no voxel of the phase is near); for "position" the position channel is exact for a
        linear profile inside the domain.

        Returns
        -------
        torch.Tensor
            ``(N, 2, αD, αH, αW)``, ``[pore, solid]``.
        """
        def up(t):
            return F.interpolate(t, scale_factor=self.alpha, mode="trilinear",
                                 align_corners=False)

        x = x.float()
        if self.field_skip == "position":
            return up(x[:, 1:2]).expand(-1, 2, -1, -1, -1)
        image = x[:, :1]
        phases = torch.cat([1.0 - image, image], dim=1)
        weight = up(phases)
        return torch.where(weight > 1e-6, up(x[:, 1:3] * phases) / weight.clamp_min(1e-6),
                           torch.zeros_like(weight))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (before the sigmoid), shape ``(N, out_channels, αD, αH, αW)``.

        Use with :func:`torch.nn.functional.binary_cross_entropy_with_logits`, which is
        numerically stable where a sigmoid followed by a logarithm is not. With
        ``field_skip``, channels 1-2 are the fields (:meth:`field_baseline` plus the
        network's correction).
        """
        out = self.logits_from_features(self.features_lr(x))
        if self.field_skip is None:
            return out
        fields = out[:, 1:].float() + self.field_baseline(x)
        return torch.cat([out[:, :1].float(), fields], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities in (0, 1) that each high-resolution voxel is solid (channel 0)."""
        out = self.logits(x)
        if self.out_channels == 1:
            return self.output(out)
        return torch.cat([self.output(out[:, :1]), out[:, 1:]], dim=1)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Return the number of parameters of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.
    trainable_only : bool
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int
        Number of scalar parameters (buffers such as BatchNorm statistics are not counted).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class LayerInfo(NamedTuple):
    """One row of :func:`describe`: a layer, its output shape and its parameter count."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int


def describe(model: SRResNet3d, input_shape, *, leaves: bool = False) -> list[LayerInfo]:
    """List the layers of a network with output shapes and parameter counts (for Fig. 4).

    Shapes are propagated on torch's ``meta`` device, so nothing is computed and even the
    paper's network at α = 8 is described instantly; ``model`` itself is not touched.

    Parameters
    ----------
    model : SRResNet3d
        The network.
    input_shape : tuple of int
        ``(C, D, H, W)`` or ``(N, C, D, H, W)``.
    leaves : bool
        False: one row per stage (head, each residual block, trunk, each upsampling stage,
        tail, output). True: one row per elementary layer (conv, BatchNorm, activation, ...).

    Returns
    -------
    list of LayerInfo
        In execution order. ``parameters`` counts the parameters owned by the row's module.

    Raises
    ------
    ValueError
        If ``input_shape`` is not 4 or 5 positive integers or has the wrong channel count.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 4:
        shape = (1, *shape)
    if len(shape) != 5 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, D, H, W) or (N, C, D, H, W), got {input_shape}")
    meta = copy.deepcopy(model).to("meta").eval()
    if leaves:
        stages = [(n, m) for n, m in meta.named_modules() if n and not list(m.children())]
    else:
        stages = [("head", meta.head)]
        stages += [(f"body.{i}", m) for i, m in enumerate(meta.body)]
        stages += [("trunk", meta.trunk)]
        stages += [(f"upsample.{i}", m) for i, m in enumerate(meta.upsample)]
        stages += [("tail", meta.tail), ("output", meta.output)]
    records: list[LayerInfo] = []
    handles = []
    for name, module in stages:
        n_params = sum(p.numel() for p in module.parameters())

        def hook(mod, inputs, out, name=name, n_params=n_params):
            records.append(LayerInfo(name, type(mod).__name__, tuple(out.shape), n_params))

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            meta(torch.empty(shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return records


def transfer_weights(src: nn.Module, dst: nn.Module) -> list[str]:
    """Initialise ``dst`` from ``src`` wherever their layers coincide (transfer learning).

    Every parameter and buffer of ``dst`` whose name and shape match one of ``src`` is
    overwritten with a copy of it (section 2.2.3: the α network is initialised from the
    trained α/2 network "for coinciding layers"). Between two :class:`SRResNet3d` that differ
    only in α, this is everything except the additional upsampling stage(s). ``src`` is not
    modified.

    Parameters
    ----------
    src : torch.nn.Module
        Trained network (e.g. α/2).
    dst : torch.nn.Module
        Network to initialise (e.g. α); modified in place.

    Returns
    -------
    list of str
        Names of the copied entries of ``dst.state_dict()``, in order.
    """
    orders = {getattr(m, "order", None) for net in (src, dst) for m in net.modules()
              if isinstance(m, PixelShuffle3d)}
    if len(orders) > 1:
        raise ValueError("transfer_weights: the networks' pixel shuffles use different channel "
                         f"orders {sorted(orders)}; their upsampling weights do not coincide")
    src_state = src.state_dict()
    dst_state = dst.state_dict()
    copied, skipped = [], []
    with torch.no_grad():
        for name, value in dst_state.items():
            other = src_state.get(name)
            if other is not None and other.shape == value.shape:
                value.copy_(other.to(device=value.device, dtype=value.dtype))
                copied.append(name)
            else:
                skipped.append(name)
    logger.info("transfer_weights: copied %d of %d entries", len(copied), len(dst_state))
    logger.debug("transfer_weights: copied %s", ", ".join(copied))
    logger.info(
        "transfer_weights: kept the initialisation of %d entries: %s",
        len(skipped),
        ", ".join(skipped) or "none",
    )
    return copied


def save_model(model: SRResNet3d, path) -> Path:
    """Write a network (architecture and weights) to ``path`` atomically.

    Parameters
    ----------
    model : SRResNet3d
        The network.
    path : str or os.PathLike
        Destination file (conventionally ``.pt``); parent folders are created.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save({"config": model.config, "state_dict": state}, path)
    return path


def load_model(path, *, device=None) -> SRResNet3d:
    """Read a network written by :func:`save_model`, in eval mode.

    Parameters
    ----------
    path : str or os.PathLike
        File written by :func:`save_model`.
    device : str, torch.device or None
        Where to put it; see :func:`resolve_device`.

    Returns
    -------
    SRResNet3d
        The network.

    Raises
    ------
    ValueError
        Naming the file, if it is truncated, corrupt or not a network written by
        :func:`save_model`.
    """
    dev = resolve_device(device)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"network file {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        # files written before shuffle_order existed used the channel order
        model = SRResNet3d(**{"shuffle_order": "channel", **data["config"]})
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
            KeyError, TypeError, AttributeError, ValueError) as err:
        raise ValueError(f"network file {path} is truncated, corrupt or not written by "
                         f"save_model ({type(err).__name__}: {err}); delete it and retrain"
                         ) from err
    return model.to(dev).eval()


def atomic_torch_save(obj, path) -> None:
    """Save ``obj`` with :func:`torch.save` to a temporary file, then rename it to ``path``.

    A reader never sees a half-written file, and an interruption leaves the old file intact.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
