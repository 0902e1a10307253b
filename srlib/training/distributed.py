r"""Data-parallel training: DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on GPUs).

Contract. :func:`launch` starts ``nproc`` ranks of the training stage with
``torch.distributed.run`` (what ``torchrun`` runs; ``srlib train --nproc N``, or
``train_networks(..., nproc=N)`` from a notebook); each rank calls :func:`init_from_env`,
which joins the process group torchrun describes in the environment (gloo on the CPU, nccl on
CUDA, one GPU per local rank). In the loop (:mod:`srlib.training.loop`) each rank reads its
share of every step's global batch (:func:`srlib.training.data.rank_share`) and DDP averages
the gradients, so a step with ``W`` ranks of ``b / W`` cutouts equals a single-process step of
``b`` cutouts up to float rounding. Rank 0 alone computes the validation loss, decides early
stopping, fits μ* and writes checkpoints and networks; what it decides reaches the other ranks
by :func:`broadcast`. Outside a process group every helper here is a no-op for one rank.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from srlib._checks import positive_int

__all__ = ["barrier", "broadcast", "init_from_env", "is_main", "launch", "rank",
           "synced_batchnorm", "world_size"]

logger = logging.getLogger(__name__)


def world_size() -> int:
    """Number of ranks of the current process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0 (and without a process group)."""
    return rank() == 0


def broadcast(value, *, src: int = 0):
    """Return rank ``src``'s ``value`` on every rank (any picklable object)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op for one rank)."""
    if world_size() > 1:
        dist.barrier()


class _SyncedBatchNorm3d(nn.BatchNorm3d):
    """BatchNorm3d whose training statistics are those of the global batch (any backend).

    The class of a model's BatchNorm3d layers while :func:`synced_batchnorm` is active: same
    parameters, buffers and state-dict keys. The sums are all-reduced with the
    differentiable collective, so gradients flow across ranks as in
    ``torch.nn.SyncBatchNorm`` (which needs a GPU).
    """

    def forward(self, x):
        if not self.training or world_size() == 1:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims, shape = (0, 2, 3, 4), (1, -1, 1, 1, 1)
        count = torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype, device=x.device)
        dist.all_reduce(count)
        mean = all_reduce(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                     else self.momentum)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * count / (count - 1))
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


@contextlib.contextmanager
def synced_batchnorm(model: nn.Module):
    """Within the block, the model's BatchNorm3d layers normalise by global batch statistics.

    With more than one rank each rank sees only its share of the batch; synchronising the
    statistics makes a data-parallel step equal a single-process step on the whole batch.
    The layers get their class back on exit (nothing else changes).
    """
    layers = [m for m in model.modules() if type(m) is nn.BatchNorm3d]
    for layer in layers:
        layer.__class__ = _SyncedBatchNorm3d
    try:
        yield model
    finally:
        for layer in layers:
            layer.__class__ = nn.BatchNorm3d


def init_from_env(device=None) -> torch.device | None:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Parameters
    ----------
    device : str, torch.device or None
        The requested device; CUDA (explicit or "auto" with a GPU) selects nccl and the GPU
        of the local rank, otherwise gloo on the CPU.

    Returns
    -------
    torch.device or None
        The device of this rank, or None when not started by ``torchrun`` with more than one
        rank (then nothing is initialised).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    cuda = torch.cuda.is_available() and (device is None or str(device) in ("auto", "cuda")
                                          or str(device).startswith("cuda"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    logger.info("rank %d of %d (%s)", rank(), world_size(), "nccl" if cuda else "gloo")
    return torch.device("cuda", local) if cuda else torch.device("cpu")


def launch(nproc: int, db_root, profile, out_dir, *, kinds, device=None,
           num_threads: int | None = None, num_workers: int = 0, progress: bool = False) -> None:
    """Run :func:`srlib.training.train_networks` on ``nproc`` ranks under torch.distributed.run.

    Parameters
    ----------
    nproc : int
        Number of ranks on this machine (``--nproc_per_node``).
    db_root : path
        Folder of the :class:`srlib.datasets.Database`.
    profile : srlib.config.Profile
        The profile (passed to the ranks by pickle).
    out_dir : path
        Networks folder.
    kinds, device, num_threads, num_workers, progress
        As for :func:`~srlib.training.study.train_networks`.

    Raises
    ------
    ChildProcessError
        If a rank fails (its messages are on standard error).
    """
    nproc = positive_int(nproc, "nproc")
    spec = {"db_root": str(db_root), "profile": profile, "out_dir": str(out_dir),
            "kinds": tuple(kinds), "device": device, "num_threads": num_threads,
            "num_workers": num_workers, "progress": progress}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="srlib-ddp-") as tmp:
        path = Path(tmp) / "spec.pkl"
        path.write_bytes(pickle.dumps(spec))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "srlib.training.ranks", str(path)]
        logger.info("launching %s", " ".join(cmd))
        env = dict(os.environ)
        if num_threads is not None:
            env.setdefault("OMP_NUM_THREADS", str(num_threads))
        done = subprocess.run(cmd, env=env, check=False)
    if done.returncode != 0:
        raise ChildProcessError(f"data-parallel training with {nproc} ranks failed (exit code "
                           f"{done.returncode}); see the ranks' messages above")
