"""The machine report: step times and the predicted cold build (srlib.machine)."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest

from srlib import machine
from srlib.config import get_profile

REF = machine.BuildReference(cpu="test CPU", date="2026-01-01", arithmetic="float32",
                             f32_step_s={2: 0.1, 4: 0.2, 8: 0.4}, cpu_s=0.05, train_s=1200.0,
                             total_s=1800.0)


def test_training_steps_follow_the_epoch_caps():
    quick = get_profile("quick")
    for alpha in quick.alphas:
        assert machine.training_steps(quick, alpha) == (
            quick.max_epochs_for(alpha) * quick.steps_per_epoch)


def test_prediction_of_the_reference_machine_is_the_reference_build():
    quick = get_profile("quick")
    train, rest = machine.predict_build(quick, REF.f32_step_s, REF.cpu_s, REF)
    assert train == pytest.approx(REF.train_s)
    assert rest == pytest.approx(REF.total_s - REF.train_s)


def test_prediction_scales_with_the_step_times():
    quick = get_profile("quick")
    half = {a: s / 2 for a, s in REF.f32_step_s.items()}
    # steps twice as fast, the NumPy workload twice as slow: training halves, the rest doubles
    train, rest = machine.predict_build(quick, half, 2 * REF.cpu_s, REF)
    assert train == pytest.approx(REF.train_s / 2)
    assert rest == pytest.approx(2 * (REF.total_s - REF.train_s))
    # half the epochs at alpha = 8 remove half of alpha = 8's share of training
    fewer = dataclasses.replace(quick, epochs_per_alpha=((2, 15), (4, 16), (8, 8)))
    trained = (*quick.alphas, *quick.seed_alphas)  # the second training at alpha = 2 too
    study = 2 * sum(machine.training_steps(quick, a) * REF.f32_step_s[a] for a in trained)
    # and the three field networks of chapter 9 at alpha = 2, 400 steps each
    assert quick.field_epochs_for(2) * quick.steps_per_epoch == 400
    fields = 3 * 400 * REF.f32_step_s[2]
    share8 = 2 * machine.training_steps(quick, 8) * REF.f32_step_s[8] / (study + fields)
    train, _ = machine.predict_build(fewer, REF.f32_step_s, REF.cpu_s, REF)
    assert train == pytest.approx(REF.train_s * (1 - share8 / 2))


def test_prediction_of_other_profiles_leaves_the_rest_out():
    train, rest = machine.predict_build(get_profile("tiny"), REF.f32_step_s, REF.cpu_s, REF)
    assert train > 0 and math.isnan(rest)


def test_an_empty_reference_is_refused():
    empty = dataclasses.replace(REF, train_s=0.0)
    with pytest.raises(ValueError, match="no measurement"):
        machine.predict_build(get_profile("quick"), REF.f32_step_s, REF.cpu_s, empty)


def test_the_shipped_reference_holds_a_measurement():
    ref = machine.REFERENCE
    assert ref.train_s > 0 and ref.total_s > ref.train_s and ref.cpu_s > 0
    assert set(ref.f32_step_s) == {2, 4, 8} and min(ref.f32_step_s.values()) > 0


def test_srlib_bench_prints_step_times_and_a_prediction():
    out = subprocess.run([sys.executable, "-m", "srlib.cli", "bench", "--profile", "tiny",
                          "--repeats", "1", "--threads", "1"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "training arithmetic: float32" in out  # tiny's 3³ cutouts never take bfloat16
    for alpha in (2, 4, 8):
        assert f"step at alpha={alpha}:" in out
    assert "predicted training of the six networks (tiny)" in out
