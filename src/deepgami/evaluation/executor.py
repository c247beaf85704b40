"""Running the units of an evaluation: in worker processes, with progress and an optional time budget.

Units are (split x method) fits plus DeepGAMI's grid-search units; a DeepGAMI fit waits for the
grid search whose setting it uses, the baselines do not. `run_units` keeps `jobs` units in flight
in a spawn-context process pool (`deepgami.executor`) (each worker with cpu_count // jobs torch and BLAS threads), or runs
them in this process when `jobs` is 1. A unit's result depends only on the unit (its seeds derive
from seed, protocol, split and method), and the results come back sorted by their serial order, so
any `jobs` gives the same tables.

The budget admits the splits of the repeated protocol one at a time, while the time spent plus the
estimated cost of the admitted work and of the next split, shared among the workers, stays within it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deepgami.errors import InputError
from deepgami.evaluation.config import ALONE, DEEPGAMI_METHODS, MIN_REPEATS
from deepgami.evaluation.fits import TUNE, Context, Unit, UnitResult, run_unit
from deepgami.executor import process_pool, run_jobs

if TYPE_CHECKING:
    from deepgami.train import Setting

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The metric a finished unit's progress line shows (classification, regression, survival).
HEADLINE_METRICS = ("auc", "r2", "c_index")


@dataclass
class SplitGroup:
    """The units of one split, admitted together.

    Parameters
    ----------
    units : list of Unit
        The split's units.
    tune_key : str or None, default None
        The grid search its DeepGAMI fits wait for (None: they use the untuned setting).
    repeated : bool, default False
        Whether the split belongs to the repeated protocol (the budget may drop it).
    """

    units: list[Unit]
    tune_key: str | None = None
    repeated: bool = False


@dataclass
class Plan:
    """Grid-search units by key (run first), then the split groups in serial order.

    Parameters
    ----------
    tunes : dict of str to Unit, default {}
        The grid-search units, by key.
    groups : list of SplitGroup, default []
        The split groups, in serial order.
    """

    tunes: dict[str, Unit] = field(default_factory=dict)
    groups: list[SplitGroup] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return len(self.tunes) + sum(len(g.units) for g in self.groups)


@dataclass
class RunOutcome:
    """Results in serial order, the settings the grid searches chose, and the repeated splits run.

    Parameters
    ----------
    results : list of UnitResult
        The units' results, in serial order.
    settings : dict of str to UnitResult
        The grid searches' results (their chosen settings), by key.
    repeated_run : int
        How many repeated splits ran.
    repeated_planned : int
        How many repeated splits were planned.
    """

    results: list[UnitResult]
    settings: dict[str, UnitResult]
    repeated_run: int
    repeated_planned: int


def default_jobs() -> int:
    """Count the CPUs this process may use.

    Returns
    -------
    int
        The number of usable CPUs (at least 1).
    """
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


def _work(unit: Unit, setting: Setting | None) -> UnitResult | tuple[str, str | None, str]:
    """Run a unit in a worker; an InputError comes back as a tuple (it does not pickle)."""
    assert _CTX is not None
    try:
        return run_unit(_CTX, unit, setting)
    except InputError as err:
        return ("input_error", err.path, err.message)


# -- progress ----------------------------------------------------------------------------------------


class Progress:
    """A tqdm bar over the units on a terminal; one line per finished unit otherwise.

    Nothing is shown if quiet.

    Parameters
    ----------
    total : int
        The number of planned units.
    mode : str
        ``bar``, ``lines`` or ``quiet`` (see `progress_mode`).
    """

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
        """Report one finished unit.

        Parameters
        ----------
        text : str
            The unit's description (shown as the bar's postfix, or at the end of its line).
        """
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
        """Drop `n` planned units that will not run (the budget cut them).

        Parameters
        ----------
        n : int
            The number of planned units dropped.
        """
        self.total -= n
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def close(self) -> None:
        """Close the bar, if any."""
        if self.bar is not None:
            self.bar.close()


def progress_mode(quiet: bool, interactive: bool | None = None) -> str:
    """Choose the progress mode: 'quiet', 'bar' on a terminal, else 'lines'.

    Parameters
    ----------
    quiet : bool
        Whether to report nothing.
    interactive : bool or None, default None
        Whether stderr is a terminal (None: ask stderr).

    Returns
    -------
    str
        ``quiet``, ``bar`` or ``lines``.
    """
    if quiet:
        return "quiet"
    return "bar" if (sys.stderr.isatty() if interactive is None else interactive) else "lines"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _describe(result: UnitResult) -> str:
    where = f"{result.protocol} {result.split}"
    if result.method == TUNE:
        return f"{where} grid search ({result.seconds:.1f}s)"
    name = result.method
    if result.method == ALONE and result.records:  # one unit per modality
        name += f"[{result.records[0]['modalities']}]"
    if result.target is not None:
        name += f" ({result.target})"
    # The headline metric of the task, or of each target (`<target>:<metric>` keys).
    shown = [
        f"{key} {'n/a' if value is None else f'{value:.3f}'}"
        for key, value in result.main.items()
        if key.rsplit(":", 1)[-1] in HEADLINE_METRICS
    ]
    return f"{where} {name}: {', '.join(shown) or 'n/a'} ({result.seconds:.1f}s)"


# -- the scheduler ---------------------------------------------------------------------------------


class _Schedule:
    """Which unit runs next (`deepgami.executor.JobSource`): grid searches first, then the split
    groups in serial order, admitted while the budget allows; a DeepGAMI unit waits for its grid
    search's setting."""

    def __init__(
        self,
        ctx: Context,
        plan: Plan,
        jobs: int,
        progress: Progress,
        budget_seconds: float | None,
        started: float,
    ) -> None:
        self.ctx, self.jobs, self.progress = ctx, jobs, progress
        self.budget, self.started = budget_seconds, started
        self.settings: dict[str, UnitResult] = {}
        self.results: list[UnitResult] = []
        self.waiting: dict[str, list[Unit]] = {}  # DeepGAMI units by the grid search they wait for
        self.ready: list[tuple[Unit, Setting | None]] = [(u, None) for u in plan.tunes.values()]
        self.tune_of = {id(u): key for key, u in plan.tunes.items()}
        self.groups = list(plan.groups)
        self.running: dict[int, Unit] = {}  # by serial order
        self.spent: dict[str, list[float]] = {}  # seconds of finished units by method
        self.repeated_planned = sum(g.repeated for g in self.groups)
        self.repeated_run = 0

    def estimate(self, unit: Unit) -> float:
        """Seconds a unit should take: the mean of its method's finished units (else of all)."""
        own = self.spent.get(unit.method)
        if own:
            return sum(own) / len(own)
        every = [s for v in self.spent.values() for s in v]
        return sum(every) / len(every) if every else 0.0

    def _over_budget(self, group: SplitGroup) -> bool:
        """Whether admitting this repeated split would run past the budget."""
        if not group.repeated or self.budget is None or self.repeated_run < MIN_REPEATS:
            return False
        units = [u for u, _ in self.ready] + list(self.running.values())
        units += [u for us in self.waiting.values() for u in us]
        committed = sum(self.estimate(u) for u in units)
        cost = sum(self.estimate(u) for u in group.units)
        return time.perf_counter() - self.started + (committed + cost) / self.jobs > self.budget

    def admit(self) -> bool:
        """Move the next split group's units to the ready (or waiting) list; False when none is
        left. Over the budget, every remaining repeated split is dropped."""
        if not self.groups:
            return False
        group = self.groups[0]
        if self._over_budget(group):
            dropped = [g for g in self.groups if g.repeated]
            self.progress.shrink(sum(len(g.units) for g in dropped))
            self.groups = [g for g in self.groups if not g.repeated]
            return self.admit()
        self.groups.pop(0)
        self.repeated_run += group.repeated
        for unit in group.units:
            key = group.tune_key if unit.method in DEEPGAMI_METHODS else None
            if key is not None and key not in self.settings:
                self.waiting.setdefault(key, []).append(unit)
            else:
                self.ready.append((unit, self.settings[key].setting if key is not None else None))
        return True

    def next_job(self) -> tuple[Unit, Callable, tuple] | None:
        while not self.ready:
            if not self.admit():
                if self.waiting and not self.running:  # cannot happen unless a bug
                    raise RuntimeError(
                        f"units wait for grid searches that never ran: {list(self.waiting)}"
                    )
                return None
        unit, setting = self.ready.pop(0)
        self.running[unit.order] = unit
        return unit, _work, (unit, setting)

    def order(self, unit: Unit) -> int:
        return unit.order

    def finished(self, unit: Unit, result: UnitResult | tuple) -> None:
        del self.running[unit.order]
        if isinstance(result, tuple):
            raise InputError(result[1], result[2])
        self.spent.setdefault(unit.method, []).append(result.seconds)
        self.progress.finished(_describe(result))
        key = self.tune_of.get(id(unit))
        if key is None:
            self.results.append(result)
            return
        self.settings[key] = result
        self.ready.extend((u, result.setting) for u in self.waiting.pop(key, []))
        self.ready.sort(key=lambda item: item[0].order)


def run_units(
    ctx: Context,
    plan: Plan,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    budget_seconds: float | None = None,
    started: float | None = None,
) -> RunOutcome:
    """Run every unit of `plan` with the one executor (`deepgami.executor.run_jobs`).

    Parameters
    ----------
    ctx
        What every unit reads.
    plan
        Grid-search units and split groups.
    jobs
        Worker processes (1: in this process).
    progress
        Reports finished units (default: quiet).
    budget_seconds
        Counts from `started` (default: now) and trims only repeated splits.
    started
        `time.perf_counter()` at the start of the evaluation.

    Returns
    -------
    RunOutcome
        The results sorted by serial order, whatever order the workers finished in.
    """
    global _CTX
    started = time.perf_counter() if started is None else started
    jobs = max(1, int(jobs))
    progress = progress or Progress(plan.n_units, "quiet")
    schedule = _Schedule(ctx, plan, jobs, progress, budget_seconds, started)
    threads = max(1, default_jobs() // jobs)
    previous = _CTX
    if jobs == 1:
        _CTX = ctx
        pool = process_pool(1)
    else:
        pool = process_pool(jobs, _init_worker, (ctx, threads, os.getpid()))
    try:
        run_jobs(schedule, pool, jobs)
    finally:
        _CTX = previous
        progress.close()
    schedule.results.sort(key=lambda r: r.order)
    return RunOutcome(
        schedule.results, schedule.settings, schedule.repeated_run, schedule.repeated_planned
    )
