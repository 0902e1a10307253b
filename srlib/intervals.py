"""Paired differences between methods, with bootstrap confidence intervals.

Contract. The protocol scores every method on the same sub-images, so two methods are best
compared pair by pair: the difference of their scores on each sub-image, summarised by its
median, with a confidence interval for that median from a percentile bootstrap over the
sub-images (resampled with replacement, ``n_resamples`` times, from a fixed ``seed``; the same
table gives the same interval). Why the bootstrap of the median and not the signed-rank
(Hodges-Lehmann) interval: the book reports medians (Fig. 6), the bootstrap gives an interval
for exactly that statistic without assuming the differences symmetric, and it copes with the
``-inf`` scores of lost paths (they sort as the worst values; no arithmetic is done on them).

What the interval covers: the sampling of sub-images, treated as exchangeable. It does not
cover the spread between images beyond the sub-images drawn from them, nor between training
seeds, nor between arithmetic paths (bfloat16 or float32 training); those are measured
separately and stated beside it.

A comparison whose interval lies above zero says the first method is better ("better"),
below zero worse ("worse"); an interval that covers zero is a "tie": the data cannot tell the
methods apart at this confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONFIDENCE",
    "N_RESAMPLES",
    "SEED",
    "Interval",
    "PairedTable",
    "compare_methods",
    "difference_interval",
    "median",
    "median_interval",
    "median_table",
    "paired_differences",
]

#: Two-sided confidence level of every interval in the book.
CONFIDENCE = 0.95
#: Bootstrap resamples; the interval's ends move by less than 1e-4 in accuracy between seeds.
N_RESAMPLES = 4000
#: Seed of the bootstrap resampling.
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A median with its bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The median (of paired differences, or a difference of medians).
    lo, hi : float
        The interval's ends (``nan`` when there is nothing to resample).
    n : int
        Number of values (pairs) it rests on.
    """

    estimate: float
    lo: float
    hi: float
    n: int

    @property
    def defined(self) -> bool:
        """True when there were values to compute it from."""
        return self.n > 0 and not np.isnan(self.estimate)

    def side(self, threshold: float = 0.0) -> int:
        """+1 when the interval lies above ``threshold``, -1 below, 0 when it covers it."""
        if self.lo > threshold:
            return 1
        if self.hi < threshold:
            return -1
        return 0

    def text(self, digits: int = 4) -> str:
        """E.g. ``"+0.0050 [+0.0020, +0.0080]"``."""
        f = f"{{:+.{digits}f}}"
        return f"{f.format(self.estimate)} [{f.format(self.lo)}, {f.format(self.hi)}]"


def _middle(sorted_rows: np.ndarray) -> np.ndarray:
    """Medians of the rows of a sorted 2-D array; ``-inf`` and ``+inf`` in the middle give 0."""
    n = sorted_rows.shape[1]
    a, b = sorted_rows[:, (n - 1) // 2], sorted_rows[:, n // 2]
    with np.errstate(invalid="ignore"):
        mid = np.where(a == b, a, a / 2 + b / 2)
    return np.where(np.isnan(mid), 0.0, mid)


def median(values) -> float:
    """Median of the defined values (``nan`` left out, ``±inf`` kept); ``nan`` if none."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    return float(_middle(np.sort(v)[None, :])[0]) if v.size else float("nan")


def _bootstrap_medians(v: np.ndarray, n_resamples: int, rng) -> np.ndarray:
    idx = rng.integers(0, v.size, size=(n_resamples, v.size))
    return _middle(np.sort(v[idx], axis=1))


def _ends(medians: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2
    return (float(np.quantile(medians, tail, method="lower")),
            float(np.quantile(medians, 1.0 - tail, method="higher")))


def _check_level(confidence, n_resamples) -> None:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
            or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer of at least 100, got {n_resamples!r}")


def median_interval(values, *, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                    seed: int = SEED) -> Interval:
    """Median of ``values`` with its percentile-bootstrap confidence interval.

    Parameters
    ----------
    values : array_like
        E.g. paired differences; ``nan`` values are left out, ``±inf`` kept (sorted as the
        extremes).
    confidence : float
        Two-sided level.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    Interval
        ``nan`` ends and ``n = 0`` when no value is defined.
    """
    _check_level(confidence, n_resamples)
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    if not v.size:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    estimate = median(v)
    lo, hi = _ends(_bootstrap_medians(v, n_resamples, np.random.default_rng(seed)), confidence)
    return Interval(estimate, lo, hi, int(v.size))


def difference_interval(x, y, *, confidence: float = CONFIDENCE,
                        n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Interval:
    """Median of ``x`` minus median of ``y`` for two unpaired samples, with its interval.

    Each sample is resampled on its own (e.g. tomographic and simulated sub-images, which are
    different images). ``n`` is the smaller sample size.
    """
    _check_level(confidence, n_resamples)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if not (x.size and y.size):
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    estimate = float(paired_differences(median(x), median(y)))
    diffs = paired_differences(_bootstrap_medians(x, n_resamples, rng),
                               _bootstrap_medians(y, n_resamples, rng))
    lo, hi = _ends(diffs, confidence)
    return Interval(estimate, lo, hi, int(min(x.size, y.size)))


def paired_differences(a, b) -> np.ndarray:
    """Differences ``a - b`` of paired scores; equal scores (both ``-inf`` too) differ by 0."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(a == b, 0.0, a - b)


class PairedTable:
    """One metric of a results table, arranged to pair sub-images across methods and α.

    ``frames[dataset]`` has one row per (sample, sub-image) and one column per
    ``(method, alpha)``; :meth:`paired` returns the values of several columns on the
    sub-images where all of them are defined.
    """

    def __init__(self, table, metric: str):
        frame = table.set_index(["dataset", "sample", "sub_image", "method", "alpha"])[metric]
        self.frames = {}
        if len(frame):
            wide = frame.unstack(["method", "alpha"])
            self.frames = {d: wide.loc[d] for d in wide.index.get_level_values(0).unique()}

    def values(self, dataset: str, method: str, alpha: int) -> np.ndarray | None:
        """The column ``(method, alpha)`` of ``dataset`` (None when absent)."""
        frame = self.frames.get(dataset)
        if frame is None or (method, alpha) not in frame.columns:
            return None
        return frame[(method, alpha)].to_numpy(float)

    def paired(self, dataset: str, *columns) -> list[np.ndarray] | None:
        """The values of several ``(method, alpha)`` columns on the sub-images all define."""
        got = [self.values(dataset, m, a) for m, a in columns]
        if any(v is None for v in got):
            return None
        ok = np.logical_and.reduce([~np.isnan(v) for v in got])
        return [v[ok] for v in got] if ok.any() else None


def median_table(table, metrics, *, by=("dataset", "alpha", "method")):
    """Medians of metrics per group of the results table.

    ``nan`` values (undefined: no path in the ground truth, or not computed) are left out;
    ``-inf`` values (lost paths) are kept and count as the worst values, so a median is
    ``-inf`` when at least half of a group lost the path.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``by``, one column per metric.
    """
    return table.groupby(list(by))[list(metrics)].agg(median)


#: Keys that pair two rows of the results table: the same sub-image of the same image.
PAIR_KEYS = ("dataset", "sample", "alpha", "sub_image")


def compare_methods(table, metrics, method: str, baseline: str, *, by=("dataset", "alpha"),
                    confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                    seed: int = SEED):
    """Compare two methods per group by their paired differences over sub-images.

    Rows of the two methods are paired by dataset, sample, α and sub-image; pairs with a
    ``nan`` are left out. A pair is a win when ``method`` scores higher, a loss when lower.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol`.
    metrics : sequence of str
        Columns to compare.
    method, baseline : str
        Method names (values of the ``method`` column).
    by : sequence of str
        Grouping columns.
    confidence, n_resamples, seed
        Of the bootstrap (:func:`median_interval`).

    Returns
    -------
    pandas.DataFrame
        One row per group and metric: ``method``, ``baseline``, ``median_<method>`` and
        ``median_<baseline>`` (over the pairs), ``difference`` (median of the paired
        differences), ``lo`` and ``hi`` (its interval), ``verdict`` ("better", "worse",
        "tie", or "undefined" without pairs), ``wins``, ``losses``, ``ties``, ``pairs`` and
        ``p_sign`` (two-sided sign test of wins against losses, nan without either).
    """
    import pandas as pd
    from scipy.stats import binomtest

    missing = ({"method", *PAIR_KEYS, *by} | set(metrics)) - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the column(s) {sorted(missing)}")
    a = table[table["method"] == method].set_index(list(PAIR_KEYS))[list(metrics)]
    b = table[table["method"] == baseline].set_index(list(PAIR_KEYS))[list(metrics)]
    joined = a.merge(b, left_index=True, right_index=True, suffixes=("_a", "_b")).reset_index()
    rows = []
    for group, sub in joined.groupby(list(by)):
        group = group if isinstance(group, tuple) else (group,)
        for metric in metrics:
            x = sub[f"{metric}_a"].to_numpy(float)
            y = sub[f"{metric}_b"].to_numpy(float)
            ok = ~(np.isnan(x) | np.isnan(y))
            x, y = x[ok], y[ok]
            iv = median_interval(paired_differences(x, y), confidence=confidence,
                                 n_resamples=n_resamples, seed=seed)
            wins, losses = int(np.count_nonzero(x > y)), int(np.count_nonzero(x < y))
            verdict = ({1: "better", -1: "worse", 0: "tie"}[iv.side()] if iv.defined
                       else "undefined")
            rows.append({**dict(zip(by, group, strict=True)), "metric": metric,
                         "method": method, "baseline": baseline,
                         f"median_{method}": median(x), f"median_{baseline}": median(y),
                         "difference": iv.estimate, "lo": iv.lo, "hi": iv.hi,
                         "verdict": verdict, "wins": wins, "losses": losses,
                         "ties": int(x.size) - wins - losses, "pairs": int(x.size),
                         "p_sign": (binomtest(wins, wins + losses).pvalue if wins + losses
                                    else float("nan"))})
    return pd.DataFrame(rows)
