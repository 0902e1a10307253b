"""Input validation shared by every module.

Each function checks one kind of argument and raises :class:`ValueError` with a message that
names the argument and the problem, so that bad input never fails deep inside NumPy, SciPy or
torch. They return the validated value in canonical form and never modify their input.
"""

from __future__ import annotations

import numpy as np

ALPHAS = (2, 4, 8)


def as_volume(image, *, name: str = "image") -> np.ndarray:
    """Return ``image`` as a 3D array, or raise if it is not one.

    Parameters
    ----------
    image : array_like
        Candidate 3D image.
    name : str
        Name of the argument, used in the error message.

    Returns
    -------
    numpy.ndarray
        The image as an array (not copied when already one).
    """
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be a 3D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr


def as_binary(image, *, name: str = "image") -> np.ndarray:
    """Return a 3D binary image as ``bool`` (True = solid), or raise if it is not binary.

    Accepts ``bool`` arrays and numeric arrays whose values are all 0 or 1.

    Parameters
    ----------
    image : array_like
        Candidate binary 3D image.
    name : str
        Name of the argument, used in the error message.

    Returns
    -------
    numpy.ndarray
        ``bool`` array; the input itself when it already is one.
    """
    arr = as_volume(image, name=name)
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name} must be a binary image (bool or 0/1), got dtype {arr.dtype}")
    values = np.unique(arr)
    if not np.all(np.isin(values, (0, 1))):
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise ValueError(
            f"{name} must be a binary image with values 0 and 1 (True = solid), "
            f"got values {{{shown}}}; binarise grayscale data first (srlib.io.binarize_otsu)"
        )
    return arr.astype(bool)


def check_two_phases(image: np.ndarray, *, name: str = "image") -> None:
    """Raise if a binary image does not contain both phases."""
    n_solid = int(np.count_nonzero(image))
    if n_solid == 0:
        raise ValueError(f"{name} has no solid voxels (True); both phases are needed")
    if n_solid == image.size:
        raise ValueError(f"{name} has no pore voxels (False); both phases are needed")


def check_phase(image: np.ndarray, phase) -> bool:
    """Return ``phase`` as bool (True/1 = solid, False/0 = pore); raise if absent from ``image``."""
    if isinstance(phase, str):
        lookup = {"solid": True, "pore": False}
        if phase.lower() not in lookup:
            raise ValueError(f"phase must be True/1/'solid' or False/0/'pore', got {phase!r}")
        value = lookup[phase.lower()]
    elif phase in (0, 1) and not isinstance(phase, float):
        value = bool(phase)
    else:
        raise ValueError(f"phase must be True/1/'solid' or False/0/'pore', got {phase!r}")
    present = np.any(image) if value else not np.all(image)
    if not present:
        label = "solid (True)" if value else "pore (False)"
        raise ValueError(f"phase {label} is absent from the image")
    return value


def check_alpha(alpha) -> int:
    """Return the scaling factor as int; raise unless it is 2, 4 or 8."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, np.integer)) or alpha not in ALPHAS:
        raise ValueError(
            f"alpha must be one of {ALPHAS} (the paper's scaling factors), got {alpha!r}"
        )
    return int(alpha)


def check_divisible(shape, alpha: int, *, name: str = "image") -> None:
    """Raise unless every extent of ``shape`` is divisible by ``alpha``."""
    if any(n % alpha for n in shape):
        raise ValueError(
            f"{name} shape {tuple(shape)} is not divisible by alpha={alpha} along every axis; "
            f"crop it to a multiple of {alpha} first"
        )


def check_axis(axis, ndim: int = 3) -> int:
    """Return a valid non-negative axis index; raise if out of range."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an integer in [0, {ndim}), got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a {ndim}D image")
    return int(axis) % ndim


def positive_int(value, name: str) -> int:
    """Return ``value`` as int; raise unless it is a positive integer.

    Booleans, floats (even integral ones such as ``2.0``), strings and values below 1 are
    refused, so that a float size is never silently truncated.

    Parameters
    ----------
    value : object
        Candidate value.
    name : str
        Name of the argument, used in the error message.

    Returns
    -------
    int
        The value as a Python ``int``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(value, name: str) -> float:
    """Return ``value`` as float; raise unless it is a finite number greater than 0."""
    numeric = (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    out = float(value)
    if not (np.isfinite(out) and out > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return out


def nonnegative_float(value, name: str) -> float:
    """Return ``value`` as float; raise unless it is a finite number ``>= 0``.

    Parameters
    ----------
    value : object
        Candidate value (bools and strings are refused).
    name : str
        Name of the argument, used in the error message.

    Returns
    -------
    float
        The value as a Python ``float``.
    """
    numeric = (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, numeric):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    out = float(value)
    if not (np.isfinite(out) and out >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def as_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``dtype`` as a :class:`numpy.dtype`; raise if NumPy does not know it.

    Parameters
    ----------
    dtype : object
        Anything :class:`numpy.dtype` accepts (``"uint8"``, ``np.float32`` ...).
    name : str
        Name of the argument, used in the error message.

    Returns
    -------
    numpy.dtype
        The dtype.
    """
    try:
        return np.dtype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {dtype!r} is not a NumPy data type "
                         "(e.g. 'uint8', 'float32')") from None


def check_choice(value, choices, name: str):
    """Return ``value``; raise unless it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
