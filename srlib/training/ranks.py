"""The entry point of a data-parallel rank: ``python -m srlib.training.ranks SPEC``.

Contract. :func:`srlib.training.distributed.launch` pickles what to train into a file and starts
``torch.distributed.run`` with this module; every rank reads the file and calls
:func:`srlib.training.study.train_networks`, which trains data-parallel inside ranks. It is a
module of its own so that :mod:`srlib.training.distributed` (below the training loop) never
imports :mod:`srlib.training.study` (above it).
"""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path

import torch.distributed as dist

from srlib.datasets import Database
from srlib.training.distributed import is_main
from srlib.training.study import train_networks


def main(spec_path: str) -> int:
    """Train the networks described by the pickled spec at ``spec_path`` in this rank."""
    spec = pickle.loads(Path(spec_path).read_bytes())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        train_networks(Database(spec["db_root"]), spec["profile"], spec["out_dir"],
                       kinds=spec["kinds"], device=spec["device"],
                       num_threads=spec["num_threads"], num_workers=spec["num_workers"],
                       progress=spec["progress"] and is_main())
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
