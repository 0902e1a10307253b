"""Run one stage of the tiny study in a folder; tests/test_resume.py kills it and resumes.

Usage: ``python tests/_resume_stage.py {generate,train,evaluate} RUN_DIR DATABASE_DIR``.
Only public APIs of srlib are used.
"""

import sys
from pathlib import Path

import numpy as np


def samples():
    from srlib import datasets, stochastic

    params = stochastic.ModelParams.from_solid_fraction(0.7, gamma=0.4)
    return [datasets.Sample(name=f"s{i}", image=stochastic.sample(32, params, seed=i),
                            voxel_size_um=None, source="test") for i in range(2)]


def main(stage: str, run: Path, database: Path) -> None:
    from srlib import datasets
    from srlib.config import get_profile

    profile = get_profile("tiny", alphas=(2, 4), batch_sizes=(2, 2))
    if stage == "generate":
        db = datasets.build_database(profile, samples=samples(), root=database, workers=1,
                                     progress=False)
        datasets.build_diffusion_channels(db, connectivity=profile.connectivity, progress=False)
    elif stage == "train":
        from srlib import training
        from srlib.io import remove_stale_temp

        remove_stale_temp(run / "networks")  # a stage's start, as `srlib train` does
        training.train_networks(datasets.Database(database), profile, run / "networks",
                                kinds=("bin",), progress=False, num_threads=1)
    elif stage == "evaluate":
        from srlib import evaluation
        from srlib.io import remove_stale_temp

        remove_stale_temp(run / "evaluation", recursive=True)  # a stage's start
        db = datasets.Database(database)
        images = [("simulated", s, db.hr(s, i)) for s in db.scenario_names
                  for i in db.indices("test")]
        images.append(("tomographic", "t", np.ascontiguousarray(~db.hr("s0", 1))))
        evaluation.run_protocol(images, {}, profile.alphas, run / "evaluation",
                                methods=("interpolation",), effective=True,
                                effective_sub_images=1, progress=False)
    else:
        raise SystemExit(f"unknown stage {stage}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
