"""Progress bars of long work, in one place.

Contract. :func:`progress_bar` is :class:`tqdm.tqdm` with one addition: where the environment
variable ``SRLIB_PROGRESS`` is ``terminal``, the bar is written to the file descriptor behind
``sys.stderr`` (its ``fileno()``), not through ``sys.stderr``. In a Jupyter kernel
``sys.stderr`` sends text to the notebook, and ``fileno()`` is the kernel's copy of its
original standard error: the terminal (or log) of whatever started the kernel. So a book
build (``make book`` sets it) shows how far training has come while the rendered pages carry
no progress logs. Where there is no such descriptor the bar is not shown. Unset or ``auto``:
the same inside a Jupyter kernel (a notebook run by papermill or a book build), tqdm's
default elsewhere; ``notebook`` puts the bar in the notebook's output.
"""

from __future__ import annotations

import io
import os
import sys

from tqdm import tqdm

__all__ = ["PROGRESS_ENV", "progress_bar"]

#: Environment variable choosing where progress bars go: "auto" (default), "terminal" or
#: "notebook".
PROGRESS_ENV = "SRLIB_PROGRESS"

_terminals: dict = {}  # fd behind sys.stderr -> a text stream on a duplicate of it


def _terminal():
    """A text stream on the descriptor behind ``sys.stderr``, or None where it has none."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    if fd not in _terminals:
        try:
            _terminals[fd] = os.fdopen(os.dup(fd), "w", buffering=1)
        except OSError:
            return None
    return _terminals[fd]


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """A tqdm progress bar, sent to the terminal in a kernel or when ``SRLIB_PROGRESS=terminal``.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over, as for :class:`tqdm.tqdm`.
    **kwargs
        Passed to :class:`tqdm.tqdm` (``desc``, ``total``, ``disable``, ...).

    Returns
    -------
    tqdm.tqdm
        The bar.

    Raises
    ------
    ValueError
        If ``SRLIB_PROGRESS`` is neither "auto" nor "terminal".
    """
    where = os.environ.get(PROGRESS_ENV, "auto").strip().lower()
    if where not in ("auto", "terminal", "notebook"):
        raise ValueError(f"{PROGRESS_ENV} must be 'auto', 'terminal' or 'notebook', "
                         f"got {where!r}")
    if where == "auto" and "ipykernel" in sys.modules:
        where = "terminal"
    if where == "terminal" and "file" not in kwargs:
        terminal = _terminal()
        if terminal is None:
            kwargs["disable"] = True
        else:
            kwargs["file"] = terminal
    return tqdm(iterable, **kwargs)
