r"""Checkpoints of a training run: written atomically every epoch, resumed bit for bit.

Contract. :func:`save_checkpoint` writes the state of a run (model, optimizer, the NumPy
generator of the cutouts, the loss history, the best weights) atomically
(:func:`srlib.network.atomic_torch_save`); :func:`load_checkpoint` reads it back and refuses,
with a ValueError naming the file, one that is truncated or corrupt, of an unknown format, or
written under other settings (the run's identity,
:meth:`srlib.training.settings.TrainConfig.identity`).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from srlib.network import atomic_torch_save

__all__ = ["load_checkpoint", "save_checkpoint", "state_to_cpu"]

FORMAT = 1

#: What torch.load raises on a truncated or corrupt file.
_READ_ERRORS = (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile,
                ValueError, KeyError, AttributeError, TypeError)


def state_to_cpu(state: dict) -> dict:
    """Detached CPU copies of a state dict's tensors."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def save_checkpoint(path, *, identity: dict, model, optimizer, rng, state: dict, best_model,
                    stop_reason) -> None:
    """Write a run's checkpoint atomically to ``path``."""
    atomic_torch_save(
        {
            "format": FORMAT,
            "config": identity,
            "model": state_to_cpu(model.state_dict()),
            "optimizer": optimizer.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "state": state,
            "best_model": best_model,
            "stop_reason": stop_reason,
        },
        path,
    )


def load_checkpoint(path, identity: dict, *, device) -> dict:
    """Read a checkpoint written with the same identity.

    Parameters
    ----------
    path : path
        Checkpoint file.
    identity : dict
        The settings it must have been written with.
    device : torch.device
        Where to map its tensors.

    Returns
    -------
    dict
        The checkpoint's entries.

    Raises
    ------
    ValueError
        Naming the file, if it is truncated or corrupt, of an unknown format, or was written
        with other settings (listing them).
    """
    path = Path(path)
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except _READ_ERRORS as err:
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: "
                         f"{err}); delete it to restart the run") from err
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has an unknown format")
    missing = {"config", "model", "optimizer", "numpy_rng", "state", "best_model"} - set(ck)
    if missing:
        raise ValueError(f"checkpoint {path} is incomplete (no {', '.join(sorted(missing))}); "
                         "delete it to restart the run")
    if ck["config"] != identity:
        diff = sorted(k for k in set(identity) | set(ck["config"])
                      if identity.get(k) != ck["config"].get(k))
        raise ValueError(
            f"checkpoint {path} was written with other settings ({', '.join(diff)}); "
            "delete it or pass resume=False to start afresh"
        )
    return ck
