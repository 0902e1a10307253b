"""Tests of srlib.training.symmetry: the 48 symmetries of the cube."""

import numpy as np
import pytest
import torch

from srlib import training as T


def test_48_distinct_symmetries_24_rotations():
    syms = T.cube_symmetries()
    assert len(syms) == 48 and syms[0] == T.IDENTITY
    cube = np.random.default_rng(0).random((4, 4, 4))
    images = {T.apply_symmetry(cube, s).tobytes() for s in syms}
    assert len(images) == 48
    assert sum(T.is_rotation(s) for s in syms) == 24


def test_symmetries_closed_under_composition_and_inverse():
    syms = T.cube_symmetries()
    cube = np.random.default_rng(1).random((2, 3, 3, 3))
    for a in syms:
        once = T.apply_symmetry(cube, a)
        inverses = [b for b in syms if T.compose_symmetries(a, b) == T.IDENTITY]
        assert len(inverses) == 1  # a group: exactly one inverse, and it undoes a
        assert np.array_equal(T.apply_symmetry(once, inverses[0]), cube)
        for b in syms:
            ab = T.compose_symmetries(a, b)
            assert ab in syms
            assert np.array_equal(T.apply_symmetry(once, b), T.apply_symmetry(cube, ab))


def test_apply_symmetry_torch_matches_numpy_and_keeps_input():
    cube = np.random.default_rng(2).random((3, 4, 4, 4)).astype(np.float32)
    before = cube.copy()
    tensor = torch.from_numpy(cube.copy())
    for s in T.cube_symmetries():
        assert np.array_equal(T.apply_symmetry(tensor, s).numpy(), T.apply_symmetry(cube, s))
    assert np.array_equal(cube, before)
    with pytest.raises(ValueError, match="symmetry"):
        T.apply_symmetry(cube, ((0, 0, 1), (False, False, False)))


def test_random_symmetry_is_uniform():
    rng = np.random.default_rng(3)
    draws = [T.random_symmetry(rng) for _ in range(4800)]
    counts = np.array([draws.count(s) for s in T.cube_symmetries()])
    assert counts.min() > 60 and counts.max() < 140  # expected 100 each, sd about 10
    mirrored = np.mean([not T.is_rotation(s) for s in draws])
    assert abs(mirrored - 0.5) < 0.03
