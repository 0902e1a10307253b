import numpy as np
import pandas as pd
import pytest

from srlib import intervals


def test_median_interval_of_constant_and_known_samples():
    iv = intervals.median_interval(np.full(24, 0.3))
    assert (iv.estimate, iv.lo, iv.hi, iv.n) == (0.3, 0.3, 0.3, 24)
    iv = intervals.median_interval([1.0, 2.0, 3.0, np.nan])  # nan left out
    assert iv.n == 3 and iv.estimate == 2.0 and 1.0 <= iv.lo <= 2.0 <= iv.hi <= 3.0
    empty = intervals.median_interval([np.nan])
    assert empty.n == 0 and not empty.defined and np.isnan(empty.lo)
    # the same values and seed give the same interval
    x = np.random.default_rng(3).normal(size=24)
    assert intervals.median_interval(x) == intervals.median_interval(x)


def test_bootstrap_interval_covers_the_true_median_about_95_percent_of_the_time():
    """Coverage over 300 samples of 24 normal values: a percentile bootstrap of the median
    for n = 24 covers at 0.90-0.98; an interval that ignored the spread would cover far less."""
    rng = np.random.default_rng(7)
    hits = sum(intervals.median_interval(rng.normal(1.0, 0.01, 24), n_resamples=500,
                                         seed=k).side(1.0) == 0 for k in range(300))
    assert 0.90 <= hits / 300 <= 0.98


def test_lost_paths_are_the_worst_values_without_nan():
    # a method that lost the path (-inf) on most sub-images is worse, not undefined
    a = np.array([-np.inf] * 20 + [0.9] * 4)
    b = np.full(24, 0.8)
    d = intervals.paired_differences(a, b)
    iv = intervals.median_interval(d)
    assert iv.estimate == -np.inf and iv.side() == -1
    assert intervals.paired_differences([-np.inf], [-np.inf])[0] == 0.0  # both lost: equal
    # -inf and +inf in the middle of an even sample give 0, not nan
    assert intervals.median([-np.inf, np.inf]) == 0.0
    iv = intervals.difference_interval([-np.inf] * 4, [0.5] * 4)
    assert iv.estimate == -np.inf and iv.hi == -np.inf


def test_interval_sides_and_text():
    iv = intervals.Interval(0.004, 0.001, 0.008, 24)
    assert iv.side() == 1 and iv.side(0.01) == -1 and iv.side(0.005) == 0
    assert iv.text() == "+0.0040 [+0.0010, +0.0080]" and iv.text(3) == "+0.004 [+0.001, +0.008]"


def test_bad_levels_are_refused():
    with pytest.raises(ValueError, match="confidence"):
        intervals.median_interval([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        intervals.median_interval([1.0, 2.0], n_resamples=10)
    with pytest.raises(ValueError, match="n_resamples"):
        intervals.median_interval([1.0, 2.0], n_resamples=True)


def _pairs_table():
    rows = []
    for k in range(5):
        for method, acc in (("a", 0.9 + 0.01 * k), ("b", 0.85 + 0.01 * k)):
            rows.append({"dataset": "d", "sample": "s", "alpha": 2, "sub_image": k,
                         "method": method, "accuracy": acc,
                         "tau": -np.inf if (method == "a" and k == 0) else 0.5})
    return pd.DataFrame(rows)


def test_compare_methods_paired_differences_wins_and_verdicts():
    table = _pairs_table()
    out = intervals.compare_methods(table, ["accuracy", "tau"], "a", "b")
    acc = out[out.metric == "accuracy"].iloc[0]
    assert acc.median_a == pytest.approx(0.92) and acc.median_b == pytest.approx(0.87)
    assert acc.difference == pytest.approx(0.05) and acc.lo == pytest.approx(0.05)
    assert acc.verdict == "better"
    assert (acc.wins, acc.losses, acc.pairs) == (5, 0, 5)
    assert acc.p_sign == pytest.approx(0.0625)
    tau = out[out.metric == "tau"].iloc[0]
    assert (tau.wins, tau.losses, tau.ties) == (0, 1, 4)  # a lost path is a loss
    assert tau.difference == 0.0 and tau.verdict == "tie"  # one loss in five: no finding
    med = intervals.median_table(table, ["tau"])
    assert med.loc[("d", 2, "a"), "tau"] == 0.5
    with pytest.raises(ValueError, match="column"):
        intervals.compare_methods(table, ["nope"], "a", "b")
