"""Fault injection: kill a stage at random moments, resume, compare with an uninterrupted run.

Each stage of the tiny study (the database with its diffusion channels, the training of the
networks, the evaluation protocol) runs in a subprocess (``tests/_resume_stage.py``) that is
killed with SIGKILL, together with its worker processes, after a seeded random delay, twice;
a last run then completes it. Its files must equal those of an uninterrupted run, file for
file: the tensors of every weights file, JSON and CSV contents without their timing fields;
for the database (a zarr store), the same arrays with the same contents, whatever the bytes
of its compressed chunk files. No temporary file or array may be left over.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("_resume_stage.py")
KILLS = 2

pytestmark = pytest.mark.slow


def _run(stage, run, database, *, kill_when=None):
    """Run a stage; with ``kill_when`` (a predicate polled every 10 ms) SIGKILL its process group
    as soon as it holds.

    Returns the wall seconds, or None when the stage was killed before it finished.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(SCRIPT.parents[1]), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), stage, str(run), str(database)],
                            env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)
    while kill_when is not None and proc.poll() is None:
        if kill_when():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None
        time.sleep(0.01)
    _, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return time.perf_counter() - start


def _timeless(value):
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items()
                if "seconds" not in k and not k.endswith("_s")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _content(path: Path):
    """What must be identical in a file: arrays, tensors, or text without timing fields."""
    if path.suffix == ".npz":
        with np.load(path) as data:
            return {k: data[k].tobytes() for k in data}
    if path.suffix == ".npy":
        return path.read_bytes()
    if path.suffix in (".pt", ".ckpt"):
        import torch

        state = torch.load(path, map_location="cpu", weights_only=False)
        return _flatten(state)
    if path.suffix == ".json":
        return _timeless(json.loads(path.read_text()))
    if path.suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path)
        return frame.drop(columns=[c for c in frame if "seconds" in c]).to_csv(index=False)
    return path.read_bytes()


def _flatten(state, prefix=""):
    import torch

    if isinstance(state, torch.Tensor):
        return {prefix: state.numpy().tobytes()}
    if isinstance(state, dict):
        out = {}
        for k, v in state.items():
            if isinstance(k, str) and ("seconds" in k or k.endswith("_s")):
                continue
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(state, (list, tuple)):
        out = {}
        for i, v in enumerate(state):
            out.update(_flatten(v, f"{prefix}/{i}"))
        return out
    if isinstance(state, np.ndarray):
        return {prefix: state.tobytes()}
    return {prefix: repr(state)}


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _check_identical(reference: Path, resumed: Path) -> None:
    ref, res = _files(reference), _files(resumed)
    assert sorted(res) == sorted(ref), "different files (a leftover temporary file?)"
    for name, path in ref.items():
        assert _content(res[name]) == _content(path), f"{name} differs after resuming"


def _check_same_database(reference: Path, resumed: Path) -> None:
    """Same JSON files, same arrays (folders holding a zarr.json) with the same contents."""
    from srlib import _store
    from srlib.io import is_temp_name

    leftovers = [p for p in resumed.rglob(".*") if is_temp_name(p.name)]
    assert not leftovers, f"temporary files or arrays left over: {leftovers}"

    def arrays(root):
        return sorted(p.parent.relative_to(root) for p in root.rglob("zarr.json")
                      if (p.parent / "c").is_dir() or p.parent.name.startswith("r"))

    assert arrays(resumed) == arrays(reference)
    assert len(arrays(reference)) == 2 * 3 * (1 + 2 * 2)  # scenarios x realizations x arrays
    for name in arrays(reference):
        ref, res = _store.read_array(reference / name), _store.read_array(resumed / name)
        assert res.dtype == ref.dtype and np.array_equal(res, ref), f"{name} differs"
    for name in ("scenarios.json", "channels.json"):
        assert _content(resumed / name) == _content(reference / name)


def _kill_and_resume(stage, output, reference_output, run, database, seed):
    """Kill ``stage`` twice, each time once a seeded random number of its output files exist
    (between one and half of those an uninterrupted run writes), then let it finish.

    Progress, not time, decides the moment, so the kills interrupt the stage on a fast and on a
    loaded machine alike.
    """
    rng = np.random.default_rng(seed)
    total = _count(reference_output)
    assert total >= 2, f"the reference run of {stage} wrote {total} files"
    killed = []
    for target in np.sort(rng.integers(1, max(2, total // 2 + 1), KILLS)):
        done = _count(output)
        goal = max(int(target), done + 1)
        killed.append(_run(stage, run, database,
                           kill_when=lambda goal=goal: _count(output) >= goal) is None)
    assert any(killed), "no run was interrupted: the test tested nothing"
    _run(stage, run, database)


def _count(folder: Path) -> int:
    """Completed output files below ``folder`` (temporaries excluded).

    The stage writes while this counts: a temporary directory may be renamed into place, or
    removed, between listing its parent and entering it. ``os.walk`` skips a directory that
    vanished (its ``onerror`` is None) and temporaries are pruned before they are entered.
    """
    from srlib.io import is_temp_name

    total = 0
    for _, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not is_temp_name(d)]
        total += sum(1 for f in files if not is_temp_name(f))
    return total


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs of the three stages, and their durations."""
    root = tmp_path_factory.mktemp("reference")
    times = {}
    for stage in ("generate", "train", "evaluate"):
        times[stage] = _run(stage, root / "run", root / "database")
    return root, times


def test_generation_resumes_to_identical_arrays(reference, tmp_path):
    root, times = reference
    _kill_and_resume("generate", tmp_path / "database", root / "database", tmp_path / "run",
                     tmp_path / "database", seed=1)
    _check_same_database(root / "database", tmp_path / "database")


def test_training_resumes_to_identical_files(reference, tmp_path):
    root, times = reference
    _kill_and_resume("train", tmp_path / "run" / "networks", root / "run" / "networks",
                     tmp_path / "run", root / "database", seed=2)
    _check_identical(root / "run" / "networks", tmp_path / "run" / "networks")


def test_evaluation_resumes_to_identical_files(reference, tmp_path):
    root, times = reference
    _kill_and_resume("evaluate", tmp_path / "run" / "evaluation", root / "run" / "evaluation",
                     tmp_path / "run", root / "database", seed=3)
    _check_identical(root / "run" / "evaluation", tmp_path / "run" / "evaluation")
