r"""Networks that output diffusion fields: their pairs, inputs and initialisation.

Contract (the paper's future work, section 4; the chapter "The paper's future work"). A
*field network* is an :class:`~srlib.network.SRResNet3d` with three output channels: the
morphology logit (channel 0, as every network of the study) and the high-resolution
diffusion channels of Eqs. (7)-(8), ``[pore, solid]`` (channels 1-2, raw values, clipped to
[0, 1] where they are read). Two inputs, the two experiments of the paper's outlook:

* ``"diffu"`` (experiment A): the input of :math:`N^{diffu}` (Eq. (13): the binary LR image
  and its two diffusion channels), initialised from the trained :math:`N^{diffu}`;
* ``"position"`` (experiment B, learning to solve): the binary LR image and the *position
  channel* ``(j + 1/2) / n`` along the transport axis (:class:`Position`), initialised from
  the trained :math:`N^{bin}`. The solution depends on the whole domain, which a cutout does
  not show; the position channel tells the network where in the domain a cutout lies (hence
  the boundary values it must meet) and, through its slope ``1/n``, the domain's length.

:func:`field_pairs` builds the pairs from a database whose HR channels are stored
(:func:`srlib.fields.build_hr_channels`); :func:`widen_model` makes the field network from a
trained one, copying every coinciding layer, the first input channels of the head and the
morphology channel of the tail, and starting the new channels neutral: zero weights, so the
fields start as the network's fixed upsampling of its input (``field_skip`` of
:class:`~srlib.network.SRResNet3d`: the LR solution for A, the linear profile x/L for B), which
the network learns to correct. The training loss (:func:`srlib.training.train` with
``field_weight``) is the binary cross-entropy of the morphology plus ``field_weight`` times the
squared error of the fields on their phase; the cutouts are augmented only by the 8 symmetries
that keep the transport axis and its direction (:func:`~srlib.training.symmetry.axis_symmetries`:
reversing the axis maps u to 1 - u except on clusters that touch neither face, which a
cutout cannot tell).
"""

from __future__ import annotations

import numpy as np
import torch

from srlib.network import SRResNet3d, transfer_weights
from srlib.training.cutouts import ChannelStack, Pair, is_lazy, pairs_from_database
from srlib.training.models import make_model

__all__ = ["FIELD_INPUTS", "FIELD_OUTPUTS", "Position", "field_input", "field_pairs",
           "widen_model"]

#: The inputs of the two experiments: "diffu" (A) and "position" (B).
FIELD_INPUTS = ("diffu", "position")
#: Output channels of a field network: the morphology logit, the pore and the solid field.
FIELD_OUTPUTS = 3


class Position:
    """The position channel: ``(j + 1/2) / n`` along ``axis`` of a ``shape`` grid, lazily.

    An array-like (``shape``, ``dtype`` float32, basic slicing) computed for the region read,
    so a cutout of a large volume never builds the whole channel.
    """

    def __init__(self, shape, axis: int = 0):
        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be 3 positive extents, got {shape}")
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
        self.axis = axis
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        ranges = [np.arange(n)[k] for n, k in zip(self.shape, key, strict=True)]
        values = ((ranges[self.axis] + 0.5) / self.shape[self.axis]).astype(np.float32)
        shape = [1, 1, 1]
        shape[self.axis] = values.size
        out = np.broadcast_to(values.reshape(shape), tuple(r.size for r in ranges))
        return np.ascontiguousarray(out)

    def __array__(self, dtype=None, copy=None):
        out = self[:, :, :]
        return out if dtype is None else out.astype(dtype)


def _check_inputs(inputs: str) -> str:
    if inputs not in FIELD_INPUTS:
        raise ValueError(f"inputs must be one of {FIELD_INPUTS}, got {inputs!r}")
    return inputs


def field_input(lr, inputs: str, *, channels=None, axis: int = 0) -> np.ndarray:
    """The input of a field network for one LR image, ``(C, *lr.shape)`` float32.

    Parameters
    ----------
    lr : array_like
        Binary LR image.
    inputs : {"diffu", "position"}
        Experiment A (with ``channels``, the LR diffusion channels ``(2, *lr.shape)``) or B.
    channels : array_like, optional
        Needed for "diffu".
    axis : int
        Transport axis of the position channel.
    """
    inputs = _check_inputs(inputs)
    x = np.asarray(lr, dtype=np.float32)[None]
    if inputs == "position":
        return np.concatenate([x, np.asarray(Position(x.shape[1:], axis))[None]])
    if channels is None:
        raise ValueError("inputs='diffu' needs the LR diffusion channels")
    ch = np.asarray(channels, dtype=np.float32)
    if ch.shape != (2, *x.shape[1:]):
        raise ValueError(f"channels must have shape {(2, *x.shape[1:])}, got {ch.shape}")
    return np.concatenate([x, ch])


def field_pairs(db, role: str, alpha: int, inputs: str, *, connectivity: str | None = None
                ) -> list[Pair]:
    """Pairs of one role with the HR diffusion channels as field targets.

    The pairs of :func:`~srlib.training.cutouts.pairs_from_database` (with the LR diffusion
    channels for "diffu", with the :class:`Position` channel for "position"), each given
    the stored HR channels of its realization (:func:`srlib.fields.hr_channels`) as
    ``fields``, in memory where the pairs are, else lazily.

    Raises
    ------
    ValueError
        If the HR channels are missing or were computed with another connectivity.
    """
    from srlib.fields import hr_channels

    inputs = _check_inputs(inputs)
    base = pairs_from_database(db, role, alpha, diffu=inputs == "diffu",
                               connectivity=connectivity)
    keys = [(s, i) for s in db.scenario_names for i in db.indices(role)]
    out = []
    for (s, i), pair in zip(keys, base, strict=True):
        fields = hr_channels(db, s, i, connectivity=connectivity, axis=0, lazy=pair.lazy)
        inp = pair.input
        if inputs == "position":
            pos = Position(pair.lr_shape, 0)
            inp = (ChannelStack([inp, pos]) if is_lazy(inp)
                   else np.concatenate([inp, np.asarray(pos)[None]]))
        out.append(Pair(inp, pair.target, fields))
    return out


def widen_model(src: SRResNet3d, inputs: str, *, seed: int = 0) -> SRResNet3d:
    """The field network of experiment ``inputs``, initialised from a trained network.

    ``src`` is :math:`N^{diffu}` for "diffu" (same input) or :math:`N^{bin}` for
    "position" (the head gains the position channel, its weights starting at 0). Every layer
    that coincides is copied; the tail's morphology channel is ``src``'s tail, its two field
    channels start with zero weights and bias, so the widened network's morphology is
    exactly ``src``'s and its fields start at its ``field_skip`` upsampling of the input.
    ``src`` is not modified.
    """
    inputs = _check_inputs(inputs)
    if not isinstance(src, SRResNet3d):
        raise ValueError(f"src must be an SRResNet3d, got {type(src).__name__}")
    want = 3 if inputs == "diffu" else 1
    if src.in_channels != want or src.out_channels != 1:
        raise ValueError(f"inputs={inputs!r} widens a network with {want} input channel(s) and "
                         f"1 output (N^{'diffu' if want == 3 else 'bin'}), got in_channels="
                         f"{src.in_channels}, out_channels={src.out_channels}")
    config = dict(src.config)
    in_channels = config.pop("in_channels") + (1 if inputs == "position" else 0)
    dst = make_model(in_channels, config.pop("alpha"), seed=seed, out_channels=FIELD_OUTPUTS,
                     field_skip=inputs, **config)
    transfer_weights(src, dst)
    with torch.no_grad():
        head, src_head = dst.head[0].weight, src.head[0].weight
        head.zero_()
        head[:, : src.in_channels] = src_head
        dst.tail.weight.zero_()
        dst.tail.weight[:1] = src.tail.weight
        dst.tail.bias.zero_()
        dst.tail.bias[:1] = src.tail.bias
    return dst
