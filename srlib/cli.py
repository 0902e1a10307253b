"""The ``srlib`` command: apply the method to your own 3D images.

Contract. Each sub-command is a thin wrapper around the library, reading and writing volumes
with :mod:`srlib.io` (TIFF stacks or folders of slices, ``.npy``, ``.npz``; grayscale input is
Otsu-binarised) and keeping every output of a profile under ``<results-root>/<profile>/``::

    srlib calibrate my_volume.tif                      # fit the χ² model, print (ν, γ)
    srlib generate --samples my_volumes/ --profile quick
                                                       # database: realizations, LR versions,
                                                       # diffusion channels, per calibrated sample
    srlib train --profile quick                        # the six networks (resumable)
    srlib super-resolve lr.tif sr.tif --alpha 4 --method diffu --profile quick
    srlib evaluate sr.tif hr.tif --alpha 4             # every metric of section 2.3, as JSON

Run ``srlib <command> --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

__all__ = ["main"]


def _profile(args):
    from srlib.config import get_profile

    return get_profile(args.profile)


def _out(args, profile):
    from srlib.config import results_dir

    return results_dir(profile, root=args.results_root)


def _samples(args, profile):
    from srlib import datasets

    if args.samples:
        return datasets.folder_samples(args.samples, solid=args.solid)
    return datasets.public_samples(profile.samples)


def cmd_calibrate(args) -> int:
    """Fit the model to one volume and print the parameters as JSON."""
    from srlib import io, stochastic

    image = io.load_binary(args.image, solid=args.solid)
    params = stochastic.calibrate(image, max_lag=args.max_lag)
    result = {"image": str(args.image), "shape": list(image.shape),
              "solid_fraction": float(image.mean()), "nu": params.nu, "gamma": params.gamma,
              "correlation_length_voxels": params.correlation_length,
              "model_solid_fraction": params.solid_fraction}
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


def cmd_generate(args) -> int:
    """Build the database of a profile (one scenario per sample) and its diffusion channels."""
    from srlib import datasets

    profile = _profile(args)
    out = _out(args, profile)
    db = datasets.build_database(profile, samples=_samples(args, profile),
                                 root=out / "database")
    if not args.no_channels:
        datasets.build_diffusion_channels(db, connectivity=profile.connectivity)
    print(f"database of {len(db.scenarios)} scenario(s) in {db.root}")
    return 0


def cmd_train(args) -> int:
    """Train (or resume, or load) the networks of a profile on its database."""
    from srlib import datasets, training

    profile = _profile(args)
    out = _out(args, profile)
    db = datasets.Database(out / "database")
    datasets.build_diffusion_channels(db, connectivity=profile.connectivity)
    networks = training.train_networks(db, profile, out / "networks", device=args.device,
                                       num_threads=args.threads)
    for (kind, alpha), net in sorted(networks.items()):
        print(f"N^{kind},{alpha}: threshold {net.threshold:.4f}, stopped after epoch "
              f"{net.result.stopped_epoch} ({net.result.stop_reason}), {net.path}")
    return 0


def cmd_super_resolve(args) -> int:
    """Super-resolve one low-resolution volume with a trained network or the interpolation."""
    from srlib import io
    from srlib._checks import check_alpha
    from srlib.resample import interpolate_quadratic_binary

    alpha = check_alpha(args.alpha)
    lr = io.load_binary(args.input, solid=args.solid)
    if args.method == "interpolation":
        sr = interpolate_quadratic_binary(lr, alpha)
    else:
        from srlib import training
        from srlib.evaluation import network_resolver

        profile = _profile(args)
        networks = training.load_networks(profile, _out(args, profile) / "networks",
                                          kinds=(args.method,))
        if (args.method, alpha) not in networks:
            raise SystemExit(f"no trained network {args.method} for alpha={alpha}; "
                             "run `srlib train` first")
        sr = network_resolver(networks[(args.method, alpha)],
                              connectivity=profile.connectivity, device=args.device)(lr)
    io.write_volume(args.output, sr)
    print(f"{args.input} {lr.shape} -> {args.output} {sr.shape} ({args.method}, alpha={alpha})")
    return 0


def cmd_evaluate(args) -> int:
    """Compare a super-resolved volume with its ground truth; print every metric as JSON."""
    from srlib import io, metrics

    sr = io.load_binary(args.sr, solid=args.solid)
    hr = io.load_binary(args.hr, solid=args.solid)
    ev = metrics.evaluate(sr, hr, args.alpha, axis=args.axis, effective=not args.no_effective)
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v)
           for k, v in ev.as_dict().items()}
    print(json.dumps(row, indent=2, default=str))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srlib", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, *, profile=False):
        p.add_argument("--solid", choices=("bright", "dark"), default="bright",
                       help="solid side of grayscale input (Otsu)")
        if profile:
            p.add_argument("--profile", default=None, help="paper, quick or tiny "
                                                           "(default $SRLIB_PROFILE or quick)")
            p.add_argument("--results-root", default=None,
                           help="results root (default $SRLIB_RESULTS or ./results)")
            p.add_argument("--device", default=None, help="torch device (default: auto)")

    p = sub.add_parser("calibrate", help="fit the χ² model (ν, γ) to a volume")
    p.add_argument("image")
    p.add_argument("--max-lag", type=int, default=None)
    p.add_argument("--json", help="also write the result to this file")
    common(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("generate", help="build the database of model realizations")
    p.add_argument("--samples", help="folder of your volumes (default: the public samples)")
    p.add_argument("--no-channels", action="store_true", help="skip the diffusion channels")
    common(p, profile=True)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train the networks N^bin and N^diffu for every α")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    common(p, profile=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("super-resolve", help="super-resolve a low-resolution volume")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--alpha", type=int, required=True)
    p.add_argument("--method", choices=("bin", "diffu", "interpolation"), default="bin")
    common(p, profile=True)
    p.set_defaults(func=cmd_super_resolve)

    p = sub.add_parser("evaluate", help="metrics of a super-resolved volume vs ground truth")
    p.add_argument("sr")
    p.add_argument("hr")
    p.add_argument("--alpha", type=int, required=True)
    p.add_argument("--axis", type=int, default=0)
    p.add_argument("--no-effective", action="store_true", help="skip the FEM tortuosity")
    common(p)
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None) -> int:
    """Run the ``srlib`` command line."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ValueError as err:  # bad input: a clear message, no traceback
        print(f"srlib {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
