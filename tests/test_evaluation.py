import numpy as np
import pytest
import torch

from srlib import evaluation
from srlib import resolvers as resolution
from srlib.resample import downsample, interpolate_quadratic_binary


@pytest.fixture
def hr():
    from srlib import stochastic

    params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.5)
    return stochastic.sample(16, params, seed=4)


def test_sub_image_pairs_align(hr):
    pairs = evaluation.sub_image_pairs(hr, 2)
    assert len(pairs) == 8
    for lr_k, hr_k in pairs:
        assert hr_k.shape == (8, 8, 8)
        assert np.array_equal(lr_k, downsample(hr_k, 2))
    with pytest.raises(ValueError, match="divisible"):
        evaluation.sub_image_pairs(hr[:12, :12, :12], 8)


def test_oracle_scores_one_and_interpolation_less(hr):
    truth = {lr.tobytes(): h for lr, h in evaluation.sub_image_pairs(hr, 2)}
    resolvers = {
        "oracle": lambda lr: truth[lr.tobytes()],
        "interpolation": lambda lr: interpolate_quadratic_binary(lr, 2),
    }
    rows = evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="simulated",
                                     sample="s", effective=False)
    assert len(rows) == 16
    oracle = [r for r in rows if r["method"] == "oracle"]
    assert all(r["accuracy"] == 1.0 and r["surface_accuracy"] == 1.0 for r in oracle)
    interp = [r for r in rows if r["method"] == "interpolation"]
    assert all(r["accuracy"] < 1.0 for r in interp)
    assert {r["sub_image"] for r in rows} == set(range(8))


def test_run_protocol_writes_table_and_resumes(hr, tmp_path, monkeypatch):
    images = [("simulated", "s", hr), ("tomographic", "t", ~hr)]
    table = evaluation.run_protocol(images, {}, (2, 4), tmp_path, methods=("interpolation",),
                                    effective=False, progress=False)
    assert len(table) == 2 * 2 * 8
    assert (tmp_path / "evaluation.csv").exists()
    assert len(list((tmp_path / "evaluation").glob("*.csv"))) == 4

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a finished group")

    monkeypatch.setattr(evaluation, "evaluate_image", fail)
    again = evaluation.run_protocol(images, {}, (2, 4), tmp_path, methods=("interpolation",),
                                    effective=False, progress=False)
    assert again.shape == table.shape
    # the same options as one record find the same stored rows
    settings = evaluation.ProtocolSettings(methods=("interpolation",), effective=False)
    as_record = evaluation.run_protocol(images, {}, (2, 4), tmp_path, settings=settings,
                                        progress=False)
    assert as_record.equals(again)
    with pytest.raises(ValueError, match="not both"):
        evaluation.run_protocol(images, {}, (2, 4), tmp_path, settings=settings,
                                effective=False, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        evaluation.ProtocolSettings(methods=("nearest",))


def test_run_protocol_removes_its_stale_temporary_files_only(hr, tmp_path):
    from srlib.io import is_temp_name

    own = [tmp_path / ".evaluation.csv.srlibtmpab12cd34.csv",
           tmp_path / "evaluation" / ".simulated_s_a2.csv.srlibtmpab12cd34.csv"]
    other = tmp_path / "networks" / ".N_bin_2.pt.srlibtmpab12cd34.pt"  # another stage's folder
    # a user's hidden files, which the earlier clean-up deleted ("removed 2 stale ...")
    users = [tmp_path / ".env.defaults", tmp_path / ".notes.20240101"]
    for p in [*own, other, *users]:
        p.parent.mkdir(exist_ok=True)
        p.write_text("killed write")
    assert all(is_temp_name(p.name) for p in [*own, other])
    evaluation.run_protocol([("simulated", "s", hr)], {}, (2,), tmp_path,
                            methods=("interpolation",), effective=False, progress=False)
    assert not any(p.exists() for p in own)
    assert other.exists() and all(p.exists() for p in users)


def test_duplicate_labels_and_alphas_are_refused(tmp_path, hr):
    """Two images under one label overwrote each other; alphas=(2, 2) doubled the rows."""
    with pytest.raises(ValueError, match=r"distinct \(dataset, sample\) labels"):
        evaluation.run_protocol([("simulated", "s", hr), ("simulated", "s", ~hr)], {}, (2,),
                                tmp_path, methods=("interpolation",), effective=False,
                                progress=False)
    with pytest.raises(ValueError, match="alphas must be distinct"):
        evaluation.run_protocol([("simulated", "s", hr)], {}, (2, 2), tmp_path,
                                methods=("interpolation",), effective=False, progress=False)
    assert not (tmp_path / "evaluation.csv").exists()


def test_results_are_reused_only_for_the_image_that_made_them(tmp_path, hr):
    """A second image under the same label used to get the first one's rows."""
    from srlib import stochastic

    kw = dict(methods=("interpolation",), effective=False, progress=False)
    other = stochastic.sample(16, stochastic.ModelParams.from_solid_fraction(0.4, gamma=0.5),
                              seed=5)
    first = evaluation.run_protocol([("simulated", "s", hr)], {}, (2,), tmp_path, **kw)
    second = evaluation.run_protocol([("simulated", "s", other)], {}, (2,), tmp_path, **kw)
    fresh = evaluation.run_protocol([("simulated", "s", other)], {}, (2,),
                                    tmp_path / "fresh", **kw)
    assert set(first["image"]) == {evaluation.image_digest(hr)}
    assert set(second["image"]) == {evaluation.image_digest(other)}
    assert second["accuracy"].tolist() == fresh["accuracy"].tolist()
    assert second["accuracy"].tolist() != first["accuracy"].tolist()


def test_unknown_method(tmp_path, hr):
    with pytest.raises(ValueError, match="unknown method"):
        evaluation.run_protocol([("simulated", "s", hr)], {}, (2,), tmp_path, methods=("gan",))
    with pytest.raises(ValueError, match="workers"):
        evaluation.run_protocol([("simulated", "s", hr)], {}, (2,), tmp_path, workers=0)


def test_sub_image_tortuosities_are_shared_by_all_alphas(hr, monkeypatch):
    refs = evaluation.sub_image_tortuosities(hr, effective=False)
    assert len(refs) == 8 and all(set(r) == {"geod"} for r in refs)
    resolvers = {"interpolation": lambda lr: interpolate_quadratic_binary(lr, 2)}
    direct = evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d",
                                       sample="s", effective=False)
    shared = evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d",
                                       sample="s", effective=False, references=refs)
    keys = [k for k in direct[0] if k != "sr_seconds"]
    assert [[r[k] for k in keys] for r in direct] == [[r[k] for k in keys] for r in shared]


def test_effective_sub_images_limits_and_marks_the_fem_rows(hr, monkeypatch):
    from srlib import transport

    calls = []

    def fake(image, phase, **kwargs):
        calls.append(image.shape)
        return 1.5

    monkeypatch.setattr(transport, "effective_tortuosity", fake)
    resolvers = {"interpolation": lambda lr: interpolate_quadratic_binary(lr, 2)}
    rows = evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d", sample="s",
                                     effective_sub_images=3)
    assert [r["effective_computed"] for r in rows] == [k < 3 for k in range(8)]
    assert all(r["tau_eff_acc_mean"] is None for r in rows[3:])
    assert all(r["tau_eff_acc_mean"] is not None for r in rows[:3])
    assert len(calls) <= 3 * 2 * 2  # at most 2 phases, hr and sr, 3 sub-images
    with pytest.raises(ValueError, match="effective_sub_images"):
        evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d", sample="s",
                                  effective_sub_images=9)


def test_run_protocol_recomputes_groups_written_with_other_settings(hr, tmp_path):
    images = [("simulated", "s", hr)]
    kw = {"methods": ("interpolation",), "progress": False}
    evaluation.run_protocol(images, {}, (2,), tmp_path, effective=False, **kw)
    part = tmp_path / "evaluation" / "simulated_s_a2.csv"
    first = part.stat().st_mtime_ns
    evaluation.run_protocol(images, {}, (2,), tmp_path, effective=False, **kw)
    assert part.stat().st_mtime_ns == first  # reused
    table = evaluation.run_protocol(images, {}, (2,), tmp_path, effective=True,
                                    effective_sub_images=1, **kw)
    assert part.stat().st_mtime_ns != first  # recomputed: effective tortuosity now wanted
    assert table.effective_computed.tolist() == [k == 0 for k in range(8)]


def test_stored_results_of_retrained_networks_are_recomputed(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from srlib import stochastic
    from srlib.network import load_model, save_model
    from srlib.training import make_model

    hr = stochastic.sample(16, stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.5), seed=1)
    model = make_model(1, 2, features=2, blocks=1, seed=0)
    net = SimpleNamespace(kind="bin", alpha=2, threshold=0.5, model=model)
    # the identity is the weights' content: a saved and reloaded copy keeps it
    save_model(model, tmp_path / "a.pt")
    reloaded = SimpleNamespace(kind="bin", alpha=2, threshold=0.5,
                               model=load_model(tmp_path / "a.pt"))
    assert (resolution.network_ids({("bin", 2): net}, 2, ("bin",))
            == resolution.network_ids({("bin", 2): reloaded}, 2, ("bin",)))
    monkeypatch.setattr(resolution, "network_resolver",
                        lambda n, **kw: lambda lr: interpolate_quadratic_binary(lr, 2))
    images = [("simulated", "s", hr)]
    first = evaluation.run_protocol(images, {("bin", 2): net}, (2,), tmp_path,
                                    methods=("bin", "interpolation"), effective=False,
                                    progress=False)
    calls = []
    original = evaluation.evaluate_image

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_image", counting)
    evaluation.run_protocol(images, {("bin", 2): net}, (2,), tmp_path,
                            methods=("bin", "interpolation"), effective=False, progress=False)
    assert calls == []  # same networks: reused
    with torch.no_grad():  # "retrained": one weight changed
        model.tail.bias += 1e-3
    again = evaluation.run_protocol(images, {("bin", 2): net}, (2,), tmp_path,
                                    methods=("bin", "interpolation"), effective=False,
                                    progress=False)
    assert calls == [1]  # retrained: recomputed
    assert set(first["network_id"]) != set(again["network_id"])


class _Capture:
    """A stand-in for srlib.inference.super_resolve that records the network's input."""

    def __init__(self):
        self.inputs = []

    def __call__(self, model, x, *, threshold=None, device=None, progress=True):
        self.inputs.append(np.array(x))
        a = model  # the fake network's "model" is its alpha
        return x[0].repeat(a, 0).repeat(a, 1).repeat(a, 2) > 0.5


def _fake_diffu(alpha):
    from types import SimpleNamespace

    return SimpleNamespace(kind="diffu", alpha=alpha, threshold=0.5, model=alpha)


def test_diffu_input_is_the_split_of_the_whole_image_channels(hr, monkeypatch):
    from srlib import inference
    from srlib.transport import diffusion_channels

    capture = _Capture()
    monkeypatch.setattr(inference, "super_resolve", capture)
    resolvers = resolution.method_resolvers(2, {("diffu", 2): _fake_diffu(2)},
                                            methods=("diffu",))
    assert resolvers["diffu"].needs_channels
    rows = evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d", sample="s",
                                     effective=False)
    assert [r["channels"] for r in rows] == ["whole"] * 8
    lr = downsample(hr, 2)
    whole = diffusion_channels(lr)
    assert len(capture.inputs) == 8
    for k, (x, (lr_k, _)) in enumerate(zip(capture.inputs, evaluation.sub_image_pairs(hr, 2),
                                           strict=True)):
        assert np.array_equal(x[0], lr_k)
        for c in range(2):
            assert np.array_equal(x[1 + c], evaluation.subdivide(whole[c])[k])
    # the named option recomputes them on each sub-image: another input on this image
    capture.inputs.clear()
    evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d", sample="s",
                              effective=False, channels="sub_image")
    per_sub = [diffusion_channels(lr_k) for lr_k, _ in evaluation.sub_image_pairs(hr, 2)]
    assert all(np.array_equal(x[1:], c) for x, c in zip(capture.inputs, per_sub, strict=True))
    assert not all(np.array_equal(x[1:], np.stack([evaluation.subdivide(w)[k] for w in whole]))
                   for k, x in enumerate(capture.inputs))
    with pytest.raises(ValueError, match="channels must be one of"):
        evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d", sample="s",
                                  effective=False, channels="crop")


def test_whole_image_variant_cuts_sub_images_from_the_whole_super_resolution(hr, monkeypatch):
    from srlib import inference
    from srlib.transport import diffusion_channels

    capture = _Capture()
    monkeypatch.setattr(inference, "super_resolve", capture)
    seen = []

    def recording(lr):
        seen.append(lr.shape)
        return interpolate_quadratic_binary(lr, 2)

    resolvers = {"diffu": resolution.network_resolver(_fake_diffu(2)), "interpolation": recording}
    rows = evaluation.evaluate_image(hr, alpha=2, resolvers=resolvers, dataset="d", sample="s",
                                     effective=False, variant="whole_image")
    lr = downsample(hr, 2)
    assert seen == [lr.shape] and len(capture.inputs) == 1
    assert np.array_equal(capture.inputs[0][1:], diffusion_channels(lr))
    sr = interpolate_quadratic_binary(lr, 2)
    from srlib.metrics import accuracy

    interp = [r for r in rows if r["method"] == "interpolation"]
    assert [r["accuracy"] for r in interp] == [
        accuracy(s, h) for s, h in zip(evaluation.subdivide(sr), evaluation.subdivide(hr),
                                       strict=True)]
    assert {r["variant"] for r in rows} == {"whole_image"}


class _FakeDatabase:
    """The part of srlib.datasets.Database that fit_baselines reads, in memory."""

    def __init__(self, n=4, size=16):
        from srlib import stochastic

        params = stochastic.ModelParams.from_solid_fraction(0.6, gamma=0.5)
        self.images = [stochastic.sample(size, params, seed=10 + i) for i in range(n)]
        self.alphas = (2, 4)
        self.scenario_names = ["s"]
        self.root = "memory"

    def indices(self, role=None):
        return {"train": [1, 2], "val": [3], "test": [4], None: [1, 2, 3, 4]}[role]

    def hr(self, s, i):
        return self.images[i - 1]

    def lr(self, s, i, alpha):
        return downsample(self.images[i - 1], alpha)


def test_run_protocol_scores_every_baseline_and_adds_missing_methods(hr, tmp_path, monkeypatch):
    from srlib import baselines

    fitted = baselines.fit_baselines(_FakeDatabase(), cutout=2)
    assert set(fitted) == {2, 4} and all(0 < t < 1 for t in fitted[2].thresholds.values())
    images = [("simulated", "s", hr)]
    kw = {"effective": False, "progress": False}
    first = evaluation.run_protocol(images, {}, (2,), tmp_path, methods=("interpolation",),
                                    **kw)
    assert set(first["method"]) == {"interpolation"}
    computed = []
    original = resolution.method_resolvers

    def recording(alpha, networks, *, methods, **kwargs):
        computed.append(tuple(methods))
        return original(alpha, networks, methods=methods, **kwargs)

    monkeypatch.setattr(resolution, "method_resolvers", recording)
    # no baselines: the fitted methods are skipped (and a network method without a network)
    table = evaluation.run_protocol(images, {}, (2,), tmp_path, **kw)
    assert computed == [("interpolation_centred",)]
    assert set(table["method"]) == {"interpolation", "interpolation_centred"}
    computed.clear()
    table = evaluation.run_protocol(images, {}, (2,), tmp_path, baselines=fitted, **kw)
    assert computed == [("interpolation_fitted", "interpolation_centred_fitted", "local_bayes")]
    assert set(table["method"]) == set(evaluation.METHODS) - {"bin", "diffu"}
    assert table.groupby("method").size().eq(8).all()
    assert table["network_id"][table.method == "local_bayes"].iloc[0] == (
        f"table:{fitted[2].local_bayes.digest}")
    # stored rows are reused, in the order of METHODS per sub-image
    assert table["method"].tolist()[:5] == [m for m in evaluation.METHODS if m in set(
        table["method"])]
    interp = table[table.method == "interpolation"].reset_index(drop=True)
    cols = ["sub_image", "accuracy", "surface_accuracy"]
    assert interp[cols].equals(first[cols])
    computed.clear()
    evaluation.run_protocol(images, {}, (2,), tmp_path, baselines=fitted, **kw)
    assert computed == []  # everything current
    # another fitted threshold: only that method is recomputed
    refit = {2: baselines.Baselines(2, {"aligned": 0.3, "centred": fitted[2].thresholds[
        "centred"]}, fitted[2].local_bayes)}
    evaluation.run_protocol(images, {}, (2,), tmp_path, baselines=refit, **kw)
    assert computed == [("interpolation_fitted",)]


def test_stored_parts_are_keyed_by_connectivity_axis_and_variant(hr, tmp_path, monkeypatch):
    images = [("simulated", "s", hr)]
    kw = {"methods": ("interpolation",), "effective": False, "progress": False}
    evaluation.run_protocol(images, {}, (2,), tmp_path, **kw)
    calls = []
    original = evaluation.evaluate_image

    def counting(*args, **kwargs):
        calls.append((kwargs["connectivity"], kwargs["axis"], kwargs["variant"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_image", counting)
    evaluation.run_protocol(images, {}, (2,), tmp_path, **kw)
    assert calls == []
    table = evaluation.run_protocol(images, {}, (2,), tmp_path, connectivity="vertex", **kw)
    assert calls == [("vertex", 0, "sub_image")] and set(table.connectivity) == {"vertex"}
    table = evaluation.run_protocol(images, {}, (2,), tmp_path, connectivity="vertex", axis=1,
                                    **kw)
    assert calls[-1] == ("vertex", 1, "sub_image") and set(table.axis) == {1}
    whole = evaluation.run_protocol(images, {}, (2,), tmp_path, connectivity="vertex", axis=1,
                                    variant="whole_image", **kw)
    assert calls[-1] == ("vertex", 1, "whole_image")
    assert (tmp_path / "evaluation_whole_image.csv").exists()
    assert (tmp_path / "evaluation" / "simulated_s_a2_whole_image.csv").exists()
    assert len(whole) == 8 and set(whole.variant) == {"whole_image"}
    n = len(calls)
    evaluation.run_protocol(images, {}, (2,), tmp_path, connectivity="vertex", axis=1, **kw)
    assert len(calls) == n  # the variant's parts do not replace the default ones
    with pytest.raises(ValueError, match="variant"):
        evaluation.run_protocol(images, {}, (2,), tmp_path, variant="whole", **kw)


def test_a_stored_part_with_a_subset_of_the_methods_is_completed(hr, tmp_path, monkeypatch):
    from srlib import inference

    monkeypatch.setattr(inference, "super_resolve", _Capture())
    nets = {("diffu", 2): _fake_diffu(2)}
    monkeypatch.setattr(resolution, "network_ids", lambda networks, alpha, methods, **kw: {
        m: ("net" if m == "diffu" else "-") for m in methods
        if m != "diffu" or ("diffu", alpha) in networks})
    images = [("simulated", "s", hr)]
    kw = {"effective": False, "progress": False, "methods": ("diffu", "interpolation")}
    evaluation.run_protocol(images, {}, (2,), tmp_path, **kw)  # no network: interpolation only
    table = evaluation.run_protocol(images, nets, (2,), tmp_path, **kw)
    assert table.groupby("method").size().to_dict() == {"diffu": 8, "interpolation": 8}
    # a channel definition is part of N^diffu's key only; the option has its own files
    table = evaluation.run_protocol(images, nets, (2,), tmp_path, channels="sub_image", **kw)
    assert set(table.channels) == {"sub_image", "-"}
    assert (tmp_path / "evaluation_sub_image_channels.csv").exists()
    part = tmp_path / "evaluation" / "simulated_s_a2.csv"
    before = part.stat().st_mtime_ns
    default = evaluation.run_protocol(images, nets, (2,), tmp_path, **kw)
    assert part.stat().st_mtime_ns == before and set(default.channels) == {"whole", "-"}



def test_effective_methods_limit_the_fem_to_those_methods_and_key_the_parts(hr, tmp_path,
                                                                           monkeypatch):
    from srlib import transport

    monkeypatch.setattr(transport, "effective_tortuosity", lambda image, phase, **kw: 1.5)
    images = [("simulated", "s", hr)]
    kw = {"methods": ("interpolation", "interpolation_centred"), "progress": False}
    table = evaluation.run_protocol(images, {}, (2,), tmp_path,
                                    effective_methods=("interpolation",), **kw)
    by = table.groupby("method").effective_computed.agg(list)
    assert by["interpolation"] == [True] * 8 and by["interpolation_centred"] == [False] * 8
    assert table[table.method == "interpolation_centred"].tau_eff_acc_mean.isna().all()
    part = tmp_path / "evaluation" / "simulated_s_a2.csv"
    first = part.stat().st_mtime_ns
    evaluation.run_protocol(images, {}, (2,), tmp_path, effective_methods=("interpolation",),
                            **kw)
    assert part.stat().st_mtime_ns == first  # the same settings: reused
    table = evaluation.run_protocol(images, {}, (2,), tmp_path, **kw)  # FEM for every method
    assert table.effective_computed.all()
    with pytest.raises(ValueError, match="effective_methods"):
        evaluation.run_protocol(images, {}, (2,), tmp_path, effective_methods=("nope",), **kw)
