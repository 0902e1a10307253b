"""What the results table says: medians, paired comparisons, and the paper's four findings.

Contract. Functions here read the table of :func:`srlib.evaluation.run_protocol` (one row per
dataset, sample, sub-image, α and method) and never modify it. :func:`median_table` and
:func:`compare_methods` summarise it; :func:`findings` states each of the four findings of the
paper's section 3 as a :class:`Finding` (holds, fails, or holds only under one baseline
convention, with the numbers it rests on), :func:`findings_markdown` renders them as
paragraphs for the conclusions and :func:`finding_sentence` as one short plain sentence each
(the book's opening page):

(i) the networks are much better than the interpolation;
(ii) the interpolation falls with α while the networks stay nearly flat;
(iii) N^diffu beats N^bin at α = 2 and 4 and loses at α = 8;
(iv) the tomographic results are nearly identical to the simulated ones.

Findings (i), (ii) and (iv) are judged against both interpolation conventions (aligned to
Eq. 3, and pixel-centre), because the convention decides the size of the gap; every finding
carries the local headroom: the gain of the ``local_bayes`` table over the aligned
interpolation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CONVENTION_METHODS",
    "Finding",
    "compare_methods",
    "findings",
    "findings_markdown",
    "finding_sentence",
    "headroom",
    "headroom_sentence",
    "median_table",
]

#: The interpolation method of each baseline convention (threshold 0.5, as in the paper).
CONVENTION_METHODS = {"aligned": "interpolation", "centred": "interpolation_centred"}
_CONVENTION_WORDS = {"aligned": "the Eq. 3-aligned interpolation",
                     "centred": "the pixel-centre interpolation"}
_NETWORKS = ("bin", "diffu")
_NET_WORDS = {"bin": "N^bin", "diffu": "N^diffu"}


def _median(values) -> float:
    """Median over the defined values (``nan`` left out, ``-inf`` kept as the worst)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else float("nan")


def median_table(table, metrics, *, by=("dataset", "alpha", "method")):
    """Medians of metrics per group of the results table.

    ``nan`` values (undefined: no path in the ground truth, or not computed) are left out;
    ``-inf`` values (lost paths) are kept and count as the worst values, so a median is
    ``-inf`` when at least half of a group lost the path.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`run_protocol`.
    metrics : sequence of str
        Columns.
    by : sequence of str
        Grouping columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``by``, one column per metric.
    """
    return table.groupby(list(by))[list(metrics)].agg(_median)


def compare_methods(table, metrics, method: str, baseline: str,
                    *, by=("dataset", "alpha")):
    """Compare two methods per group: medians, their difference and paired wins.

    The two methods are paired by sub-image (same dataset, sample, sub-image and α). A pair
    counts as a win when ``method`` scores higher, a loss when lower; ties and pairs with a
    ``nan`` are not counted. ``p_sign`` is the two-sided sign-test p-value of wins against
    losses (:func:`scipy.stats.binomtest`), nan when there are none.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`run_protocol`.
    metrics : sequence of str
        Columns to compare.
    method, baseline : str
        Method names (values of the ``method`` column).
    by : sequence of str
        Grouping columns.

    Returns
    -------
    pandas.DataFrame
        One row per group and metric: ``median_<method>``, ``median_<baseline>``,
        ``difference`` (method minus baseline; nan if both are ``-inf``), ``higher`` (the
        method's median is strictly higher), ``wins``, ``losses``, ``ties``, ``pairs`` and
        ``p_sign``.
    """
    import pandas as pd
    from scipy.stats import binomtest

    keys = ["dataset", "sample", "alpha", "sub_image"]
    a = table[table["method"] == method].set_index(keys)
    b = table[table["method"] == baseline].set_index(keys)
    joined = a[list(metrics)].merge(b[list(metrics)], left_index=True, right_index=True,
                                    suffixes=("_a", "_b")).reset_index()
    rows = []
    for group, sub in joined.groupby(list(by)):
        group = group if isinstance(group, tuple) else (group,)
        for metric in metrics:
            x = sub[f"{metric}_a"].to_numpy(float)
            y = sub[f"{metric}_b"].to_numpy(float)
            ok = ~(np.isnan(x) | np.isnan(y))
            wins = int(np.count_nonzero(x[ok] > y[ok]))
            losses = int(np.count_nonzero(x[ok] < y[ok]))
            med_a, med_b = _median(x), _median(y)
            with np.errstate(invalid="ignore"):
                diff = med_a - med_b
            rows.append({**dict(zip(by, group, strict=True)), "metric": metric,
                         f"median_{method}": med_a, f"median_{baseline}": med_b,
                         "difference": diff, "higher": bool(med_a > med_b),
                         "wins": wins, "losses": losses,
                         "ties": int(np.count_nonzero(ok)) - wins - losses,
                         "pairs": int(np.count_nonzero(ok)),
                         "p_sign": (binomtest(wins, wins + losses).pvalue if wins + losses
                                    else float("nan"))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the findings


@dataclass(frozen=True)
class Finding:
    """One of the paper's findings, judged on a results table.

    Attributes
    ----------
    key : str
        "i", "ii", "iii" or "iv".
    claim : str
        The paper's statement.
    verdict : str
        "holds", "fails", "not measured", or "holds only against the Eq. 3-aligned
        interpolation" / "... the pixel-centre interpolation".
    by_convention : dict
        ``{"aligned": bool or None, "centred": bool or None}``: whether it holds against each
        interpolation convention (None: not measured; for (iii), ``{"all": bool}``).
    numbers : dict
        The medians and differences it rests on, ``{dataset: {alpha: {...}}}``.
    headroom : dict
        ``{dataset: {alpha: gain}}``: median accuracy of ``local_bayes`` minus that of the
        aligned interpolation (empty without ``local_bayes`` rows).
    criterion : str
        How the paper's words were turned into a test, in words.
    left_out : tuple
        ``(dataset, alpha, method)`` groups left out of the judgement because their median is
        undefined (every value NaN), e.g. a network whose super-resolutions all lost the path.
    """

    key: str
    claim: str
    verdict: str
    by_convention: dict
    numbers: dict = field(repr=False)
    headroom: dict = field(repr=False)
    criterion: str = ""
    left_out: tuple = ()

    @property
    def holds(self) -> bool:
        """True when the finding holds unconditionally."""
        return self.verdict == "holds"


def _medians(table, metric: str) -> dict:
    """``{(dataset, alpha, method): median}`` of the groups whose median is defined."""
    return _defined(_all_medians(table, metric))


def _defined(medians: dict) -> dict:
    return {k: v for k, v in medians.items() if not np.isnan(v)}


def _all_medians(table, metric: str) -> dict:
    if not len(table):
        return {}
    med = median_table(table, [metric])[metric]
    return {(d, int(a), m): float(v) for (d, a, m), v in med.items()}


def headroom(table, *, metric: str = "accuracy") -> dict:
    """Median ``metric`` of ``local_bayes`` minus that of the aligned interpolation.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table.
    metric : str
        Column.

    Returns
    -------
    dict
        ``{dataset: {alpha: gain}}`` where both methods have rows.
    """
    med = _medians(table, metric)
    out: dict = {}
    for (d, a, m), v in sorted(med.items()):
        if m == "local_bayes" and (d, a, "interpolation") in med:
            out.setdefault(d, {})[a] = v - med[(d, a, "interpolation")]
    return out


def _verdict(by_convention: dict) -> str:
    values = [v for v in by_convention.values() if v is not None]
    if not values:
        return "not measured"
    if all(values):
        return "holds"
    held = [c for c, v in by_convention.items() if v]
    if held:
        return f"holds only against {_CONVENTION_WORDS[held[0]]}"
    return "fails"


def _networks_better(med, datasets, alphas, much) -> tuple[dict, dict]:
    numbers: dict = {}
    by = {}
    for conv, baseline in CONVENTION_METHODS.items():
        gains = []
        for d in datasets:
            for a in alphas:
                if (d, a, baseline) not in med:
                    continue
                for net in _NETWORKS:
                    if (d, a, net) in med:
                        gain = med[(d, a, net)] - med[(d, a, baseline)]
                        numbers.setdefault(d, {}).setdefault(a, {})[f"{net}_minus_{conv}"] = gain
                        gains.append(gain)
        by[conv] = bool(min(gains) >= much) if gains else None
    for d in numbers:
        for a in numbers[d]:
            numbers[d][a].update({f"median_{m}": med.get((d, a, m), float("nan"))
                                  for m in (*_NETWORKS, *CONVENTION_METHODS.values())})
    return numbers, by


def _falls_and_flat(med, datasets, alphas, flat) -> tuple[dict, dict]:
    numbers: dict = {}
    by = {}
    if not alphas:
        return numbers, {conv: None for conv in CONVENTION_METHODS}
    lo, hi = min(alphas), max(alphas)
    for conv, baseline in CONVENTION_METHODS.items():
        ok = []
        for d in datasets:
            if (d, lo, baseline) not in med or (d, hi, baseline) not in med:
                continue
            drop = med[(d, lo, baseline)] - med[(d, hi, baseline)]
            nets = {n: med[(d, lo, n)] - med[(d, hi, n)] for n in _NETWORKS
                    if (d, lo, n) in med and (d, hi, n) in med}
            entry = numbers.setdefault(d, {}).setdefault(f"{lo}->{hi}", {})
            entry[f"{conv}_drop"] = drop
            entry.update({f"{n}_drop": v for n, v in nets.items()})
            ok.append(bool(nets) and drop > 0 and max(nets.values()) <= flat * drop)
        by[conv] = all(ok) if ok else None
    return numbers, by


#: Where the paper finds N^diffu better than N^bin (section 3); at the other α (8), worse.
_DIFFU_BETTER_AT = (2, 4)


def _diffu_vs_bin(table, metric) -> tuple[dict, dict]:
    numbers: dict = {}
    if not {"bin", "diffu"} <= set(table["method"]):
        return numbers, {"all": None}
    comp = compare_methods(table, [metric], "diffu", "bin")
    ok = []
    for row in comp.itertuples():
        d, a = row.dataset, int(row.alpha)
        if np.isnan(row.difference):  # no defined pair: left out, not a failure
            continue
        numbers.setdefault(d, {})[a] = {"diffu": row.median_diffu, "bin": row.median_bin,
                                        "diffu_minus_bin": row.difference, "wins": row.wins,
                                        "losses": row.losses, "p_sign": row.p_sign}
        # the paper's statement, for whichever α are present: better at 2 and 4, worse at 8
        expected_better = a in _DIFFU_BETTER_AT
        ok.append(row.difference > 0 if expected_better else row.difference < 0)
    return numbers, {"all": all(ok) if ok else None}


def _tomo_like_sim(med, alphas, near) -> tuple[dict, dict]:
    numbers: dict = {}
    per_alpha = numbers.setdefault("tomographic_minus_simulated", {})
    by = {}
    for conv, baseline in CONVENTION_METHODS.items():
        diffs = []
        for a in alphas:
            for m in (*_NETWORKS, baseline):
                if ("simulated", a, m) in med and ("tomographic", a, m) in med:
                    diff = med[("tomographic", a, m)] - med[("simulated", a, m)]
                    per_alpha.setdefault(a, {})[m] = diff
                    diffs.append(abs(diff))
        by[conv] = bool(max(diffs) <= near) if diffs else None
    return numbers, by


def findings(table, *, metric: str = "accuracy", much: float = 0.02, flat: float = 0.5,
             near: float = 0.02) -> list[Finding]:
    """The paper's four findings of section 3, judged on a results table.

    Medians are over sub-images and samples per dataset, α and method
    (:func:`median_table`); the thresholds that turn the paper's words into numbers are
    arguments:

    (i) "much better": every network's median ``metric`` exceeds the interpolation's by at
        least ``much``, at every α and dataset;
    (ii) "falls while flat": from the smallest to the largest α the interpolation's median
         drops, and each network's drops by at most ``flat`` times as much, on every dataset;
    (iii) N^diffu's median difference to N^bin is positive at α = 2 and 4 and negative at
          α = 8 (the paper's statement), for the α present, on every dataset;
    (iv) "nearly identical": the tomographic and simulated medians of every network and the
         interpolation differ by at most ``near`` at every α.

    (i), (ii) and (iv) are judged against the aligned (``interpolation``) and the pixel-centre
    (``interpolation_centred``) interpolation separately.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol`.
    metric : str
        Column judged (default the accuracy, Eq. 19).
    much, flat, near : float
        See above.

    Returns
    -------
    list of Finding
        Findings (i) to (iv), in order.
    """
    for name, value in (("much", much), ("flat", flat), ("near", near)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    missing = {"dataset", "alpha", "method", metric} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the column(s) {sorted(missing)}")
    everything = _all_medians(table, metric)
    med = _defined(everything)
    left_out = tuple(sorted(k for k in everything if k not in med))
    datasets = sorted({d for d, _, _ in med})
    alphas = sorted({a for _, a, _ in med})
    room = headroom(table, metric=metric)
    out = []
    numbers, by = _networks_better(med, datasets, alphas, much)
    out.append(Finding("i", "The networks are much better than the interpolation.",
                       _verdict(by), by, numbers, room,
                       f"each network's median {metric} at least {much:g} above the "
                       "interpolation's at every α and on every dataset"))
    numbers, by = _falls_and_flat(med, datasets, alphas, flat)
    out.append(Finding("ii", "The interpolation falls with α while the networks stay flat.",
                       _verdict(by) if len(alphas) > 1 else "not measured", by, numbers, room,
                       f"from the smallest to the largest α the interpolation's median {metric} "
                       f"falls and each network's by at most {flat:g} times as much"))
    numbers, by = _diffu_vs_bin(table, metric)
    verdict = {True: "holds", False: "fails", None: "not measured"}[by["all"]]
    out.append(Finding("iii", "N^diffu beats N^bin at α = 2 and 4 and loses at α = 8.",
                       verdict, by, numbers, room,
                       f"N^diffu's median {metric} above N^bin's at α = 2 and 4 and below it at "
                       "α = 8, for the α present, on every dataset"))
    numbers, by = _tomo_like_sim(med, alphas, near)
    out.append(Finding("iv", "Tomographic and simulated results are nearly identical.",
                       _verdict(by), by, numbers, room,
                       f"tomographic and simulated medians within {near:g} for the networks "
                       "and the interpolation at every α"))
    return [dataclasses.replace(f, left_out=left_out) for f in out]


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def _span(values) -> str:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "n/a"
    lo, hi = min(values), max(values)
    return _signed(lo) if np.isclose(lo, hi) else f"{_signed(lo)} to {_signed(hi)}"


def findings_markdown(items, *, metric: str = "accuracy") -> str:
    """Render findings as Markdown: one bullet per finding, verdict first, with its numbers.

    Parameters
    ----------
    items : sequence of Finding
        From :func:`findings`.
    metric : str
        Name of the judged column, for the prose.

    Returns
    -------
    str
        Markdown text.
    """
    lines = []
    room = next((f.headroom for f in items), {})
    for f in items:
        head = f"- **({f.key}) {f.claim}** Verdict: *{f.verdict}*"
        head += f" (tested: {f.criterion})." if f.criterion else "."
        details = []
        if f.key == "i":
            for d, per in f.numbers.items():
                parts = []
                for conv in CONVENTION_METHODS:
                    gains = [v for a in per for k, v in per[a].items()
                             if k.endswith(f"_minus_{conv}")]
                    if gains:
                        parts.append(f"over {_CONVENTION_WORDS[conv]} {_span(gains)}")
                details.append(f"{d}: the networks gain " + ", ".join(parts))
        elif f.key == "ii":
            for d, per in f.numbers.items():
                for span, v in per.items():
                    parts = [f"{_CONVENTION_WORDS[c]} by {v[f'{c}_drop']:.3f}"
                             for c in CONVENTION_METHODS if f"{c}_drop" in v]
                    parts += [f"{_NET_WORDS[n]} by {v[f'{n}_drop']:.3f}" for n in _NETWORKS
                              if f"{n}_drop" in v]
                    lo, hi = span.split("->")
                    details.append(f"{d}, from α = {lo} to {hi}, the median {metric} falls for "
                                   + ", ".join(parts))
        elif f.key == "iii":
            for d, per in f.numbers.items():
                parts = [f"α = {a}: {v['diffu_minus_bin']:+.3f} ({v['wins']} wins, "
                         f"{v['losses']} losses)" for a, v in sorted(per.items())]
                details.append(f"{d}, N^diffu minus N^bin: " + "; ".join(parts))
        elif f.key == "iv":
            per = f.numbers.get("tomographic_minus_simulated", {})
            for m in (*_NETWORKS, *CONVENTION_METHODS.values()):
                diffs = [v[m] for v in per.values() if m in v]
                if diffs:
                    details.append(f"tomographic minus simulated, {m}: {_span(diffs)}")
        if details:
            head += " " + "; ".join(details) + "."
        lines.append(head)
    if room:
        parts = [f"{d}: {_span(list(per.values()))}" for d, per in room.items()]
        lines.append(f"- **Local headroom.** The local-Bayes table (2×2×2 LR corners) gains "
                     f"{'; '.join(parts)} in median {metric} over the Eq. 3-aligned "
                     "interpolation: what the neighbourhood of an HR voxel alone allows.")
    left_out = next((f.left_out for f in items if f.left_out), ())
    if left_out:
        groups = ", ".join(f"{m} at α = {a} ({d})" for d, a, m in left_out)
        lines.append(f"- **Left out.** No defined median {metric} for {groups} (every value "
                     "undefined); the verdicts above do not count them.")
    return "\n".join(lines)


def finding_sentence(f: Finding, *, metric: str = "accuracy") -> str:
    """One plain sentence (no Markdown) stating a finding's verdict and its headline numbers.

    (i): the networks' gain in median ``metric`` over each interpolation convention, over all
    datasets and α; (ii): how much the aligned interpolation and the networks fall from the
    smallest to the largest α; (iii): the range of N^diffu minus N^bin; (iv): the largest
    tomographic-minus-simulated difference. Numbers that were not measured are left out.

    Parameters
    ----------
    f : Finding
        From :func:`findings`.
    metric : str
        Name of the judged column, for the prose.

    Returns
    -------
    str
        E.g. ``"(i) The networks are much better than the interpolation: fails; the networks
        gain +0.001 to +0.005 over the Eq. 3-aligned interpolation and +0.018 to +0.047 over
        the pixel-centre interpolation in median accuracy."``
    """
    head = f"({f.key}) {f.claim.rstrip('.')}: {f.verdict}"
    parts = []
    if f.key == "i":
        for conv in CONVENTION_METHODS:
            gains = [v for per in f.numbers.values() for row in per.values()
                     for k, v in row.items() if k.endswith(f"_minus_{conv}")]
            if gains:
                parts.append(f"{_span(gains)} over {_CONVENTION_WORDS[conv]}")
        if parts:
            return f"{head}; the networks gain " + " and ".join(parts) + f" in median {metric}."
    elif f.key == "ii":
        for d, per in f.numbers.items():
            for span, v in per.items():
                lo, hi = span.split("->")
                nets = [v[f"{n}_drop"] for n in _NETWORKS if f"{n}_drop" in v]
                text = f"{d}, α = {lo} to {hi}:"
                if "aligned_drop" in v:
                    text += f" the aligned interpolation falls by {v['aligned_drop']:.3f}"
                if nets:
                    text += f", the networks by {min(nets):.3f} to {max(nets):.3f}"
                parts.append(text)
        if parts:
            return f"{head} ({'; '.join(parts)})."
    elif f.key == "iii":
        diffs = [row["diffu_minus_bin"] for per in f.numbers.values() for row in per.values()]
        if diffs:
            return f"{head}; N^diffu minus N^bin in median {metric}: {_span(diffs)}."
    elif f.key == "iv":
        diffs = [v for row in f.numbers.get("tomographic_minus_simulated", {}).values()
                 for v in row.values()]
        if diffs:
            worst = max(diffs, key=abs)
            return f"{head}; the largest tomographic-minus-simulated difference is {worst:+.3f}."
    return f"{head}."


def headroom_sentence(room: dict, *, metric: str = "accuracy") -> str:
    """One plain sentence on the local headroom (:func:`headroom`); empty when not measured.

    Parameters
    ----------
    room : dict
        ``{dataset: {alpha: gain}}`` from :func:`headroom` (or ``Finding.headroom``).
    metric : str
        Name of the column, for the prose.

    Returns
    -------
    str
        The sentence, or ``""`` when ``room`` is empty.
    """
    parts = [f"{_span(list(per.values()))} ({d})" for d, per in room.items() if per]
    if not parts:
        return ""
    return ("Local headroom: the best classifier that sees only the 2×2×2 low-resolution "
            f"corners of a voxel (local_bayes) gains {' and '.join(parts)} in median {metric} "
            "over the Eq. 3-aligned interpolation.")
