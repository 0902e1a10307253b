"""Field networks (the paper's future work): pairs, loss, network, inference and the study."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srlib import fields
from srlib.inference import super_resolve
from srlib.network import SRResNet3d, load_model, save_model
from srlib.training import targets
from srlib.training.cutouts import Pair, cutout_at, make_pair
from srlib.training.data import draw_plan
from srlib.training.loop import _loss, train
from srlib.training.symmetry import (
    apply_symmetry,
    axis_symmetries,
    cube_symmetries,
    reversed_axes,
)
from srlib.transport import diffusion_channels, effective_tortuosity


def _image(shape, seed, solid=0.6):
    from srlib import stochastic

    params = stochastic.ModelParams.from_solid_fraction(solid, gamma=0.5)
    return stochastic.sample(shape, params, seed=seed)


def _field_pair(hr, alpha, inputs="diffu"):
    pair = make_pair(hr, alpha)
    lr = pair.input[0] > 0.5
    x = targets.field_input(lr, inputs, channels=diffusion_channels(lr)
                            if inputs == "diffu" else None)
    return Pair(x, hr, diffusion_channels(hr))


# -- the lift, several fields at once, and the interpolation baseline ------------------------

def test_several_fields_share_one_lift_and_give_each_its_own_tau():
    image = _image((16, 16, 16), 1)
    channel = diffusion_channels(image)[0]
    noisy = np.clip(channel + np.random.default_rng(0).normal(0, 0.05, channel.shape), 0, 1)
    both = fields.taus_from_fields([channel, noisy], image, 0)
    assert both == [fields.tau_from_field(channel, image, 0),
                    fields.tau_from_field(noisy, image, 0)]
    assert fields.taus_from_fields([], image, 0) == []


def test_interpolation_reads_the_phase_own_values_near_walls():
    lr = np.zeros((6, 6, 6), dtype=bool)
    lr[:, :, 3:] = True  # solid half
    pore = np.where(~lr, 0.5, 0.0).astype(np.float32)  # a constant field in the pore
    filled = fields.interpolated_field(pore, 2, lr_phase=~lr)
    assert np.allclose(filled, 0.5)  # nearest-phase fill: the wall does not pull it down
    plain = fields.interpolated_field(pore, 2)
    assert plain[:, :, 5].max() < 0.5  # without it, the zeros of the solid leak in
    with pytest.raises(ValueError, match="lr_phase"):
        fields.interpolated_field(pore, 2, lr_phase=np.ones((3, 3, 3), bool))


# -- symmetries, pairs and cutouts with fields ------------------------------------------------

def test_axis_symmetries_keep_the_transport_axis():
    keep = axis_symmetries(0)
    forward = axis_symmetries(0, keep_direction=True)
    assert len(keep) == 16 and len(forward) == 8 and set(forward) <= set(keep)
    assert all(s.perm[0] == 0 for s in keep) and not any(s.flips[0] for s in forward)
    assert {s for s in cube_symmetries() if s.perm[1] == 1} == set(axis_symmetries(1))
    with pytest.raises(ValueError, match="axis"):
        axis_symmetries(3)


def test_a_pair_with_fields_cuts_the_image_and_fields_together():
    hr = _image((16, 16, 16), 2)
    pair = _field_pair(hr, 2)
    assert pair.fields.shape == (2, 16, 16, 16) and not pair.lazy
    sym = axis_symmetries(0, keep_direction=True)[5]
    x, y = cutout_at(pair, (1, 2, 3), 4, symmetry=sym)
    assert x.shape == (3, 4, 4, 4) and y.shape == (3, 8, 8, 8) and y.dtype == np.float32
    bare_x, bare_y = cutout_at(make_pair(hr, 2), (1, 2, 3), 4, symmetry=sym)
    assert np.array_equal(y[0], bare_y) and np.array_equal(x[0], bare_x[0])
    rev = reversed_axes(sym)  # aligned mirrors shift the HR window by α - 1 there
    lo = [2 * c - int(r) for c, r in zip((1, 2, 3), rev, strict=True)]
    window = tuple(slice(a, a + 8) for a in lo)
    assert np.array_equal(y[1:], apply_symmetry(pair.fields[(slice(None), *window)], sym))
    with pytest.raises(ValueError, match="fields"):
        Pair(pair.input, hr, np.zeros((2, 8, 8, 8), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        Pair(pair.input, hr, np.full((2, 16, 16, 16), np.nan, np.float32))


def test_plans_draw_only_the_allowed_symmetries():
    pairs = [make_pair(_image((16, 16, 16), 3), 2)]
    allowed = axis_symmetries(0, keep_direction=True)
    plan = draw_plan(np.random.default_rng(0), pairs, 40, 4, cutout=4, symmetries=allowed)
    drawn = {sym for step in plan for _, _, sym in step}
    assert drawn <= set(allowed) and len(drawn) > 4
    free = draw_plan(np.random.default_rng(0), pairs, 40, 4, cutout=4)
    assert not {sym for step in free for _, _, sym in step} <= set(allowed)


# -- the loss, the network and its inference -------------------------------------------------

def test_the_loss_is_bce_plus_the_weighted_error_of_each_field_on_its_phase():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, 4)
    image = (torch.rand(2, 1, 4, 4, 4) > 0.5).float()
    y = torch.cat([image, torch.rand(2, 2, 4, 4, 4)], dim=1)
    loss = _loss(lambda x: x, logits, y, False, 3.0)
    bce = F.binary_cross_entropy_with_logits(logits[:, :1], image)
    pore = ((logits[:, 1] - y[:, 1]) ** 2 * (1 - image[:, 0])).sum()
    solid = ((logits[:, 2] - y[:, 2]) ** 2 * image[:, 0]).sum()
    assert float(loss) == pytest.approx(float(bce + 3.0 * (pore + solid) / logits[:, 1:].numel()),
                                        rel=1e-6)
    # one channel: the paper's loss alone
    assert float(_loss(lambda x: x, logits[:, :1], image, False)) == pytest.approx(float(bce))


def test_the_position_channel():
    pos = targets.Position((4, 3, 2))
    full = np.asarray(pos)
    assert full.shape == (4, 3, 2) and full.dtype == np.float32
    assert np.allclose(full[:, 0, 0], (np.arange(4) + 0.5) / 4) and np.ptp(full[1]) == 0
    assert np.array_equal(pos[1:3, :, 1:], full[1:3, :, 1:])
    x = targets.field_input(np.zeros((4, 3, 2), bool), "position")
    assert x.shape == (2, 4, 3, 2) and np.array_equal(x[1], full)
    with pytest.raises(ValueError, match="channels"):
        targets.field_input(np.zeros((4, 3, 2), bool), "diffu")
    with pytest.raises(ValueError, match="inputs"):
        targets.field_input(np.zeros((4, 3, 2), bool), "velocity")


@pytest.mark.parametrize("inputs", targets.FIELD_INPUTS)
def test_widened_network_starts_from_its_source_and_the_baseline(inputs, tmp_path):
    src = SRResNet3d(3 if inputs == "diffu" else 1, 2, features=4, blocks=1).eval()
    net = targets.widen_model(src, inputs).eval()
    assert net.config["field_skip"] == inputs and net.out_channels == 3
    lr = _image((8, 8, 8), 4) > 0
    x = targets.field_input(lr, inputs, channels=diffusion_channels(lr)
                            if inputs == "diffu" else None)
    with torch.no_grad():
        out = net(torch.from_numpy(x)[None])
        same = src(torch.from_numpy(x[: src.in_channels])[None])
        base = net.field_baseline(torch.from_numpy(x)[None])
    assert torch.allclose(out[:, :1], same, atol=1e-6)  # the source's morphology
    assert torch.allclose(out[:, 1:], base)  # the fields start as the upsampled input
    if inputs == "position":  # the linear profile, exact inside the domain
        z = (np.arange(16) + 0.5) / 16
        assert np.allclose(base[0, 0, 1:-1, 3, 3].numpy(), z[1:-1], atol=1e-6)
    loaded = load_model(save_model(net, tmp_path / "n.pt"))
    assert loaded.config == net.config
    with pytest.raises(ValueError, match="field_skip"):
        SRResNet3d(1, 2, features=4, blocks=1, field_skip="diffu")
    with pytest.raises(ValueError, match="widens"):
        targets.widen_model(net, inputs)


def test_all_channels_of_a_tiled_inference_equal_one_pass():
    net = targets.widen_model(SRResNet3d(3, 2, features=4, blocks=1), "diffu").eval()
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.3)
    lr = _image((12, 12, 12), 5) > 0
    x = targets.field_input(lr, "diffu", channels=diffusion_channels(lr))
    one = super_resolve(net, x, all_channels=True, progress=False)
    tiled = super_resolve(net, x, all_channels=True, tile=4, upsample_tile=2, progress=False)
    assert one.shape == (3, 24, 24, 24) and np.allclose(one, tiled, atol=1e-5)
    assert np.allclose(one[0], super_resolve(net, x, progress=False), atol=1e-6)
    with pytest.raises(ValueError, match="all_channels"):
        super_resolve(net, x, all_channels=True, threshold=0.5)


def test_training_on_fields_moves_the_field_channels_and_refuses_mixed_settings():
    hr = _image((24, 24, 24), 6)
    pair = _field_pair(hr, 2)
    net = targets.widen_model(SRResNet3d(3, 2, features=4, blocks=1), "diffu")
    before = [float(v) for v in net.tail.weight.detach()[1:].flatten()[:3]]
    result = train(net, [pair], [pair], cutout=5, batch_size=2, steps_per_epoch=5,
                   max_epochs=2, val_cutouts=2, learning_rate=1e-3, field_weight=1.0,
                   progress=False)
    assert all(np.isfinite(result.val_loss)) and result.steps == 10
    assert [float(v) for v in net.tail.weight.detach()[1:].flatten()[:3]] != before
    with pytest.raises(ValueError, match="field_weight"):
        train(net, [pair], [pair], cutout=5, batch_size=2, steps_per_epoch=1, max_epochs=1,
              val_cutouts=1, progress=False)
    bare = SRResNet3d(3, 2, features=4, blocks=1)
    with pytest.raises(ValueError, match="out_channels"):
        train(bare, [pair], [pair], cutout=5, batch_size=2, steps_per_epoch=1, max_epochs=1,
              val_cutouts=1, field_weight=1.0, progress=False)


# -- the study: trained once from the study's networks, scored, reused -----------------------

STUDY = dict(hr_size=16, alphas=(2, 4), batch_sizes=(2, 1), cutout=3, features=2, blocks=1,
             max_epochs=1, steps_per_epoch=1, patience=2, val_cutouts=2, field_alphas=(2,),
             field_epochs=1)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from srlib import datasets
    from srlib.config import get_profile
    from srlib.training import train_networks

    profile = get_profile("tiny", **STUDY)
    samples = [datasets.Sample(name=f"s{k}", image=_image((24, 24, 24), 10 + k),
                               voxel_size_um=None, source="test") for k in range(2)]
    root = tmp_path_factory.mktemp("fields")
    db = datasets.build_database(profile, samples=samples, root=root / "database",
                                 workers=1, progress=False)
    datasets.build_diffusion_channels(db, workers=1, progress=False)
    fields.build_hr_channels(db, workers=1, progress=False)
    nets = train_networks(db, profile, root / "networks", progress=False, num_threads=1)
    return profile, db, root, nets


def test_field_pairs_hold_the_stored_hr_channels(study):
    _, db, _, _ = study
    for inputs, channels in (("diffu", 3), ("position", 2)):
        pairs = targets.field_pairs(db, "train", 2, inputs, connectivity="face")
        assert len(pairs) == len(db.scenario_names) * len(db.indices("train"))
        p = pairs[0]
        assert p.channels == channels
        s, i = db.scenario_names[0], db.indices("train")[0]
        assert np.array_equal(np.asarray(p.fields), fields.hr_channels(db, s, i))
        assert np.array_equal(np.asarray(p.input)[0], db.lr(s, i, 2))


def test_field_networks_train_once_are_reused_and_retrain_for_another_source(study):
    from srlib import fieldnets

    profile, db, root, nets = study
    out = root / "field_networks"
    first = fieldnets.train_field_networks(db, profile, out, nets, progress=False)
    assert set(first) == {("fields_diffu", 2), ("fields_position", 2), ("diffu_tuned", 2)}
    assert all(n.trained_now and 0 < n.threshold < 1 for n in first.values())
    meta = json.loads((out / "N_diffu_tuned_2.json").read_text())
    assert meta["settings"]["field_weight"] == 0.0
    # the control: A's training with field weight 0, so its fields stay its fixed upsampling
    control = first["diffu_tuned", 2].model
    assert float(control.tail.weight.detach()[1:].abs().max()) == 0.0
    assert float(first["fields_diffu", 2].model.tail.weight.detach()[1:].abs().max()) > 0.0
    again = fieldnets.train_field_networks(db, profile, out, nets, progress=False)
    assert not any(n.trained_now for n in again.values())
    loaded = fieldnets.load_field_networks(profile, out, nets)
    for key, net in first.items():
        for k, v in net.model.state_dict().items():
            assert torch.equal(v, loaded[key].model.state_dict()[k]), k
    # another N^diffu (other weights): A is stale, B (from N^bin) is not
    other = dict(nets)
    other["diffu", 2] = dataclasses.replace(
        nets["diffu", 2], model=SRResNet3d(**nets["diffu", 2].model.config))
    with pytest.raises(ValueError, match="other networks or settings"):
        fieldnets.load_field_networks(profile, out, other)
    redone = fieldnets.train_field_networks(db, profile, out, other, progress=False)
    assert redone["fields_diffu", 2].trained_now and redone["diffu_tuned", 2].trained_now
    assert not redone["fields_position", 2].trained_now


def test_the_field_study_scores_every_route_and_reuses_its_records(study):
    from srlib import fieldnets
    from srlib.methods import FIELD_METHODS

    profile, db, root, nets = study
    field_nets = fieldnets.train_field_networks(db, profile, root / "field_networks", nets,
                                                progress=False)
    hr = _image((16, 16, 16), 20)
    images = [("simulated", "s0", hr)]
    out = fieldnets.field_study(images, nets, field_nets, 2, root / "fields",
                                progress=False, workers=1)
    errors, whole, times, morph = (out[k] for k in ("errors", "images", "times", "morphology"))
    assert set(errors.method) == set(FIELD_METHODS) and len(errors) == 5 * 2 * 8
    assert errors.rms.dropna().between(0, 1).all()
    assert errors.isolated_share.dropna().between(0, 1).all()
    # the interpolation route is the LR solution interpolated, scored on each region
    lr = hr.reshape(8, 2, 8, 2, 8, 2)[:, 0, :, 0, :, 0]
    lr_fields = diffusion_channels(lr)
    interp = fields.interpolated_channels(lr_fields, lr, 2)[1]
    true = diffusion_channels(hr)[1]
    region = (slice(0, 8),) * 3
    first = errors[(errors.method == "field_interpolation") & (errors.phase == "solid")
                   & (errors.sub_image == 0)].rms.item()
    solid = hr[region]
    expected = np.sqrt(np.mean((interp[region] - true[region])[solid] ** 2))
    assert first == pytest.approx(expected, rel=1e-5)
    row = whole[(whole.method == "field_interpolation") & (whole.phase == "solid")]
    assert row.relative_l2.item() == pytest.approx(fields.relative_l2(interp, true, hr, 1),
                                                   rel=1e-6)
    wide = fieldnets.field_table(errors)
    assert len(wide) == 5 * 8 and {"rms_pore", "rms_solid"} <= set(wide.columns)
    taus = whole
    assert set(taus.method) == set(FIELD_METHODS) and len(taus) == 5 * 2
    assert (taus.tau_eff_fem >= 1).all()
    assert set(times.route) == {"hr_fem", *FIELD_METHODS} and (times.seconds > 0).all()
    assert set(morph.method) == set(fieldnets.FIELD_NETWORKS) and len(morph) == 3 * 8
    slices = fieldnets.field_slices(root / "fields", "simulated", "s0", 2)
    assert slices["fem"].shape == (2, 16, 16) and set(FIELD_METHODS) <= set(slices)
    # a second call reads the record; another image is scored anew
    record = root / "fields" / "simulated_s0_a2.json"
    stamp = record.stat().st_mtime_ns
    fieldnets.field_study(images, nets, field_nets, 2, root / "fields", progress=False,
                          workers=1)
    assert record.stat().st_mtime_ns == stamp
    other = [("simulated", "s0", _image((16, 16, 16), 21))]
    fieldnets.field_study(other, nets, field_nets, 2, root / "fields", progress=False,
                          workers=1)
    assert json.loads(record.read_text())["settings"]["image"] != "" and \
        record.stat().st_mtime_ns != stamp


def test_compare_routes_reads_lower_errors_as_better_and_ties_within_the_floor():
    import pandas as pd

    from srlib import fieldnets

    rng = np.random.default_rng(0)
    rows = []
    for k in range(16):
        base = rng.uniform(0.1, 0.2)
        for method, err in (("a", base - 0.05), ("b", base)):
            rows.append({"dataset": "simulated", "sample": "s", "alpha": 2, "sub_image": k,
                         "method": method, "rms_pore": err, "score": -err})
    table = pd.DataFrame(rows)
    err = fieldnets.compare_routes(table, ["rms_pore"], "a", "b", lower_is_better=["rms_pore"])
    (r,) = err.itertuples()
    assert r.verdict == "better" and r.difference == pytest.approx(-0.05)
    assert r.lo <= r.difference <= r.hi < 0
    score = fieldnets.compare_routes(table, ["score"], "a", "b")
    assert score.verdict.item() == "better" and score.difference.item() == pytest.approx(0.05)
    tied = fieldnets.compare_routes(table, ["score"], "a", "b", floor={"score": 0.06})
    assert tied.verdict.item() == "tie"


def test_the_field_command_reports_the_tau_of_the_predicted_field(study, tmp_path, monkeypatch,
                                                                  capsys):
    from srlib import cli, fieldnets, io
    from srlib.resample import downsample

    profile, db, root, nets = study
    fieldnets.train_field_networks(db, profile, root / "field_networks", nets, progress=False)
    monkeypatch.setattr(cli, "_profile", lambda args: profile)
    monkeypatch.setattr(cli, "_out", lambda args, p: root)
    hr = _image((16, 16, 16), 30)
    io.write_volume(tmp_path / "lr.npy", downsample(hr, 2))
    io.write_volume(tmp_path / "hr.npy", hr)
    argv = ["field", str(tmp_path / "lr.npy"), str(tmp_path / "f.npz"), "--alpha", "2",
            "--hr", str(tmp_path / "hr.npy"), "--json", str(tmp_path / "r.json")]
    assert cli.main(argv) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["method"] == "fields_position"
    with np.load(tmp_path / "f.npz") as saved:
        assert saved["fields"].shape == (2, 16, 16, 16) and saved["image"].dtype == bool
        for c, name in enumerate(("pore", "solid")):
            phase = c == 1
            fem = float(report[name]["tau_eff_fem_hr"])
            assert fem == pytest.approx(effective_tortuosity(hr, phase))
            expected = fields.relative_l2(saved["fields"][c], diffusion_channels(hr)[c], hr,
                                          phase)
            assert report[name]["relative_l2"] == pytest.approx(expected)
    capsys.readouterr()
    assert cli.main(["field", str(tmp_path / "lr.npy"), str(tmp_path / "f.tif"),
                     "--alpha", "2"]) == 2
    assert "npz" in capsys.readouterr().err
    assert cli.main(["field", str(tmp_path / "lr.npy"), str(tmp_path / "f.npz"), "--alpha",
                     "2", "--hr", str(tmp_path / "lr.npy")]) == 2
    assert "--hr has shape" in capsys.readouterr().err


def test_an_interrupted_field_training_resumes_from_its_checkpoint(study):
    from srlib import fieldnets

    profile, db, root, nets = study
    out = root / "field_networks_resume"
    first = fieldnets.train_field_networks(db, profile, out, nets, progress=False)
    # interrupted after training but before its weights and metadata were written
    (out / "N_fields_position_2.pt").unlink()
    (out / "N_fields_position_2.json").unlink()
    assert (out / "N_fields_position_2.ckpt").exists()
    second = fieldnets.train_field_networks(db, profile, out, nets, progress=False)
    again = second["fields_position", 2]
    assert again.trained_now and not second["fields_diffu", 2].trained_now
    before = first["fields_position", 2]
    assert dataclasses.replace(again.result, seconds=0) == dataclasses.replace(
        before.result, seconds=0)
    for k, v in before.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
