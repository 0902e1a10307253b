"""Training memory is flat in the database size: cutouts are read from a chunked store.

Each measurement runs in a fresh interpreter: peak RSS of building the pairs of a database
of 2 or 10 realizations (192³ HR, α = 2, diffusion channels) and training a few steps.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

HR = 192

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np, torch, zarr
    from srlib import training as T

    root, n, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)

    class Store:  # what pairs_from_database asks of a database that streams
        alphas, scenario_names = (2,), ["s"]
        def __init__(self):
            self.root = root
        def indices(self, role):
            return list(range(1, n)) if role == "train" else [n]
        def array(self, kind, scenario, i, alpha=None, **checks):
            kind = {"hr": "hr", "lr": f"lr{alpha}", "channels": f"diffu{alpha}"}[kind]
            z = zarr.open_array(root / f"r{i}_{kind}.zarr", mode="r")
            return z if mode == "lazy" else z[:]  # "loaded": whole volumes in memory

    db = Store()
    train = T.pairs_from_database(db, "train", 2, diffu=True)
    val = T.pairs_from_database(db, "val", 2, diffu=True)
    model = T.make_model(3, 2, features=4, blocks=1, seed=0)
    T.train(model, train, val, cutout=12, batch_size=2, steps_per_epoch=3, max_epochs=1,
            val_cutouts=2, progress=False)
    # VmHWM: the peak RSS of this program (ru_maxrss would include the parent's RSS at spawn)
    status = Path("/proc/self/status").read_text().splitlines()
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))
""")


def _write(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        hr = rng.random((HR,) * 3, dtype=np.float32) < 0.5
        ch = rng.random((2, *(HR // 2,) * 3), dtype=np.float32)
        for kind, arr, chunks in (("hr", hr, (32,) * 3), ("lr2", hr[::2, ::2, ::2], (16,) * 3),
                                  ("diffu2", ch, (2, 16, 16, 16))):
            z = zarr.create_array(store=root / f"r{i}_{kind}.zarr", shape=arr.shape,
                                  chunks=chunks, dtype=arr.dtype)
            z[:] = arr


def _peak_rss_kb(root: Path, n: int, mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(root), str(n), mode],
                         capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return int(out.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_peak_memory_does_not_grow_with_the_database(tmp_path):
    small, large = tmp_path / "two", tmp_path / "ten"
    small.mkdir()
    large.mkdir()
    _write(small, 2)
    _write(large, 10)
    two = _peak_rss_kb(small, 2, "lazy")
    ten = _peak_rss_kb(large, 10, "lazy")
    loaded = _peak_rss_kb(large, 10, "loaded")
    print(f"peak RSS (kB): 2 lazy {two}, 10 lazy {ten}, 10 loaded {loaded}")
    assert ten < 1.2 * two, (two, ten)
    # the measurement can tell: holding the ten databases' volumes would exceed the bound
    assert loaded > 1.2 * two, (two, loaded)
