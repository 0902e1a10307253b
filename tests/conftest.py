"""Shared fixtures: seeded images and the tiny profile's public samples."""

import os

import numpy as np
import pytest


def pytest_configure(config):
    # Two xdist workers on two cores: keep each single-threaded, and the processes they start
    # too (resumed stages, notebook kernels, Dask workers). NUMBA_NUM_THREADS is set before
    # numba is first imported: set later, numba re-reads it at its next compilation, finds it
    # differs from the thread pool it launched and raises (every kernel compiled in a test
    # failed so on a fresh clone, whose numba cache is empty). Tests that need several
    # threads run in a subprocess without it (``run_with_all_cores``).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def run_with_all_cores(code: str) -> str:
    """Run Python ``code`` in a fresh interpreter whose numba may use every core; its stdout.

    The interpreter imports from the tests folder (``sys.path``) like the suite does.
    """
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ)
    env.pop("NUMBA_NUM_THREADS", None)
    prelude = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    done = subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def public():
    """The public samples (downloaded once per machine into the srlib cache)."""
    from srlib.datasets import public_samples

    return {s.name: s for s in public_samples()}
