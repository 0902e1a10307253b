"""Tests of the figure builders in srlib.plotting (Fig. 3, refinement, Figs. 5, 6 and A2)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from srlib import plotting  # noqa: E402
from srlib.comparison import FINITE_VOLUMES, TortuosityEstimate  # noqa: E402
from srlib.transport import diffusion_channels  # noqa: E402


@pytest.fixture
def slab():
    """Solid block with a straight pore channel along z and an isolated pore cavity."""
    image = np.ones((8, 8, 8), dtype=bool)
    image[:, 1:3, 1:3] = False  # spanning channel
    image[3:5, 5:7, 5:7] = False  # cavity: no path, channel value 0
    return image


def test_surface_values_extend_the_phase_and_mark_clusters_without_path(slab):
    channels = diffusion_channels(slab)
    pore = ~slab
    values = plotting.volumes._surface_values(pore, channels[0])
    # inside the phase: its own values; in the cavity (value 0): NaN
    assert values[:, 1:3, 1:3] == pytest.approx(channels[0][:, 1:3, 1:3].astype(float))
    assert np.isnan(values[3:5, 5:7, 5:7]).all()
    # outside the phase: the value of the nearest phase voxel
    assert values[4, 3, 1] == pytest.approx(float(channels[0][4, 2, 1]))
    assert np.isnan(values[4, 7, 6])  # next to the cavity only
    assert not np.isnan(values[:, :3, :3]).any()


def test_fig3_diffusion_3d_has_two_coloured_3d_panels_and_a_colour_bar(slab):
    channels = diffusion_channels(slab)
    fig, axes = plotting.fig3_diffusion_3d(slab, channels, size=8)
    try:
        assert axes.shape == (2,)
        assert all(ax.name == "3d" for ax in axes)
        assert [ax.get_title() for ax in axes] == ["(a) pore phase", "(b) solid phase"]
        assert len(fig.axes) == 3  # the colour bar
        colourbar = fig.axes[2]
        assert colourbar.get_ylim() == pytest.approx((0.0, 1.0))
        for ax in axes:
            faces = ax.collections[0].get_facecolor()
            assert len(faces) > 0
            assert np.ptp(faces[:, :3], axis=0).max() > 0.3  # coloured by the field, not flat
        # the cavity's faces are grey (the colour map's "bad" colour)
        grey = np.isclose(axes[0].collections[0].get_facecolor()[:, :3], 0.7).all(axis=1)
        assert grey.any()
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="channels"):
        plotting.fig3_diffusion_3d(slab, channels[:1])


def test_fig3_diffusion_3d_with_an_absent_phase():
    image = np.ones((4, 4, 4), dtype=bool)
    fig, axes = plotting.fig3_diffusion_3d(image, diffusion_channels(image), size=4)
    try:
        assert "absent" in axes[0].get_title()
        assert len(axes[1].collections) == 1
    finally:
        plt.close(fig)


def test_fig_refinement_draws_one_line_per_finite_method():
    rows = []
    for r, (face, vertex, fv) in zip((1, 2, 3), ((2.0, 1.5, 3.0), (2.2, 1.7, 2.6), (2.3, 1.8, 2.5)),
                                     strict=True):
        rows += [TortuosityEstimate("pore", "FEM face", face, 0.1, 0.4, True, r),
                 TortuosityEstimate("pore", "FEM vertex", vertex, 0.1, 0.4, True, r),
                 TortuosityEstimate("pore", FINITE_VOLUMES, fv, 0.1, 0.4, True, r),
                 TortuosityEstimate("solid", "FEM face", math.inf, 0.1, 0.6, True, r),
                 TortuosityEstimate("solid", "FEM vertex", 1.2, 0.1, 0.6, True, r),
                 TortuosityEstimate("solid", FINITE_VOLUMES, math.inf, 0.1, 0.6, True, r)]
    fig, axes = plotting.fig_refinement(rows)
    try:
        assert len(axes) == 2
        pore, solid = axes
        assert [line.get_label() for line in pore.lines] == ["FEM face", "FEM vertex",
                                                             FINITE_VOLUMES]
        assert list(pore.lines[0].get_ydata()) == [2.0, 2.2, 2.3]
        assert list(pore.lines[2].get_xdata()) == [1, 2, 3]
        assert [line.get_label() for line in solid.lines] == ["FEM vertex"]
        texts = " ".join(t.get_text() for t in solid.texts)
        assert "no path" in texts and "FEM face" in texts and FINITE_VOLUMES in texts
        assert "ε = 0.40" in pore.get_title()
        assert len(fig.legends) == 1
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plotting.fig_refinement([])


# ----------------------------------------------------------------------------- section 3:
# error maps (Fig. 5) and box statistics (Fig. 6, Fig. A2)


def test_error_map_colours_the_four_cases():
    sr = np.array([[True, False, True, False]])
    hr = np.array([[True, False, False, True]])
    rgb = plotting.error_map(sr, hr)
    assert rgb.shape == (1, 4, 3)
    assert rgb[0, 0].tolist() == [1, 1, 1]  # correct solid: white
    assert rgb[0, 1].tolist() == [0, 0, 0]  # correct pore: black
    assert rgb[0, 2].tolist() == [1, 0, 1]  # false solid: magenta
    assert rgb[0, 3].tolist() == [0, 0, 1]  # false pore: blue


def test_error_map_of_identical_images_is_the_binary_image(rng):
    hr = rng.random((5, 6, 7)) < 0.5
    rgb = plotting.error_map(hr, hr)
    assert np.array_equal(rgb, np.repeat(hr[..., None], 3, axis=-1).astype(float))


def test_error_map_accepts_0_1_and_rejects_bad_input():
    assert plotting.error_map(np.array([1, 0]), np.array([1, 1])).shape == (2, 3)
    with pytest.raises(ValueError, match="differ"):
        plotting.error_map(np.zeros((2, 2), bool), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="binary"):
        plotting.error_map(np.array([0.5, 1.0]), np.array([1, 1]))


def test_box_summary_quartiles_whiskers_and_outliers():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0]
    s = plotting.box_summary(values)
    assert s["q1"] == pytest.approx(3.0)
    assert s["med"] == pytest.approx(5.0)
    assert s["q3"] == pytest.approx(7.0)
    assert s["mean"] == pytest.approx(np.mean(values))
    # whiskers: minimum and maximum, outliers included
    assert s["whislo"] == 1.0 and s["whishi"] == 100.0
    # Tukey: beyond q3 + 1.5 * IQR = 13
    assert s["fliers"].tolist() == [100.0]


def test_box_summary_counts_lost_and_undefined_values_and_leaves_them_out():
    s = plotting.box_summary([0.9, 0.8, -np.inf, np.nan, np.nan, 1.0])
    assert (s["n"], s["n_finite"], s["n_neg_inf"], s["n_nan"]) == (6, 3, 1, 2)
    assert s["whislo"] == 0.8 and s["mean"] == pytest.approx(0.9)


def test_box_summary_of_nothing_finite_has_counts_only():
    s = plotting.box_summary([-np.inf, np.nan])
    assert s["n_finite"] == 0 and "med" not in s


def _results_table(rng, low=None):
    import pandas as pd

    rows = []
    for dataset in ("simulated", "tomographic"):
        for alpha in (2, 4):
            for method in ("bin", "diffu", "interpolation"):
                for k in range(8):
                    eff = 0.95 if k != 2 or low is None else low
                    rows.append({"dataset": dataset, "alpha": alpha, "method": method,
                                 "sub_image": k, "accuracy": rng.uniform(0.8, 1),
                                 "surface_accuracy": rng.uniform(0.5, 0.9),
                                 "tau_geod_acc_mean": -np.inf if k == 0 else rng.uniform(.9, 1),
                                 "tau_eff_acc_mean": np.nan if k == 1 else eff + 0.01 * k,
                                 "effective_computed": k != 1})
    return pd.DataFrame(rows)


def test_box_counts_reports_lost_and_left_out(rng):
    counts = plotting.box_counts(_results_table(rng), ["tau_geod_acc_mean", "tau_eff_acc_mean"])
    geod = counts[counts.metric == "tau_geod_acc_mean"]
    eff = counts[counts.metric == "tau_eff_acc_mean"]
    assert (geod.n_neg_inf == 1).all() and (geod.n_finite == 7).all()
    assert (eff.n_nan == 1).all() and (eff.n_not_computed == 1).all()


def test_fig6_boxplots_shows_lost_and_left_out_counts(rng):
    fig, axes = plotting.fig6_boxplots(_results_table(rng))
    try:
        assert axes.shape == (2, 4)
        texts = [t.get_text() for t in axes[0, 2].texts]
        assert texts.count("1") == 6 and "−∞" in texts  # one lost path under each box
        assert "−∞: 6" in axes[0, 2].get_xlabel()
        assert "nan (left out): 6" in axes[0, 3].get_xlabel()
        assert "−∞: 0" in axes[0, 0].get_xlabel()
    finally:
        plt.close(fig)


def test_boxplots_cut_a_far_outlier_and_count_it(rng):
    fig, axes = plotting.fig6_boxplots(_results_table(rng, low=-50.0))
    try:
        ax = axes[0, 3]
        assert ax.get_ylim()[0] > -50  # the axis is cut ...
        assert "↓: 6" in ax.get_xlabel()  # ... and the values below it are counted
        assert "↓" in [t.get_text() for t in ax.texts]
    finally:
        plt.close(fig)


def test_fig5_error_maps_draws_the_error_map_of_each_method(rng):
    hr = rng.random((6, 6)) < 0.5
    rows = [{"label": name, "hr": hr, "sr": {m: ~hr for m in ("bin", "diffu", "interpolation")}}
            for name in ("simulated", "tomographic")]
    fig, axes = plotting.fig5_error_maps(rows, alpha=8)
    try:
        assert axes.shape == (2, 3)
        assert np.array_equal(axes[0, 0].images[0].get_array(), plotting.error_map(~hr, hr))
        assert len(fig.legends) == 1
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- box plots with
# seaborn: what is drawn matches box_summary; any list of methods


def _boxes(ax, methods):
    """The seaborn box containers of a panel (one per method, in hue order), by method."""
    from seaborn.categorical import BoxPlotContainer

    containers = [c for c in ax.containers if isinstance(c, BoxPlotContainer)]
    assert len(containers) == len(methods), "the panel was not drawn with seaborn"
    return dict(zip(methods, containers, strict=True))


def _box_colours(container):
    return {matplotlib.colors.to_hex(b.get_facecolor()) for b in container.boxes}


def test_box_summary_inner_values_are_tukeys_whisker_ends():
    s = plotting.box_summary([-40.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 100.0])
    assert s["fliers"].tolist() == [-40.0, 100.0]
    assert (s["inner_lo"], s["inner_hi"]) == (1.0, 8.0)
    assert (s["whislo"], s["whishi"]) == (-40.0, 100.0)


@pytest.mark.parametrize("whiskers", ["range", "tukey"])
def test_boxplots_draw_box_summary_with_seaborn(rng, whiskers):
    table = _results_table(rng)
    is_bin = table.method == "bin"
    table.loc[is_bin, "accuracy"] = 0.9 + 0.01 * table.loc[is_bin, "sub_image"]
    table.loc[is_bin & (table.sub_image == 3), "accuracy"] = 0.8  # an outlier (fence 0.855)
    fig, axes = plotting.metric_boxplots(table, {"accuracy": "(a) accuracy"},
                                         datasets=["simulated"], whiskers=whiskers)
    try:
        ax = axes[0, 0]
        boxes = _boxes(ax, ["bin", "diffu", "interpolation"])
        sub = table[table.dataset == "simulated"]
        for method, container in boxes.items():
            assert len(container.boxes) == 2  # one per alpha
            assert _box_colours(container) == {plotting.METHOD_COLORS[method].lower()}
            for k, alpha in enumerate((2, 4)):
                s = plotting.box_summary(sub[(sub.alpha == alpha) & (sub.method == method)]
                                         .accuracy)
                low, high = (("whislo", "whishi") if whiskers == "range"
                             else ("inner_lo", "inner_hi"))
                ends = sorted(np.concatenate([w.get_ydata() for w in
                                              container.whiskers[2 * k:2 * k + 2]]))
                assert (ends[0], ends[-1]) == pytest.approx((s[low], s[high]))
                assert container.means[k].get_ydata()[0] == pytest.approx(s["mean"])
                assert container.medians[k].get_ydata()[0] == pytest.approx(s["med"])
        # the outlier is drawn as an open circle on bin's box, at each alpha
        circles = [line for line in ax.lines if line.get_marker() == "o"
                   and 0.8 in np.asarray(line.get_ydata())]
        width = 0.8 / 3
        assert sorted(line.get_xdata()[0] for line in circles) == pytest.approx(
            [-width, 1 - width])
        assert all(line.get_markerfacecolor() == "none" for line in circles)
    finally:
        plt.close(fig)


def test_boxplots_whiskers_stop_at_the_cut(rng):
    fig, axes = plotting.metric_boxplots(_results_table(rng, low=-50.0),
                                         {"tau_eff_acc_mean": "(d)"}, datasets=["simulated"])
    try:
        ax = axes[0, 0]
        bottom = ax.get_ylim()[0]
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(dashed) == 1
        line = dashed[0].get_ydata()[0]
        for container in _boxes(ax, plotting.PAPER_METHODS).values():
            for whisker in container.whiskers:
                assert min(whisker.get_ydata()) >= line > bottom
    finally:
        plt.close(fig)


def test_boxplots_of_any_methods_in_the_table_order_with_descriptions(rng):
    base = _results_table(rng)
    extra = [base[base.method == "interpolation"].assign(method=m)
             for m in ("local_bayes", "interpolation_centred", "my_method")]
    import pandas as pd

    table = pd.concat([base, *extra], ignore_index=True)
    one = {"accuracy": "(a) accuracy"}
    fig, axes = plotting.metric_boxplots(table, one, datasets=["simulated"], methods=None)
    try:
        order = ["bin", "diffu", "interpolation", "interpolation_centred", "local_bayes",
                 "my_method"]
        boxes = _boxes(axes[0, 0], order)
        colours = plotting.method_colors(order)
        for method, container in boxes.items():
            assert _box_colours(container) == {matplotlib.colors.to_hex(colours[method])}
        labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert labels[:len(order)] == [plotting.method_legend_label(m) for m in order]
        assert "network, binary LR input" in labels[0]
        assert labels[5] == "my_method"
        assert len(set(colours.values())) == len(order)
    finally:
        plt.close(fig)
    fig, axes = plotting.metric_boxplots(table, one, datasets=["simulated"])  # the paper's 3
    try:
        boxes = _boxes(axes[0, 0], plotting.PAPER_METHODS)
        assert _box_colours(boxes["interpolation"]) == {
            plotting.METHOD_COLORS["interpolation"].lower()}
    finally:
        plt.close(fig)


def test_boxplots_reject_bad_arguments(rng):
    table = _results_table(rng)
    with pytest.raises(ValueError, match="methods"):
        plotting.fig6_boxplots(table, methods=["local_bayes"])
    with pytest.raises(ValueError, match="methods"):
        plotting.fig6_boxplots(table, methods="bin")
    with pytest.raises(ValueError, match="whiskers"):
        plotting.fig6_boxplots(table, whiskers="iqr")
    with pytest.raises(ValueError, match="metrics"):
        plotting.metric_boxplots(table, {"no_such_column": "x"})
    with pytest.raises(ValueError, match="datasets"):
        plotting.fig6_boxplots(table, datasets=["other"])


def test_method_table_is_complete_and_colours_distinct():
    keys = list(plotting.METHOD_LABELS)
    assert keys[:3] == list(plotting.PAPER_METHODS)
    assert list(plotting.METHOD_COLORS) == keys == list(plotting.METHOD_DESCRIPTIONS)
    hexes = [matplotlib.colors.to_hex(c) for c in plotting.METHOD_COLORS.values()]
    assert len(set(hexes)) == len(hexes)
    spare = plotting.method_colors(["bin", "x", "y"])
    assert spare["bin"] == plotting.METHOD_COLORS["bin"] and spare["x"] != spare["y"]
    assert not set(map(matplotlib.colors.to_hex, (spare["x"], spare["y"]))) & set(hexes)


def test_import_changes_no_global_matplotlib_state():
    import importlib

    before, backend = dict(matplotlib.rcParams), matplotlib.get_backend()
    for name in ("_style", "volumes", "curves", "diagram", "statistics"):
        importlib.reload(importlib.import_module(f"srlib.plotting.{name}"))
    importlib.reload(plotting)
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


def test_fig6_companion_draws_every_method_and_stars_the_whole_image_medians(rng):
    import pandas as pd

    base = _results_table(rng)
    extra = [base[base.method == "interpolation"].assign(method=m)
             for m in ("interpolation_centred", "local_bayes")]
    table = pd.concat([base, *extra], ignore_index=True)
    whole = base[(base.alpha == 4) & (base.method == "bin")].assign(accuracy=0.5)
    fig, axes = plotting.fig6_companion(table, whole_image=whole)
    try:
        assert axes.shape == (2, 4)
        order = ["bin", "diffu", "interpolation", "interpolation_centred", "local_bayes"]
        assert set(_boxes(axes[0, 0], order)) == set(order)
        stars = [line for line in axes[0, 0].lines if line.get_marker() == "*"]
        assert len(stars) == 1  # one (alpha, method) in the whole-image table
        x, y = stars[0].get_xdata()[0], stars[0].get_ydata()[0]
        assert y == pytest.approx(0.5)
        assert x == pytest.approx(1 + (0 - 2) * 0.8 / 5)  # alpha 4, first of five methods
        notes = [t.get_text() for t in fig.texts]
        assert any("whole-image variant" in t for t in notes)
    finally:
        plt.close(fig)
    fig, axes = plotting.fig6_companion(table)  # no variant: no stars, no note about it
    try:
        assert not [line for line in axes[0, 0].lines if line.get_marker() == "*"]
        assert not any("whole-image" in t.get_text() for t in fig.texts)
    finally:
        plt.close(fig)


def _capacity_table():
    import pandas as pd

    rows = [{"method": "bin", "alpha": 4, "features": f, "start": start, "steps": s,
             "gain": g} for f, start, runs in
            ((16, "transfer", ((25, 0.001), (50, 0.003), (250, 0.004))),
             (32, "scratch", ((25, -0.01), (50, 0.002))))
            for s, g in runs]
    rows += [{"method": m, "alpha": 4, "gain": g} for m, g in
             (("interpolation", 0.0), ("interpolation_centred", -0.03), ("local_bayes", 0.005))]
    return pd.DataFrame(rows)


def test_fig_capacity_one_line_per_width_and_a_line_per_reference():
    table = _capacity_table()
    fig, axes = plotting.fig_capacity(table)
    try:
        ax = axes[0]
        curves = [line for line in ax.lines if len(line.get_xdata()) > 2
                  or line.get_marker() not in ("None", None, "")]
        curves = [line for line in curves if list(line.get_xdata()) != [0, 1]]
        assert sorted(len(line.get_xdata()) for line in curves) == [2, 3]
        sixteen = next(line for line in curves if len(line.get_xdata()) == 3)
        assert list(sixteen.get_xdata()) == [25, 50, 250]
        assert list(sixteen.get_ydata()) == pytest.approx([0.001, 0.003, 0.004])
        levels = {round(float(line.get_ydata()[0]), 6): line.get_color() for line in ax.lines
                  if list(line.get_xdata()) == [0, 1]}
        assert levels == {0.0: plotting.METHOD_COLORS["interpolation"],
                          -0.03: plotting.METHOD_COLORS["interpolation_centred"],
                          0.005: plotting.METHOD_COLORS["local_bayes"]}
        assert ax.get_xscale() == "log"
        labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert any("16 features (transfer)" in t for t in labels)
        assert any("32 features (scratch)" in t for t in labels)
    finally:
        plt.close(fig)


def test_fig_capacity_rejects_a_table_without_runs():
    table = _capacity_table()
    with pytest.raises(ValueError, match="no run"):
        plotting.fig_capacity(table[table.method != "bin"])
    with pytest.raises(ValueError, match="gain"):
        plotting.fig_capacity(table.drop(columns="gain"))


def test_fig_paired_intervals_marks_ties_open_and_counts_infinite_values():
    import pandas as pd

    rows = []
    for dataset in ("simulated", "tomographic"):
        for alpha in (2, 4):
            rows.append({"comparison": "A − B", "dataset": dataset, "alpha": alpha,
                         "metric": "accuracy", "difference": 0.01, "lo": 0.005, "hi": 0.02})
            rows.append({"comparison": "C − B", "dataset": dataset, "alpha": alpha,
                         "metric": "accuracy", "difference": 0.001, "lo": -0.002, "hi": 0.004})
    rows.append({"comparison": "C − B", "dataset": "simulated", "alpha": 2, "metric": "tau",
                 "difference": -np.inf, "lo": -np.inf, "hi": 0.0})
    fig, axes = plotting.fig_paired_intervals(pd.DataFrame(rows),
                                              {"accuracy": "acc", "tau": "tau"})
    lines = [ln for ln in axes[0].get_lines() if ln.get_marker() == "o"]
    assert len(lines) == 8  # one marker per comparison, alpha and data set
    open_ = [ln for ln in lines if ln.get_markerfacecolor() == "white"]
    assert len(open_) == 4  # the C − B intervals cover zero
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [
        "A − B, α = 2", "A − B, α = 4", "C − B, α = 2", "C − B, α = 4"]
    assert any("1 not drawn" in t.get_text() for t in axes[1].texts)
    plt.close(fig)
