"""Measurement: the weight of the field term in the field networks' loss (issue 23, item 2).

The paper gives no loss for field outputs. :func:`srlib.training.train` with ``field_weight``
w minimises ``BCE(morphology) + w * MSE(fields on their phase)``. This script fine-tunes both
field networks of the future-work chapter (``fields_diffu``, experiment A, from N^diffu;
``fields_position``, experiment B, from N^bin) for each w, exactly as the book does
(:func:`srlib.fieldnets.train_field_networks` with the profile's ``field_weight`` replaced),
and scores them on the *validation* realizations (never the test images), whole image each:

* the median relative L2 error of each phase's field against the FEM on the HR image;
* the voxel accuracy of the morphology (channel 0 at its fitted μ*), against the source
  network's (w = 0 would be the source network itself);
* the LR FEM solution interpolated (the baseline of the chapter), for scale.

It needs the profile's database and networks (``make book`` or ``srlib study`` first).
Output: a table on stdout and ``benchmarks/out/field_loss_weight.json``.

Run: ``python benchmarks/field_loss_weight.py [--profile quick] [--weights 1 10 100]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _scores(db, nets, field_nets, alpha: int) -> dict:
    from srlib import fieldnets
    from srlib.fields import hr_channels, interpolated_channels, relative_l2
    from srlib.metrics import accuracy
    from srlib.resample import downsample
    from srlib.resolvers import network_resolver
    from srlib.transport import diffusion_channels

    rows = {m: {"pore": [], "solid": [], "accuracy": []} for m in
            (*fieldnets.FIELD_NETWORKS, "field_interpolation")}
    for s in db.scenario_names:
        for i in db.indices("val"):
            hr = db.hr(s, i)
            true = hr_channels(db, s, i)
            lr = downsample(hr, alpha)
            lr_fields = diffusion_channels(lr)
            preds = {"field_interpolation": interpolated_channels(lr_fields, lr, alpha)}
            for method in fieldnets.FIELD_NETWORKS:
                net = field_nets[method, alpha]
                prob, preds[method] = fieldnets.predict_fields(net, lr, channels=lr_fields)
                rows[method]["accuracy"].append(accuracy(prob >= net.threshold, hr))
            for method, pred in preds.items():
                for c, (name, phase) in enumerate((("pore", False), ("solid", True))):
                    rows[method][name].append(relative_l2(pred[c], true[c], hr, phase))
    for kind in ("bin", "diffu"):
        sr = [network_resolver(nets[kind, alpha])(downsample(db.hr(s, i), alpha))
              for s in db.scenario_names for i in db.indices("val")]
        hrs = [db.hr(s, i) for s in db.scenario_names for i in db.indices("val")]
        rows[f"N_{kind}"] = {"accuracy": [accuracy(a, b) for a, b in zip(sr, hrs, strict=True)]}
    return {m: {k: float(np.median(v)) for k, v in r.items()} for m, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    args = parser.parse_args()

    from srlib import fieldnets
    from srlib.config import get_profile, results_dir
    from srlib.datasets import Database
    from srlib.fields import build_hr_channels
    from srlib.training.study import load_networks

    profile = get_profile(args.profile)
    root = results_dir(profile)
    db = Database(root / "database")
    nets = load_networks(profile, root / "networks")
    build_hr_channels(db, connectivity=profile.connectivity, progress=False)
    alpha = min(profile.field_alphas)
    out = {"profile": profile.name, "alpha": alpha, "cpu": platform.processor() or
           platform.machine(), "load_average": os.getloadavg(), "date": time.strftime("%F"),
           "runs": []}
    for w in args.weights:
        prof = dataclasses.replace(profile, field_weight=w)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            field_nets = fieldnets.train_field_networks(db, prof, Path(tmp), nets,
                                                        progress=False)
            seconds = time.perf_counter() - t0
            scores = _scores(db, nets, field_nets, alpha)
        out["runs"].append({"field_weight": w, "train_s": seconds, "scores": scores})
        print(f"w = {w:g} (trained in {seconds:.0f} s)")
        for method, s in scores.items():
            print("   ", method.ljust(22), "  ".join(f"{k} {v:.4f}" for k, v in s.items()))
    path = Path(__file__).parent / "out" / "field_loss_weight.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print("written", path)


if __name__ == "__main__":
    main()
