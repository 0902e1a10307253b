"""The ``srlib`` command: apply the method to your own 3D images.

Contract. Each sub-command is a thin wrapper around the library, reading and writing volumes
with :mod:`srlib.io` (TIFF stacks or folders of slices, ``.npy``, ``.npz``; grayscale input is
Otsu-binarised) and keeping every output of a profile under ``<results-root>/<profile>/``::

    srlib calibrate my_volume.tif                      # fit the χ² model, print (ν, γ)
    srlib generate --samples my_volumes/ --profile quick
                                                       # database: realizations, LR versions,
                                                       # diffusion channels, per calibrated sample
                                                       # (Dask: --workers N, --scheduler ADDRESS)
    srlib train --profile quick                        # the six networks (resumable)
    srlib super-resolve lr.tif sr.tif --alpha 4 --method diffu --profile quick
    srlib evaluate sr.tif hr.tif --alpha 4             # every metric of section 2.3, as JSON
    srlib train --fields --profile quick               # also the field networks (future work)
    srlib field lr.tif fields.npz --alpha 2 --profile quick
                                                       # the HR diffusion field of an LR volume
                                                       # and the tau_eff it implies, as JSON
    srlib bench --profile quick                        # this machine's training steps and the
                                                       # predicted time of a cold `make book`
    srlib plan --profile paper                         # every stage's sizes checked against
                                                       # the samples, nothing computed

Run ``srlib <command> --help`` for the options.

Errors. Bad input, unreadable or truncated files (volumes, databases, ``.pt`` weights, ``.ckpt``
checkpoints), missing or read-only folders end the command with exit code 2 and one line on
standard error, ``srlib <command>: error: <file or argument>: <cause>``, never a traceback.
``super-resolve`` refuses to overwrite its input. JSON output is strict JSON: NaN is ``null``;
infinite values (a tortuosity with no path, a relative accuracy of ``-inf`` when the
super-resolution lost the path) are the strings ``"inf"`` and ``"-inf"``, which
``float()`` reads back, or ``null`` with ``--inf-as-null``. ``--json`` files are written
atomically into an existing folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import sys
import zipfile
from pathlib import Path

from srlib.methods import BIN, FIELDS_DIFFU, FIELDS_POSITION, INTERPOLATION, PAPER

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


def _json_value(value, *, inf_as_null: bool = False):
    """A value as strict JSON: NaN -> None, ±inf -> "inf"/"-inf" (or None); dicts in depth."""
    if isinstance(value, dict):
        return {k: _json_value(v, inf_as_null=inf_as_null) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value) or inf_as_null:
            return None
        return "inf" if value > 0 else "-inf"
    return value


def _dumps(row: dict, *, inf_as_null: bool = False) -> str:
    clean = {k: _json_value(v, inf_as_null=inf_as_null) for k, v in row.items()}
    return json.dumps(clean, indent=2, default=str, allow_nan=False)


def _check_json_target(path) -> Path | None:
    """The ``--json`` file, refused before any work if its folder is missing."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--json {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"--json {path}: folder {path.parent} does not exist")
    return path


def _write_json(path: Path | None, text: str) -> None:
    from srlib.io import atomic_path

    if path is not None:
        with atomic_path(path) as tmp:
            tmp.write_text(text + "\n")


def cmd_calibrate(args) -> int:
    """Fit the model to one volume and print the parameters as JSON."""
    from srlib import io, stochastic

    json_path = _check_json_target(args.json)
    image = io.load_binary(args.image, solid=args.solid)
    params = stochastic.calibrate(image, max_lag=args.max_lag)
    result = {"image": str(args.image), "shape": list(image.shape),
              "solid_fraction": float(image.mean()), "nu": params.nu, "gamma": params.gamma,
              "correlation_length_voxels": params.correlation_length,
              "model_solid_fraction": params.solid_fraction}
    text = _dumps(result)
    _write_json(json_path, text)
    print(text)
    return 0


def cmd_generate(args) -> int:
    """Build the database of a profile (one scenario per sample) and its diffusion channels."""
    from srlib import datasets

    profile = _profile(args)
    out = _out(args, profile)
    engine = {"scheduler": args.scheduler, "workers": args.workers}
    db = datasets.build_database(profile, samples=_samples(args, profile),
                                 root=out / "database", **engine)
    if not args.no_channels:
        datasets.build_diffusion_channels(db, connectivity=profile.connectivity, **engine)
    print(f"database of {len(db.scenarios)} scenario(s) in {db.root}")
    return 0


def cmd_train(args) -> int:
    """Train (or resume, or load) the networks of a profile on its database."""
    from srlib import datasets, training
    from srlib.io import remove_stale_temp

    profile = _profile(args)
    out = _out(args, profile)
    db = datasets.Database(out / "database")
    datasets.build_diffusion_channels(db, connectivity=profile.connectivity)
    remove_stale_temp(out / "networks")
    try:
        networks = training.train_networks(db, profile, out / "networks", device=args.device,
                                           num_threads=args.threads, num_workers=args.workers,
                                           nproc=args.nproc)
    except _FILE_ERRORS as err:
        raise ValueError(f"networks in {out / 'networks'}: {_describe(err)}") from err
    for (kind, alpha), net in sorted(networks.items()):
        print(f"N^{kind},{alpha}: threshold {net.threshold:.4f}, stopped after epoch "
              f"{net.result.stopped_epoch} ({net.result.stop_reason}), {net.path}")
    if args.fields:
        from srlib import fieldnets, fields

        fields.build_hr_channels(db, connectivity=profile.connectivity)
        folder = out / "field_networks"
        remove_stale_temp(folder)
        field_nets = fieldnets.train_field_networks(db, profile, folder, networks,
                                                    device=args.device,
                                                    num_workers=args.workers)
        for (method, alpha), net in sorted(field_nets.items()):
            print(f"{method}, alpha={alpha}: threshold {net.threshold:.4f}, stopped after "
                  f"epoch {net.result.stopped_epoch} ({net.result.stop_reason}), {net.path}")
    return 0


def cmd_field(args) -> int:
    """The HR diffusion field of an LR volume by a field network, and the τ_eff it implies."""
    import numpy as np

    from srlib import fieldnets, io, training, transport
    from srlib._checks import check_alpha
    from srlib.fields import relative_l2, taus_from_fields
    from srlib.metrics import relative_accuracy

    alpha = check_alpha(args.alpha)
    json_target = _check_json_target(args.json)
    target = Path(args.output)
    if target.suffix != ".npz" or target.is_dir():
        raise ValueError(f"output {target} must be a .npz file name")
    lr = io.load_binary(args.input, solid=args.solid)
    hr = io.load_binary(args.hr, solid=args.solid) if args.hr else None
    if hr is not None and hr.shape != tuple(alpha * n for n in lr.shape):
        raise ValueError(f"--hr has shape {hr.shape}, not alpha={alpha} times the input's "
                         f"{lr.shape}")
    profile = _profile(args)
    out = _out(args, profile)
    try:
        networks = training.load_networks(profile, out / "networks")
        field_nets = fieldnets.load_field_networks(profile, out / "field_networks", networks)
    except _FILE_ERRORS as err:
        raise ValueError(f"networks in {out}: {_describe(err)}") from err
    if (args.method, alpha) not in field_nets:
        raise SystemExit(f"no field network {args.method} for alpha={alpha}; the profile "
                         f"trains them at alpha in {profile.field_alphas}")
    net = field_nets[args.method, alpha]
    prob, field = fieldnets.predict_fields(net, lr, device=args.device)
    sr = prob >= net.threshold
    with io.atomic_path(target) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, fields=field, image=sr)
    report = {"input": str(args.input), "output": str(target), "method": args.method,
              "alpha": alpha}
    for c, (name, phase) in enumerate((("pore", False), ("solid", True))):
        # the field's tau on the network's own morphology (what a user without HR has)
        (tau,) = taus_from_fields([field[c]], sr, phase, connectivity=profile.connectivity)
        row = {"tau_eff_field": tau, "tau_eff_fem_lr": transport.effective_tortuosity(
            lr, phase, connectivity=profile.connectivity)}
        if hr is not None:
            true = transport.diffusion_channels(hr, connectivity=profile.connectivity)[c]
            fem = transport.effective_tortuosity(hr, phase, connectivity=profile.connectivity)
            row.update(tau_eff_fem_hr=fem, tau_eff_acc=relative_accuracy(tau, fem),
                       relative_l2=relative_l2(field[c], true, hr, phase))
        report[name] = row
    text = _dumps(report, inf_as_null=args.inf_as_null)
    print(text)
    _write_json(json_target, text)
    return 0


def cmd_bench(args) -> int:
    """Time a training step per α here and predict the cold book build."""
    from srlib import machine

    report = machine.measure(_profile(args), repeats=args.repeats, threads=args.threads)
    print(machine.format_report(report))
    return 0


def cmd_plan(args) -> int:
    """Check every stage of a profile against the samples' shapes and print the sizes."""
    from srlib import plan

    profile = _profile(args)
    shapes = {s.name: s.image.shape for s in _samples(args, profile)}
    print(plan.format_plan(plan.plan(profile, shapes)))
    print(f"profile {profile.name}: every stage fits its samples")
    return 0


def _non_negative_int_arg(text: str) -> int:
    """Argparse type: a non-negative integer (``srlib train --workers``)."""
    return 0 if text.strip() == "0" else _positive_int_arg(text)


def cmd_super_resolve(args) -> int:
    """Super-resolve one low-resolution volume with a trained network or the interpolation."""
    from srlib import io
    from srlib._checks import check_alpha
    from srlib.resample import interpolate_quadratic_binary

    alpha = check_alpha(args.alpha)
    source, target = Path(args.input), Path(args.output)
    if target.exists() and (target.resolve() == source.resolve()
                            or (source.exists() and target.samefile(source))):
        raise ValueError(f"output {target} is the input {source}; refusing to overwrite it")
    if target.is_dir():
        raise ValueError(f"output {target} is a folder; give a file name")
    lr = io.load_binary(args.input, solid=args.solid)
    if args.method == INTERPOLATION:
        sr = interpolate_quadratic_binary(lr, alpha)
    else:
        from srlib import training
        from srlib.resolvers import network_resolver

        profile = _profile(args)
        folder = _out(args, profile) / "networks"
        try:
            networks = training.load_networks(profile, folder, kinds=(args.method,))
        except _FILE_ERRORS as err:
            raise ValueError(f"networks in {folder}: {_describe(err)}") from err
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
    print(_dumps(ev.as_dict(), inf_as_null=args.inf_as_null))
    return 0


def _positive_int_arg(text: str) -> int:
    """Argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line with exit code 2 (argparse prints the usage too)."""

    def error(self, message):  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _inf_as_null(p) -> None:
    """The ``--inf-as-null`` switch of the sub-commands that print JSON."""
    p.add_argument("--inf-as-null", action="store_true",
                   help='write infinite values as null instead of the strings "inf"/"-inf"')


def _apply_parsers(sub, common) -> None:
    """The sub-commands that apply trained networks to a volume (super-resolve, evaluate, field)."""
    p = sub.add_parser("super-resolve", help="super-resolve a low-resolution volume")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--alpha", type=int, required=True)
    p.add_argument("--method", choices=PAPER, default=BIN)
    common(p, profile=True)
    p.set_defaults(func=cmd_super_resolve)

    p = sub.add_parser("evaluate", help="metrics of a super-resolved volume vs ground truth")
    p.add_argument("sr")
    p.add_argument("hr")
    p.add_argument("--alpha", type=int, required=True)
    p.add_argument("--axis", type=int, default=0)
    p.add_argument("--no-effective", action="store_true", help="skip the FEM tortuosity")
    _inf_as_null(p)
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("field", help="the HR diffusion field of a low-resolution volume by a "
                                     "field network, and its effective tortuosity")
    p.add_argument("input")
    p.add_argument("output", help=".npz file: 'fields' (pore, solid) and the SR 'image'")
    p.add_argument("--alpha", type=int, required=True)
    p.add_argument("--method", choices=(FIELDS_POSITION, FIELDS_DIFFU), default=FIELDS_POSITION,
                   help="fields_position (experiment B, the LR image alone; default) or "
                        "fields_diffu (A, with the LR diffusion channels)")
    p.add_argument("--hr", default=None,
                   help="the true HR volume, if known: the FEM's field and tau to compare")
    p.add_argument("--json", default=None, help="also write the report to this JSON file")
    _inf_as_null(p)
    common(p, profile=True)
    p.set_defaults(func=cmd_field)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="srlib", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    p.add_argument("--max-lag", type=_positive_int_arg, default=None,
                   help="largest lag of the fit, in voxels (default min(30, n // 3))")
    p.add_argument("--json", help="also write the result to this file (its folder must exist)")
    common(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("generate", help="build the database of model realizations")
    p.add_argument("--samples", help="folder of your volumes (default: the public samples)")
    p.add_argument("--no-channels", action="store_true", help="skip the diffusion channels")
    p.add_argument("--scheduler", default=None,
                   help="address of an existing Dask scheduler, e.g. tcp://host:8786 (default "
                        "$SRLIB_DASK_SCHEDULER, else a local cluster)")
    p.add_argument("--workers", type=_positive_int_arg, default=None,
                   help="worker processes of the local Dask cluster (default: one per core; 1 "
                        "runs in this process)")
    common(p, profile=True)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train the networks N^bin and N^diffu for every α")
    p.add_argument("--threads", type=_positive_int_arg, default=None,
                   help="torch CPU threads")
    p.add_argument("--workers", type=_non_negative_int_arg, default=0,
                   help="DataLoader workers reading the training cutouts (default 0: in the "
                        "training process)")
    p.add_argument("--nproc", type=_positive_int_arg, default=None,
                   help="data-parallel ranks on this machine, started with torchrun (gloo on "
                        "CPU, nccl on GPUs; the batch size must be divisible by it)")
    p.add_argument("--fields", action="store_true",
                   help="then the HR diffusion channels and the field networks of the "
                        "paper's future work (at the profile's field_alphas)")
    common(p, profile=True)
    p.set_defaults(func=cmd_train)

    _apply_parsers(sub, common)

    p = sub.add_parser("bench", help="this machine's training-step times and the predicted "
                                     "time of a cold `make book`")
    p.add_argument("--profile", default=None, help="paper, quick or tiny "
                                                   "(default $SRLIB_PROFILE or quick)")
    p.add_argument("--repeats", type=_positive_int_arg, default=3,
                   help="timed steps per alpha (default 3)")
    p.add_argument("--threads", type=_positive_int_arg, default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("plan", help="check every stage of a profile against the samples' "
                                    "shapes, computing nothing")
    p.add_argument("--samples", help="folder of your volumes (default: the public samples)")
    p.add_argument("--profile", default=None, help="paper, quick or tiny "
                                                   "(default $SRLIB_PROFILE or quick)")
    p.add_argument("--solid", choices=("bright", "dark"), default="bright",
                   help="solid side of grayscale input (Otsu)")
    p.set_defaults(func=cmd_plan)
    return parser


def main(argv=None) -> int:
    """Run the ``srlib`` command line."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except _EXPECTED as err:  # bad input or files: a clear message, no traceback
        print(f"srlib {args.command}: error: {_describe(err)}", file=sys.stderr)
        return 2


#: Errors reported as one line: bad input, file-system problems, truncated archives (torch
#: raises RuntimeError or UnpicklingError for a truncated ``.pt``/``.ckpt``).
_FILE_ERRORS = (EOFError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError)
_EXPECTED = (ValueError, OSError, *_FILE_ERRORS)


def _describe(err: BaseException) -> str:
    """One line naming the file (when known) and the cause."""
    if isinstance(err, OSError) and err.filename and str(err.filename) not in str(err.strerror):
        text = f"{err.filename}: {err.strerror or err}"
    elif isinstance(err, OSError) and err.strerror:
        text = err.strerror
    else:
        text = str(err) or type(err).__name__
        if not isinstance(err, ValueError):
            text = f"{type(err).__name__}: {text}"
        if isinstance(err, (RuntimeError, EOFError, zipfile.BadZipFile,
                            pickle.UnpicklingError)):
            text += " (a truncated or corrupt file? delete it and rerun the stage)"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
