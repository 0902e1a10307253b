"""Keep freed memory in the process for the next training step (glibc only).

Contract. :func:`keep_freed_memory` raises glibc's ``M_TOP_PAD`` to :data:`TOP_PAD_BYTES`
once per process, so that ``free`` keeps that much memory at the top of the heap instead of
handing it back to the kernel. A training step frees and allocates the same activations of
tens of MiB every time; without the pad their pages go back to the kernel and every step
faults them in again, zero-filled. The setting changes speed and the process's resident
memory (by at most the pad), never a result. Where the C library is not glibc it does
nothing. The measured effect is on the Reproducing page.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["TOP_PAD_BYTES", "keep_freed_memory"]

logger = logging.getLogger(__name__)

#: Bytes glibc keeps at the top of the heap after ``free`` (64 MiB was too little for the
#: 88³ activations of an α = 8 step, so half a GiB).
TOP_PAD_BYTES = 512 << 20
_M_TOP_PAD = -2  # glibc's malloc.h
_done = False


def keep_freed_memory() -> bool:
    """Set glibc's ``M_TOP_PAD`` to :data:`TOP_PAD_BYTES` (once per process).

    Returns
    -------
    bool
        True if the setting is in force (now or from an earlier call), False where the C
        library has no ``mallopt`` (not glibc) or refused it.
    """
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError, TypeError):
        return False
    del gnu_get_libc_version
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _done = bool(mallopt(_M_TOP_PAD, TOP_PAD_BYTES))
    logger.debug("glibc M_TOP_PAD = %d: %s", TOP_PAD_BYTES, "set" if _done else "refused")
    return _done
