import numpy as np
import pytest

from srlib import datasets, parallel, stochastic
from srlib.config import get_profile


def _square(x):
    return x * x


def _fail(x):
    if x == 2:
        raise ValueError("task 2 failed")
    return x


def test_run_tasks_keeps_the_order_of_the_tasks():
    with parallel.dask_client(workers=1) as client:
        assert parallel.run_tasks(client, _square, [(k,) for k in range(7)],
                                  progress=False) == [k * k for k in range(7)]
        assert parallel.run_tasks(client, _square, [], progress=False) == []
        with pytest.raises(ValueError, match="task 2 failed"):
            parallel.run_tasks(client, _fail, [(k,) for k in range(4)], progress=False)


def test_an_existing_cluster_is_used_and_left_running(monkeypatch):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                      dashboard_address=":0") as cluster:
        monkeypatch.setenv(parallel.SCHEDULER_ENV, cluster.scheduler_address)
        with parallel.dask_client() as client:
            assert client.scheduler.address == cluster.scheduler_address
            assert parallel.run_tasks(client, _square, [(3,)], progress=False) == [9]
        assert cluster.status.name == "running"
        with parallel.dask_client(cluster.scheduler_address) as client:
            assert client.scheduler.address == cluster.scheduler_address


def test_bad_engine_arguments():
    with pytest.raises(ValueError, match="workers"), parallel.dask_client(workers=0):
        pass
    with pytest.raises(ValueError, match="scheduler"), parallel.dask_client(scheduler=5):
        pass


def _all_arrays(db):
    out = {}
    for s in db.scenario_names:
        for i in db.indices():
            out[(s, i, "hr")] = db.hr(s, i)
            for a in db.alphas:
                out[(s, i, f"lr{a}")] = db.lr(s, i, a)
                out[(s, i, f"diffu{a}")] = db.channels(s, i, a)
    return out


def test_the_database_is_the_same_with_one_worker_or_two_processes(tmp_path):
    params = stochastic.ModelParams.from_solid_fraction(0.7, gamma=0.4)
    samples = [datasets.Sample(name=f"s{k}", image=stochastic.sample(32, params, seed=k),
                               voxel_size_um=None, source="test") for k in range(2)]
    profile = get_profile("tiny")
    built = {}
    for workers in (1, 2):  # one cluster for both stages (process start-up is slow)
        with parallel.dask_client(workers=workers) as client:
            db = datasets.build_database(profile, samples=samples,
                                         root=tmp_path / f"w{workers}", scheduler=client,
                                         progress=False)
            datasets.build_diffusion_channels(db, connectivity=profile.connectivity,
                                              scheduler=client, progress=False)
            assert len(client.scheduler_info()["workers"]) == workers
        built[workers] = _all_arrays(db)
    one, two = built[1], built[2]
    assert one.keys() == two.keys()
    assert len(one) == 2 * 3 * 7
    for key in one:
        assert one[key].dtype == two[key].dtype, key
        assert np.array_equal(one[key], two[key]), key
    # the channels are real (not all zero), so the comparison compares something
    assert all(one[k].any() for k in one if k[2].startswith("diffu"))
