"""The planning check: every stage of a profile against the real samples, nothing computed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from srlib import plan
from srlib.config import get_profile
from srlib.samples import PUBLIC_SHAPES


@pytest.mark.network
@pytest.mark.parametrize("name", ["paper", "quick", "tiny"])
def test_every_profile_fits_the_real_samples(public, name):
    profile = get_profile(name)
    shapes = {n: s.image.shape for n, s in public.items()}
    assert shapes == {n: PUBLIC_SHAPES[n] for n in shapes}  # what the dry run plans with
    steps = plan.plan(profile, shapes)
    stages = {s.stage for s in steps}
    assert stages == {"database", "channels", "training", "evaluation"}
    crops = [s.value for s in steps if s.what.startswith("tomographic")]
    used = profile.samples or sorted(shapes)
    assert len(crops) == len(used)
    if name == "paper":  # the largest crops divisible by 2 * 8 of 200³, 500³ and 100³
        assert sorted(c.split("³")[0] for c in crops) == ["192", "496", "96"]


def test_the_paper_profile_with_whole_samples_would_fail():
    """Before tomo_edge the paper profile evaluated the whole sandstones: 500 and 100 are not
    divisible by 2 * 4, 200 not by 2 * 8. The plan names each, without computing."""
    whole = get_profile("paper", tomo_size=496)  # a fixed size larger than two samples
    shapes = {"berea": (200,) * 3, "bentheimer": (500,) * 3, "leopard": (100,) * 3}
    with pytest.raises(ValueError, match=r"evaluation of berea.*evaluation of leopard"):
        plan.plan(whole, shapes)


def test_sizes_that_cannot_run_are_listed_by_stage():
    tiny = get_profile("tiny")  # tomo_size 32
    with pytest.raises(ValueError, match=r"evaluation of berea: .*needs at least 32 voxels"):
        plan.plan(tiny, {"berea": (20, 64, 64), "leopard": (32,) * 3})
    with pytest.raises(ValueError, match="no shape given"):
        plan.plan(tiny, {"berea": (32,) * 3})


@pytest.mark.network
def test_srlib_plan_prints_the_stages(public):
    out = subprocess.run([sys.executable, "-m", "srlib.cli", "plan", "--profile", "paper"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "every stage fits its samples" in out and "evaluation" in out and "GiB" in out
