"""The embedded pipeline runner behind `deepgami run`: the Nextflow workflow's stages on one machine.

Per samplesheet row (a cohort), in order::

    build -> train -> predict (all modalities, then each modality alone) -> prioritize -> evaluate

and, across rows, a summary table. A single-cell row (``pseudobulk`` column) first runs
``deepgami pseudobulk`` into ``<outdir>/<id>/pseudobulk/`` and fans out into one cohort per cell
type, ``<id>.<cell type>``, whose stages start when that pseudobulk has finished. Cohorts run in
parallel in a bounded process pool; each stage is a `deepgami <stage>` subprocess, whose outputs
appear atomically, so a runner killed at any moment leaves complete outputs or none. The output
layout is the one the Nextflow pipeline publishes::

    <outdir>/<id>/cohort.h5mu
    <outdir>/<id>/model/
    <outdir>/<id>/predictions/{all,<modality>}.tsv (+ .metrics.json)
    <outdir>/<id>/prioritize/
    <outdir>/<id>/evaluate/
    <outdir>/summary.tsv, <outdir>/summary.html
    <outdir>/pipeline_info/logs/<id>/<stage>.log

Resume: ``<outdir>/.deepgami_run.json`` records, per finished stage, a SHA-256 of its inputs (file
contents and arguments) and of its outputs. With ``resume=True`` a stage is skipped when its entry
matches the current inputs and its outputs are present and unchanged; otherwise it runs again, and
so does everything downstream whose inputs it changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepgami import __version__
from deepgami.errors import InputError, atomic_path
from deepgami.executor import process_pool, run_jobs
from deepgami.pipeline.samplesheet import CohortRow, read_samplesheet
from deepgami.pipeline.samplesheet import prediction_sets as _prediction_sets

__all__ = [
    "STAGES",
    "RunSettings",
    "StageTask",
    "plan_cohort",
    "plan_pseudobulk",
    "expand_rows",
    "prediction_sets",
    "run_pipeline",
    "SummaryEntry",
    "write_summary",
]

STAGES = (
    "pseudobulk",
    "build",
    "train",
    "predict",
    "prioritize",
    "evaluate",
)  # pseudobulk: single-cell rows only
LEDGER_NAME = ".deepgami_run.json"
LOCK_NAME = ".deepgami_run.lock"
LEDGER_VERSION = 1
SUMMARY_FIRST_COLUMNS = [
    "cohort",
    "cell_type",
    "prediction_set",
    "modalities",
    "target",
    "n",
    "accuracy",
    "balanced_accuracy",
    "auc",
    "f1_macro",
]


@dataclass
class RunSettings:
    """Options shared by every cohort (the Nextflow params of the same names).

    Parameters
    ----------
    seed : int, default 0
        The random seed.
    eval_split : str or None, default "test"
        The split that predict and evaluate score (None: no ``--split``).
    skip : frozenset of str, default frozenset()
        Stages to leave out.
    stage_args : dict of str to list of str, default {}
        Extra arguments per stage (Nextflow: ext.args).
    max_workers : int, default 1
        Cohorts run in parallel.
    resume : bool, default False
        Whether to skip stages whose ledger entry matches their inputs and outputs.
    progress : bool or None, default None
        Whether to show a progress bar (None: only on a terminal).
    """

    seed: int = 0
    eval_split: str | None = "test"
    skip: frozenset[str] = frozenset()
    stage_args: dict[str, list[str]] = field(
        default_factory=dict
    )  # extra arguments per stage (Nextflow: ext.args)
    max_workers: int = 1
    resume: bool = False
    progress: bool | None = None  # None: a progress bar only on a terminal


@dataclass
class StageTask:
    """One `deepgami <stage>` call of one cohort.

    Parameters
    ----------
    cohort : str
        The cohort's id.
    stage : str
        The stage's name.
    key : str
        The ledger key, e.g. "cohort_a/predict/all".
    argv : list of str
        The arguments after `deepgami`.
    inputs : dict of str to pathlib.Path
        Files/folders whose content the result depends on.
    options : list of str
        Non-path arguments that change the result.
    outputs : list of pathlib.Path
        Paths that must exist after the stage.
    optional_outputs : list of pathlib.Path, default []
        Paths the stage may write.
    log : pathlib.Path or None, default None
        The stage's log file.
    """

    cohort: str
    stage: str
    key: str  # ledger key, e.g. "cohort_a/predict/all"
    argv: list[str]  # arguments after `deepgami`
    inputs: dict[str, Path]  # files/folders whose content the result depends on
    options: list[str]  # non-path arguments that change the result
    outputs: list[Path]  # must exist after the stage
    optional_outputs: list[Path] = field(default_factory=list)
    log: Path | None = None


# -- planning ------------------------------------------------------------------------------------


def prediction_sets(row: CohortRow) -> list[str]:
    """List the prediction sets: 'all' (every modality) and, with several, each modality alone.

    The rule lives in :func:`deepgami.pipeline.samplesheet.prediction_sets` (the Nextflow workflow
    reads it from there too).

    Parameters
    ----------
    row : CohortRow
        The samplesheet row.

    Returns
    -------
    list of str
        ``all``, then each modality's name when there are several.
    """
    return _prediction_sets(row.modality_names)


def plan_cohort(row: CohortRow, outdir: Path, settings: RunSettings) -> list[StageTask]:
    """The stages of one cohort, in order, as `deepgami` argument lists.

    Parameters
    ----------
    row
        The samplesheet row (or a fanned-out cell type).
    outdir
        The run's output folder (the cohort's files go into ``<outdir>/<id>/``).
    settings
        The run's options; stages in ``settings.skip`` are left out.

    Returns
    -------
    list of StageTask
        build, train, predict (one per prediction set), prioritize, evaluate.
    """
    plan = _CohortPlan(row, outdir, settings)
    plan.build()
    plan.train()
    plan.predict()
    plan.prioritize()
    plan.evaluate()
    return plan.tasks


class _CohortPlan:
    """The stages of one cohort, added in order by one method each."""

    def __init__(self, row: CohortRow, outdir: Path, settings: RunSettings) -> None:
        self.row, self.settings = row, settings
        self.base = outdir / row.id
        self.logs = outdir / "pipeline_info" / "logs" / row.id
        self.cohort, self.model = self.base / "cohort.h5mu", self.base / "model"
        self.split = ["--split", settings.eval_split] if settings.eval_split else []
        self.params = ["--params", str(row.params)] if row.params else []
        self.train_inputs = {
            "cohort": self.cohort,
            **({"params": row.params} if row.params else {}),
        }
        self.tasks: list[StageTask] = []

    def wanted(self, stage: str) -> bool:
        return stage not in self.settings.skip

    def add(
        self,
        stage: str,
        name: str,
        argv: list[str],
        inputs: dict[str, Path],
        options: list[str],
        outputs: list[Path],
        optional: Sequence[Path] = (),
    ) -> None:
        if not self.wanted(stage):
            return
        extra = self.settings.stage_args.get(stage, [])
        argv, options = argv + extra, options + extra
        key = f"{self.row.id}/{stage}" + (f"/{name}" if name else "")
        log = self.logs / (f"{stage}.{name}.log" if name else f"{stage}.log")
        self.tasks.append(
            StageTask(self.row.id, stage, key, argv, inputs, options, outputs, list(optional), log)
        )

    def build(self) -> None:
        row = self.row
        argv = ["build"]
        inputs: dict[str, Path] = {"labels": row.labels}
        for name, path in row.modalities.items():
            argv += ["--modality", f"{name}={path}"]
            inputs[f"modality:{name}"] = path
        for prior in row.priors:
            argv += ["--prior", f"{prior.modality}:{prior.name}={prior.path}"]
            inputs[f"prior:{prior.modality}:{prior.name}"] = prior.path
        argv += ["--labels", str(row.labels), "--out", str(self.cohort), "--quiet"]
        options = list(row.modalities) + [f"{p.modality}:{p.name}" for p in row.priors]
        for flag, value in (
            ("--label-column", row.label_columns),
            ("--survival-columns", row.survival_columns),
        ):
            if value:
                argv += [flag, value]
                options.append(f"{flag}={value}")
        self.add("build", "", argv, inputs, options, [self.cohort])

    def train(self) -> None:
        seed = str(self.settings.seed)
        argv = ["train", str(self.cohort), "--out", str(self.model), *self.params, "--seed", seed]
        self.add("train", "", argv, self.train_inputs, ["--seed", seed], [self.model])

    def predict(self) -> None:
        for name in prediction_sets(self.row):
            out = self.base / "predictions" / f"{name}.tsv"
            modality = [] if name == "all" else ["--modalities", name]
            self.add(
                "predict",
                name,
                ["predict", str(self.model), str(self.cohort), "--out", str(out)]
                + [*modality, *self.split],
                {"model": self.model, "cohort": self.cohort},
                modality + self.split,
                [out],
                [out.with_name(f"{name}.metrics.json"), out.with_name(f"{name}.km.png")],
            )

    def prioritize(self) -> None:
        out = self.base / "prioritize"
        self.add(
            "prioritize",
            "",
            ["prioritize", str(self.model), str(self.cohort), "--out", str(out), *self.split],
            {"model": self.model, "cohort": self.cohort},
            self.split,
            [out],
        )

    def evaluate(self) -> None:
        # The report shows the model's training curves and the prioritization when made here.
        out, seed = self.base / "evaluate", str(self.settings.seed)
        argv = ["evaluate", str(self.cohort), "--out", str(out), *self.params]
        inputs = dict(self.train_inputs)
        for stage, flag, folder in (
            ("train", "--model-dir", self.model),
            ("prioritize", "--prioritize-dir", self.base / "prioritize"),
        ):
            if self.wanted(stage):
                argv += [flag, str(folder)]
                inputs[stage] = folder
        argv += ["--seed", seed]
        workers = self.settings.max_workers
        if workers > 1:  # evaluate's workers share the cores with the other cohorts' stages
            argv += ["--jobs", str(max(1, (os.cpu_count() or 1) // workers))]
        self.add("evaluate", "", argv, inputs, ["--seed", seed], [out])


def plan_pseudobulk(row: CohortRow, outdir: Path, settings: RunSettings) -> StageTask:
    """Plan the `deepgami pseudobulk` call of a single-cell row.

    It writes ``<outdir>/<id>/pseudobulk/``.

    Parameters
    ----------
    row : CohortRow
        The single-cell samplesheet row.
    outdir : pathlib.Path
        The run's output folder.
    settings : RunSettings
        The run's options (extra pseudobulk arguments).

    Returns
    -------
    StageTask
        The pseudobulk stage of the row.
    """
    cells = row.modalities[row.pseudobulk or ""]
    out = outdir / row.id / "pseudobulk"
    extra = settings.stage_args.get("pseudobulk", [])
    keys = ["--donor-key", row.donor_key or "", "--cell-type-key", row.cell_type_key or ""]
    return StageTask(
        row.id,
        "pseudobulk",
        f"{row.id}/pseudobulk",
        ["pseudobulk", str(cells), *keys, "--out", str(out), *extra],
        {"cells": cells},
        keys + extra,
        [out],
        [],
        outdir / "pipeline_info" / "logs" / row.id / "pseudobulk.log",
    )


def expand_rows(rows: list[CohortRow], outdir: Path) -> tuple[list[CohortRow], list[CohortRow]]:
    """Fan every single-cell row out into one cohort per cell type.

    Parameters
    ----------
    rows : list of CohortRow
        The samplesheet rows.
    outdir : pathlib.Path
        The run's output folder (the pseudobulk outputs go into ``<outdir>/<id>/pseudobulk/``).

    Returns
    -------
    cohorts : list of CohortRow
        The cohorts, single-cell rows fanned out into one per cell type.
    single_cell : list of CohortRow
        The single-cell rows.

    Raises
    ------
    InputError
        When a fanned-out id collides with another cohort's.
    """
    from deepgami.pipeline.samplesheet import fan_out

    cohorts, single_cell = [], []
    for row in rows:
        if row.pseudobulk is not None:
            single_cell.append(row)
        cohorts += fan_out(row, outdir / row.id / "pseudobulk")
    ids = [row.id for row in cohorts] + [row.id for row in single_cell]
    clash = sorted({i for i in ids if ids.count(i) > 1})
    if clash:
        raise InputError(
            None,
            f"samplesheet: cohort id '{clash[0]}' is used twice (a single-cell row fans out "
            "into <id>.<cell type>); rename a row",
        )
    return cohorts, single_cell


# -- content hashes and the ledger ---------------------------------------------------------------


class _Hasher:
    """SHA-256 of files and folders, cached by (path, size, mtime) within one run."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}

    def file(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._cache[key] = digest.hexdigest()
        return self._cache[key]

    def tree(self, path: Path) -> str | None:
        """Hash of a file, or of a folder's relative names and file contents; None if absent."""
        if path.is_file():
            return self.file(path)
        if not path.is_dir():
            return None
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            digest.update(self.file(item).encode() + b"\n")
        return digest.hexdigest()

    def inputs(self, task: StageTask) -> str:
        payload = {
            "deepgami": __version__,
            "stage": task.stage,
            "options": task.options,
            "inputs": {name: self.tree(path) for name, path in sorted(task.inputs.items())},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def outputs(self, task: StageTask) -> str | None:
        parts = []
        for path in task.outputs:
            h = self.tree(path)
            if h is None:
                return None
            parts.append(h)
        parts += [self.tree(p) or "-" for p in task.optional_outputs]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _read_ledger(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
        return {}
    return dict(data.get("stages", {}))


def _write_ledger(path: Path, stages: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps({"version": LEDGER_VERSION, "stages": stages}, indent=1, sort_keys=True)
            + "\n"
        )


# -- running one stage (in a pool worker) --------------------------------------------------------

_current_stage: subprocess.Popen | None = None  # the stage subprocess of this pool worker


def _watch_runner(runner_pid: int) -> None:
    """Pool-worker initializer: if the runner dies (even by SIGKILL), stop this worker's stage and exit."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != runner_pid:
                proc = _current_stage
                if proc is not None and proc.poll() is None:
                    proc.kill()
                os._exit(1)

    threading.Thread(target=watch, name="deepgami-runner-watch", daemon=True).start()


def _run_stage(argv: list[str], log: str, env: dict[str, str]) -> tuple[int, str]:
    """Run `python -m deepgami <argv>` with output to `log`; return (exit code, last output line)."""
    global _current_stage
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        handle.write("$ deepgami " + " ".join(argv) + "\n")
        handle.flush()
        _current_stage = subprocess.Popen(
            [sys.executable, "-m", "deepgami", *argv],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        code = _current_stage.wait()
        _current_stage = None
    last = ""
    for line in Path(log).read_text(errors="replace").splitlines():
        if line.strip() and not line.startswith("$ deepgami"):
            last = line.strip()
    return code, last.removeprefix("error: ")


def _thread_env(max_workers: int) -> dict[str, str]:
    """Split the CPUs between concurrent stages unless the user chose thread counts."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, max_workers)))
    return {var: os.environ.get(var, threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


# -- the run ------------------------------------------------------------------------------------


class _Progress:
    def __init__(self, total: int, enabled: bool | None) -> None:
        from tqdm import tqdm

        disable = (not sys.stderr.isatty()) if enabled is None else not enabled
        self.bar = tqdm(
            total=total,
            unit="stage",
            desc="deepgami run",
            disable=disable,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def log(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def step(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_pipeline(
    samplesheet: str | os.PathLike, outdir: str | os.PathLike, settings: RunSettings | None = None
) -> int:
    """Run every stage of every samplesheet row.

    Parameters
    ----------
    samplesheet : str or os.PathLike
        The samplesheet file.
    outdir : str or os.PathLike
        The run's output folder.
    settings : RunSettings or None, default None
        The run's options (None: the defaults).

    Returns
    -------
    int
        0, or 1 (2 if only bad input) on failures.

    Raises
    ------
    InputError
        If the options or the samplesheet are not valid, `outdir` is not a directory, or another
        run is using it.
    """
    settings = settings or RunSettings()
    unknown = set(settings.skip) - set(STAGES)
    if unknown:
        raise InputError(
            None,
            f"--skip: unknown stage(s) {', '.join(sorted(unknown))} (choose from {', '.join(STAGES)})",
        )
    if settings.max_workers < 1:
        raise InputError(None, f"--max-workers must be at least 1 (got {settings.max_workers})")
    outdir = Path(outdir).resolve()
    if outdir.exists() and not outdir.is_dir():
        raise InputError(outdir, "--outdir exists and is not a directory")
    rows, single_cell = expand_rows(read_samplesheet(samplesheet), outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    # One run per output folder. The kernel drops the lock when the process dies, even by SIGKILL.
    lock = open(outdir / LOCK_NAME, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InputError(outdir, "another `deepgami run` is using this output directory") from None
    try:
        return _run_locked(rows, outdir, settings, single_cell)
    finally:
        lock.close()


def _plan_queues(
    rows: list[CohortRow], single_cell: Sequence[CohortRow], outdir: Path, settings: RunSettings
) -> tuple[dict[str, list[StageTask]], dict[str, str]]:
    """Each cohort's stages in order (single-cell rows: their pseudobulk first), and which fanned-out
    cohort waits for which row's pseudobulk."""
    queues: dict[str, list[StageTask]] = {}
    waits_for: dict[str, str] = {}
    for row in single_cell:
        if "pseudobulk" not in settings.skip:
            queues[row.id] = [plan_pseudobulk(row, outdir, settings)]
    for row in rows:
        queues[row.id] = plan_cohort(row, outdir, settings)
        if row.parent in queues:
            waits_for[row.id] = row.parent
    return queues, waits_for


def _summarize_run(
    rows: list[CohortRow],
    outdir: Path,
    finished: set[str],
    counts: dict[str, int],
    failures: list[tuple[StageTask, int, str]],
) -> int:
    """summary.tsv/html over the predictions this run made (or confirmed current), the closing
    lines on stderr, and the exit code: 0, 2 when every failure was bad input, else 1."""
    # Only predictions made (or confirmed current) by this run: never stale files of an earlier one.
    entries = []
    for row in rows:
        for name in prediction_sets(row):
            metrics = outdir / row.id / "predictions" / f"{name}.metrics.json"
            if f"{row.id}/predict/{name}" in finished and metrics.is_file():
                entries.append(SummaryEntry(row.id, row.cell_type or "", name, metrics))
    if entries:
        write_summary(entries, outdir / "summary.tsv", outdir / "summary.html")
        print(f"summary: {outdir / 'summary.tsv'}", file=sys.stderr)
    # A single-cell row whose pseudobulk failed is one cohort that failed, not its planned fan-out.
    failed = {t.cohort for t, _, _ in failures if t.stage == "pseudobulk"}
    n_cohorts = len([r for r in rows if r.parent not in failed]) + len(failed)
    print(
        f"deepgami run: {n_cohorts} cohort(s), {counts['ran']} stage(s) run, {counts['cached']} cached, "
        f"{len(failures)} failed; results in {outdir}",
        file=sys.stderr,
    )
    for task, code, last in failures:
        print(f"error: {task.key}: {last} (exit {code}; log: {task.log})", file=sys.stderr)
    if not failures:
        return 0
    return 2 if all(code == 2 for _, code, _ in failures) else 1


class _StageSchedule:
    """Which stage runs next (`deepgami.executor.JobSource`): a cohort's stages in order, one
    cohort per worker; cached stages (`--resume`, same inputs and outputs) are skipped; a fanned-out
    cohort starts once its row's pseudobulk has finished, and is dropped when that failed."""

    def __init__(
        self,
        queues: dict[str, list[StageTask]],
        waits_for: dict[str, str],
        outdir: Path,
        settings: RunSettings,
        workers: int,
    ) -> None:
        self.queues, self.waits_for, self.settings = queues, waits_for, settings
        self.ledger_path = outdir / LEDGER_NAME
        self.ledger = _read_ledger(self.ledger_path) if settings.resume else {}
        if not settings.resume:
            _write_ledger(self.ledger_path, {})
        self.hasher = _Hasher()
        self.progress = _Progress(sum(len(q) for q in queues.values()), settings.progress)
        self.env = _thread_env(workers)
        self.failures: list[tuple[StageTask, int, str]] = []
        self.counts = {"ran": 0, "cached": 0}
        self.finished_keys: set[str] = set()  # ledger keys run or cached in this run
        self.running: dict[str, tuple[str, float]] = {}  # ledger key -> (input hash, start)
        self.pending = list(queues)  # cohorts not started yet, in samplesheet order
        self.continuing: list[str] = []  # cohorts whose stage just finished: they keep the worker

    def _cached(self, task: StageTask) -> bool:
        """Whether `--resume` finds this stage's inputs and outputs as the ledger recorded them."""
        entry = self.ledger.get(task.key) if self.settings.resume else None
        return bool(
            entry
            and entry.get("inputs") == self.hasher.inputs(task)
            and entry.get("outputs") is not None
            and entry.get("outputs") == self.hasher.outputs(task)
        )

    def _next_task(self, cohort: str) -> StageTask | None:
        """Pop the cohort's next stage that must run; record the cached ones on the way."""
        queue = self.queues[cohort]
        while queue:
            task = queue.pop(0)
            if not self._cached(task):
                return task
            self.counts["cached"] += 1
            self.finished_keys.add(task.key)
            self.progress.log(f"[{cohort}] {task.key.split('/', 1)[1]}: cached")
            self.progress.step()
        return None

    def _drop(self, cohort: str) -> None:
        """The cohort's remaining stages will not run: count them as done for the progress bar."""
        for _ in self.queues[cohort]:
            self.progress.step()
        self.queues[cohort] = []

    def _startable(self, cohort: str) -> bool | None:
        """True when the cohort may start, False to wait for its pseudobulk, None when that failed."""
        parent = self.waits_for.get(cohort)
        if parent is None or f"{parent}/pseudobulk" in self.finished_keys:
            return True
        started = any(key.startswith(f"{parent}/") for key in self.running)
        if parent in self.pending or self.queues[parent] or started:
            return False
        return None

    def _next_cohort_task(self) -> StageTask | None:
        """The next stage of a continuing cohort, else of the first pending cohort that may start."""
        while self.continuing:
            task = self._next_task(self.continuing.pop(0))
            if task is not None:
                return task
        for cohort in list(self.pending):
            ok = self._startable(cohort)
            if ok is False:
                continue  # its pseudobulk has not finished yet
            self.pending.remove(cohort)
            if ok is None:  # its pseudobulk failed (reported): nothing to build from
                self._drop(cohort)
                continue
            task = self._next_task(cohort)
            if task is not None:
                return task
        return None

    def next_job(self) -> tuple[StageTask, Callable, tuple] | None:
        task = self._next_cohort_task()
        if task is None:
            return None
        self.ledger.pop(task.key, None)
        self.running[task.key] = (self.hasher.inputs(task), time.monotonic())
        return task, _run_stage, (task.argv, str(task.log), self.env)

    def order(self, task: StageTask) -> str:
        return task.key

    def finished(self, task: StageTask, result: tuple[int, str]) -> None:
        input_hash, t0 = self.running.pop(task.key)
        code, last = result
        label = task.key.split("/", 1)[1]
        self.progress.step()
        missing = [p for p in task.outputs if not p.exists()] if code == 0 else []
        if missing:
            code, last = 1, f"finished without writing {missing[0]}"
        if code != 0:
            self.failures.append((task, code, last))
            self.progress.log(
                f"[{task.cohort}] {label}: FAILED (exit {code}): {last} (log: {task.log})"
            )
            self._drop(task.cohort)
            return
        self.counts["ran"] += 1
        self.finished_keys.add(task.key)
        self.ledger[task.key] = {
            "inputs": input_hash,
            "outputs": self.hasher.outputs(task),
            "argv": task.argv,
        }
        _write_ledger(self.ledger_path, self.ledger)
        self.progress.log(f"[{task.cohort}] {label}: done ({time.monotonic() - t0:.1f}s)")
        self.continuing.append(task.cohort)  # the cohort's next stage keeps its worker


def _run_locked(
    rows: list[CohortRow],
    outdir: Path,
    settings: RunSettings,
    single_cell: Sequence[CohortRow] = (),
) -> int:
    """Run the planned stages with the one executor (`deepgami.executor.run_jobs`), then write
    the cross-cohort summary; returns the exit code."""
    queues, waits_for = _plan_queues(rows, single_cell, outdir, settings)
    workers = min(settings.max_workers, max(1, len(rows)))
    schedule = _StageSchedule(queues, waits_for, outdir, settings, workers)
    try:
        run_jobs(schedule, process_pool(workers, _watch_runner, (os.getpid(),)), workers)
    finally:
        schedule.progress.close()
    return _summarize_run(rows, outdir, schedule.finished_keys, schedule.counts, schedule.failures)


# -- the cross-cohort summary --------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryEntry:
    """One prediction set of one cohort and its `<set>.metrics.json`.

    Parameters
    ----------
    cohort : str
        The cohort's id.
    cell_type : str
        The cell type of a fanned-out single-cell cohort.
    prediction_set : str
        ``all`` or one modality's name.
    metrics : pathlib.Path
        The prediction set's metrics JSON.
    """

    cohort: str
    cell_type: str
    prediction_set: str
    metrics: Path


def _target_metrics(path: Path) -> list[tuple[str | None, dict[str, Any]]]:
    """(target, scalar metrics) per target of a metrics JSON: one entry (target None) for a
    one-label model, one per target for several (their metrics under ``targets``)."""
    metrics = _scalar_metrics(path)
    targets = json.loads(Path(path).read_text()).get("targets")
    if not isinstance(targets, dict):
        return [(None, metrics)]
    out = []
    for name, values in targets.items():
        scalars = {k: v for k, v in values.items() if isinstance(v, (int, float, str)) or v is None}
        out.append((str(name), {**metrics, **scalars}))
    return out


def _scalar_metrics(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read metrics JSON: {err}") from None
    if not isinstance(data, dict):
        raise InputError(path, "metrics JSON is not an object")
    out = {}
    for key, value in data.items():
        if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
            out[key] = value
        elif key == "modalities" and isinstance(value, list):
            out[key] = ",".join(map(str, value))
    return out


def _auc_by_cell_type(frame: Any) -> str:
    """An <img> of held-out AUC per cell type (bars per prediction set), or '' without cell types/AUC."""
    if "auc" not in frame.columns or not (frame["cell_type"].astype(str) != "").any():
        return ""
    data = frame[frame["cell_type"].astype(str) != ""].dropna(subset=["auc"])
    if data.empty:
        return ""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = _auc_bars(data)
    buffer = io.BytesIO()
    fig.savefig(
        buffer, format="png", dpi=110, metadata={"Software": None}
    )  # no version stamp: same bytes
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return (
        f'<h2>AUC per cell type</h2>\n<img alt="held-out AUC per cell type" '
        f'src="data:image/png;base64,{encoded}">\n'
    )


def _auc_bars(data: Any) -> Any:
    """The figure of `_auc_by_cell_type`: held-out AUC bars per cohort and prediction set."""
    import matplotlib.pyplot as plt

    # One group per cohort (a cell type of a row), one bar per prediction set, 'all' first.
    groups = list(dict.fromkeys(data["cohort"]))
    sets = ["all"] + sorted(set(data["prediction_set"]) - {"all"})
    colors = dict(
        zip(
            sets,
            ["#333333", "#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"] * 4,
            strict=False,
        )
    )
    width = 0.8 / len(sets)
    fig, ax = plt.subplots(
        figsize=(max(4.0, 0.9 * len(groups) * max(1, len(sets)) ** 0.5 + 1.5), 3.2)
    )
    for i, name in enumerate(sets):
        part = data[data["prediction_set"] == name].set_index("cohort")["auc"]
        xs = [g for g in range(len(groups)) if groups[g] in part.index]
        ax.bar(
            [x - 0.4 + width * (i + 0.5) for x in xs],
            [part[groups[x]] for x in xs],
            width * 0.92,
            color=colors[name],
            label=name,
        )
    labels = [
        f"{data.loc[data['cohort'] == g, 'cell_type'].iloc[0]}\n({g.rsplit('.', 1)[0] if '.' in g else g})"
        for g in groups
    ]
    ax.set_xticks(range(len(groups)), labels, fontsize=8)
    ax.axhline(0.5, color="#bbbbbb", lw=1, ls="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out AUC")
    ax.set_title("AUC per cell type", fontsize=10)
    ax.legend(
        title="prediction set",
        fontsize=7,
        title_fontsize=7,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    fig.tight_layout()
    return fig


def _km_figures(entries: Sequence[SummaryEntry]) -> str:
    """The Kaplan-Meier figures `deepgami predict` wrote beside the entries' metrics
    (`<set>.km.png`: survival targets by predicted risk group), embedded; "" when none."""
    import base64
    import html as html_lib

    parts = []
    for entry in entries:
        png = entry.metrics.with_name(f"{entry.prediction_set}.km.png")
        if not png.is_file():
            continue
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        name = html_lib.escape(" ".join(filter(None, (entry.cohort, entry.cell_type))))
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{name} {entry.prediction_set}">'
            f"<figcaption>{name}, prediction set {html_lib.escape(entry.prediction_set)}: "
            "Kaplan-Meier curves by predicted risk group (tertiles of the training risk)"
            "</figcaption></figure>"
        )
    if not parts:
        return ""
    return "<h2>Survival: Kaplan-Meier by predicted risk group</h2>\n" + "\n".join(parts) + "\n"


def _summary_html(frame: Any, entries: Sequence[SummaryEntry]) -> str:
    """summary.html: the table, AUC by cell type, and the Kaplan-Meier figures of predict."""
    table = frame.to_html(
        index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0, classes="summary"
    )
    html = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>deepgami summary</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table.summary{border-collapse:collapse}"
        "table.summary th,table.summary td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}"
        "table.summary th{background:#f3f3f3}"
        "table.summary td:nth-child(-n+4),table.summary th:nth-child(-n+4){text-align:left}"
        "</style></head><body>\n<h1>deepgami summary</h1>\n"
        f"<p>{frame['cohort'].nunique() if len(frame) else 0} cohort(s), one row per prediction set "
        "('all' = every modality; otherwise the one modality given).</p>\n"
        f"{_auc_by_cell_type(frame)}{table}\n{_km_figures(entries)}</body></html>\n"
    )
    return html


def write_summary(
    entries: Iterable[SummaryEntry],
    out_tsv: str | os.PathLike,
    out_html: str | os.PathLike | None = None,
) -> None:
    """Write one row per cohort x prediction set: ids, then the scalar metrics of each metrics JSON.

    Parameters
    ----------
    entries : Iterable of SummaryEntry
        The prediction sets to summarize.
    out_tsv : str or os.PathLike
        The summary table to write.
    out_html : str or os.PathLike or None, default None
        An HTML page of the table to write (None: none).
    """
    import pandas as pd

    records = []
    entries = list(entries)
    for entry in entries:
        for target, metrics in _target_metrics(entry.metrics):
            modalities = metrics.pop("modalities", None)
            records.append(
                {
                    "cohort": entry.cohort,
                    "cell_type": entry.cell_type,
                    "prediction_set": entry.prediction_set,
                    "modalities": modalities if modalities else entry.prediction_set,
                    **({"target": target} if target is not None else {}),
                    **metrics,
                }
            )
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        frame = pd.DataFrame(columns=SUMMARY_FIRST_COLUMNS)
    # Cohorts in order; per cohort 'all' first, then the single modalities by name.
    frame["_single"] = frame["prediction_set"] != "all"
    frame = frame.sort_values(["cohort", "_single", "prediction_set"], kind="stable").drop(
        columns="_single"
    )
    first = [c for c in SUMMARY_FIRST_COLUMNS if c in frame.columns]
    frame = frame[first + sorted(c for c in frame.columns if c not in first)]
    with atomic_path(out_tsv) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.6g", lineterminator="\n")
    if out_html is not None:
        with atomic_path(out_html) as tmp:
            tmp.write_text(_summary_html(frame, entries))
