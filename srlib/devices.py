"""Where the networks compute, and in which arithmetic.

Contract. :func:`resolve_device` picks the torch device (CUDA when available, else the CPU);
:func:`native_bfloat16` says whether a device computes bfloat16 natively, so that autocast
to it pays, and :func:`bfloat16_switch` reads the ``SRLIB_BFLOAT16`` switch that turns
bfloat16 off everywhere (to build the book as a CPU without it would).
"""

from __future__ import annotations

import contextlib
import logging
import os

import torch

__all__ = ["BFLOAT16_ENV", "bfloat16_switch", "native_bfloat16", "resolve_device",
           "torch_threads"]

logger = logging.getLogger(__name__)


#: Environment variable that turns bfloat16 off on every device ("off"; default "auto").
BFLOAT16_ENV = "SRLIB_BFLOAT16"


def bfloat16_switch() -> bool:
    """Whether bfloat16 may be used at all: False when ``SRLIB_BFLOAT16`` is ``off``.

    The switch makes a machine with native bfloat16 compute as one without it (float32
    throughout), e.g. to build the book as an AVX2-only CPU would, or to measure how far the
    two arithmetic paths give different results.

    Returns
    -------
    bool
        True for ``auto`` (or the variable unset), False for ``off``.

    Raises
    ------
    ValueError
        For any other value, naming the variable.
    """
    value = os.environ.get(BFLOAT16_ENV, "auto").strip().lower()
    if value not in ("auto", "off"):
        raise ValueError(f"{BFLOAT16_ENV} must be 'auto' or 'off', got {value!r}")
    return value == "auto"


def native_bfloat16(device) -> bool:
    """True if ``device`` computes in bfloat16 natively, so that autocast to it pays.

    CUDA devices of compute capability 8.0 (Ampere) or newer; CPUs with AVX512-BF16 or AMX
    tiles, where oneDNN runs bfloat16 convolutions natively. Elsewhere bfloat16 is emulated
    and slower than float32. Always False when ``SRLIB_BFLOAT16=off`` (:func:`bfloat16_switch`).

    Parameters
    ----------
    device : str or torch.device
        The device.

    Returns
    -------
    bool
        Whether bfloat16 autocast is worth enabling there.
    """
    dev = torch.device(device)
    if not bfloat16_switch():
        return False
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(dev) >= (8, 0)
    if dev.type == "cpu":
        checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None),
                  getattr(torch.cpu, "_is_amx_tile_supported", None))
        return any(check is not None and check() for check in checks)
    return False


def resolve_device(device=None) -> torch.device:
    """Return the torch device to compute on: CUDA when available, else the CPU.

    Parameters
    ----------
    device : str, torch.device or None
        ``None`` or ``"auto"``: CUDA when available, else CPU. ``"cuda"`` (or ``"cuda:k"``)
        falls back to the CPU with a logged warning when CUDA is not available. Anything else
        is passed to :class:`torch.device`.

    Returns
    -------
    torch.device
        The device to use.

    Raises
    ------
    ValueError
        If ``device`` is not a valid device name.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be None, 'auto', 'cpu' or 'cuda', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        logger.warning("CUDA was requested but is not available; computing on the CPU instead")
        return torch.device("cpu")
    return dev


@contextlib.contextmanager
def torch_threads(num_threads: int | None):
    """Run the body with torch on ``num_threads`` CPU threads (None: unchanged), then restore.

    Raises
    ------
    ValueError
        If ``num_threads`` is not None or a positive integer.
    """
    from srlib._checks import positive_int

    old = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(positive_int(num_threads, "num_threads"))
    try:
        yield
    finally:
        torch.set_num_threads(old)
