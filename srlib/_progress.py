"""Progress bars of long work, in one place.

Contract. :func:`progress_bar` is :class:`tqdm.tqdm` with one addition: where the environment
variable ``SRLIB_PROGRESS`` is ``terminal``, the bar is written to the process's original
standard error (``sys.__stderr__``) instead of ``sys.stderr``. In a Jupyter kernel that is
the terminal of whatever started the kernel, so a book build (``make book`` sets it) shows
how far training has come while the rendered pages carry no progress logs. Unset or
``auto``: tqdm's default (the notebook's output in a kernel, the terminal elsewhere).
"""

from __future__ import annotations

import os
import sys

from tqdm import tqdm

__all__ = ["PROGRESS_ENV", "progress_bar"]

#: Environment variable choosing where progress bars go: "auto" (default) or "terminal".
PROGRESS_ENV = "SRLIB_PROGRESS"


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """A tqdm progress bar, sent to the terminal when ``SRLIB_PROGRESS=terminal``.

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
    if where not in ("auto", "terminal"):
        raise ValueError(f"{PROGRESS_ENV} must be 'auto' or 'terminal', got {where!r}")
    if where == "terminal" and sys.__stderr__ is not None and "file" not in kwargs:
        kwargs["file"] = sys.__stderr__
    return tqdm(iterable, **kwargs)
