"""Bad inputs of issue 12 (and more of the same kinds): each raises ValueError naming the cause.

One row per bad input: a call, the exception type and a fragment of its message. The promise
(README, "What srlib promises"): bad input raises ``ValueError`` naming the argument, never an
IndexError, KeyError, ZeroDivisionError or a result computed from a silently altered input.
"""

import math

import numpy as np
import pytest

from srlib import io, metrics, resample, stochastic

P = stochastic.ModelParams(nu=0.7, gamma=0.5)
BIN = np.zeros((8, 8, 8), dtype=bool)
BIN[:4] = True


def _raw(tmp_path):
    path = tmp_path / "v.raw"
    np.zeros(8, np.uint8).tofile(path)
    return path


ROWS = [
    # stochastic: parameters, shapes, pads, lags
    ("empirical_axis_5", lambda t: stochastic.empirical_two_point_probability(BIN, [1], axis=5),
     ValueError, "axis 5 is out of range"),
    ("empirical_axis_float", lambda t: stochastic.empirical_two_point_probability(
        BIN, [1], axis=1.5), ValueError, "axis must be an integer"),
    ("empirical_lags_too_long", lambda t: stochastic.empirical_two_point_probability(
        BIN, range(1000), axis=0), ValueError, "992 of 1000 do not"),
    ("empirical_lags_strings", lambda t: stochastic.empirical_two_point_probability(
        BIN, ["a"], axis=0), ValueError, "lags must be integers"),
    ("two_point_params_none", lambda t: stochastic.two_point_probability(1, None),
     ValueError, "params must be a ModelParams"),
    ("two_point_h_string", lambda t: stochastic.two_point_probability("x", P),
     ValueError, "h must be a number"),
    ("two_point_h_negative", lambda t: stochastic.two_point_probability(-1, P),
     ValueError, ">= 0"),
    ("gamma_tiny", lambda t: stochastic.sample(8, stochastic.ModelParams(0.7, 1e-200)),
     ValueError, "gamma=1e-200 is out of range"),
    ("gamma_huge", lambda t: stochastic.sample(8, stochastic.ModelParams(0.7, 1e200)),
     ValueError, "gamma=1e+200 is out of range"),
    ("gamma_nan", lambda t: stochastic.ModelParams(0.7, math.nan), ValueError, "gamma"),
    ("nu_string", lambda t: stochastic.ModelParams("1", 0.5), ValueError, "nu must be a real"),
    ("pad_negative", lambda t: stochastic.sample(16, P, pad_lengths=-1),
     ValueError, "pad_lengths must be a finite number >= 0"),
    ("pad_inf", lambda t: stochastic.sample(16, P, pad_lengths=math.inf),
     ValueError, "pad_lengths"),
    ("pad_nan", lambda t: stochastic.sample(16, P, pad_lengths=math.nan),
     ValueError, "pad_lengths"),
    ("pad_string", lambda t: stochastic.sample(16, P, pad_lengths="8"),
     ValueError, "pad_lengths"),
    ("shape_float", lambda t: stochastic.sample(16.5, P), ValueError, "shape"),
    ("shape_float_integral", lambda t: stochastic.sample((8.0, 8, 8), P),
     ValueError, "shape must be a positive integer"),
    ("shape_bool", lambda t: stochastic.sample(True, P), ValueError, "shape"),
    ("shape_bool_tuple", lambda t: stochastic.sample((True, 8, 8), P), ValueError, "shape"),
    ("shape_two", lambda t: stochastic.sample((8, 8), P), ValueError, "3 positive ints"),
    ("shape_zero", lambda t: stochastic.sample((0, 8, 8), P), ValueError, "positive integer"),
    ("sample_params_tuple", lambda t: stochastic.sample(8, (0.7, 0.5)),
     ValueError, "params must be a ModelParams"),
    ("calibrate_max_lag_0", lambda t: stochastic.calibrate(BIN, max_lag=0),
     ValueError, "max_lag must be a positive integer"),
    ("calibrate_max_lag_negative", lambda t: stochastic.calibrate(BIN, max_lag=-3),
     ValueError, "max_lag must be a positive integer"),
    ("calibrate_max_lag_float", lambda t: stochastic.calibrate(BIN, max_lag=2.5),
     ValueError, "max_lag"),
    ("calibrate_max_lag_too_large", lambda t: stochastic.calibrate(BIN, max_lag=1000),
     ValueError, "max_lag=1000 must be smaller than the image's smallest extent 8"),
    ("calibrate_size_1_axis", lambda t: stochastic.calibrate(np.eye(4, dtype=bool)[None]),
     ValueError, "at least 2 voxels along every axis"),
    ("calibrate_grayscale", lambda t: stochastic.calibrate(BIN * 255),
     ValueError, "binary image"),
    # resample
    ("interp_dtype_banana", lambda t: resample.interpolate_quadratic(BIN, 2, dtype="banana"),
     ValueError, "dtype 'banana' is not a NumPy data type"),
    ("interp_dtype_int", lambda t: resample.interpolate_quadratic(BIN, 2, dtype=np.int32),
     ValueError, "floating-point"),
    ("interp_binary_uint8_255", lambda t: resample.interpolate_quadratic_binary(
        BIN.astype(np.uint8) * 255, 2), ValueError, "lr must be a binary image"),
    ("interp_binary_float", lambda t: resample.interpolate_quadratic_binary(BIN * 0.7, 2),
     ValueError, "lr must be a binary image"),
    ("interp_alpha_3", lambda t: resample.interpolate_quadratic(BIN, 3), ValueError, "alpha"),
    ("downsample_indivisible", lambda t: resample.downsample(np.zeros((6, 8, 8)), 4),
     ValueError, "not divisible"),
    # io
    ("read_dtype_banana", lambda t: io.read_volume(_raw(t), shape=(2, 2, 2), dtype="banana"),
     ValueError, "dtype 'banana' is not a NumPy data type"),
    ("read_shape_float", lambda t: io.read_volume(_raw(t), shape=(2.0, 2, 2), dtype="uint8"),
     ValueError, "shape must be a positive integer"),
    ("read_shape_two", lambda t: io.read_volume(_raw(t), shape=(2, 4), dtype="uint8"),
     ValueError, "shape must be 3 positive integers"),
    ("read_missing", lambda t: io.read_volume(t / "nope.tif"), ValueError, "does not exist"),
    ("read_unknown_suffix", lambda t: io.read_volume(_raw(t).rename(t / "v.xyz")),
     ValueError, "unknown volume format"),
    ("write_object_array", lambda t: io.write_volume(t / "o.npy", np.full((2, 2, 2), None)),
     ValueError, "got dtype object"),
    ("write_string_array", lambda t: io.write_volume(t / "o.tif", np.full((2, 2, 2), "a")),
     ValueError, "got dtype <U1"),
    ("write_complex_array", lambda t: io.write_volume(t / "o.raw", np.zeros((2, 2, 2), complex)),
     ValueError, "got dtype complex128"),
    ("write_2d", lambda t: io.write_volume(t / "o.npy", np.zeros((2, 2))), ValueError, "3D"),
    ("otsu_nan", lambda t: io.binarize_otsu(np.where(BIN, np.nan, 1.0)),
     ValueError, "NaN or infinite"),
    ("otsu_bool", lambda t: io.binarize_otsu(BIN), ValueError, "numeric grayscale"),
    # metrics
    ("evaluate_reference_empty", lambda t: metrics.evaluate(
        BIN, BIN, 2, reference={"geod": {}, "eff": {}}), ValueError, "lacks the phase(s)"),
    ("evaluate_reference_not_dict", lambda t: metrics.evaluate(
        BIN, BIN, 2, effective=False, reference={"geod": 3}), ValueError, "must be a dict"),
    ("evaluate_reference_string", lambda t: metrics.evaluate(
        BIN, BIN, 2, effective=False, reference={"geod": {"solid": "x", "pore": 1.0}}),
     ValueError, "reference['geod']['solid'] must be a real number"),
    ("evaluate_reference_missing_kind", lambda t: metrics.evaluate(
        BIN, BIN, 2, reference={"geod": {"solid": 1.0, "pore": 1.0}}),
     ValueError, "reference has no 'eff'"),
    ("evaluate_connectivity", lambda t: metrics.evaluate(
        BIN, BIN, 2, effective=False, connectivity="edge"), ValueError, "connectivity"),
    ("evaluate_axis", lambda t: metrics.evaluate(BIN, BIN, 2, axis=3), ValueError, "axis 3"),
    ("reference_axis", lambda t: metrics.reference_tortuosities(BIN, axis=-4),
     ValueError, "axis -4"),
    ("accuracy_shapes", lambda t: metrics.accuracy(BIN, BIN[:4]), ValueError, "differ"),
]


@pytest.mark.parametrize(("call", "error", "fragment"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_bad_input_raises_a_clear_error(tmp_path, call, error, fragment):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert fragment in str(info.value)


def test_ids_are_unique():
    ids = [r[0] for r in ROWS]
    assert len(ids) == len(set(ids))
