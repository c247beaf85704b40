"""The one executor: jobs from a `JobSource` run in a spawn-context process pool (or in this
process), at most `workers` at a time, built on `concurrent.futures`.

`deepgami evaluate` (its units: fits and grid searches) and `deepgami run` (its stages) both use it.
The source decides what runs next and what a finished job unlocks; `run_jobs` only keeps the pool
full and hands each result back, so neither keeps scheduler state in closures.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol


class JobSource(Protocol):
    """What `run_jobs` asks of a scheduler.

    Parameters
    ----------
    *args : Any
        Unused: a protocol describes methods and is not instantiated.
    **kwargs : Any
        Unused: a protocol describes methods and is not instantiated.
    """

    def next_job(self) -> tuple[Any, Callable, tuple] | None:
        """Return the next job to start, or None when none can start now.

        Returns
        -------
        tuple or None
            (tag, function, arguments) of the next job, or None.
        """

    def finished(self, tag: Any, result: Any) -> None:
        """Take the result of a job (its exception is raised from here and ends the run).

        Parameters
        ----------
        tag : Any
            The job's tag, as `next_job` gave it.
        result : Any
            What the job's function returned.
        """

    def order(self, tag: Any) -> Any:
        """Return the sort key of jobs that finish together.

        Their results are handed back in this order.

        Parameters
        ----------
        tag : Any
            The job's tag, as `next_job` gave it.

        Returns
        -------
        Any
            The job's sort key.
        """


class InlineExecutor:
    """An executor that runs each job when it is submitted, in this process (one worker)."""

    def submit(self, fn: Callable, *args: Any) -> Future:
        """Run `fn(*args)` now.

        Parameters
        ----------
        fn : Callable
            The job's function.
        *args : Any
            Its arguments.

        Returns
        -------
        concurrent.futures.Future
            A finished future holding its result or exception.
        """
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # noqa: BLE001  (re-raised by future.result())
            future.set_exception(err)
        return future

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def process_pool(
    workers: int, initializer: Callable | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor | InlineExecutor:
    """Return a spawn-context process pool of `workers`, or `InlineExecutor`.

    The pool's workers are fresh interpreters: no forked torch state. One worker without an
    initializer gets an `InlineExecutor`.

    Parameters
    ----------
    workers : int
        Processes in the pool.
    initializer : Callable or None, default None
        Run once in each worker (thread limits, shared context, a watch on the parent).
    initargs : tuple, default ()
        The initializer's arguments.

    Returns
    -------
    ProcessPoolExecutor or InlineExecutor
        A context manager with ``submit``.
    """
    if workers <= 1 and initializer is None:
        return InlineExecutor()
    return ProcessPoolExecutor(
        max_workers=max(1, workers),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=initargs,
    )


def run_jobs(source: JobSource, pool: ProcessPoolExecutor | InlineExecutor, workers: int) -> None:
    """Keep up to `workers` jobs of `source` in flight in `pool` until it has none left.

    Parameters
    ----------
    source
        Says what runs next and takes each result (`JobSource`).
    pool
        From `process_pool` (entered here, so its workers end with the run).
    workers
        Jobs in flight at most.

    Raises
    ------
    Exception
        Whatever `source.finished` raises: the jobs not started are cancelled first.
    """
    in_flight: dict[Future, Any] = {}
    with pool:
        while True:
            while len(in_flight) < workers:
                job = source.next_job()
                if job is None:
                    break
                tag, fn, args = job
                in_flight[pool.submit(fn, *args)] = tag
            if not in_flight:
                return
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: source.order(in_flight[f])):
                tag = in_flight.pop(future)
                try:
                    source.finished(tag, future.result())
                except BaseException:
                    for other in in_flight:
                        other.cancel()
                    raise
