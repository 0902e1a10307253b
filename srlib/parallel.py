"""The engine of the parallel stages: a Dask client, and tasks run through it with progress.

Contract. :func:`dask_client` gives a :class:`dask.distributed.Client`: connected to an
existing cluster by scheduler address (the ``scheduler`` argument, else the environment
variable ``SRLIB_DASK_SCHEDULER``; for example a ``dask-jobqueue`` SLURM cluster), else to a
:class:`dask.distributed.LocalCluster` it starts, sized to the machine (one worker process
per core, or ``workers`` processes; ``workers=1`` runs in this process, in a worker thread;
each runs one task at a time, whose numba kernels get the worker's share of the cores,
:func:`task_threads`). A cluster it started is closed when the ``with`` block ends; an existing
cluster is left running. :func:`run_tasks` submits one task per argument tuple, shows a
progress bar over the tasks as they complete, and returns their results in submission order.
:func:`share` sends an object that many tasks use to the cluster once, and :func:`submit` a
task whose result other tasks take (a dependency); both give futures that tasks take as
arguments.

Results never depend on the number of workers: every task is a pure function of its
arguments (seeds included), and it runs with the BLAS and OpenMP thread pools limited to one
thread (as Dask's nanny does for its worker processes) and with numba kernels whose
reductions add in fixed blocks, so floating-point sums add in the same order everywhere,
whatever the number of threads. Tasks that write files write their own files only.

The dashboard link of the cluster is logged (``logging.INFO``), for following long stages.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from srlib._checks import positive_int
from srlib._progress import progress_bar

if TYPE_CHECKING:
    from dask.distributed import Client

logger = logging.getLogger(__name__)

__all__ = ["SCHEDULER_ENV", "dask_client", "default_workers", "run_tasks", "share", "submit",
           "task_threads"]

#: Seconds to wait for an existing scheduler to answer, and then for its first worker.
CONNECT_TIMEOUT_S = 30
WORKERS_TIMEOUT_S = 120

#: Environment variable naming the scheduler of an existing Dask cluster.
SCHEDULER_ENV = "SRLIB_DASK_SCHEDULER"


def default_workers() -> int:
    """Worker processes of a local cluster: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(scheduler: str | Client | None = None, *,
                workers: int | None = None) -> Iterator[Client]:
    """A Dask client: an existing cluster's, or that of a local cluster started for the block.

    Parameters
    ----------
    scheduler : str or dask.distributed.Client, optional
        Address of an existing scheduler (``tcp://host:8786``), or a client to use as it is
        (left open; to share one cluster between stages); default the environment variable
        ``SRLIB_DASK_SCHEDULER``, and when that is unset or empty a local cluster.
    workers : int, optional
        Worker processes of the local cluster (one task at a time each); default
        :func:`default_workers`. ``1`` runs the tasks in this process (no worker process).
        Ignored, with a warning, when connecting to an existing cluster.

    Yields
    ------
    dask.distributed.Client
        The client; a local cluster started here is closed on leaving the block.
    """
    from dask.distributed import Client, LocalCluster

    if workers is not None:
        workers = positive_int(workers, "workers")
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None and not isinstance(scheduler, str):
        raise ValueError(f"scheduler must be an address or a dask.distributed.Client, got "
                         f"{scheduler!r}")
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if address:
        if workers is not None:
            logger.warning("workers=%d ignored: connecting to the existing cluster at %s",
                           workers, address)
        client = _connect(Client, address)
        logger.info("Dask cluster at %s, dashboard %s", address, client.dashboard_link)
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or default_workers()
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=n > 1,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    try:
        with Client(cluster) as client:
            logger.info("local Dask cluster of %d worker(s), dashboard %s", n,
                        client.dashboard_link)
            yield client
    finally:
        cluster.close()


def _probe(address: str) -> None:
    """Open and close one connection to ``address`` (Dask's handshake included), in bounded time.

    Raises
    ------
    TimeoutError
        If the handshake does not complete within :data:`CONNECT_TIMEOUT_S`.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    from distributed.comm import connect

    async def handshake():
        comm = await asyncio.wait_for(connect(address, timeout=CONNECT_TIMEOUT_S),
                                      CONNECT_TIMEOUT_S)
        await comm.close()

    # its own thread and event loop: a Jupyter kernel's thread already runs one
    pool = ThreadPoolExecutor(1)
    try:
        pool.submit(asyncio.run, handshake()).result(timeout=CONNECT_TIMEOUT_S + 5)
    except FutureTimeout as err:
        raise TimeoutError(f"no handshake within {CONNECT_TIMEOUT_S} s") from err
    finally:
        pool.shutdown(wait=False)


def _connect(client_type, address: str):
    """A client of the scheduler at ``address``, with bounded waits and errors that name it.

    The connection must be made within :data:`CONNECT_TIMEOUT_S` and a worker must be there
    within :data:`WORKERS_TIMEOUT_S`; otherwise, and for an address that is not one or a
    server that speaks another protocol, a ValueError names the address and where it came
    from (``scheduler=`` / ``--scheduler``, or ``SRLIB_DASK_SCHEDULER``).
    """
    where = (f"scheduler {address!r} (the scheduler argument, `--scheduler`, or "
             f"${SCHEDULER_ENV})")
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "inproc":  # inproc://: a cluster in this process, no port
            parse_host_port(location)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: not a scheduler address ({err}); expected e.g. "
                         "tcp://host:8786") from err
    try:
        _probe(address)  # a server that accepts and never answers would hang the client
    except (OSError, TimeoutError) as err:
        raise ValueError(f"{where}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                         f"({type(err).__name__}: {err})") from err
    except Exception as err:  # garbage read as a message: a length, an array shape, ...
        raise ValueError(f"{where}: the server there does not speak Dask's protocol "
                         f"({type(err).__name__}: {err})") from err
    client = client_type(address, timeout=CONNECT_TIMEOUT_S)
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        client.close()
        raise ValueError(f"{where}: the scheduler has no workers after {WORKERS_TIMEOUT_S} s; "
                         "start some (dask worker ADDRESS) or use a local cluster") from err
    return client


def task_threads(client) -> int:
    """Numba threads for each task of ``client``: the cores a local worker may use.

    A local cluster runs one task per worker at a time, so each task gets the machine's
    cores divided among the workers (1 when there are as many workers as cores; all of them
    with one worker, as for an 800³ image whose solve fills the memory), and no more than
    this process's own numba threads (``numba.set_num_threads(1)`` here keeps the tasks
    single-threaded, as the test suite does beside its other worker). On an existing
    cluster, whose machines this process cannot see, 1.
    """
    import numba
    from dask.distributed import LocalCluster

    cluster = getattr(client, "cluster", None)
    if not isinstance(cluster, LocalCluster) or not cluster.workers:
        return 1
    return max(1, min(numba.get_num_threads(), default_workers() // len(cluster.workers)))


def _in_task(threads: int, func: Callable, *args):
    """Run ``func(*args)`` with numba limited to ``threads`` threads, BLAS and OpenMP to one.

    The sums are the same on any number of threads (the transport solver's reductions are
    blocked, :data:`srlib.fem.kernels.BLOCK`; BLAS stays single-threaded), so results do not
    depend on how many workers share a machine. Limiting the threads keeps the workers from
    oversubscribing its cores: numba's parallel kernels with a thread per core in every
    worker process make the workers wait for each other (engineering notes of the book).
    """
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=1):
            return func(*args)
    finally:
        numba.set_num_threads(before)


def share(client, value):
    """Send ``value`` to the cluster once; the future stands for it in tasks' arguments.

    For what many tasks use (networks, tables, an image): a future passed among the
    arguments of :func:`run_tasks` or :func:`submit` is replaced by the value on the worker,
    which fetches it once rather than once per task.

    Parameters
    ----------
    client : dask.distributed.Client
        From :func:`dask_client`.
    value : object
        Any picklable object (a list or dict is sent as one object, not element-wise).

    Returns
    -------
    dask.distributed.Future
        The value's future; the value stays on the cluster while the future is referenced.
    """
    [future] = client.scatter([value], hash=False)
    return future


def submit(client, func: Callable, *args):
    """Submit one task ``func(*args)`` as :func:`run_tasks` runs its tasks; return its future.

    For a task whose result other tasks take as an argument (a Dask dependency): pass the
    future among their arguments. Same rules as :func:`run_tasks` (a module-level, pure
    function, run with BLAS and OpenMP limited to one thread and numba to
    :func:`task_threads`).
    """
    return client.submit(_in_task, task_threads(client), func, *args, pure=False)


def run_tasks(client, func: Callable, tasks: Iterable[Sequence], *, desc: str = "tasks",
              progress: bool = True) -> list:
    """Run ``func(*args)`` for every argument tuple as Dask tasks; results in task order.

    Parameters
    ----------
    client : dask.distributed.Client
        From :func:`dask_client`.
    func : callable
        A module-level function (workers import it by name); it must be a pure function of
        its arguments, and write, if anything, only its own files.
    tasks : iterable of sequence
        Positional arguments of each call; futures among them (:func:`share`,
        :func:`submit`) are replaced by their values.
    desc : str
        Label of the progress bar.
    progress : bool
        Show a progress bar (tqdm) that advances as tasks complete.

    Returns
    -------
    list
        ``func``'s results, in the order of ``tasks``.

    Raises
    ------
    Exception
        The first error of a task (the other tasks are cancelled).
    """
    from dask.distributed import as_completed

    tasks = [tuple(t) for t in tasks]
    if not tasks:
        return []
    futures = [submit(client, func, *t) for t in tasks]
    order = {f.key: k for k, f in enumerate(futures)}
    results = [None] * len(futures)
    try:
        with progress_bar(total=len(futures), desc=desc, disable=not progress) as bar:
            for future in as_completed(futures):
                results[order[future.key]] = future.result()
                bar.update()
    except BaseException:
        client.cancel(futures)
        raise
    return results

