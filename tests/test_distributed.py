"""Data-parallel training (srlib.training.distributed): 2 gloo ranks equal one process."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from scipy import ndimage

from srlib import training as T

# One step of one epoch: the returned weights are those after that step.
CONFIG = dict(cutout=6, batch_size=4, steps_per_epoch=1, max_epochs=1, patience=5,
              val_cutouts=2, learning_rate=1e-3, seed=11)


def _pairs():
    out = []
    for s in range(3):
        noise = np.random.default_rng(s).standard_normal((24, 24, 24))
        out.append(T.make_pair(ndimage.gaussian_filter(noise, 1.5, mode="wrap") > 0, 2))
    return out


def _model():
    return T.make_model(1, 2, features=4, blocks=1, seed=3)


def _rank(rank, world, port, out, checkpoint):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        pairs, model = _pairs(), _model()
        result = T.run_training(model, pairs[:2], pairs[2:], T.TrainConfig(**CONFIG),
                                device="cpu", progress=False, checkpoint=checkpoint)
        torch.save({"weights": model.state_dict(), "val": result.val_loss,
                    "train": result.train_loss}, f"{out}.{rank}")
    finally:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_of_batch_b_equal_one_process_of_batch_2b(tmp_path):
    out, checkpoint = tmp_path / "rank", tmp_path / "ddp.ckpt"
    mp.spawn(_rank, args=(2, _free_port(), str(out), str(checkpoint)), nprocs=2, join=True)
    single = _model()
    pairs = _pairs()
    result = T.run_training(single, pairs[:2], pairs[2:], T.TrainConfig(**CONFIG),
                            device="cpu", progress=False, num_threads=1)
    initial = _model().state_dict()
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(2)]
    for name, want in single.state_dict().items():
        assert not torch.equal(want, initial[name]) or "bias" in name or want.ndim == 0
        for got in ranks:  # every rank holds the weights of the single-process step
            torch.testing.assert_close(got["weights"][name], want, rtol=1e-4, atol=1e-5)
    for got in ranks:  # rank 0's validation loss reached rank 1; the loss is the global mean
        assert got["val"] == pytest.approx(result.val_loss, rel=1e-5)
        assert got["train"] == pytest.approx(result.train_loss, rel=1e-5)
    # rank 0 wrote the checkpoint, which a single process resumes (nothing left to run)
    resumed = T.run_training(_model(), pairs[:2], pairs[2:], T.TrainConfig(**CONFIG),
                             device="cpu", progress=False, checkpoint=checkpoint)
    assert resumed.stopped_epoch == 1 and resumed.val_loss == pytest.approx(result.val_loss)


def test_batch_must_split_evenly_over_ranks():
    with pytest.raises(ValueError, match="divisible by the number of ranks"):
        T.rank_share(3, 0, 2)
