import pytest

from srlib.config import PAPER_CHOICES, get_profile, results_dir


def test_paper_profile_has_the_papers_numbers():
    p = get_profile("paper")
    assert p.hr_size == 800
    assert p.n_realizations == 10 and p.split == (7, 2, 1)
    assert p.alphas == (2, 4, 8)
    assert p.cutout == 24
    assert [p.batch_size(a) for a in (2, 4, 8)] == [8, 8, 1]
    assert (p.max_epochs, p.steps_per_epoch, p.patience, p.val_cutouts) == (1000, 400, 10, 30)
    assert p.blocks == 8
    assert p.features == 64 and "features" in PAPER_CHOICES  # a choice: the paper gives none
    assert p.lr_schedule is None  # the paper states no schedule


def test_default_profile_is_quick(monkeypatch):
    monkeypatch.delenv("SRLIB_PROFILE", raising=False)
    assert get_profile().name == "quick"
    monkeypatch.setenv("SRLIB_PROFILE", "tiny")
    assert get_profile().name == "tiny"


@pytest.mark.parametrize("name", ["paper", "quick", "tiny"])
def test_roles_follow_split(name):
    p = get_profile(name)
    assert p.roles.count("train") == p.split[0]
    assert p.roles.count("val") == p.split[1]
    assert p.roles.count("test") == p.split[2]
    assert p.roles[0] == "train" and p.roles[-1] == "test"


def test_overrides():
    p = get_profile("quick", alphas=[2, 4], batch_sizes=[8, 4])
    assert p.alphas == (2, 4) and p.batch_size(4) == 4


def test_unknown_key_rejected():
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("quick", epochs=3)


def test_unknown_profile_rejected():
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")


def test_inconsistent_override_rejected():
    with pytest.raises(ValueError, match="divisible"):
        get_profile("tiny", hr_size=40)
    with pytest.raises(ValueError, match="alphas"):
        get_profile("tiny", alphas=(3,), batch_sizes=(1,))
    with pytest.raises(ValueError, match="lr_schedule"):
        get_profile("tiny", lr_schedule="linear")


def test_results_dir(tmp_path):
    assert results_dir("tiny", root=tmp_path) == tmp_path / "tiny"


def test_epochs_per_alpha():
    quick = get_profile("quick")
    assert quick.train_budget_s is None  # a step budget: the same networks on every machine
    assert [quick.max_epochs_for(a) for a in (2, 4, 8)] == [15, 16, 16]
    # 750 / 800 / 800 steps, validated every 50 (the cosine schedule is per step)
    assert [quick.max_epochs_for(a) * quick.steps_per_epoch for a in (2, 4, 8)] == [
        750, 800, 800]
    subset = get_profile("quick", alphas=(4, 8), batch_sizes=(4, 1))
    assert subset.max_epochs_for(8) == 16
    assert get_profile("paper").max_epochs_for(8) == 1000
    with pytest.raises(ValueError, match="epochs_per_alpha"):
        get_profile("quick", epochs_per_alpha=((3, 10),))
    with pytest.raises(ValueError, match="not among"):
        subset.max_epochs_for(2)
    # the field networks: their own cap where set, else their alpha's network's
    assert quick.field_epochs_for(2) == 8
    assert get_profile("paper").field_epochs_for(4) == 1000


@pytest.mark.parametrize(("override", "fragment"), [
    ({"mixed_precision": "False"}, "mixed_precision must be True or False"),
    ({"mixed_precision": 1}, "mixed_precision must be True or False"),
    ({"hr_size": 32.0}, "hr_size must be a positive integer"),
    ({"hr_size": "32"}, "hr_size must be a positive integer"),
    ({"features": 0}, "features must be a positive integer"),
    ({"features": -4}, "features must be a positive integer"),
    ({"blocks": -1}, "blocks must be a non-negative integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": 1.5}, "seed must be a non-negative integer"),
    ({"tomo_size": 0}, "tomo_size must be a positive integer"),
    ({"learning_rate": -1}, "learning_rate must be a positive finite number"),
    ({"learning_rate": "1e-3"}, "learning_rate must be a positive finite number"),
    ({"train_budget_s": 0}, "train_budget_s must be a positive finite number"),
    ({"alphas": (2, 2), "batch_sizes": (2, 2)}, "alphas must be distinct"),
    ({"batch_sizes": (2, 2, 0)}, "batch_sizes entry must be a positive integer"),
    ({"batch_sizes": 2}, "batch_sizes must be a tuple"),
    ({"max_epochs": 0}, "max_epochs must be a positive integer"),
    ({"steps_per_epoch": 2.5}, "steps_per_epoch must be a positive integer"),
    ({"val_cutouts": True}, "val_cutouts must be a positive integer"),
    ({"samples": ("berea", 3)}, "samples must be None or sample names"),
    ({"split": (1, 1, 1, 0), "n_realizations": 3}, "split entry must be a positive integer"),
    ({"epochs_per_alpha": ((2, 1.5),)}, "epochs_per_alpha"),
])
def test_bad_override_is_refused_naming_the_field(override, fragment):
    """Every field's type and range is checked when the profile is made (issue: overrides
    such as mixed_precision="False" or hr_size=32.0 used to pass and fail late, or not at all).
    """
    with pytest.raises(ValueError, match=fragment):
        get_profile("tiny", **override)


def test_valid_overrides_are_normalised():
    p = get_profile("tiny", samples=["berea"], learning_rate=1, seed=3, mixed_precision=True)
    assert p.samples == ("berea",) and p.learning_rate == 1.0
    assert isinstance(p.learning_rate, float) and p.mixed_precision is True


def test_tomographic_crop_edges_fit_the_protocol():
    """The paper profile handed the whole sandstones to the protocol, which needs edges
    divisible by 2 * 8: at alpha = 4, 500 and 100 failed; at alpha = 8, 200 did."""
    paper, quick = get_profile("paper"), get_profile("quick")
    shapes = {"berea": (200, 200, 200), "bentheimer": (500, 500, 500),
              "leopard": (100, 100, 100)}
    assert {k: paper.tomo_edge(s) for k, s in shapes.items()} == {
        "berea": 192, "bentheimer": 496, "leopard": 96}
    assert paper.tomo_edge((416, 416, 416)) == 416  # the paper's own images
    assert paper.tomo_edge((130, 90, 200)) == 80    # the smallest axis decides
    assert all(quick.tomo_edge(s) == 96 for s in shapes.values())
    for edge in (paper.tomo_edge(s) for s in shapes.values()):
        assert all(edge % (2 * a) == 0 for a in paper.alphas)
    with pytest.raises(ValueError, match="needs at least 96 voxels"):
        quick.tomo_edge((64, 64, 64))
    with pytest.raises(ValueError, match="needs at least 16 voxels"):
        paper.tomo_edge((12, 40, 40))


def test_tomographic_crop_is_centred():
    import numpy as np

    from srlib import datasets

    image = np.random.default_rng(0).random((100, 100, 100)) < 0.5
    crop = datasets.tomographic_crop(image, get_profile("paper"))
    assert crop.shape == (96, 96, 96) and np.array_equal(crop, image[2:98, 2:98, 2:98])


def test_seed_alphas_are_the_smallest_alphas_and_follow_an_alpha_override():
    quick = get_profile("quick")
    assert quick.seed_alphas == (2,)
    replica = quick.replica()
    assert (replica.seed, replica.alphas, replica.batch_sizes) == (quick.seed + 1, (2,), (8,))
    assert replica.seed_alphas == ()
    assert get_profile("quick", alphas=[4, 8], batch_sizes=[4, 1]).seed_alphas == (4,)
    assert get_profile("paper").seed_alphas == (2, 4, 8)
    with pytest.raises(ValueError, match="seed_alphas"):
        get_profile("quick", seed_alphas=(4,))  # the alpha = 4 replica needs one at 2
    with pytest.raises(ValueError, match="no seed_alphas"):
        get_profile("quick", seed_alphas=()).replica()
