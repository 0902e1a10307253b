"""The layers of :class:`srlib.network.SRResNet3d`: 3D pixel shuffle and SRResNet blocks.

Contract. :class:`PixelShuffle3d` rearranges channels into space (sub-pixel convolution, paper
reference [42]); :class:`ResidualBlock3d` and :class:`UpsampleBlock3d` are SRResNet's blocks in
3D. :mod:`srlib.network` assembles them and re-exports :class:`PixelShuffle3d`.
"""

from __future__ import annotations

import torch
from torch import nn

from srlib._checks import positive_int

__all__ = ["SHUFFLE_ORDERS", "PixelShuffle3d", "ResidualBlock3d", "UpsampleBlock3d", "check_kernel",
           "conv3d", "is_channels_last"]


SHUFFLE_ORDERS = ("offset", "channel")


class PixelShuffle3d(nn.Module):
    """Rearrange channels into space: ``(N, C r³, D, H, W)`` → ``(N, C, rD, rH, rW)``.

    The 3D analogue of :class:`torch.nn.PixelShuffle` (sub-pixel convolution, paper
    reference [42]). With ``order="channel"``, input channel ``c r³ + i r² + j r + k`` goes
    to the sub-voxel offset ``(i, j, k)`` along ``(D, H, W)``, i.e.
    ``out[n, c, r d + i, r h + j, r w + k] = in[n, c r³ + i r² + j r + k, d, h, w]``; for
    ``r = 2`` this is torch's 2D convention applied per axis. With ``order="offset"`` the
    channel is ``(i r² + j r + k) C + c``. Both give the same family of networks (the
    preceding convolution's output channels are permuted), but on channels-last tensors the
    offset order moves runs of ``C`` contiguous values where the channel order gathers with
    stride ``r³``, several times faster (engineering notes of the book).

    Parameters
    ----------
    factor : int
        Upscaling factor ``r`` along each spatial axis.
    order : {"offset", "channel"}
        Channel order of the input, as above.
    """

    def __init__(self, factor: int, *, order: str = "offset"):
        super().__init__()
        self.factor = positive_int(factor, "factor")
        if order not in SHUFFLE_ORDERS:
            raise ValueError(f"order must be 'offset' or 'channel', got {order!r}")
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shuffle channels of ``x`` (5D) into space."""
        r = self.factor
        if x.ndim != 5:
            raise ValueError(f"PixelShuffle3d expects a 5D tensor (N, C, D, H, W), got {x.ndim}D")
        n, c, d, h, w = x.shape
        if c % r**3:
            raise ValueError(f"PixelShuffle3d: channels {c} are not divisible by factor³ = {r**3}")
        c_out = c // r**3
        offset = self.order == "offset"
        if is_channels_last(x):
            # Same shuffle on the (N, D, H, W, C) storage; the result stays channels-last.
            y = x.permute(0, 2, 3, 4, 1)
            if offset:
                y = y.reshape(n, d, h, w, r, r, r, c_out).permute(0, 1, 4, 2, 5, 3, 6, 7)
            else:
                y = y.reshape(n, d, h, w, c_out, r, r, r).permute(0, 1, 5, 2, 6, 3, 7, 4)
            return y.reshape(n, d * r, h * r, w * r, c_out).permute(0, 4, 1, 2, 3)
        if offset:
            x = x.reshape(n, r, r, r, c_out, d, h, w).permute(0, 4, 5, 1, 6, 2, 7, 3)
        else:
            x = x.reshape(n, c_out, r, r, r, d, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(n, c_out, d * r, h * r, w * r)

    def extra_repr(self) -> str:
        """Show the factor and the channel order in the module's repr."""
        return f"factor={self.factor}, order={self.order!r}"


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a tensor of several channels is stored channels-last (``channels_last_3d``)."""
    return x.shape[1] > 1 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last_3d)


def conv3d(c_in: int, c_out: int, kernel: int, *, bias: bool, padding_mode: str) -> nn.Conv3d:
    """A 3D convolution that keeps the spatial size (padding ``kernel // 2``)."""
    return nn.Conv3d(
        c_in, c_out, kernel, padding=kernel // 2, bias=bias, padding_mode=padding_mode
    )


class ResidualBlock3d(nn.Module):
    """Residual block: conv, BatchNorm, PReLU, conv, BatchNorm, plus the skip connection.

    Parameters
    ----------
    features : int
        Channels in and out.
    kernel : int
        Odd kernel size of both convolutions.
    padding_mode : str
        Padding mode of the convolutions (see :class:`torch.nn.Conv3d`).
    """

    def __init__(self, features: int, kernel: int = 3, *, padding_mode: str = "zeros"):
        super().__init__()
        self.conv1 = conv3d(features, features, kernel, bias=False, padding_mode=padding_mode)
        self.bn1 = nn.BatchNorm3d(features)
        self.act = nn.PReLU(features)
        self.conv2 = conv3d(features, features, kernel, bias=False, padding_mode=padding_mode)
        self.bn2 = nn.BatchNorm3d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + F(x)``."""
        y = self.act(self.bn1(self.conv1(x)))
        return x + self.bn2(self.conv2(y))


class UpsampleBlock3d(nn.Module):
    """Upsampling stage ×2: conv ``features → 8 features``, PixelShuffle3d(2), ReLU.

    Parameters
    ----------
    features : int
        Channels in and out.
    kernel : int
        Odd kernel size of the convolution.
    padding_mode : str
        Padding mode of the convolution.
    shuffle_order : {"offset", "channel"}
        Channel order of the shuffle (:class:`PixelShuffle3d`).
    """

    def __init__(self, features: int, kernel: int = 3, *, padding_mode: str = "zeros",
                 shuffle_order: str = "offset"):
        super().__init__()
        self.conv = conv3d(features, 8 * features, kernel, bias=True, padding_mode=padding_mode)
        self.shuffle = PixelShuffle3d(2, order=shuffle_order)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Double every spatial extent of ``x``."""
        return self.act(self.shuffle(self.conv(x)))


def check_kernel(kernel, name: str) -> int:
    """``kernel`` if it is a positive odd integer, else a ValueError naming ``name``."""
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {kernel!r}")
    return kernel
