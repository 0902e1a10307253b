"""What the results table says: the paper's four findings, judged with intervals.

Contract. Functions here read the table of :func:`srlib.evaluation.run_protocol` (one row per
dataset, sample, sub-image, α and method) and never modify it. :func:`findings` judges each
of the four findings of the paper's section 3 and returns a :class:`Finding` per finding,
which renders itself as a paragraph (:meth:`Finding.paragraph`, the conclusions) and as one
plain sentence (:meth:`Finding.sentence`, the book's opening page):

(i) the networks are much better than the interpolation (Fig. 6a-b);
(ii) the interpolation falls with α while the networks stay nearly flat (Figs. 6a-b);
(iii) N^diffu beats N^bin at α = 2 and 4 and loses at α = 8 (every metric of Fig. 6);
(iv) the tomographic results are nearly identical to the simulated ones (every metric of
     Fig. 6).

Each finding rests on :class:`Check` records, one per comparison (dataset, α or pair of
consecutive α, metric, and the methods compared), each a median with a bootstrap confidence
interval (:mod:`srlib.intervals`) and a state: "holds", "fails", or "tie" where the interval
cannot tell (for (iv), "undecided": the interval straddles the ``near`` band). A finding holds
only when every check holds; one failing check fails it; otherwise it is a tie. (i), (ii) and
(iv) are judged against each interpolation convention (aligned to Eq. 3, and pixel-centre),
because the convention decides the size of the gap; a convention without rows is said, not
passed over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from srlib.intervals import (
    CONFIDENCE,
    N_RESAMPLES,
    SEED,
    Interval,
    PairedTable,
    difference_interval,
    median_interval,
    paired_differences,
)
from srlib.methods import BIN, DIFFU, GRIDS, INTERPOLATION, LOCAL_BAYES, NETWORKS, interpolation

__all__ = [
    "CONVENTION_METHODS",
    "Check",
    "Finding",
    "Thresholds",
    "findings",
    "findings_markdown",
    "headroom",
    "headroom_sentence",
]

#: The interpolation method of each baseline convention (threshold 0.5; the paper states none).
CONVENTION_METHODS = {grid: interpolation(grid) for grid in GRIDS}
_CONVENTION_WORDS = {"aligned": "the Eq. 3-aligned interpolation",
                     "centred": "the pixel-centre interpolation"}
_NETWORKS = NETWORKS
_METRIC_WORDS = {"accuracy": "accuracy", "surface_accuracy": "surface accuracy",
                 "tau_geod_acc_mean": "geodesic tortuosity accuracy",
                 "tau_eff_acc_mean": "effective tortuosity accuracy"}
#: The metrics of Fig. 6a-b (voxel-wise) and of the whole of Fig. 6.
VOXELWISE = ("accuracy", "surface_accuracy")
FIG6 = (*VOXELWISE, "tau_geod_acc_mean", "tau_eff_acc_mean")
#: Where the paper finds N^diffu better than N^bin (section 3); at the other α (8), worse.
_DIFFU_BETTER_AT = (2, 4)
_RANK = {"fails": 0, "tie": 1, "undecided": 1, "holds": 2}


@dataclass(frozen=True)
class Thresholds:
    """How the paper's words become numbers, and the intervals' settings.

    Attributes
    ----------
    much : float
        (i) "much better": the median paired gain of a network over the interpolation.
    fall : float
        (ii) "falls": the interpolation's median paired drop between consecutive α.
    flat : float
        (ii) "flat": a network drops by at most ``flat`` times the interpolation's drop.
    near : float
        (iv) "nearly identical": tomographic minus simulated median within ``±near``.
    confidence, n_resamples, seed
        Of the bootstrap intervals (:mod:`srlib.intervals`).
    floor : dict
        ``{metric: spread}``: the noise of training (the seed spread, chapter 5). A
        comparison between methods ((i), (iii)) whose median is no larger than it is a tie,
        whatever its sampling interval says.
    """

    much: float = 0.02
    fall: float = 0.01
    flat: float = 0.5
    near: float = 0.02
    confidence: float = CONFIDENCE
    n_resamples: int = N_RESAMPLES
    seed: int = SEED
    floor: dict = field(default_factory=dict)

    def __post_init__(self):
        values = [(n, getattr(self, n)) for n in ("much", "fall", "flat", "near")]
        values += [(f"floor[{k!r}]", v) for k, v in dict(self.floor).items()]
        for name, value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")

    def above_floor(self, metric: str, iv: Interval, state: str) -> str:
        """``state``, or "tie" when the median is within the training noise of ``metric``."""
        if state != "tie" and abs(iv.estimate) <= self.floor.get(metric, 0.0):
            return "tie"
        return state

    def floor_text(self) -> str:
        """How the floor enters a criterion, in words (empty without one)."""
        if not self.floor:
            return ""
        parts = ", ".join(f"{v:.4f} in {k}" for k, v in self.floor.items())
        return f"; a tie where the median is within the seed spread ({parts})"

    def interval(self, values) -> Interval:
        """The median of ``values`` with its interval at these settings."""
        return median_interval(values, confidence=self.confidence,
                               n_resamples=self.n_resamples, seed=self.seed)


@dataclass(frozen=True)
class Check:
    """One comparison a finding rests on.

    Attributes
    ----------
    convention : str or None
        "aligned" or "centred" for a comparison with that interpolation, None otherwise.
    dataset : str or None
        None when the comparison is between the data sets ((iv)).
    alphas : tuple of int
        ``(α,)``, or ``(α_lo, α_hi)`` for a change between consecutive α ((ii)).
    metric : str
        Column of the results table.
    subject : str
        What is compared, e.g. ``"bin - interpolation"``.
    interval : Interval
        Median (of paired differences, or a difference of medians) and its interval.
    state : str
        "holds", "fails", "tie" or "undecided".
    """

    convention: str | None
    dataset: str | None
    alphas: tuple
    metric: str
    subject: str
    interval: Interval
    state: str


def _counts(checks) -> str:
    n = {s: sum(c.state == s for c in checks) for s in ("holds", "tie", "undecided", "fails")}
    words = {"holds": "hold", "tie": "tie", "undecided": "undecided", "fails": "fail"}
    return ", ".join(f"{v} {words[s]}" for s, v in n.items() if v)


def _range(checks) -> str:
    lo = min(checks, key=lambda c: c.interval.estimate)
    hi = max(checks, key=lambda c: c.interval.estimate)
    if lo is hi or np.isclose(lo.interval.estimate, hi.interval.estimate):
        return lo.interval.text()
    return f"{lo.interval.text()} to {hi.interval.text()}"


def _alpha_text(alphas: tuple) -> str:
    return f"α = {alphas[0]}" if len(alphas) == 1 else f"α = {alphas[0]} to {alphas[1]}"


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
        "holds", "fails", "tie", "not measured", or per convention (e.g. "holds against the
        pixel-centre interpolation, tie against the Eq. 3-aligned interpolation").
    by_convention : dict
        ``{"aligned": state or None, "centred": state or None}`` (for (iii) ``{"all": ...}``).
    checks : tuple of Check
        Every comparison the verdict rests on.
    metrics : tuple of str
        The metrics judged.
    criterion : str
        How the paper's words were turned into a test, in words.
    headroom : dict
        ``{dataset: {alpha: Interval}}``: ``local_bayes`` minus the aligned interpolation in
        accuracy (empty without ``local_bayes`` rows).
    left_out : tuple
        ``(dataset, alpha, method, metric)`` groups without a defined value, not judged.
    """

    key: str
    claim: str
    verdict: str
    by_convention: dict
    checks: tuple = field(repr=False)
    metrics: tuple = ()
    criterion: str = ""
    headroom: dict = field(default_factory=dict, repr=False)
    left_out: tuple = ()

    @property
    def holds(self) -> bool:
        """True when the finding holds unconditionally."""
        return self.verdict == "holds"

    def select(self, **where) -> list[Check]:
        """The checks whose attributes equal the given values (e.g. ``metric="accuracy"``)."""
        return [c for c in self.checks if all(getattr(c, k) == v for k, v in where.items())]

    def paragraph(self) -> str:
        """The finding as one Markdown bullet: verdict, test, and every group of checks."""
        head = f"- **({self.key}) {self.claim}** Verdict: *{self.verdict}*"
        head += f" (tested: {self.criterion})." if self.criterion else "."
        return head + "".join(f" {line}" for line in _JUDGES[self.key].details(self))

    def sentence(self, *, metric: str = "accuracy") -> str:
        """One plain sentence (no Markdown): the verdict and the headline numbers in ``metric``."""
        head = f"({self.key}) {self.claim.rstrip('.')}: {self.verdict}"
        if not self.checks:
            return f"{head}."
        tail = _JUDGES[self.key].headline(self, metric)
        n_metrics = f"{len(self.metrics)} metric" + ("s" if len(self.metrics) > 1 else "")
        counts = f" ({len(self.checks)} comparisons over {n_metrics}: {_counts(self.checks)})"
        return f"{head}{counts}" + (f"; {tail}." if tail else ".")


def _worst(states) -> str | None:
    states = list(states)
    return min(states, key=_RANK.__getitem__) if states else None


def _verdict(by: dict) -> str:
    measured = {c: s for c, s in by.items() if s is not None}
    if not measured:
        return "not measured"
    if set(by) == {"all"}:
        return measured["all"]
    missing = [_CONVENTION_WORDS[c] for c in by if by[c] is None]
    if len(set(measured.values())) == 1 and not missing:
        return next(iter(measured.values()))
    parts = [f"{s} against {_CONVENTION_WORDS[c]}" for c, s in measured.items()]
    parts += [f"not measured against {w}" for w in missing]
    return ", ".join(parts)


def _by_convention(checks) -> dict:
    by = {}
    for conv in CONVENTION_METHODS:
        if any(c.convention == conv for c in checks):
            by[conv] = _worst(c.state for c in checks if c.convention in (None, conv))
        else:
            by[conv] = None
    return by


class _Judge:
    key = ""
    claim = ""
    metrics: tuple = ()
    by_convention = True

    def criterion(self, th: Thresholds) -> str:
        raise NotImplementedError

    def checks(self, wide: PairedTable, metric: str, th: Thresholds, layout) -> list[Check]:
        raise NotImplementedError

    def details(self, f: Finding) -> list[str]:
        """Per metric and convention: the range of the checks' medians and their states."""
        lines = []
        for metric in f.metrics:
            for conv in (*CONVENTION_METHODS, None):
                group = f.select(metric=metric, convention=conv)
                if group:
                    lines.append(self.group_text(group, metric, conv))
        return lines

    def group_text(self, group, metric, conv) -> str:
        where = f" against {_CONVENTION_WORDS[conv]}" if conv else ""
        return f"{_METRIC_WORDS.get(metric, metric)}{where}: {_range(group)} ({_counts(group)})."

    def headline(self, f: Finding, metric: str) -> str:
        parts = [f"{_range(g)} against {_CONVENTION_WORDS[conv]}"
                 for conv in CONVENTION_METHODS if (g := f.select(metric=metric, convention=conv))]
        return f"in median paired {metric}, " + " and ".join(parts) if parts else ""


class _NetworksBetter(_Judge):
    key, claim, metrics = "i", "The networks are much better than the interpolation.", VOXELWISE

    def criterion(self, th):
        return (f"each network's median paired gain over the interpolation at least {th.much:g}, "
                f"its {th.confidence:.0%} interval above zero, per data set, α and metric"
                + th.floor_text())

    def checks(self, wide, metric, th, layout):
        out = []
        for conv, base in CONVENTION_METHODS.items():
            for d, a, net in ((d, a, n) for d, a in layout for n in _NETWORKS):
                pair = wide.paired(d, (net, a), (base, a))
                if pair is None:
                    continue
                iv = th.interval(paired_differences(*pair))
                side = iv.side()
                state = th.above_floor(metric, iv, "tie" if side == 0 else "holds"
                                       if side > 0 and iv.estimate >= th.much else "fails")
                out.append(Check(conv, d, (a,), metric, f"{net} - {base}", iv, state))
        return out

    def headline(self, f, metric):
        text = super().headline(f, metric)
        return text.replace("in median paired", "the networks' median paired gain in", 1)


class _FallsAndFlat(_Judge):
    key, claim = "ii", "The interpolation falls with α while the networks stay flat."
    metrics = VOXELWISE

    def criterion(self, th):
        return (f"between consecutive α the interpolation's median paired drop at least "
                f"{th.fall:g} with its interval above zero, and each network's drop minus "
                f"{th.flat:g} times the interpolation's with its interval below zero")

    def checks(self, wide, metric, th, layout):
        out = []
        datasets = sorted({d for d, _ in layout})
        for conv, base in CONVENTION_METHODS.items():
            for d in datasets:
                alphas = sorted(a for dd, a in layout if dd == d)
                for lo, hi in zip(alphas, alphas[1:], strict=False):
                    out += self._step(wide, metric, th, conv, base, d, lo, hi)
        return out

    def _step(self, wide, metric, th, conv, base, d, lo, hi):
        out = []
        pair = wide.paired(d, (base, lo), (base, hi))
        if pair is None:
            return out
        iv = th.interval(paired_differences(*pair))
        side = iv.side()
        state = "tie" if side == 0 else "holds" if side > 0 and iv.estimate >= th.fall else "fails"
        out.append(Check(conv, d, (lo, hi), metric, f"{base} drop", iv, state))
        for net in _NETWORKS:
            four = wide.paired(d, (net, lo), (net, hi), (base, lo), (base, hi))
            if four is None:
                continue
            n1, n2, b1, b2 = four
            excess = paired_differences(paired_differences(n1, n2),
                                        th.flat * paired_differences(b1, b2))
            iv = th.interval(excess)
            state = {1: "fails", -1: "holds", 0: "tie"}[iv.side()]
            out.append(Check(conv, d, (lo, hi), metric, f"{net} drop - {th.flat:g} x {base} drop",
                             iv, state))
        return out

    def group_text(self, group, metric, conv):
        drops = [c for c in group if c.subject.endswith(" drop") and " x " not in c.subject]
        flats = [c for c in group if " x " in c.subject]
        text = f"{_METRIC_WORDS.get(metric, metric)}, {_CONVENTION_WORDS[conv]}: "
        if drops:
            text += f"drops by {_range(drops)} per step of α ({_counts(drops)})"
        if flats:
            text += (f"; a network's drop minus the allowed share of it {_range(flats)} "
                     f"({_counts(flats)})")
        return text + "."

    def headline(self, f, metric):
        parts = []
        for conv in CONVENTION_METHODS:
            group = f.select(metric=metric, convention=conv)
            drops = [c for c in group if " x " not in c.subject]
            if drops:
                parts.append(f"{_CONVENTION_WORDS[conv]} drops by {_range(drops)} per step of α")
        nets = [c for c in f.select(metric=metric, convention="aligned") if " x " in c.subject]
        if nets:
            worst = max(nets, key=lambda c: c.interval.estimate)
            parts.append("each network's drop minus the allowed share of the aligned one's "
                         f"at most {worst.interval.text()}")
        return f"in median paired {metric}, " + "; ".join(parts) if parts else ""


class _DiffuVsBin(_Judge):
    key, claim = "iii", "N^diffu beats N^bin at α = 2 and 4 and loses at α = 8."
    metrics = FIG6
    by_convention = False

    def criterion(self, th):
        return (f"the {th.confidence:.0%} interval of N^diffu's median paired difference to "
                "N^bin above zero at α = 2 and 4 and below zero at α = 8, for the α present, "
                "per data set and metric" + th.floor_text())

    def checks(self, wide, metric, th, layout):
        out = []
        for d, a in layout:
            pair = wide.paired(d, (DIFFU, a), (BIN, a))
            if pair is None:
                continue
            iv = th.interval(paired_differences(*pair))
            expected = 1 if a in _DIFFU_BETTER_AT else -1
            side = iv.side()
            state = th.above_floor(metric, iv, "tie" if side == 0 else "holds"
                                   if side == expected else "fails")
            out.append(Check(None, d, (a,), metric, "diffu - bin", iv, state))
        return out

    def group_text(self, group, metric, conv):
        parts = [f"{c.dataset} {_alpha_text(c.alphas)} {c.interval.text()} ({c.state})"
                 for c in group]
        return f"{_METRIC_WORDS.get(metric, metric)}, N^diffu minus N^bin: " \
               + "; ".join(parts) + "."

    def headline(self, f, metric):
        group = f.select(metric=metric)
        if not group:
            return ""
        per_alpha = sorted({c.alphas for c in group})
        parts = [f"{_alpha_text(a)} {_range([c for c in group if c.alphas == a])}"
                 for a in per_alpha]
        return f"N^diffu minus N^bin in median paired {metric}: " + ", ".join(parts)


class _TomoLikeSim(_Judge):
    key, claim = "iv", "Tomographic and simulated results are nearly identical."
    metrics = FIG6

    def criterion(self, th):
        return (f"the {th.confidence:.0%} interval of the tomographic minus the simulated "
                f"median inside ±{th.near:g} for the networks and the interpolation, per α and "
                "metric (undecided where it straddles the band)")

    def checks(self, wide, metric, th, layout):
        out = []
        alphas = sorted({a for _, a in layout})
        methods = [(None, n) for n in _NETWORKS] + list(CONVENTION_METHODS.items())
        for a in alphas:
            for conv, method in methods:
                x = wide.values("tomographic", method, a)
                y = wide.values("simulated", method, a)
                if x is None or y is None:
                    continue
                iv = difference_interval(x, y, confidence=th.confidence,
                                         n_resamples=th.n_resamples, seed=th.seed)
                if not iv.defined:
                    continue
                inside = iv.lo >= -th.near and iv.hi <= th.near
                outside = iv.lo > th.near or iv.hi < -th.near
                state = "holds" if inside else "fails" if outside else "undecided"
                out.append(Check(conv, None, (a,), metric, f"{method}: tomographic - simulated",
                                 iv, state))
        return out

    def group_text(self, group, metric, conv):
        who = _CONVENTION_WORDS[conv] if conv else "the networks"
        return f"{_METRIC_WORDS.get(metric, metric)}, {who}: {_range(group)} ({_counts(group)})."

    def headline(self, f, metric):
        group = f.select(metric=metric)
        if not group:
            return ""
        worst = max(group, key=lambda c: abs(c.interval.estimate))
        return (f"the largest tomographic-minus-simulated difference in median {metric} is "
                f"{worst.interval.text()} ({worst.subject.split(':')[0]}, "
                f"{_alpha_text(worst.alphas)})")


_JUDGES = {j.key: j for j in (_NetworksBetter(), _FallsAndFlat(), _DiffuVsBin(), _TomoLikeSim())}


def _layout(table) -> list[tuple[str, int]]:
    """The (dataset, alpha) groups of a results table, sorted."""
    return sorted({(d, int(a)) for d, a in zip(table["dataset"], table["alpha"], strict=True)})


def headroom(table, *, metric: str = "accuracy", thresholds: Thresholds | None = None) -> dict:
    """``local_bayes`` minus the aligned interpolation: median paired difference and interval.

    Returns
    -------
    dict
        ``{dataset: {alpha: Interval}}`` where both methods have rows.
    """
    th = thresholds or Thresholds()
    if metric not in table.columns or not len(table):
        return {}
    wide = PairedTable(table, metric)
    out: dict = {}
    for d, a in _layout(table):
        pair = wide.paired(d, (LOCAL_BAYES, a), (INTERPOLATION, a))
        if pair is not None:
            out.setdefault(d, {})[a] = th.interval(paired_differences(*pair))
    return out


def _left_out(table, metrics) -> tuple:
    out = []
    for metric in metrics:
        groups = table.groupby(["dataset", "alpha", "method"])[metric]
        out += [(d, int(a), m, metric) for (d, a, m), v in groups if v.isna().all()]
    return tuple(sorted(out))


def findings(table, *, metrics=None, thresholds: Thresholds | None = None) -> list[Finding]:
    """The paper's four findings of section 3, judged on a results table with intervals.

    Parameters
    ----------
    table : pandas.DataFrame
        Results table of :func:`srlib.evaluation.run_protocol`.
    metrics : sequence of str, optional
        Judge every finding on these columns; by default each finding on the metrics the paper
        states it for ((i), (ii): accuracy and surface accuracy; (iii), (iv): the four of
        Fig. 6), as far as the table has them.
    thresholds : Thresholds, optional
        The numbers behind the paper's words and the intervals' settings.

    Returns
    -------
    list of Finding
        Findings (i) to (iv), in order.
    """
    th = thresholds or Thresholds()
    missing = {"dataset", "sample", "sub_image", "alpha", "method"} - set(table.columns)
    if metrics is not None:
        missing |= set(metrics) - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the column(s) {sorted(missing)}")
    layout = _layout(table)
    room = headroom(table, thresholds=th)
    used = [m for m in (metrics or FIG6) if m in table.columns]
    if not used:
        raise ValueError(f"table lacks every metric column of {list(metrics or FIG6)}")
    wides = {m: PairedTable(table, m) for m in used}
    left_out = _left_out(table, used)
    out = []
    for judge in _JUDGES.values():
        judged = tuple(m for m in (metrics or judge.metrics) if m in wides)
        checks = tuple(c for m in judged for c in judge.checks(wides[m], m, th, layout))
        by = _by_convention(checks) if judge.by_convention else {"all": _worst(
            c.state for c in checks)}
        out.append(Finding(judge.key, judge.claim, _verdict(by), by, checks, judged,
                           judge.criterion(th), room, left_out))
    return out


def findings_markdown(items) -> str:
    """Render findings as Markdown: one bullet per finding, the headroom and what was left out."""
    lines = [f.paragraph() for f in items]
    room = next((f.headroom for f in items if f.headroom), {})
    if room:
        parts = [f"{d}: " + ", ".join(f"α = {a} {iv.text()}" for a, iv in per.items())
                 for d, per in room.items()]
        lines.append("- **Local headroom.** The local-Bayes table (2×2×2 LR corners) gains, in "
                     "median paired accuracy over the Eq. 3-aligned interpolation, "
                     + "; ".join(parts) + ": what the neighbourhood of an HR voxel alone allows.")
    left_out = next((f.left_out for f in items if f.left_out), ())
    if left_out:
        groups = ", ".join(f"{m} {metric} at α = {a} ({d})" for d, a, m, metric in left_out)
        lines.append(f"- **Left out.** No defined value for {groups}; the verdicts above do "
                     "not count them.")
    return "\n".join(lines)


def headroom_sentence(room: dict, *, metric: str = "accuracy") -> str:
    """One plain sentence on the local headroom (:func:`headroom`); empty when not measured."""
    parts = []
    for d, per in room.items():
        if per:
            values = [iv.estimate for iv in per.values()]
            parts.append(f"{min(values):+.3f} to {max(values):+.3f} ({d})"
                         if len(values) > 1 else f"{values[0]:+.3f} ({d})")
    if not parts:
        return ""
    return ("Local headroom: the best classifier that sees only the 2×2×2 low-resolution "
            f"corners of a voxel (local_bayes) gains {' and '.join(parts)} in median paired "
            f"{metric} over the Eq. 3-aligned interpolation.")
