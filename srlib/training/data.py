r"""The training batches: seeded cutout plans, read and augmented in DataLoader workers.

Contract. Every training step uses ``batch_size`` cutouts (section 2.2.3): a training pair
chosen uniformly at random, a uniformly random position, a random symmetry of the cube. The
*plan* of a step, which pair, where and which symmetry, is drawn in the main process from the
run's one NumPy generator (:func:`draw_plan`, a few integers per cutout), an epoch at a time,
so the generator's state after an epoch is what the checkpoint stores and a resumed run draws
the plans an uninterrupted run would have drawn. Reading the cutouts (from arrays in memory
or lazily from a chunked store or memmap, :class:`~srlib.training.cutouts.Pair`) and applying
the symmetries is the heavy part; :func:`make_loader` does it in
``torch.utils.data.DataLoader`` workers (``num_workers``; 0 = in the main process) that run
ahead of the training step. The batches depend on the seed only: not on ``num_workers``, nor
on the number of data-parallel ranks, each of which reads its contiguous share of every
step's global batch (:func:`rank_share`).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from srlib._checks import positive_int
from srlib.training.cutouts import Pair, cutout_at, draw_position

__all__ = ["CutoutDataset", "EpochSampler", "batch_sources", "draw_plan", "make_loader",
           "rank_share"]


def draw_plan(rng: np.random.Generator, pairs, steps: int, batch_size: int, *, cutout: int,
              augment: bool = True, align_mirrors: bool = True,
              symmetries=None) -> list[list[tuple]]:
    """Draw the cutouts of ``steps`` training steps: ``(pair index, corner, symmetry)``.

    The draws, in order, for each cutout: the pair (uniform), then what
    :func:`~srlib.training.cutouts.draw_position` draws (symmetry, corner). This is the
    sequence :func:`~srlib.training.cutouts.random_cutout` consumed when the loop drew
    cutouts itself, so a seed gives the same batches as before.

    Parameters
    ----------
    rng : numpy.random.Generator
        The run's generator; advanced by the draws.
    pairs : sequence of Pair
        Training pairs (only their shapes are used).
    steps, batch_size : int
        Number of steps and (global) cutouts per step.
    cutout : int
        Edge of the low-resolution cutouts.
    augment, align_mirrors : bool
        See :func:`~srlib.training.cutouts.random_cutout`.
    symmetries : sequence of Symmetry, optional
        The augmentations allowed (:func:`~srlib.training.cutouts.draw_position`); default
        all 48.

    Returns
    -------
    list of list of tuple
        One list of ``batch_size`` cutout plans per step.
    """
    shapes = [p.lr_shape for p in pairs]
    plan = []
    for _ in range(steps):
        batch = []
        for _ in range(batch_size):
            k = int(rng.integers(len(shapes)))
            corner, sym = draw_position(shapes[k], cutout, rng, augment=augment,
                                        align_mirrors=align_mirrors, symmetries=symmetries)
            batch.append((k, corner, sym))
        plan.append(batch)
    return plan


def rank_share(batch_size: int, rank: int, world_size: int) -> slice:
    """The cutouts of a step's global batch that rank ``rank`` of ``world_size`` reads.

    Parameters
    ----------
    batch_size : int
        Global batch size; must be divisible by ``world_size``.
    rank, world_size : int
        This process's rank and the number of ranks.

    Returns
    -------
    slice
        A contiguous share of ``batch_size // world_size`` cutouts.
    """
    batch_size = positive_int(batch_size, "batch_size")
    world_size = positive_int(world_size, "world_size")
    if batch_size % world_size:
        raise ValueError(f"batch_size={batch_size} must be divisible by the number of ranks "
                         f"({world_size}): each rank takes an equal share of every step")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    share = batch_size // world_size
    return slice(rank * share, (rank + 1) * share)


class CutoutDataset(torch.utils.data.Dataset):
    """Reads one planned cutout: ``dataset[(k, corner, symmetry)] -> (input, target)``.

    Parameters
    ----------
    pairs : sequence of Pair
        Training pairs (lazy or in memory).
    cutout : int
        Edge of the low-resolution cutouts.
    align_mirrors : bool
        See :func:`~srlib.training.cutouts.cutout_at`.
    """

    def __init__(self, pairs, cutout: int, *, align_mirrors: bool = True):
        self.pairs: list[Pair] = list(pairs)
        self.cutout = positive_int(cutout, "cutout")
        self.align_mirrors = bool(align_mirrors)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item):
        k, corner, sym = item
        return cutout_at(self.pairs[k], corner, self.cutout, symmetry=sym,
                         align_mirrors=self.align_mirrors)


class EpochSampler:
    """Batch sampler yielding the planned cutouts of this rank, step by step.

    Set :attr:`plan` (from :func:`draw_plan`) before iterating the loader for an epoch.

    Parameters
    ----------
    share : slice
        This rank's share of every step's global batch (:func:`rank_share`).
    """

    def __init__(self, share: slice = slice(None)):
        self.share = share
        self.plan: list[list[tuple]] = []

    def __iter__(self):
        for batch in self.plan:
            yield batch[self.share]

    def __len__(self) -> int:
        return len(self.plan)


def _collate(items):
    x = torch.from_numpy(np.ascontiguousarray(np.stack([it[0] for it in items])))
    y = torch.from_numpy(np.ascontiguousarray(np.stack([it[1] for it in items])))
    return x, y


def make_loader(dataset: CutoutDataset, sampler: EpochSampler, *, num_workers: int = 0,
                prefetch_factor: int = 2) -> torch.utils.data.DataLoader:
    """A DataLoader reading the cutouts planned in ``sampler`` (float32 inputs, bool targets).

    Parameters
    ----------
    dataset : CutoutDataset
        Reads and augments one cutout.
    sampler : EpochSampler
        The plan of the current epoch (the loader iterates it anew each epoch).
    num_workers : int
        Worker processes reading ahead of the training step (kept for the whole run);
        0 reads in the main process.
    prefetch_factor : int
        Batches each worker reads ahead.

    Returns
    -------
    torch.utils.data.DataLoader
        Yields ``(inputs, targets)`` tensors of shapes ``(b, C, m, m, m)`` and
        ``(b, α m, α m, α m)``.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) \
            or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    extra = {}
    if num_workers > 0:
        extra = {"persistent_workers": True,
                 "prefetch_factor": positive_int(prefetch_factor, "prefetch_factor")}
    # Its own generator: the loader draws worker seeds, never from torch's global state
    # (the cutouts themselves need no randomness: they are planned).
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                       collate_fn=_collate, generator=torch.Generator(),
                                       **extra)


def batch_sources(inputs, targets, batch_size: int) -> list[tuple[int, int]]:
    """``(start, source)`` of each batch of ``batch_size`` consecutive cutouts.

    ``source`` is the start of the first batch with the same cutouts (equal inputs and equal
    targets, compared in full), else ``start`` itself. A fixed validation set drawn from
    few small images repeats cutouts (the quick profile draws its 30 at α = 8 from the 48
    positions of six 12³ inputs, and 6 of them repeat), and a repeated batch gives the loss
    of its source without another forward pass.
    """
    batch_size = positive_int(batch_size, "batch_size")
    seen: dict[bytes, list[int]] = {}
    sources = []
    for start in range(0, len(inputs), batch_size):
        stop = start + batch_size
        x, y = np.ascontiguousarray(inputs[start:stop]), np.ascontiguousarray(targets[start:stop])
        digest = hashlib.blake2b(digest_size=16)
        for array in (x, y):
            digest.update(repr((array.dtype.str, array.shape)).encode())
            digest.update(array.data)
        candidates = seen.setdefault(digest.digest(), [])
        source = next((c for c in candidates
                       if np.array_equal(inputs[c:c + batch_size], x)
                       and np.array_equal(targets[c:c + batch_size], y)), start)
        if source == start:
            candidates.append(start)
        sources.append((start, source))
    return sources
