"""Running the units of an evaluation: in worker processes, with progress and an optional time budget.

Units are (split x method) fits plus DeepGAMI's grid-search units; a DeepGAMI fit waits for the
grid search whose setting it uses, the baselines do not. `run_units` keeps `jobs` units in flight
in a spawn-context process pool (each worker with cpu_count // jobs torch and BLAS threads), or runs
them in this process when `jobs` is 1. A unit's result depends only on the unit (its seeds derive
from seed, protocol, split and method), and the results come back sorted by their serial order, so
any `jobs` gives the same tables.

The budget admits the splits of the repeated protocol one at a time, while the time spent plus the
estimated cost of the admitted work and of the next split, shared among the workers, stays within it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from deepgami.errors import InputError
from deepgami.evaluation.config import DEEPGAMI_METHODS, MIN_REPEATS
from deepgami.evaluation.fits import TUNE, Context, Unit, UnitResult, run_unit

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class SplitGroup:
    """The units of one split, admitted together; `tune_key` names the grid search its DeepGAMI
    fits wait for (None: they use the untuned setting)."""

    units: list[Unit]
    tune_key: str | None = None
    repeated: bool = False


@dataclass
class Plan:
    """Grid-search units by key (run first), then the split groups in serial order."""

    tunes: dict[str, Unit] = field(default_factory=dict)
    groups: list[SplitGroup] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return len(self.tunes) + sum(len(g.units) for g in self.groups)


@dataclass
class RunOutcome:
    """Results in serial order, the settings the grid searches chose, and the repeated splits run."""

    results: list[UnitResult]
    settings: dict[str, UnitResult]
    repeated_run: int
    repeated_planned: int


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# -- workers ---------------------------------------------------------------------------------------

_CTX: Context | None = None
_LIMITS: Any = None  # keeps threadpoolctl's limits alive in a worker


def _init_worker(ctx: Context, threads: int, parent: int) -> None:
    """Pool initializer: this worker's share of the threads, the evaluation context, and an exit
    when the evaluating process dies (even by SIGKILL) instead of fitting on for nobody."""
    global _CTX, _LIMITS
    import threading
    import warnings

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="deepgami-evaluate-watch", daemon=True).start()

    import torch
    from threadpoolctl import threadpool_limits

    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    _LIMITS = threadpool_limits(limits=threads)
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore", FutureWarning)
    _CTX = ctx


def _work(unit: Unit, setting: dict | None) -> UnitResult | tuple[str, str | None, str]:
    """Run a unit in a worker; an InputError comes back as a tuple (it does not pickle)."""
    assert _CTX is not None
    try:
        return run_unit(_CTX, unit, setting)
    except InputError as err:
        return ("input_error", err.path, err.message)


class _Inline:
    """An executor that runs each unit when it is submitted, in this process (jobs = 1)."""

    def submit(self, fn: Callable, *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # noqa: BLE001  (re-raised by future.result())
            future.set_exception(err)
        return future

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


# -- progress ----------------------------------------------------------------------------------------


class Progress:
    """A tqdm bar over the units on a terminal; one line per finished unit otherwise; nothing if quiet."""

    def __init__(self, total: int, mode: str) -> None:
        self.mode = mode  # "bar", "lines" or "quiet"
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit="fit",
                desc="deepgami evaluate",
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
            )

    def finished(self, text: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.mode == "lines":
            elapsed = time.perf_counter() - self.t0
            left = elapsed / self.done * (self.total - self.done)
            print(
                f"[{self.done}/{self.total} {_clock(elapsed)} elapsed, ~{_clock(left)} left] {text}",
                file=sys.stderr,
                flush=True,
            )

    def shrink(self, n: int) -> None:
        """`n` planned units will not run (the budget cut them)."""
        self.total -= n
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_mode(quiet: bool, interactive: bool | None = None) -> str:
    """'quiet', 'bar' on a terminal, else 'lines'."""
    if quiet:
        return "quiet"
    return "bar" if (sys.stderr.isatty() if interactive is None else interactive) else "lines"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _describe(result: UnitResult, task: str) -> str:
    where = f"{result.protocol} {result.split}"
    if result.method == TUNE:
        return f"{where} grid search ({result.seconds:.1f}s)"
    key = "auc" if task == "classification" else "r2"
    value = result.main.get(key)
    return f"{where} {result.method}: {key} {'n/a' if value is None else f'{value:.3f}'} ({result.seconds:.1f}s)"


# -- the scheduler ---------------------------------------------------------------------------------


def run_units(
    ctx: Context,
    plan: Plan,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    budget_seconds: float | None = None,
    started: float | None = None,
) -> RunOutcome:
    """Run every unit of `plan`; return the results sorted by serial order.

    `budget_seconds` counts from `started` (default: now) and trims only repeated splits.
    """
    started = time.perf_counter() if started is None else started
    jobs = max(1, int(jobs))
    threads = max(1, default_jobs() // jobs)
    progress = progress or Progress(plan.n_units, "quiet")
    settings: dict[str, UnitResult] = {}
    results: list[UnitResult] = []
    waiting: dict[str, list[Unit]] = {}  # DeepGAMI units by the grid search they wait for
    ready: list[tuple[Unit, str | None]] = [
        (u, None) for u in plan.tunes.values()
    ]  # grid searches first
    tune_of = {id(u): key for key, u in plan.tunes.items()}
    groups = list(plan.groups)
    in_flight: dict[Future, tuple[Unit, float]] = {}
    spent: dict[str, list[float]] = {}  # seconds of finished units by method
    repeated_planned = sum(g.repeated for g in groups)
    repeated_run = 0

    def estimate(unit: Unit) -> float:
        own = spent.get(unit.method)
        if own:
            return sum(own) / len(own)
        every = [s for v in spent.values() for s in v]
        return sum(every) / len(every) if every else 0.0

    def admit() -> bool:
        """Move the next split group's units to the ready (or waiting) list; False when none is left."""
        nonlocal repeated_run
        if not groups:
            return False
        group = groups[0]
        if group.repeated and budget_seconds is not None and repeated_run >= MIN_REPEATS:
            committed = sum(estimate(u) for u, _ in ready) + sum(
                estimate(u) for u, _ in in_flight.values()
            )
            committed += sum(estimate(u) for us in waiting.values() for u in us)
            cost = sum(estimate(u) for u in group.units)
            if time.perf_counter() - started + (committed + cost) / jobs > budget_seconds:
                dropped = [g for g in groups if g.repeated]
                progress.shrink(sum(len(g.units) for g in dropped))
                groups[:] = [g for g in groups if not g.repeated]
                return bool(groups) and admit()
        groups.pop(0)
        repeated_run += group.repeated
        for unit in group.units:
            key = group.tune_key if unit.method in DEEPGAMI_METHODS else None
            if key is not None and key not in settings:
                waiting.setdefault(key, []).append(unit)
            else:
                ready.append((unit, settings[key].setting if key is not None else None))
        return True

    pool_cm: Any
    if jobs == 1:
        global _CTX
        previous, _CTX = _CTX, ctx
        pool_cm = _Inline()
    else:
        pool_cm = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(ctx, threads, os.getpid()),
        )
    try:
        with pool_cm as pool:
            while True:
                while len(in_flight) < jobs:
                    if not ready and not admit():
                        break
                    if not ready:
                        continue
                    unit, setting = ready.pop(0)
                    in_flight[pool.submit(_work, unit, setting)] = (unit, time.perf_counter())
                if not in_flight:
                    if waiting:  # a grid search failed to report: cannot happen unless a bug
                        raise RuntimeError(
                            f"units wait for grid searches that never ran: {list(waiting)}"
                        )
                    break
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: in_flight[f][0].order):
                    unit, _ = in_flight.pop(future)
                    result = future.result()
                    if isinstance(result, tuple):
                        for other in in_flight:
                            other.cancel()
                        raise InputError(result[1], result[2])
                    spent.setdefault(unit.method, []).append(result.seconds)
                    progress.finished(_describe(result, ctx.data.task))
                    key = tune_of.get(id(unit))
                    if key is not None:
                        settings[key] = result
                        ready.extend((u, result.setting) for u in waiting.pop(key, []))
                        ready.sort(key=lambda item: item[0].order)
                    else:
                        results.append(result)
    finally:
        if jobs == 1:
            _CTX = previous
        progress.close()
    results.sort(key=lambda r: r.order)
    return RunOutcome(results, settings, repeated_run, repeated_planned)
