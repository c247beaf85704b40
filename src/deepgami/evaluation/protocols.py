"""Evaluation: the paper's protocols, DeepGAMI's ablations and the baselines, on the same splits.

One call, `evaluate`, fits every method on the training rows of every split of every protocol and
scores it on that split's held-out rows, with the same per-fold preprocessing
(`deepgami.data.preprocessing`, fitted on training rows only) and the same metric functions
(`deepgami.metrics`). `deepgami.report.outputs.write_evaluation` writes the tidy tables, the
figures and `report.html`. The parts live in their own modules:

    config.py      EvalConfig, protocol and method names, the defaults
    splits.py      the splits of each protocol, the independent cohort pair
    ablations.py   random and Bernoulli prior networks
    fits.py        one unit: one method on one split (or DeepGAMI's grid search)
    executor.py    units in parallel worker processes, progress, the time budget
    significance.py  paired differences to DeepGAMI (Nadeau-Bengio t, paired bootstrap), KS tests

Protocols
    holdout      the cohort's split column (train/test) when it has both, else a stratified 80/20 split
    cv           stratified k-fold cross-validation over all labelled samples
    repeated     N stratified random 80/20 splits
    independent  train on all labelled samples of the cohort, test on another cohort file

Methods
    deepgami                  all modalities, and each single modality with the others imputed
    deepgami_meanfill         (derived) each single modality with the others' blocks mean-filled
    deepgami_dense            the same network without priors (dense encoders, as many latent nodes)
    deepgami_random_prior     each prior replaced by a random network with the same edge count
    deepgami_bernoulli_prior  prior edges kept with p = 0.8, other pairs added with p = 0.2
    deepgami_alone            trained on each single modality (its prior kept), scored from it;
                              paired with deepgami trained on all and predicted from that modality
    baselines                 scikit-learn on the concatenated modalities (`deepgami.evaluation.baselines`)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deepgami.data.cohort import prior_info
from deepgami.errors import InputError
from deepgami.evaluation import baselines as bl
from deepgami.evaluation.ablations import (
    MAX_BERNOULLI_EDGES,
    bernoulli_network,
    random_network,
    variant_arrays,
)
from deepgami.evaluation.config import (
    ALONE,
    DEEPGAMI_METHODS,
    FAST_BAGGING,
    METRIC_COLUMNS,
    PRIOR_METHODS,
    PROTOCOLS,
    EvalConfig,
    method_names,
)
from deepgami.evaluation.executor import (
    Plan,
    Progress,
    RunOutcome,
    SplitGroup,
    default_jobs,
    run_units,
)
from deepgami.evaluation.fits import (
    TUNE,
    Context,
    Unit,
    baseline_matrices,
    flatten_metrics,
    tune_deepgami,
)
from deepgami.evaluation.splits import Split, combine_cohorts, eligible_rows, make_splits
from deepgami.evaluation.targets import TASKS, for_target, target_dirs, target_view, with_target
from deepgami.utils import jsonable

if TYPE_CHECKING:  # the settings module imports torch
    from deepgami.train import Setting, Settings

__all__ = [
    "EvalConfig",
    "EvaluationResult",
    "evaluate",
    "summarize",
    "package_versions",
    "method_names",
    # the parts, importable from here as before the split into modules
    "MAX_BERNOULLI_EDGES",
    "PRIOR_METHODS",
    "Split",
    "baseline_matrices",
    "bernoulli_network",
    "combine_cohorts",
    "eligible_rows",
    "flatten_metrics",
    "make_splits",
    "random_network",
    "tune_deepgami",
    "variant_arrays",
]


# jobs=None runs in this process when samples x features x units is below this (a worker's start
# costs more than such fits gain; the bundled test cohorts: 5e3, make demo's: 4e6, 1,200 samples: 2e8).
SERIAL_BELOW = 2e7
# What DeepGAMI's search selects by, per task (a cohort with targets: every target at once).
SELECTION = {
    "classification": "lowest mean log loss",
    "regression": "highest mean R^2",
    "targets": "highest mean over the targets of 1 - deviance / null deviance",
}
# The summary rows of a method not applicable to the cohort, per task.
NOT_APPLICABLE_METRICS = {
    "classification": ("auc", "balanced_accuracy"),
    "regression": ("r2",),
    "survival": ("c_index",),
}


@dataclass
class EvaluationResult:
    """Everything `write_evaluation` writes: tidy tables, training histories and the run record.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy metrics table (metrics.tsv).
    predictions : pandas.DataFrame
        The held-out predictions (predictions.tsv).
    summary : pandas.DataFrame
        The metrics summarized over splits (summary.tsv).
    ks_tests : pandas.DataFrame
        The pairwise KS tests (ks_tests.tsv).
    histories : pandas.DataFrame
        DeepGAMI's training histories (training_history.tsv, when not empty).
    tuning : pandas.DataFrame or None
        The per-fold table of DeepGAMI's grid search (tuning.tsv; None: none ran once).
    baseline_params : pandas.DataFrame
        The baselines' chosen hyperparameters (baseline_params.tsv, when not empty).
    info : dict
        The run record (run.json).
    seconds : dict of str to float, default {}
        The seconds spent, by part (``total`` included).
    paired_tests : pandas.DataFrame, default empty
        The paired differences to DeepGAMI (paired_tests.tsv).
    targets : dict of str to EvaluationResult, default {}
        A cohort with targets: each target's own evaluation (its tables without the ``target``
        column, its verdict and report), by target; the tables above are theirs stacked with a
        ``target`` column.
    """

    metrics: pd.DataFrame
    predictions: pd.DataFrame
    summary: pd.DataFrame
    ks_tests: pd.DataFrame
    histories: pd.DataFrame
    tuning: pd.DataFrame | None
    baseline_params: pd.DataFrame
    info: dict
    seconds: dict[str, float] = field(default_factory=dict)
    paired_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    targets: dict[str, EvaluationResult] = field(default_factory=dict)


# -- tables ------------------------------------------------------------------------------------------


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Summarize metrics per method x modalities x protocol x metric.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy metrics table.

    Returns
    -------
    pandas.DataFrame
        The mean, standard deviation (n - 1) and number of splits of each group, and an empty
        ``note``.
    """
    cols = ["method", "modalities", "protocol", "metric"]
    if metrics.empty:
        return pd.DataFrame(columns=cols + ["mean", "sd", "n_splits", "note"])
    grouped = metrics.groupby(cols, sort=False)["value"]
    out = grouped.agg(
        mean="mean", sd=lambda v: float(v.std(ddof=1)) if len(v) > 1 else np.nan, n_splits="count"
    ).reset_index()
    out["note"] = ""
    return out


# -- the run ------------------------------------------------------------------------------------------


def package_versions() -> dict[str, str]:
    """Return the versions of Python and the packages an evaluation depends on.

    Returns
    -------
    dict of str to str
        The versions, by package.
    """
    from deepgami.utils import package_versions as versions

    return versions(
        (
            "deepgami",
            "torch",
            "numpy",
            "pandas",
            "scipy",
            "scikit-learn",
            "anndata",
            "mudata",
            "matplotlib",
        )
    )


def _label_summary(data: Any) -> dict:
    """The task and the samples per class (a classification) of a cohort's label."""
    return {
        "task": data.task,
        "classes": {
            str(c): int(np.sum(np.asarray(data.labels, dtype=object) == c)) for c in data.classes
        }
        if data.task == "classification"
        else {},
    }


def _data_summary(mdata: Any, data: Any) -> dict:
    build = mdata.uns.get("build", {}) if mdata is not None else {}
    priors = prior_info(mdata) if mdata is not None else {}
    return {
        "samples": int(len(data.obs_names)),
        **_label_summary(data),
        "modalities": {
            m: {"features": int(x.shape[1]), "samples": int(data.present[:, k].sum())}
            for k, (m, x) in enumerate(zip(data.modalities, data.X, strict=False))
        },
        "complete_samples": int(data.present.all(axis=1).sum()),
        "priors": {
            str(name): {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(info).items()}
            for name, info in dict(priors).items()
        },
        "latent_nodes": None if data.latent_nodes is None else len(data.latent_nodes),
        "build": jsonable(dict(build)),
    }


# -- the steps of evaluate ------------------------------------------------------------------------------


@dataclass
class _Cohorts:
    data: Any
    own_rows: np.ndarray
    ind_train: np.ndarray | None
    ind_test: np.ndarray | None
    test_data: Any
    own_summary: dict


def _read(mdata: Any, test_mdata: Any, protocols: list[str], test_name: str | None) -> _Cohorts:
    """The cohort arrays (joined with the independent cohort's, if any) and their usable rows."""
    from deepgami.data.arrays import read_arrays

    if "independent" in protocols and test_mdata is None:
        raise InputError(
            None, "the independent protocol needs a test cohort (--test-cohort OTHER.h5mu)"
        )
    data = read_arrays(mdata)
    if data.targets is not None and test_mdata is not None:
        raise InputError(
            None,
            f"the independent protocol takes one-label cohorts; this one has targets "
            f"({', '.join(t.name for t in data.targets)}): evaluate it without --test-cohort",
        )
    own_rows = eligible_rows(data)
    own_summary = _data_summary(mdata, data)
    ind_train = ind_test = test_data = None
    if test_mdata is not None:
        test_data = read_arrays(test_mdata)
        data, ind_train, ind_test = combine_cohorts(data, test_data, test_name)
        ind_train, ind_test = eligible_rows(data, ind_train), eligible_rows(data, ind_test)
        if len(ind_test) == 0:
            raise InputError(
                test_name,
                "the test cohort has no sample labelled with one of the training classes "
                f"({', '.join(data.classes)})",
            )
    if len(own_rows) == 0:
        raise InputError(None, "the cohort has no labelled sample with a modality")
    return _Cohorts(data, own_rows, ind_train, ind_test, test_data, own_summary)


def _methods(data: Any, config: EvalConfig) -> tuple[list[str], dict[str, str]]:
    """The methods to run, and those not applicable to this cohort with the reason."""
    available = method_names(data.task)
    if data.targets is not None:  # DeepGAMI's methods, then each target's baselines
        tasks = dict.fromkeys(TASKS[t.kind] for t in data.targets)
        available = tuple(dict.fromkeys(m for task in tasks for m in method_names(task)))
    wanted = list(config.methods) if config.methods else list(available)
    unknown = [m for m in wanted if m not in available]
    what = "this cohort's targets" if data.targets else f"a {data.task} cohort"
    if unknown:
        raise InputError(
            None,
            f"--methods: unknown method '{unknown[0]}' for {what} "
            f"(choose from {', '.join(available)})",
        )
    not_applicable = {
        m: "n/a (cohort has no prior)"
        for m in PRIOR_METHODS
        if m in wanted and data.latent_nodes is None
    }
    if ALONE in wanted and len(data.modalities) < 2:
        not_applicable[ALONE] = "n/a (cohort has one modality)"
    return [m for m in wanted if m not in not_applicable], not_applicable


def _splits(
    cohorts: _Cohorts,
    protocols: list[str],
    config: EvalConfig,
    cohort_name: str,
    test_name: str | None,
) -> tuple[list[Split], dict[str, str]]:
    splits: list[Split] = []
    how = {}
    for p in protocols:
        if p == "independent":
            splits.append(Split("independent", 0, cohorts.ind_train, cohorts.ind_test))
            how[p] = (
                f"trained on the {len(cohorts.ind_train)} labelled samples of {cohort_name}, tested on "
                f"the {len(cohorts.ind_test)} labelled samples of {test_name}"
            )
            continue
        found, note = make_splits(cohorts.data, p, config, cohorts.own_rows)
        splits.extend(found)
        how[p] = note
    return splits, how


def _plan(
    splits: list[Split],
    methods: list[str],
    config: EvalConfig,
    modalities: Sequence[str] = (),
    targets: Mapping[str, str] | None = None,
) -> Plan:
    """Units in serial order: per split, every method (ablations only on `ablation_protocols`;
    ALONE one unit per modality; a baseline one unit per target of its task, `targets` mapping
    each target to its task); DeepGAMI's grid search once on the first split, per split, or not
    at all."""
    from deepgami.train import derive_seed

    plan = Plan()
    has_dg = any(m in DEEPGAMI_METHODS for m in methods)
    tune = "none" if config.fast or not has_dg else config.tune
    if tune == "once":
        plan.tunes["once"] = Unit(-1, splits[0], TUNE, tune_seed=derive_seed(config.seed, 7))
    for n, split in enumerate(splits):
        key = None
        if tune == "once":
            key = "once"
        elif tune == "each":
            key = f"{split.protocol}:{split.index}"
            plan.tunes[key] = Unit(
                -len(splits) + n - 1,
                split,
                TUNE,
                tune_seed=derive_seed(config.seed, 7, PROTOCOLS.index(split.protocol), split.index),
            )
        start = sum(len(g.units) for g in plan.groups)
        units = _split_units(split, n == 0, methods, config, modalities, start, targets)
        plan.groups.append(SplitGroup(units, key, repeated=split.protocol == "repeated"))
    return plan


def _split_units(
    split: Split,
    first: bool,
    methods: list[str],
    config: EvalConfig,
    modalities: Sequence[str],
    start: int,
    targets: Mapping[str, str] | None = None,
) -> list[Unit]:
    """One split's units in serial order from `start`: a unit per method (ALONE: per modality;
    a baseline of a cohort with targets: per target of its task)."""
    history = first or split.protocol == "independent"
    units: list[Unit] = []
    for m in methods:
        if m in PRIOR_METHODS and split.protocol not in config.ablation_protocols:
            continue
        own = [None]
        if targets is not None and m not in DEEPGAMI_METHODS:
            own = [t for t, task in targets.items() if m in bl.names(task)]
        for mod in modalities if m == ALONE else [None]:
            keep = history and m in DEEPGAMI_METHODS and m != ALONE
            for t in own:
                units.append(
                    Unit(start + len(units), split, m, keep_history=keep, modality=mod, target=t)
                )
    return units


def _tuning_notes(run: _Run, setting: Setting) -> list[str]:
    """The report's sentences on how DeepGAMI's setting was chosen and how its fits are bagged."""
    from deepgami.model._fitting import BAG_FRACTION

    config, params, outcome = run.config, run.params, run.outcome
    notes = []
    if "once" in outcome.settings:
        first = run.splits[0]
        score = run.selection
        how = (
            f"{params.method} search ({params.cv_folds}-fold CV, {score}) once, on the "
            "training samples "
            f"of the first split ({first.protocol} {first.index}); that setting is used on every split"
            if outcome.settings["once"].tuning is not None
            else "the grid has one setting (or cv_folds < 2): no search"
        )
    elif outcome.settings:
        how = f"{params.method} search on the training samples of every split"
    else:
        how = "no grid search: the first value of each grid entry" + (
            " (--fast)" if config.fast else ""
        )
    notes.append(f"DeepGAMI hyperparameters: {how}. The ablations reuse DeepGAMI's setting.")
    bagging, asked = int(setting.training.bagging), params.first().training.bagging
    if bagging:
        fewer = (
            f" (--fast: {bagging} instead of the parameters' {asked})" if bagging < asked else ""
        )
        notes.append(
            f"Every DeepGAMI fit is bagged as in `deepgami train`: the fit on all training samples "
            f"of the split plus {bagging} networks{fewer} on random {BAG_FRACTION:.0%} "
            f"subsets of them (each stopped early on the samples left out), probabilities averaged."
        )
    return notes


def _ablation_notes(data: Any, config: EvalConfig, dg: list[str]) -> list[str]:
    """The report's sentences on what each prior ablation that ran replaces the prior with."""
    notes = []
    if "deepgami_dense" in dg:
        notes.append(
            f"deepgami_dense: the same network with dense encoders into as many latent nodes as the "
            f"prior has ({len(data.latent_nodes)})."
        )
    if "deepgami_random_prior" in dg:
        notes.append(
            "deepgami_random_prior: each prior replaced, per split, by uniformly random "
            "(feature, latent node) pairs with the prior's edge count."
        )
    if "deepgami_bernoulli_prior" in dg:
        notes.append(
            f"deepgami_bernoulli_prior: per split, each prior edge kept with p = {config.bernoulli_keep} "
            f"and every other (feature, latent node) pair added with p = {config.bernoulli_add}."
        )
    if ALONE in dg:
        notes.append(
            "deepgami_alone: DeepGAMI trained on one modality alone (its prior kept, the same "
            "latent nodes and setting as deepgami), on every split, scored from that modality; "
            "paired_tests.tsv compares it with deepgami trained on all and predicted from that "
            "modality (rows deepgami[m] - deepgami_alone[m])."
        )
    return notes


def _notes(data: Any, run: _Run, setting: Setting, inner_folds: int) -> list[str]:
    """The report's sentences on how DeepGAMI was tuned and what each method is."""
    config, outcome = run.config, run.outcome
    dg = [m for m in run.methods if m in DEEPGAMI_METHODS]
    base = [m for m in run.methods if m not in DEEPGAMI_METHODS]
    notes = _tuning_notes(run, setting) if dg else []
    ablations = [m for m in dg if m in PRIOR_METHODS]
    if ablations:
        where = [p for p in config.resolved_protocols() if p in config.ablation_protocols]
        skipped = [p for p in config.resolved_protocols() if p not in config.ablation_protocols]
        if skipped:
            notes.append(
                f"The prior ablations ran on the {', '.join(where) or 'no'} protocol(s), not on "
                f"{', '.join(skipped)} (each costs as much as DeepGAMI; --ablation-protocols to change)."
            )
    notes += _ablation_notes(data, config, dg)
    if base:
        notes.append(
            f"Baselines: scikit-learn on the concatenated modalities, with DeepGAMI's per-fold selection and "
            f"scaling; tuned by {inner_folds}-fold inner CV on the training samples of every split "
            f"({'small' if config.fast else 'full'} grids); trained on samples with every modality; "
            "a test sample lacking a modality gets the training mean of its features."
        )
    if data.latent_nodes is None:
        notes.append(
            "The cohort has no prior network: DeepGAMI runs with dense encoders into "
            f"{setting.architecture.latent_dim} latent nodes; prior ablations are not applicable."
        )
    if "deepgami" in dg:
        notes.append(
            "deepgami rows with a single modality: the other modalities hidden and imputed from it; "
            "deepgami_meanfill: hidden and replaced by their training mean (a baseline for imputation)."
        )
    if outcome.repeated_run < outcome.repeated_planned:
        notes.append(
            f"Time budget (--budget {config.budget:g} min): the repeated protocol ran "
            f"{outcome.repeated_run} of its {outcome.repeated_planned} splits (the first "
            f"{outcome.repeated_run} the seed draws), so its intervals are wider than the full run's."
        )
    return notes


def _collect(
    outcome: RunOutcome, methods: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Tidy tables from the unit results, in serial order whatever order the workers finished in."""
    records = [r for res in outcome.results for r in res.records]
    metrics = pd.DataFrame(records, columns=METRIC_COLUMNS)
    metrics["split"] = metrics["split"].astype(int)
    frames = [f for res in outcome.results for f in res.predictions]
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    hist = [res.history for res in outcome.results if res.history is not None]
    histories = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame()
    base_params = pd.DataFrame(
        [res.baseline_params for res in outcome.results if res.baseline_params]
    )
    return metrics, predictions, histories, base_params, _seconds(outcome, methods)


def _seconds(outcome: RunOutcome, methods: list[str]) -> dict[str, float]:
    """The seconds the units of each method took (and the grid searches, ``tune``)."""
    seconds = {m: 0.0 for m in methods}
    for res in outcome.results:
        seconds[res.method] += res.seconds
    if outcome.settings:
        seconds["tune"] = sum(r.seconds for r in outcome.settings.values())
    return seconds


def _summary(
    metrics: pd.DataFrame, not_applicable: dict[str, str], protocols: list[str], task: str
) -> pd.DataFrame:
    """`summarize`, plus a row with the reason for each method not applicable to the cohort."""
    summary = summarize(metrics)
    na_rows = [
        {
            "method": m,
            "modalities": "all",
            "protocol": p,
            "metric": metric,
            "mean": np.nan,
            "sd": np.nan,
            "n_splits": 0,
            "note": reason,
        }
        for m, reason in not_applicable.items()
        for p in protocols
        for metric in NOT_APPLICABLE_METRICS[task]
    ]
    return pd.concat([summary, pd.DataFrame(na_rows)], ignore_index=True) if na_rows else summary


def _test_train_ratios(splits: list[Split]) -> dict[str, float]:
    """Mean n_test / n_train per protocol (the corrected resampled t-test's variance term)."""
    ratios = {}
    for p in dict.fromkeys(s.protocol for s in splits):
        own = [s for s in splits if s.protocol == p]
        ratios[p] = float(np.mean([len(s.test) / len(s.train) for s in own]))
    return ratios


def _paired(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    data: Any,
    methods: list[str],
    splits: list[Split],
    seed: int,
) -> pd.DataFrame:
    """Paired differences: DeepGAMI minus each method, then deepgami[m] minus deepgami_alone[m]."""
    from deepgami.evaluation.significance import alone_tests, paired_tests

    ratios = _test_train_ratios(splits)
    common = dict(task=data.task, classes=list(data.classes), ratios=ratios, seed=seed)
    paired = paired_tests(metrics, predictions, methods=methods, **common)
    if ALONE not in methods:
        return paired
    alone = alone_tests(metrics, predictions, modalities=list(data.modalities), **common)
    frames = [f for f in (paired, alone) if len(f)]  # concat warns on an empty frame
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames or [paired])[0]


def _comparisons(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    summary: pd.DataFrame,
    data: Any,
    methods: list[str],
    splits: list[Split],
    config: EvalConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, dict | None, list[str]]:
    """KS tests on the repeated splits, paired differences to DeepGAMI and the verdict sentence."""
    from deepgami.evaluation.significance import (
        BOOTSTRAP_RESAMPLES,
        KS_COLUMNS,
        PAIRED_COLUMNS,
        PAIRED_METRICS,
        pairwise_ks,
        verdict,
    )

    notes = []
    main = PAIRED_METRICS[data.task]
    rep = metrics[
        (metrics["protocol"] == "repeated")
        & (metrics["modalities"] == "all")
        & metrics["metric"].isin(main)
    ]
    if rep.empty:
        ks = pd.DataFrame(columns=KS_COLUMNS)
    else:
        ks = pairwise_ks(rep, methods=[m for m in methods if m in set(rep["method"])])
        notes.append(
            "KS tests: two-sided two-sample Kolmogorov-Smirnov (scipy.stats.ks_2samp) between the "
            "per-split scores of each pair of methods on the repeated splits; pvalue_bh is "
            "Benjamini-Hochberg adjusted over the pairs of one metric."
        )
    if "deepgami" not in methods:
        return ks, pd.DataFrame(columns=PAIRED_COLUMNS), None, notes
    paired = _paired(metrics, predictions, data, methods, splits, config.seed)
    notes.append(
        "Paired tests (paired_tests.tsv): DeepGAMI minus each method on the same splits, 95% intervals. "
        "Several splits (CV folds, repeated splits): the corrected resampled t-test of Nadeau and Bengio "
        "(variance (1/J + n_test/n_train) s^2, t with J - 1 df). One split (held-out, independent): a "
        f"paired bootstrap of the held-out samples ({BOOTSTRAP_RESAMPLES} resamples, percentile interval). "
        "Significant: the interval excludes 0."
    )
    base = [m for m in methods if m not in DEEPGAMI_METHODS]
    line = verdict(paired, summary, data.task, base)
    return ks, paired, line, notes


def evaluate(
    mdata: Any,
    params: Settings | Mapping | None = None,
    config: EvalConfig | None = None,
    test_mdata: Any = None,
    *,
    cohort_name: str = "cohort",
    test_name: str | None = None,
    log: Callable[[str], None] | None = None,
    jobs: int | None = 1,
    progress: str = "quiet",
) -> EvaluationResult:
    """Run every method on every split of every protocol and collect tidy metrics.

    Parameters
    ----------
    mdata
        The cohort (MuData as written by `deepgami build`).
    params
        DeepGAMI's settings (`deepgami.train.Settings` or a mapping over the defaults); their grid
        is searched once on the training rows of the first split (`config.tune`).
    config
        Protocols, splits, methods, ablation settings and the time budget.
    test_mdata
        An independent cohort for the `independent` protocol.
    cohort_name, test_name
        Names in the report.
    log
        Receives a few sentences on what runs (not the per-unit progress).
    jobs
        Worker processes (None: the CPUs, or 1 for small work, see SERIAL_BELOW); any value gives
        the same tables.
    progress
        'bar' (tqdm on stderr), 'lines' (one line per finished unit) or 'quiet'.

    Returns
    -------
    EvaluationResult
        Tidy metrics, predictions, summaries, tests and the run's description.
    """
    from deepgami.train import as_settings

    config = config or EvalConfig()
    config.check()
    params = as_settings(params)
    t_start = time.perf_counter()
    protocols = list(dict.fromkeys(config.resolved_protocols()))
    if test_mdata is not None and "independent" not in protocols:
        protocols.append("independent")
    cohorts = _read(mdata, test_mdata, protocols, test_name)
    methods, not_applicable = _methods(cohorts.data, config)
    splits, how = _splits(cohorts, protocols, config, cohort_name, test_name)
    setting = params.first(cohorts.data.latent_nodes is None)
    if config.fast:  # the only setting (no grid search): fewer bagged networks
        setting = setting.replace(bagging=min(int(setting.training.bagging), FAST_BAGGING))
    data = cohorts.data
    selection = SELECTION["targets"] if data.targets is not None else SELECTION[data.task]
    run = _Run(
        cohorts, config, params, methods, not_applicable, protocols, splits, how, None, selection
    )
    _run_plan(run, setting, jobs, progress, log or (lambda text: None), t_start)
    if data.targets is not None:
        return _target_results(run, setting, cohort_name, t_start)
    return _result(run, setting, cohort_name, test_mdata, test_name, t_start)


def _run_plan(
    run: _Run,
    setting: Setting,
    jobs: int | None,
    progress: str,
    say: Callable[[str], None],
    t_start: float,
) -> None:
    """Plan the units, run them (`run_units`) and record the outcome in `run`; splits the time
    budget cut are dropped from `run.splits`."""
    data, config, splits = run.cohorts.data, run.config, run.splits
    targets = None if data.targets is None else {t.name: TASKS[t.kind] for t in data.targets}
    plan = _plan(splits, run.methods, config, data.modalities, targets)
    jobs = _jobs(jobs, data, plan)
    say(
        f"evaluate: {plan.n_units} fits ({len(splits)} splits x {len(run.methods)} methods"
        f"{', with grid search' if plan.tunes else ''}) in {jobs} worker{'s' if jobs > 1 else ''}"
    )
    run.outcome = outcome = run_units(
        Context(data, run.params, config, setting),
        plan,
        jobs=jobs,
        progress=Progress(plan.n_units, progress),
        budget_seconds=None if config.budget is None else 60.0 * config.budget,
        started=t_start,
    )
    if outcome.repeated_run < outcome.repeated_planned:
        run.splits = [
            s for s in splits if s.protocol != "repeated" or s.index < outcome.repeated_run
        ]
        run.how["repeated"] += (
            f" (the first {outcome.repeated_run} ran within --budget {config.budget:g} min)"
        )


def _jobs(jobs: int | None, data: Any, plan: Plan) -> int:
    """Worker processes: as asked (None: the CPUs, or 1 for small work), at most one per unit."""
    if jobs is None:
        # Starting a worker (a fresh interpreter importing torch) costs seconds: not worth it for small work.
        size = len(data.obs_names) * sum(x.shape[1] for x in data.X) * plan.n_units
        jobs = default_jobs() if size >= SERIAL_BELOW else 1
    return min(max(1, int(jobs)), max(1, plan.n_units))


@dataclass
class _Run:
    """What an evaluation ran: the cohorts, its configuration, methods, splits and their outcome."""

    cohorts: Any
    config: EvalConfig
    params: Settings
    methods: list[str]
    not_applicable: dict
    protocols: list[str]
    splits: list[Split]
    how: dict[str, str]
    outcome: RunOutcome | None  # set once the units have run
    selection: str = SELECTION["classification"]  # what DeepGAMI's search selected by


def _result(
    run: _Run,
    setting: Setting,
    cohort_name: str,
    test_mdata: Any,
    test_name: str | None,
    t_start: float,
) -> EvaluationResult:
    """The tables, tests, notes and run description of a finished evaluation."""
    outcome, config, data, methods = run.outcome, run.config, run.cohorts.data, run.methods
    if "once" in outcome.settings:
        setting = outcome.settings["once"].setting
    tuning = outcome.settings["once"].tuning if "once" in outcome.settings else None
    metrics, predictions, histories, base_params, seconds = _collect(outcome, methods)
    summary = _summary(metrics, run.not_applicable, run.protocols, data.task)
    inner_folds = min(config.inner_folds, 3) if config.fast else config.inner_folds
    notes = _notes(data, run, setting, inner_folds)
    ks_tests, paired, line, more = _comparisons(
        metrics, predictions, summary, data, methods, run.splits, config
    )
    info = _info(run, setting, cohort_name, test_mdata, test_name, line, notes + more)
    from deepgami.evaluation.significance import alone_verdict  # scipy: imported when needed

    info["verdict_alone"] = jsonable(alone_verdict(paired, data.task))
    seconds["total"] = time.perf_counter() - t_start
    return EvaluationResult(
        metrics,
        predictions,
        summary,
        ks_tests,
        histories,
        tuning,
        base_params,
        info,
        seconds,
        paired,
    )


def _target_results(
    run: _Run, setting: Setting, cohort_name: str, t_start: float
) -> EvaluationResult:
    """Each target's evaluation from the shared fits (`_result` on the target's one-label view and
    its part of the outcome), and their tables stacked with a ``target`` column."""
    data = run.cohorts.data
    parts = {}
    for t in data.targets:
        view = target_view(data, t.name)
        cohorts = dataclasses.replace(
            run.cohorts, data=view, own_summary={**run.cohorts.own_summary, **_label_summary(view)}
        )
        part = dataclasses.replace(
            run,
            cohorts=cohorts,
            methods=[m for m in run.methods if m in DEEPGAMI_METHODS or m in bl.names(view.task)],
            outcome=for_target(run.outcome, t.name),
        )
        parts[t.name] = _result(part, setting, cohort_name, None, None, t_start)
        parts[t.name].info["target"] = t.name
    return _stacked(parts, run, t_start)


def _stacked(parts: dict[str, EvaluationResult], run: _Run, t_start: float) -> EvaluationResult:
    """The evaluation of a cohort with targets: its targets' tables with a ``target`` column, the
    shared training histories and search, and a run record naming each target's verdict."""

    def stack(name: str) -> pd.DataFrame:
        frames = [with_target(getattr(r, name), t) for t, r in parts.items()]
        frames = [f for f in frames if len(f)]  # concat warns on an empty frame
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    first = next(iter(parts.values()))
    dirs = target_dirs(list(parts))
    info = {
        **first.info,
        "task": run.cohorts.data.task,
        "classes": [],
        "data": run.cohorts.own_summary,
        "methods": run.methods,
        "baseline_grids": {
            k: v for r in parts.values() for k, v in r.info["baseline_grids"].items()
        },
        "verdict": None,
        "verdict_alone": [],
        "targets": [
            {
                "name": t,
                "dir": dirs[t],
                "task": r.info["task"],
                "classes": r.info["classes"],
                "methods": r.info["methods"],
                "verdict": r.info["verdict"],
                "verdict_alone": r.info["verdict_alone"],
            }
            for t, r in parts.items()
        ],
    }
    seconds = _seconds(run.outcome, run.methods)
    seconds["total"] = time.perf_counter() - t_start
    base_params = [r.baseline_params for r in parts.values() if len(r.baseline_params)]
    return EvaluationResult(
        stack("metrics"),
        stack("predictions"),
        stack("summary"),
        stack("ks_tests"),
        first.histories,  # DeepGAMI's fits, shared by every target
        first.tuning,
        pd.concat(base_params, ignore_index=True) if base_params else pd.DataFrame(),
        info,
        seconds,
        stack("paired_tests"),
        parts,
    )


def _info(
    run: _Run,
    setting: Setting,
    cohort_name: str,
    test_mdata: Any,
    test_name: str | None,
    line: Any,
    notes: list[str],
) -> dict:
    """The run description (evaluation.json): cohorts, protocols, methods, settings, notes."""
    outcome, config, data = run.outcome, run.config, run.cohorts.data
    base_methods = [m for m in run.methods if m not in DEEPGAMI_METHODS]
    has_dg = any(m in DEEPGAMI_METHODS for m in run.methods)
    grids = {m: bl.registry(data.task)[m] for m in base_methods}
    info = {
        "cohort": cohort_name,
        "test_cohort": test_name,
        "task": data.task,
        "classes": list(data.classes),
        "modalities": list(data.modalities),
        "data": run.cohorts.own_summary,
        "test_data": _data_summary(test_mdata, run.cohorts.test_data)
        if test_mdata is not None
        else None,
        "protocols": {
            p: {"splits": sum(s.protocol == p for s in run.splits), "how": run.how[p]}
            for p in run.protocols
        },
        "methods": run.methods,
        "not_applicable": run.not_applicable,
        "config": jsonable(dataclasses.asdict(config)),
        "params": jsonable(run.params.to_dict()),
        "deepgami_setting": jsonable(setting.to_dict()) if has_dg else None,
        "baseline_grids": {
            m: jsonable(b.fast_grid if config.fast else b.grid) for m, b in grids.items()
        },
        "verdict": jsonable(line),
        "budget": {
            "minutes": config.budget,
            "repeated_run": outcome.repeated_run,
            "repeated_planned": outcome.repeated_planned,
        }
        if config.budget is not None
        else None,
        "notes": notes,
        "versions": package_versions(),
    }
    info["config"]["protocols"] = run.protocols
    return info
