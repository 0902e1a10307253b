import numpy as np
import pandas as pd
import pytest
from test_datasets import _arrays

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


def _add(x, y):
    return [a + b for a, b in zip(x, y, strict=True)]


def test_shared_values_and_dependencies_are_task_arguments():
    with parallel.dask_client(workers=1) as client:
        table = parallel.share(client, [1, 2, 3])  # a list travels as one object
        total = parallel.submit(client, _add, table, [10, 20, 30])
        assert parallel.run_tasks(client, _add, [(table, total), (total, total)],
                                  progress=False) == [[12, 24, 36], [22, 44, 66]]


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


def _server(reply: bytes | None):
    """A local TCP server that accepts connections and then says ``reply`` (or nothing)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(20)
    held = []

    def serve():
        try:
            while True:
                conn, _ = server.accept()
                held.append(conn)
                if reply is not None:
                    conn.sendall(reply)
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    return server, held


@pytest.mark.parametrize(("reply", "fragment"), [
    (None, "no Dask scheduler answered within 2 s"),          # accepts, never answers
    (b"\xff" * 64, "does not speak Dask's protocol"),
])
def test_a_silent_or_foreign_server_is_a_bounded_clear_error(monkeypatch, reply, fragment):
    """Such addresses used to hang for ever, or end in a 2.82 EiB allocation error."""
    import time

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 2)
    server, held = _server(reply)
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(ValueError, match=rf"scheduler '{address}'.*({fragment})"):
            with parallel.dask_client(address):
                pass
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert time.monotonic() - start < 60


def test_a_scheduler_without_workers_and_a_bad_address_are_named(monkeypatch):
    from dask.distributed import LocalCluster

    monkeypatch.setattr(parallel, "WORKERS_TIMEOUT_S", 2)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:
        with pytest.raises(ValueError, match="has no workers after 2 s"):
            with parallel.dask_client(cluster.scheduler_address):
                pass
    with pytest.raises(ValueError, match=r"scheduler 'not a url'.*(--scheduler)"):
        with parallel.dask_client("not a url"):
            pass


@pytest.fixture(scope="module")
def two_processes():
    """A local cluster of two worker processes, shared by the tests (start-up is slow)."""
    import os

    with parallel.dask_client(workers=2) as client:
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        yield client


@pytest.fixture(scope="module")
def databases(tmp_path_factory, two_processes):
    """The tiny database built in this process and on two worker processes."""
    params = stochastic.ModelParams.from_solid_fraction(0.7, gamma=0.4)
    samples = [datasets.Sample(name=f"s{k}", image=stochastic.sample(32, params, seed=k),
                               voxel_size_um=None, source="test") for k in range(2)]
    profile = get_profile("tiny")
    root = tmp_path_factory.mktemp("databases")
    built = {}
    for workers in (1, 2):
        with parallel.dask_client(two_processes if workers == 2 else None,
                                  workers=None if workers == 2 else 1) as client:
            db = datasets.build_database(profile, samples=samples, root=root / f"w{workers}",
                                         scheduler=client, progress=False)
            datasets.build_diffusion_channels(db, connectivity=profile.connectivity,
                                              scheduler=client, progress=False)
            assert len(client.scheduler_info()["workers"]) == workers
        built[workers] = db
    return built


def test_the_database_is_the_same_with_one_worker_or_two_processes(databases):
    one, two = (_arrays(databases[w]) for w in (1, 2))
    assert one.keys() == two.keys()
    assert len(one) == 2 * 3 * 7
    for key in one:
        assert one[key].dtype == two[key].dtype, key
        assert np.array_equal(one[key], two[key]), key
    # the channels are real (not all zero), so the comparison compares something
    assert all(one[k].any() for k in one if k[2].startswith("diffu"))


def _tiny_network(kind, alpha, seed):
    from pathlib import Path

    from srlib.training import TrainedNetwork, TrainResult, make_model

    model = make_model(1 if kind == "bin" else 3, alpha, features=2, blocks=1, seed=seed).eval()
    result = TrainResult(train_loss=(1.0,), val_loss=(1.0,), best_epoch=1, best_val_loss=1.0,
                         stopped_epoch=1, stop_reason="max_epochs", steps=1, seconds=0.0)
    return TrainedNetwork(kind=kind, alpha=alpha, model=model, threshold=0.5, result=result,
                          path=Path(f"N_{kind}_{alpha}.pt"), trained_now=False)


def test_the_evaluation_is_the_same_with_one_worker_or_two_processes(databases, two_processes,
                                                                     tmp_path):
    # Every method as Dask tasks: networks (pickled to the workers), baselines fitted on the
    # database, one FEM sub-image per image. The table must not depend on the workers.
    from srlib import baselines, evaluation

    db = databases[1]
    fitted = baselines.fit_baselines(db, (2, 4), cutout=get_profile("tiny").cutout)
    networks = {("bin", 2): _tiny_network("bin", 2, seed=0),
                ("diffu", 4): _tiny_network("diffu", 4, seed=1)}
    images = [("simulated", s, np.ascontiguousarray(db.hr(s, i)[:16, :16, :16]))
              for s in db.scenario_names for i in db.indices("test")]
    kw = {"methods": evaluation.METHODS, "baselines": fitted, "effective_sub_images": 1,
          "progress": False}
    one = evaluation.run_protocol(images, networks, (2, 4), tmp_path / "one", workers=1, **kw)
    two = evaluation.run_protocol(images, networks, (2, 4), tmp_path / "two",
                                  scheduler=two_processes, **kw)
    assert len(images) == 2
    assert len(one) == 2 * 2 * 8 * 6  # per α: its network and the 5 other methods
    assert set(one["method"]) == set(evaluation.METHODS)
    assert one["tau_eff_acc_mean"].notna().sum() == 2 * 2 * 6  # sub-image 0 of each group
    cols = [c for c in one.columns if c != "sr_seconds"]
    pd.testing.assert_frame_equal(one[cols], two[cols], check_exact=True)


def _numba_threads():
    import numba

    return numba.get_num_threads()


def check_share_of_the_cores():
    """Run in an interpreter whose numba may use every core (``run_with_all_cores``)."""
    import numba

    cores = parallel.default_workers()
    assert numba.config.NUMBA_NUM_THREADS == cores
    with parallel.dask_client(workers=1) as client:
        assert parallel.task_threads(client) == cores
        assert parallel.run_tasks(client, _numba_threads, [()], progress=False) == [cores]
    with parallel.dask_client(workers=2) as client:
        assert parallel.task_threads(client) == max(1, cores // 2)
    numba.set_num_threads(1)
    with parallel.dask_client(workers=1) as client:  # capped by this process's threads
        assert parallel.task_threads(client) == 1


@pytest.mark.skipif(parallel.default_workers() < 2, reason="needs two cores")
def test_tasks_get_the_workers_share_of_the_cores():
    from conftest import run_with_all_cores

    out = run_with_all_cores("import test_parallel as t; t.check_share_of_the_cores(); "
                             "print('checked')")
    assert out.strip().endswith("checked")


def check_same_bits_on_any_number_of_threads():
    """Run in an interpreter whose numba may use every core (``run_with_all_cores``)."""
    import numba
    from scipy import ndimage

    from srlib import transport

    assert numba.config.NUMBA_NUM_THREADS >= 2
    noise = np.random.default_rng(3).standard_normal((40, 40, 40))
    image = ndimage.gaussian_filter(noise, 2.0, mode="wrap") > 0.01
    for phase in ("pore", "solid"):
        taus = [parallel._in_task(k, transport.effective_tortuosity, image, phase)
                for k in (1, 2)]
        assert np.isfinite(taus[0]) and taus[0] == taus[1]
        one, two = (parallel._in_task(k, transport.solve_laplace, image, phase) for k in (1, 2))
        assert one.solution.size > 2 * 16384  # several blocks of the CG sums
        assert np.array_equal(one.solution, two.solution)


@pytest.mark.skipif(parallel.default_workers() < 2, reason="needs two cores")
def test_the_solver_gives_the_same_bits_on_any_number_of_threads():
    """What lets a task use several threads without its results depending on them."""
    from conftest import run_with_all_cores

    out = run_with_all_cores("import test_parallel as t; "
                             "t.check_same_bits_on_any_number_of_threads(); print('checked')")
    assert out.strip().endswith("checked")
