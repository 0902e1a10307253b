"""The stochastic 3D model: excursion sets of a χ² random field (paper, section 2.1.2).

Contract. ``Y = X₁² + X₂²`` where ``X₁, X₂`` are independent, stationary, unit-variance Gaussian
random fields with the exponential covariance ``ρ(h) = exp(-γ² |h|)`` (``h`` in voxels). The
solid phase is the excursion set ``Ξ = {Y ≥ ν}``; since ``Y/2`` is standard exponential, the solid
volume fraction is ``exp(-ν/2)``. A model is a :class:`ModelParams` ``(nu, gamma)``;
:func:`sample` draws a realization as a ``bool`` image (True = solid), :func:`two_point_probability`
gives the model's two-point probability in closed form, and :func:`calibrate` fits ``(ν, γ)`` to a
binary image (ν from the solid fraction, γ by least squares on the empirical two-point
probabilities along the three axes).

Sampling uses circulant embedding: both Gaussian fields come from one complex FFT of complex
white noise filtered by the square root of the covariance's spectrum on a periodic grid padded
by ``pad_lengths`` correlation lengths (``1/γ²`` voxels), but never by more than the window's own
extent. Correlations between points of the window are then exact up to ``exp(-pad_lengths)``
(3.4e-4 at the default 8), or exact where the pad is the window's extent; negative eigenvalues of
the circulant embedding, if any, are clipped to zero (logged at DEBUG level).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import optimize, stats

from srlib._checks import (
    as_binary,
    check_axis,
    check_two_phases,
    nonnegative_float,
    positive_int,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ModelParams",
    "calibrate",
    "calibration_curves",
    "empirical_two_point_probability",
    "sample",
    "solid_fraction",
    "two_point_probability",
]


@dataclass(frozen=True)
class ModelParams:
    """Parameters of the χ² excursion-set model.

    Parameters
    ----------
    nu : float
        Excursion level ν > 0; the solid fraction is ``exp(-nu / 2)``.
    gamma : float
        Covariance parameter γ > 0 of the Gaussian fields, ``ρ(h) = exp(-gamma**2 * h)`` with
        ``h`` in voxels; ``1 / gamma**2`` is the correlation length in voxels.
    """

    nu: float
    gamma: float

    def __post_init__(self):
        for name in ("nu", "gamma"):
            value = getattr(self, name)
            real = isinstance(value, (int, float, np.floating, np.integer))
            if not real or isinstance(value, bool):
                raise ValueError(f"{name} must be a real number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        object.__setattr__(self, "nu", float(self.nu))
        object.__setattr__(self, "gamma", float(self.gamma))
        gamma2 = self.gamma * self.gamma  # inf or 0 where γ² leaves the float range
        if not (math.isfinite(gamma2) and gamma2 > 0 and math.isfinite(1.0 / gamma2)):
            raise ValueError(f"gamma={self.gamma!r} is out of range: the correlation length "
                             "1/gamma**2 must be a finite positive number of voxels")

    @property
    def correlation_length(self) -> float:
        """Correlation length ``1/γ²`` of the Gaussian fields, in voxels."""
        return 1.0 / self.gamma**2

    @property
    def solid_fraction(self) -> float:
        """Model solid volume fraction ``exp(-ν/2)``."""
        return solid_fraction(self.nu)

    @classmethod
    def from_solid_fraction(cls, fraction: float, *, gamma: float) -> ModelParams:
        """Build the parameters whose solid fraction is ``fraction``: ``ν = -2 ln(fraction)``."""
        if not 0 < fraction < 1:
            raise ValueError(f"solid fraction must lie strictly between 0 and 1, got {fraction!r}")
        return cls(nu=-2.0 * math.log(fraction), gamma=gamma)


def solid_fraction(nu: float) -> float:
    """Solid volume fraction of the model, ``P(Y ≥ ν) = exp(-ν/2)``.

    Parameters
    ----------
    nu : float
        Excursion level ν > 0.

    Returns
    -------
    float
        ``exp(-nu / 2)``.
    """
    if not nu > 0:
        raise ValueError(f"nu must be > 0, got {nu!r}")
    return math.exp(-nu / 2.0)


def _wrapped_distance_sq(n: int) -> np.ndarray:
    """Squared periodic distances ``min(k, n-k)²`` for ``k = 0..n-1`` as float32."""
    k = np.arange(n, dtype=np.float32)
    return np.minimum(k, n - k) ** 2


def _sqrt_spectrum_half(grid: tuple[int, int, int], gamma2: float) -> np.ndarray:
    """Square root of the covariance spectrum on the periodic grid, last axis halved (rfft layout).

    The periodic covariance is even in every coordinate, so its spectrum is real, and the full
    spectrum follows from the half one by ``S[..., k] = S[..., n - k]``.
    """
    nz, ny, nx = grid
    r2 = _wrapped_distance_sq(nz)[:, None, None] + _wrapped_distance_sq(ny)[None, :, None]
    cov = np.empty(grid, dtype=np.float32)
    np.add(r2, _wrapped_distance_sq(nx)[None, None, :], out=cov)
    del r2
    np.sqrt(cov, out=cov)
    cov *= -gamma2
    np.exp(cov, out=cov)
    spec = scipy.fft.rfftn(cov, workers=-1)
    del cov
    spec_real = spec.real
    del spec
    negative = spec_real < 0
    if negative.any():
        logger.debug(
            "circulant embedding: %d negative eigenvalues clipped (min %.3g, max %.3g)",
            int(negative.sum()),
            float(spec_real.min()),
            float(spec_real.max()),
        )
    np.maximum(spec_real, 0, out=spec_real)
    # Full-spectrum mean of the clipped S (last axis: interior frequencies appear twice) is the
    # realised variance; dividing by it makes the marginals exactly N(0, 1), so the solid fraction
    # stays exp(-nu/2) even where clipping perturbs the correlations.
    weights = np.full(spec_real.shape[2], 2.0)
    weights[0] = 1.0
    if nx % 2 == 0:
        weights[-1] = 1.0
    variance = float(np.einsum("ijk,k->", spec_real, weights, dtype=np.float64)) / (nz * ny * nx)
    # The FFT normalisation: X = fft(sqrt(S / N) * xi) has covariance ifft(S) = cov.
    spec_real *= 1.0 / (nz * ny * nx * variance)
    np.sqrt(spec_real, out=spec_real)
    return spec_real.astype(np.float32, copy=False)


def _padded_grid(shape: tuple[int, int, int], params: ModelParams, pad_lengths: float):
    """Periodic grid: each extent padded by ``pad_lengths`` correlation lengths, at most by itself.

    With a pad of ``n`` the periodic distance between any two window points equals their true
    distance, so a longer pad would add nothing.
    """
    length = pad_lengths * params.correlation_length  # may be huge: compare before rounding
    return tuple(scipy.fft.next_fast_len(n + (n if length >= n else math.ceil(length)))
                 for n in shape)


def gaussian_fields(shape, params: ModelParams, *, seed=None, pad_lengths: float = 8.0):
    """Draw two independent unit-variance Gaussian fields with covariance ``exp(-γ² h)``.

    Parameters
    ----------
    shape : tuple of int
        Shape ``(nz, ny, nx)`` of the window.
    params : ModelParams
        Model parameters (only ``gamma`` is used).
    seed : int or numpy.random.Generator, optional
        Seed of the random numbers.
    pad_lengths : float
        Padding of the periodic grid in correlation lengths ``1/γ²``.

    Returns
    -------
    numpy.ndarray
        ``complex64`` array of the window's shape: real and imaginary parts are the two fields.
    """
    shape = _check_shape(shape)
    _check_params(params)
    pad_lengths = nonnegative_float(pad_lengths, "pad_lengths")
    rng = np.random.default_rng(seed)
    grid = _padded_grid(shape, params, pad_lengths)
    sqrt_half = _sqrt_spectrum_half(grid, params.gamma**2)
    nx = grid[2]
    n_half = sqrt_half.shape[2]
    field = np.empty(grid, dtype=np.complex64)
    # Complex standard normal noise: real and imaginary parts i.i.d. N(0, 1).
    noise = field.view(np.float32)
    for z in range(grid[0]):  # slab-wise keeps float32 temporaries small
        rng.standard_normal(out=noise[z], dtype=np.float32)
    # The half spectrum covers frequencies 0..n_half-1 of the last axis; the others follow by
    # the reflection k -> nx - k.
    mirror = nx - np.arange(n_half, nx)
    for z in range(grid[0]):
        field[z, :, :n_half] *= sqrt_half[z]
        field[z, :, n_half:] *= sqrt_half[z][:, mirror]
    del sqrt_half
    field = scipy.fft.fftn(field, workers=-1, overwrite_x=True)
    return field[: shape[0], : shape[1], : shape[2]]


def sample(shape, params: ModelParams, *, seed=None, pad_lengths: float = 8.0) -> np.ndarray:
    """Draw a realization of the excursion set ``{Y ≥ ν}`` of the χ² field.

    Parameters
    ----------
    shape : int or tuple of int
        Shape ``(nz, ny, nx)`` of the image (an int gives a cube).
    params : ModelParams
        Model parameters ``(nu, gamma)``.
    seed : int or numpy.random.Generator, optional
        Seed; the same seed gives the same image.
    pad_lengths : float
        Padding of the periodic FFT grid in correlation lengths ``1/γ²``; correlations inside
        the window are exact up to ``exp(-pad_lengths)``.

    Returns
    -------
    numpy.ndarray
        ``bool`` image, True = solid.

    Raises
    ------
    ValueError
        If ``shape`` is not three positive integers or ``params`` is not a :class:`ModelParams`.
    """
    _check_params(params)
    field = gaussian_fields(shape, params, seed=seed, pad_lengths=pad_lengths)
    out = np.empty(field.shape, dtype=bool)
    for z in range(field.shape[0]):
        f = field[z]
        y = f.real**2
        y += f.imag**2
        np.greater_equal(y, params.nu, out=out[z])
    return out


def _check_params(params) -> None:
    if not isinstance(params, ModelParams):
        raise ValueError(f"params must be a ModelParams(nu, gamma), got {params!r}")


def _check_shape(shape) -> tuple[int, int, int]:
    """Shape as 3 positive ints; floats and bools are refused, never truncated."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,) * 3
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"shape must be an int or a tuple of 3 positive ints, got {shape!r}")
    return tuple(positive_int(n, "shape") for n in shape)


# Gauss–Laguerre nodes for ∫_0^∞ e^{-t} f(t) dt; f is smooth and bounded here.
_LAGUERRE_T, _LAGUERRE_W = np.polynomial.laguerre.laggauss(80)


def two_point_probability(h, params: ModelParams):
    """Model two-point probability ``P(x ∈ Ξ, x + h ∈ Ξ)`` for a lag of ``|h|`` voxels.

    With ``r = ρ(h)²`` and ``a = ν/2``, ``U = Y(x)/2`` and ``V = Y(x+h)/2`` follow Kibble's
    bivariate exponential distribution with correlation ``r``, and::

        P(Y(x) ≥ ν, Y(x+h) ≥ ν) = ∫_a^∞ e^{-u} · ncx2.sf(2a/(1-r), df=2, nc=2ru/(1-r)) du

    evaluated by Gauss–Laguerre quadrature (``u = a + t``).

    Parameters
    ----------
    h : float or array_like
        Lag length(s) in voxels, ``>= 0``.
    params : ModelParams
        Model parameters.

    Returns
    -------
    float or numpy.ndarray
        The probability, of the shape of ``h``; ``exp(-ν/2)`` at ``h = 0`` and ``exp(-ν)`` as
        ``h → ∞``.
    """
    _check_params(params)
    try:
        h_arr = np.asarray(h, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"h must be a number or an array of numbers, got {h!r}") from None
    if np.any(h_arr < 0) or not np.all(np.isfinite(h_arr)):
        raise ValueError("lags h must be finite and >= 0")
    a = params.nu / 2.0
    r = np.exp(-2.0 * params.gamma**2 * h_arr)  # ρ(h)²
    out = np.empty_like(r)
    one = r >= 1.0 - 1e-12
    zero = r <= 1e-300
    mid = ~(one | zero)
    out[one] = math.exp(-a)
    out[zero] = math.exp(-2 * a)
    if mid.any():
        rm = r[mid][:, None]
        u = a + _LAGUERRE_T[None, :]
        cond = stats.ncx2.sf(2 * a / (1 - rm), df=2, nc=2 * rm * u / (1 - rm))
        out[mid] = math.exp(-a) * (cond @ _LAGUERRE_W)
    return float(out) if out.ndim == 0 else out


def empirical_two_point_probability(image, lags, *, axis: int) -> np.ndarray:
    """Empirical two-point probability of the solid phase along one axis.

    ``mean(I(x) & I(x + h e_axis))`` over all pairs inside the window, for each lag ``h``.
    ``porespy.metrics.two_point_correlation`` estimates the same function radially, binned by
    distance from a periodic FFT; the calibration fits the model along the three axes at exact
    integer lags without wrap-around, which this direct count gives.

    Parameters
    ----------
    image : array_like
        Binary 3D image (True = solid).
    lags : sequence of int
        Lags in voxels, each ``1 <= h < image.shape[axis]``.
    axis : int
        Axis along which pairs are taken.

    Returns
    -------
    numpy.ndarray
        One probability per lag.
    """
    img = as_binary(image)
    axis = check_axis(axis)
    n = img.shape[axis]
    try:
        values = np.asarray(lags).ravel()
    except (TypeError, ValueError):
        values = None
    if values is None or not (values.dtype.kind in "iu" or (
            values.dtype.kind == "f" and np.all(values == np.round(values)))):
        raise ValueError(f"lags must be integers, got {lags!r}")
    lags = [int(h) for h in values]
    bad = [h for h in lags if h < 0 or h >= n]
    if bad:
        shown = ", ".join(str(h) for h in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise ValueError(f"lags must lie in [0, {n}) for axis {axis} of extent {n}; "
                         f"{len(bad)} of {len(lags)} do not ({shown})")
    moved = np.moveaxis(img, axis, 0)
    return np.array([np.count_nonzero(moved[h:] & moved[: n - h]) / moved[h:].size for h in lags])


def calibrate(image, *, max_lag: int | None = None) -> ModelParams:
    """Fit the model parameters ``(ν, γ)`` to a binary image.

    ν is set from the solid fraction ``p`` (``ν = -2 ln p``); γ minimises the squared difference
    between :func:`two_point_probability` and the empirical two-point probabilities along the
    three axes for lags ``1..max_lag``.

    Parameters
    ----------
    image : array_like
        Binary 3D image (True = solid) containing both phases.
    max_lag : int, optional
        Largest lag used, in voxels, ``1 <= max_lag < n`` for the smallest extent ``n``;
        default ``max(1, min(30, n // 3))``.

    Returns
    -------
    ModelParams
        The fitted parameters.

    Raises
    ------
    ValueError
        If the image is not binary, not 3D, contains only one phase, or ``max_lag`` is not
        an integer in ``[1, n)``.
    """
    img = as_binary(image)
    check_two_phases(img)
    smallest = min(img.shape)
    if smallest < 2:
        raise ValueError(f"image of shape {img.shape} needs at least 2 voxels along every axis "
                         "to measure two-point probabilities")
    if max_lag is None:
        max_lag = max(1, min(30, smallest // 3))
    max_lag = positive_int(max_lag, "max_lag")
    if max_lag >= smallest:
        raise ValueError(f"max_lag={max_lag} must be smaller than the image's smallest extent "
                         f"{smallest} (shape {img.shape})")
    p = float(np.count_nonzero(img)) / img.size
    nu = -2.0 * math.log(p)
    lags = np.arange(1, max_lag + 1)
    emp = np.concatenate([empirical_two_point_probability(img, lags, axis=ax) for ax in range(3)])
    h_all = np.tile(lags, 3).astype(float)

    def loss(log_gamma):
        model = two_point_probability(h_all, ModelParams(nu, math.exp(log_gamma)))
        return float(np.sum((model - emp) ** 2))

    # γ² between 1e-4 and 10 per voxel: correlation lengths from 0.1 to 10⁴ voxels.
    res = optimize.minimize_scalar(loss, bounds=(0.5 * math.log(1e-4), 0.5 * math.log(10.0)),
                                   method="bounded", options={"xatol": 1e-6})
    gamma = math.exp(res.x)
    logger.info("calibrated nu=%.4f gamma=%.4f (1/gamma^2=%.2f voxels), residual %.3g",
                nu, gamma, 1 / gamma**2, res.fun)
    return ModelParams(nu=nu, gamma=gamma)



def calibration_curves(image, params: ModelParams, *, max_lag: int = 60) -> dict:
    """Empirical two-point probabilities of an image beside the model's, for plotting a fit.

    Parameters
    ----------
    image : array_like
        Binary 3D image (True = solid).
    params : ModelParams
        Fitted (or any) model parameters.
    max_lag : int
        Largest lag, capped at the smallest extent minus one.

    Returns
    -------
    dict
        ``lags`` (1..max_lag), ``empirical`` (3 x len(lags), one row per axis), ``model_lags``
        (fine grid from 0), ``model`` (the model's curve on it) and ``params`` (a label).
    """
    img = as_binary(image)
    max_lag = min(positive_int(max_lag, "max_lag"), min(img.shape) - 1)
    if max_lag < 1:
        raise ValueError(f"image of shape {img.shape} is too small for two-point probabilities")
    lags = np.arange(1, max_lag + 1)
    fine = np.linspace(0, max_lag, 200)
    return {
        "lags": lags,
        "empirical": np.array([empirical_two_point_probability(img, lags, axis=a)
                               for a in range(3)]),
        "model_lags": fine,
        "model": two_point_probability(fine, params),
        "params": f"ν = {params.nu:.3f}, 1/γ² = {params.correlation_length:.1f}",
    }
