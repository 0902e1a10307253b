"""Shared fixtures: seeded images and the tiny profile's public samples."""

import os

import numpy as np
import pytest


def pytest_configure(config):
    # Two xdist workers on two cores: keep each single-threaded (numba too; its maximum stays
    # the number of cores, so a test may still ask for more threads explicitly).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numba  # reads NUMBA_NUM_THREADS now: its maximum here stays the number of cores

    numba.set_num_threads(1)
    # subprocesses (resumed stages, notebook kernels) start single-threaded too
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def public():
    """The public samples (downloaded once per machine into the srlib cache)."""
    from srlib.datasets import public_samples

    return {s.name: s for s in public_samples()}
