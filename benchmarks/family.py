"""A benchmark family (issue 22): DeepGAMI, oracles and tuned baselines on simulated settings that
differ in what matters, paired over the same repeated splits, plus ROSMAP (run by hand).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/family.py [--quick] [--splits 5] [--jobs 2]
        [--settings NAME,...] [--rosmap-splits 20 | --no-rosmap] [--params PARAMS.yaml]
        [--out benchmarks/out/family]

One simulator says little about defaults that users will run on cohorts the project never saw.
Every setting here is a `deepgami simulate` cohort (`SETTINGS`: binary, 3-class ordinal and numeric
phenotypes; strong and weak signal; the measured target genes in the expression modality or not;
genotype driving TF expression or not; the phenotype's interaction terms on or off; 300 to 3,000
samples), built with `deepgami build` as a user builds it. On the same random stratified 70/30
splits (by class; by quintile for a numeric phenotype), every method is fitted on the training rows
and scored on the test rows:

- DeepGAMI with the packaged defaults (`DeepGAMI.fit` as benchmarks/repeated_splits.py calls it,
  its own inner CV on the training rows), scored from all modalities and from the genotype alone
  (the expression block imputed); DeepGAMI trained on the genotype alone (a genotype-only cohort
  with the eQTL prior) where the library can, else recorded as unavailable with the reason;
- oracles: the Bayes-optimal predictor (the true class probabilities, or E[y]); an L1 logistic
  regression (lasso for a numeric phenotype) handed the true gene programs (programs.csv), and one
  handed their genetic part (genetic_programs.csv, the ceiling of any prediction from genotype);
- baselines on the concatenated modalities, tuned by inner 5-fold CV on the training rows with the
  scaler fitted on them: L2 and L1 logistic regression, RBF SVM, random forest and MLP from
  `deepgami.evaluation.baselines` (ridge, lasso, SVR, random forest, MLP for a numeric phenotype),
  and an L2 logistic regression (ridge) on the SNPs alone.

Metric: AUC (macro one-vs-rest for 3 classes) or R^2. Paired differences over splits with the
Nadeau-Bengio corrected resampled t 95% interval (`repeated_splits.corrected_resampled_t`):
DeepGAMI minus the best baseline (the one with the highest mean), minus the programs oracle, and
"trained on all, predicted from genotype" minus the genetic-part oracle (and minus "trained on
genotype alone" where it exists). A model "ties chance" when the interval of its metric minus 0.5
(AUC, C-index) or 0 (R^2) holds 0. ROSMAP: `--rosmap-splits` splits through
repeated_splits.run_cohort.

Several targets and survival (issue 25; `has_targets`): `multitarget_shared` draws two binary
targets sharing half their causal programs, the second missing for 30% of the samples
(`simulate --targets 2 --shared-programs 0.5 --missing-fraction 0.3 --interaction 0`);
`survival` a time-to-event outcome from the first label's programs (`simulate --survival
--interaction 0`). Built with `deepgami build --label-column label,label2` or `--survival-columns
time,event`; splits stratified by every target's class (or "missing") and the event. Per split,
scored per target on its test rows that have a value, every method fitted on its training rows
that have one: DeepGAMI fitted on every target (the same `DeepGAMI.fit` and parameters as above;
it trains on each training row with any target) and on this target alone (the cohort with one
target, `multitask.only_target`), both with the same seed; the oracle handed this target's own
causal programs (truth.json's ``targets``: L1 logistic regression; survival: the Cox model,
`multitask.oracle_cox_c`); the baselines above (survival: the penalized Cox model `coxnet`,
`multitask.coxnet_c`). Metric: AUC or Harrell's C. Contrasts per target: all targets minus this
target alone, minus the best baseline and minus the oracle, with the interval above over the
target's known rows. They make a second table, "targets".

Writes family.json and family.md under --out and prints the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from repeated_splits import TEST_FRACTION, corrected_resampled_t  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FEATURES = {"n_snps": 500, "n_tfs": 30, "n_genes": 100}
QUICK_FEATURES = {"n_snps": 150, "n_tfs": 12, "n_genes": 30}


@dataclass(frozen=True)
class Setting:
    """One simulated cohort of the family: a name, what it varies, `SimulationSettings` fields."""

    name: str
    what: str
    sim: dict[str, Any] = field(default_factory=dict)


SETTINGS = (
    Setting(
        "binary_strong_linear",
        "binary, strong signal, no interaction terms",
        {"n_samples": 600, "effect_size": 2.0, "interaction": 0.0, **FEATURES},
    ),
    Setting(
        "binary_weak",
        "binary, weak signal, interaction terms",
        {"n_samples": 1200, "effect_size": 0.4, **FEATURES},
    ),
    Setting(
        "ordinal3_weak",
        "3-class ordinal, weak signal",
        {"n_samples": 1200, "phenotype": "ordinal", "classes": 3, "effect_size": 0.6, **FEATURES},
    ),
    Setting(
        "numeric",
        "numeric phenotype, interaction terms",
        {"n_samples": 600, "phenotype": "numeric", "effect_size": 0.7, **FEATURES},
    ),
    Setting(
        "targets_unmeasured",
        "binary; expression holds only the TFs (targets are latent)",
        {"n_samples": 1200, "effect_size": 1.0, "targets_measured": False, **FEATURES},
    ),
    Setting(
        "shared_small_linear",
        "binary, 300 samples, genotype drives TFs (F = 0.5), no interaction",
        {
            "n_samples": 300,
            "effect_size": 1.5,
            "shared_signal": 0.5,
            "interaction": 0.0,
            **FEATURES,
        },
    ),
    Setting(
        "shared_large_weak",
        "binary, 3,000 samples, genotype drives TFs (F = 0.5), weak signal",
        {"n_samples": 3000, "effect_size": 0.5, "shared_signal": 0.5, **FEATURES},
    ),
    Setting(
        "multitarget_shared",
        "2 binary targets sharing half their causal programs, label2 missing for 30%, no interaction",
        {
            "n_samples": 600,
            "n_targets": 2,
            "shared_programs": 0.5,
            "missing_fraction": 0.3,
            "interaction": 0.0,
            **FEATURES,
        },
    ),
    Setting(
        "survival",
        "time-to-event outcome from the label's causal programs, no interaction",
        {"n_samples": 500, "survival": True, "interaction": 0.0, **FEATURES},
    ),
)
QUICK_SETTINGS = (
    Setting(
        "quick_ordinal",
        "3-class ordinal (tiny)",
        {
            "n_samples": 240,
            "phenotype": "ordinal",
            "classes": 3,
            "effect_size": 1.5,
            **QUICK_FEATURES,
        },
    ),
    Setting(
        "quick_numeric_shared",
        "numeric, F = 0.5, no interaction (tiny)",
        {
            "n_samples": 200,
            "phenotype": "numeric",
            "effect_size": 1.5,
            "shared_signal": 0.5,
            "interaction": 0.0,
            **QUICK_FEATURES,
        },
    ),
    Setting(
        "quick_multitarget",
        "2 binary targets, half shared, label2 missing for 30% (tiny)",
        {
            "n_samples": 240,
            "effect_size": 1.5,
            "n_targets": 2,
            "shared_programs": 0.5,
            "missing_fraction": 0.3,
            "interaction": 0.0,
            **QUICK_FEATURES,
        },
    ),
    Setting(
        "quick_survival",
        "time-to-event outcome (tiny)",
        {"n_samples": 200, "survival": True, "interaction": 0.0, **QUICK_FEATURES},
    ),
)

# Method keys in display order: (key, label, kind); kind decides the contrasts they enter.
METHODS = (
    ("deepgami", "DeepGAMI, snp + expr", "deepgami"),
    ("deepgami_snp", "DeepGAMI trained on all, predicted from snp (expr imputed)", "deepgami"),
    ("deepgami_snp_alone", "DeepGAMI trained on snp alone", "deepgami"),
    # Several targets and survival: "deepgami" is there the model fitted on every target.
    ("deepgami_single", "DeepGAMI trained on this target alone", "deepgami"),
    ("bayes", "oracle: Bayes-optimal (truth)", "oracle"),
    ("oracle_programs", "oracle: L1 on the true programs", "oracle"),
    ("oracle_genetic", "oracle: L1 on the programs' genetic part", "oracle"),
    ("oracle_cox", "oracle: Cox on the true programs", "oracle"),
    ("lr", "L2 logistic regression", "baseline"),
    ("lasso_logistic", "L1 logistic regression", "baseline"),
    ("ridge", "ridge regression", "baseline"),
    ("lasso", "lasso", "baseline"),
    ("svm", "RBF SVM", "baseline"),
    ("random_forest", "random forest", "baseline"),
    ("mlp", "MLP", "baseline"),
    ("coxnet", "penalized Cox (Coxnet)", "baseline"),
    ("lr_snp", "L2 logistic regression, snp only", "single"),
    ("ridge_snp", "ridge regression, snp only", "single"),
)
LABELS = {k: label for k, label, _ in METHODS}
BASELINES = tuple(k for k, _, kind in METHODS if kind == "baseline")
ALL = tuple(k for k, _, _ in METHODS)
OVERVIEW_COLUMNS = (
    "setting",
    "metric",
    "n",
    "Bayes",
    "oracle: programs",
    "oracle: genetic",
    "best baseline",
    "DeepGAMI",
    "DeepGAMI from snp",
    "DeepGAMI snp alone",
    "DeepGAMI - best baseline [95% CI]",
    "DeepGAMI - programs oracle [95% CI]",
    "from snp - genetic oracle [95% CI]",
    "from snp - snp alone [95% CI]",
    "planted-link precision@K",
    "ties chance",
)
TARGET_COLUMNS = (
    "setting",
    "target",
    "metric",
    "n",
    "oracle",
    "best baseline",
    "DeepGAMI, all targets",
    "DeepGAMI, this target alone",
    "all targets - this target alone [95% CI]",
    "DeepGAMI - best baseline [95% CI]",
    "DeepGAMI - oracle [95% CI]",
    "ties chance",
)
BEST = "best_baseline"  # in a contrast: the baseline with the highest mean
CONTRASTS = {
    "deepgami_minus_best_baseline": ("deepgami", BEST),
    "deepgami_minus_oracle_programs": ("deepgami", "oracle_programs"),
    "deepgami_snp_minus_oracle_genetic": ("deepgami_snp", "oracle_genetic"),
    "deepgami_snp_minus_snp_alone": ("deepgami_snp", "deepgami_snp_alone"),
    "deepgami_minus_bayes": ("deepgami", "bayes"),
}
# Per target of a multi-target or survival setting (a contrast whose methods are absent is None).
TARGET_CONTRASTS = {
    "deepgami_minus_single": ("deepgami", "deepgami_single"),
    "deepgami_minus_best_baseline": ("deepgami", BEST),
    "deepgami_minus_oracle_programs": ("deepgami", "oracle_programs"),
    "deepgami_minus_oracle_cox": ("deepgami", "oracle_cox"),
}


# -- cohorts --------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A setting's cohort as arrays, the truth aligned to its rows, and its split strata."""

    setting: Setting
    data: Any  # CohortArrays, snp + expr
    deepgami_unavailable: str | None  # why DeepGAMI cannot be fitted on it (then data has no prior)
    snp_only: Any  # CohortArrays of the genotype-only cohort, or a str: why there is none
    task: str  # classification | regression
    y: np.ndarray  # class codes (data.classes order) or values
    truth_pred: np.ndarray  # true class probabilities (n x K), or E[y] (n,)
    programs: np.ndarray
    genetic: np.ndarray
    strata: np.ndarray
    truth: dict
    cohort: Path  # the snp + expr cohort file (prioritize reads a MuData)


def _cli(*args: object) -> tuple[int, str]:
    """`deepgami ARGS`: (exit code, the last line of stderr)."""
    from deepgami.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    lines = err.getvalue().strip().splitlines()
    return code, lines[-1] if lines else ""


def _build(
    sim_dir: Path,
    cohort: Path,
    modalities: Sequence[str],
    priors: bool = True,
    targets: Sequence[str] = (),
) -> tuple[int, str]:
    files = {"snp": ("genotype.csv", "eqtl.tsv"), "expr": ("expression.csv", "grn.tsv")}
    args: list[object] = ["build", "--labels", sim_dir / "labels.csv", "--out", cohort, "--quiet"]
    args += list(targets)
    for m in modalities:
        matrix, prior = files[m]
        args += ["--modality", f"{m}={sim_dir / matrix}"]
        if priors:
            args += ["--prior", f"{m}:{prior.removesuffix('.tsv')}={sim_dir / prior}"]
    return _cli(*args)


def _cohort_arrays(
    sim_dir: Path,
    cohort: Path,
    modalities: Sequence[str],
    priors: bool = True,
    targets: Sequence[str] = (),
) -> Any:
    """`deepgami build` (unless built before; `targets`: its target options) and `read_arrays`:
    the arrays, or why not (a str)."""
    from deepgami.data.arrays import read_arrays
    from deepgami.data.cohort import read_cohort
    from deepgami.errors import InputError

    if not cohort.exists():
        code, err = _build(sim_dir, cohort, modalities, priors, targets)
        if code != 0:
            return f"deepgami build: {err}"
    try:
        return read_arrays(read_cohort(cohort))
    except (InputError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _simulated_as(sim_dir: Path, setting: Setting) -> bool:
    """Whether `sim_dir` holds a simulation with the setting's fields (a cache from an older
    version of the setting is redrawn)."""
    truth = sim_dir / "truth.json"
    if not truth.is_file():
        return False
    settings = json.loads(truth.read_text())["settings"]
    return all(settings.get(k) == v for k, v in setting.sim.items())


def _simulate(work: Path, setting: Setting) -> Path:
    """Simulate the setting into work/<name> unless it is there (its cohorts are then rebuilt)."""
    from deepgami.data.simulate import simulate

    sim_dir, name = work / setting.name, setting.name
    if not _simulated_as(sim_dir, setting):
        simulate(sim_dir, overwrite=True, **setting.sim)
        for stale in work.glob(f"{name}*.h5mu"):
            stale.unlink()
    return sim_dir


def prepare(work: Path, setting: Setting) -> Prepared:
    """Simulate and build a setting's cohorts (once; reused when present) and read them.

    Parameters
    ----------
    work
        Folder of the simulations and cohorts.
    setting
        The setting.

    Returns
    -------
    Prepared
        The arrays, the genotype-only cohort (or why it cannot be built) and the truth.
    """
    import pandas as pd

    sim_dir, name = _simulate(work, setting), setting.name
    data = _cohort_arrays(sim_dir, work / f"{name}.h5mu", ("snp", "expr"))
    unavailable = None
    if isinstance(data, str):  # DeepGAMI cannot read it; the other methods get the matrices
        unavailable = data
        data = _cohort_arrays(sim_dir, work / f"{name}_noprior.h5mu", ("snp", "expr"), False)
        if isinstance(data, str):
            raise SystemExit(f"{name}: {data}")
    snp_only = _cohort_arrays(sim_dir, work / f"{name}_snp.h5mu", ("snp",))
    truth = json.loads((sim_dir / "truth.json").read_text())
    rows = list(data.obs_names)
    expected = pd.read_csv(sim_dir / truth["files"]["probabilities"], index_col=0).loc[rows]
    read = lambda role: pd.read_csv(sim_dir / truth["files"][role], index_col=0).loc[rows]  # noqa: E731
    if data.task == "regression":
        y = np.asarray(data.labels, dtype=np.float64)
        truth_pred = expected["expected"].to_numpy()
        strata = np.searchsorted(np.quantile(y, [0.2, 0.4, 0.6, 0.8]), y)
    else:
        y = np.array([data.classes.index(v) for v in data.labels], dtype=np.int64)
        truth_pred = expected[[f"prob_{c}" for c in data.classes]].to_numpy()
        strata = y
    return Prepared(
        setting,
        data,
        unavailable,
        snp_only,
        data.task,
        y,
        truth_pred,
        read("programs").to_numpy(),
        read("genetic_programs").to_numpy(),
        strata,
        truth,
        work / f"{name}.h5mu",
    )


def splits_of(
    prep: Prepared | TargetsPrepared, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stratified 70/30 splits every method of a setting shares.

    Parameters
    ----------
    prep
        The setting (its strata: classes, or quintiles of a numeric phenotype; several targets:
        `_target_strata`).
    n_splits
        Number of splits.
    seed
        Seed of `StratifiedShuffleSplit`.

    Returns
    -------
    list of tuple of numpy.ndarray
        (training, test) sorted row positions per split.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    sss = StratifiedShuffleSplit(n_splits=n_splits, test_size=TEST_FRACTION, random_state=seed)
    return [(np.sort(tr), np.sort(te)) for tr, te in sss.split(prep.strata, prep.strata)]


# -- methods --------------------------------------------------------------------------------------


def score(task: str, y: np.ndarray, pred: np.ndarray) -> float:
    """AUC (binary), macro one-vs-rest AUC (K classes) or R^2 of predictions `pred`.

    Parameters
    ----------
    task
        ``classification`` or ``regression``.
    y
        Class codes or values.
    pred
        Class probabilities (n x K) or predicted values (n,).

    Returns
    -------
    float
        The metric.
    """
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "regression":
        return float(r2_score(y, pred))
    if pred.shape[1] == 2:
        return float(roc_auc_score(y == 1, pred[:, 1]))
    return float(np.mean([roc_auc_score(y == c, pred[:, c]) for c in range(pred.shape[1])]))


def chance(task: str) -> float:
    """The class-prior (or mean) predictor's metric.

    Parameters
    ----------
    task
        ``classification`` or ``regression``.

    Returns
    -------
    float
        AUC 0.5, or R^2 0.
    """
    return 0.0 if task == "regression" else 0.5


def _table_pred(model: Any, table: Any, task: str) -> np.ndarray:
    if task == "regression":
        return table["predicted"].to_numpy(dtype=np.float64)
    return table[[f"prob_{c}" for c in model.classes]].to_numpy(dtype=np.float64)


def deepgami_methods(
    prep: Prepared, tr: np.ndarray, te: np.ndarray, params: dict, seed: int, state: dict
) -> dict:
    """DeepGAMI trained on all modalities (scored from all and from snp) and on snp alone.

    Parameters
    ----------
    prep
        The setting.
    tr, te
        Training and test row positions.
    params
        DeepGAMI parameters (full).
    seed
        Seed of the fits.
    state
        Carried over splits: ``snp_alone_unavailable`` once a genotype-only fit failed.

    Returns
    -------
    dict
        ``deepgami``, ``deepgami_snp``, ``deepgami_snp_alone`` (metric, or a str: why not),
        seconds, the chosen setting, the imputed block's R^2 and the spread of the predictions.
    """
    from deepgami.errors import InputError
    from deepgami.model import DeepGAMI
    from deepgami.model._evaluate import evaluate_rows

    if prep.deepgami_unavailable:
        why = prep.deepgami_unavailable
        alone = prep.snp_only if isinstance(prep.snp_only, str) else why
        return {"deepgami": why, "deepgami_snp": why, "deepgami_snp_alone": alone}
    split = np.full(len(prep.y), "test", dtype=object)
    split[tr] = "train"
    start, cpu = time.perf_counter(), time.process_time()
    model = DeepGAMI.fit(replace(prep.data, split=split), params, seed=seed)
    out: dict = {
        "deepgami_seconds": round(time.perf_counter() - start, 1),
        "deepgami_cpu_seconds": round(time.process_time() - cpu, 1),
    }
    _, tables, r2 = evaluate_rows(model, prep.data, te)
    pred = _table_pred(model, tables["all"], prep.task)
    out["deepgami"] = score(prep.task, prep.y[te], pred)
    out["deepgami_snp"] = score(prep.task, prep.y[te], _table_pred(model, tables["snp"], prep.task))
    out["prediction_sd"] = float(np.mean(np.std(pred, axis=0)))  # ~0: the prior (collapse)
    out["link_precision"] = link_precision(prep, model, te)
    out["r2_expr_imputed"] = r2.get("expr")
    out["setting"] = _chosen(model)
    if isinstance(prep.snp_only, str) or "snp_alone_unavailable" in state:
        out["deepgami_snp_alone"] = state.get("snp_alone_unavailable", prep.snp_only)
        return out
    try:
        alone = DeepGAMI.fit(replace(prep.snp_only, split=split), params, seed=seed)
    except (InputError, ValueError) as exc:
        state["snp_alone_unavailable"] = f"DeepGAMI.fit: {exc}"
        out["deepgami_snp_alone"] = state["snp_alone_unavailable"]
        return out
    _, tables, _ = evaluate_rows(alone, prep.snp_only, te)
    out["deepgami_snp_alone"] = score(
        prep.task, prep.y[te], _table_pred(alone, tables["all"], prep.task)
    )
    return out


def _chosen(model: Any) -> dict:
    """The hyperparameters DeepGAMI's search chose (the ones the family's notes show)."""
    keys = (
        "weight_decay",
        "group_lasso",
        "early_stopping_on",
        "hidden_layers",
        "self_edges",
        "encoder_lr_scale",
    )
    return {k: model.config["setting"].get(k) for k in keys}


def _linear_cv(task: str, penalty: str, X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """An L1 / L2 logistic regression (classification) or lasso / ridge (regression) whose penalty
    is chosen by inner 5-fold CV over a wide log grid (AUC, macro one-vs-rest; or R^2)."""
    from sklearn.linear_model import LassoCV, LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "regression":
        cv = KFold(5, shuffle=True, random_state=seed)
        if penalty == "l1":
            return LassoCV(alphas=30, cv=cv, max_iter=20000, random_state=seed).fit(X, y)
        return RidgeCV(alphas=np.logspace(-1, 5, 25), cv=cv).fit(X, y)
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    scoring = "roc_auc" if len(np.unique(y)) == 2 else "roc_auc_ovr"
    solver = {"l1": "saga", "l2": "lbfgs"}[penalty]
    return LogisticRegressionCV(
        Cs=np.logspace(-4, 2, 13),
        cv=cv,
        l1_ratios=(1.0 if penalty == "l1" else 0.0,),
        solver=solver,
        max_iter=5000,
        tol=1e-3,
        scoring=scoring,
        random_state=seed,
    ).fit(X, y)


def _fit_score(prep: Prepared, X: np.ndarray, tr: np.ndarray, te: np.ndarray, fit) -> float:
    """Scale on the training rows, fit, score on the test rows."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X[tr])
    model = fit(scaler.transform(X[tr]), prep.y[tr])
    Xte = scaler.transform(X[te])
    pred = model.predict(Xte) if prep.task == "regression" else model.predict_proba(Xte)
    return score(prep.task, prep.y[te], np.asarray(pred, dtype=np.float64))


def other_methods(
    prep: Prepared, tr: np.ndarray, te: np.ndarray, seed: int, methods: Sequence[str]
) -> dict[str, Any]:
    """The oracles and the baselines of `methods` on one split (see the module docstring).

    Parameters
    ----------
    prep
        The setting.
    tr, te
        Training and test row positions.
    seed
        Seed of the inner CV and of the estimators.
    methods
        Which keys of `METHODS` to run (DeepGAMI's are run by `deepgami_methods`).

    Returns
    -------
    dict of str to float
        Metric per method that applies to the setting's task.
    """
    from deepgami.evaluation.baselines import names

    task = prep.task
    reg = task == "regression"
    X = np.hstack([np.asarray(x, dtype=np.float64) for x in prep.data.X])
    snp = np.asarray(prep.data.X[prep.data.modalities.index("snp")], dtype=np.float64)
    linear = lambda penalty: lambda Xt, yt: _linear_cv(task, penalty, Xt, yt, seed)  # noqa: E731
    fits: dict[str, tuple[np.ndarray, Any]] = {
        "oracle_programs": (prep.programs, linear("l1")),
        "oracle_genetic": (prep.genetic, linear("l1")),
        ("ridge_snp" if reg else "lr_snp"): (snp, linear("l2")),
    }
    # Ridge and lasso: the registry's ridge grid (alpha <= 100) under-regularizes at p ~ n (R^2
    # below 0); its lasso-logistic (liblinear) refuses 3 classes. Both get a wide log grid here.
    fits.update({"ridge": (X, linear("l2")), "lasso": (X, linear("l1"))} if reg else {})
    fits.update({} if reg else {"lasso_logistic": (X, linear("l1"))})
    for key in ("lr", "svm", "random_forest", "mlp"):
        name = "logistic_regression" if key == "lr" else key
        if name in names(task):
            fast = key in ("svm", "random_forest", "mlp")
            fits[key] = (X, _registry_fit(name, task, seed, fast))
    out: dict[str, float] = {}
    if "bayes" in methods:
        out["bayes"] = score(task, prep.y[te], prep.truth_pred[te])
    seconds: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, (inputs, fit) in fits.items():
            if key in methods:
                start = time.process_time()
                out[key] = _fit_score(prep, inputs, tr, te, fit)
                seconds[key] = round(time.process_time() - start, 1)
    return {**out, "cpu_seconds": seconds}


def _registry_fit(name: str, task: str, seed: int, fast: bool):
    """A fit function for `deepgami.evaluation.baselines` method `name` (inner 5-fold CV)."""
    from deepgami.evaluation.baselines import fit_baseline

    def fit(X: np.ndarray, y: np.ndarray) -> Any:
        return fit_baseline(name, X, y, task=task, seed=seed, inner_folds=5, fast=fast).estimator

    return fit


def link_precision(prep: Prepared, model: Any, te: np.ndarray) -> float:
    """Precision@K of the planted causal links among `deepgami prioritize`'s links on the test rows
    (K = the number of planted links; mean over the explained classes)."""
    from deepgami.attribution import precision_at_k, prioritize
    from deepgami.data.cohort import read_cohort

    mdata = read_cohort(prep.cohort)
    split = np.full(mdata.n_obs, "train", dtype=object)
    split[np.asarray(mdata.obs_names.get_indexer(np.asarray(prep.data.obs_names)[te]))] = "test"
    mdata.obs["split"] = split
    links = prioritize(model, mdata, split="test").links
    truth = prep.truth["causal_links"]
    return float(np.mean([precision_at_k(links, truth, c) for c in links["class"].unique()]))


def run_split(
    prep: Prepared,
    tr: np.ndarray,
    te: np.ndarray,
    params: dict,
    seed: int,
    methods: Sequence[str],
    state: dict,
) -> dict:
    """Every method of `methods` on one split.

    Parameters
    ----------
    prep, tr, te, params, seed, state
        As for `deepgami_methods`.
    methods
        Keys of `METHODS` to run.

    Returns
    -------
    dict
        Metric per method (a str for an unavailable DeepGAMI variant) and DeepGAMI's details.
    """
    out: dict = {}
    if "deepgami" in methods:
        out.update(deepgami_methods(prep, tr, te, params, seed, state))
    start = time.perf_counter()
    out.update(other_methods(prep, tr, te, seed, methods))
    out["others_seconds"] = round(time.perf_counter() - start, 1)
    return out


# -- several targets and survival -----------------------------------------------------------------

# What runs on a target of a multi-target or survival setting (the others need one label's truth).
TARGET_METHODS = ("deepgami", "deepgami_single", "oracle_programs", "oracle_cox", *BASELINES)


def has_targets(sim: dict) -> bool:
    """Whether a setting draws several targets or a survival outcome (the "targets" table).

    Parameters
    ----------
    sim
        A setting's `SimulationSettings` fields.

    Returns
    -------
    bool
        True with ``n_targets`` above 1 or ``survival``.
    """
    return sim.get("n_targets", 1) > 1 or bool(sim.get("survival"))


def _target_options(sim: dict) -> list[str]:
    """`deepgami build`'s target options for the simulated outcomes, as `deepgami simulate` prints
    them: every label column; time and event (a survival-only cohort without them)."""
    out = []
    if sim.get("n_targets", 1) > 1:
        out += [
            "--label-column",
            ",".join(["label", *(f"label{t}" for t in range(2, sim["n_targets"] + 1))]),
        ]
    if sim.get("survival"):
        out += ["--survival-columns", "time,event"]
    return out


@dataclass
class TargetsPrepared:
    """A multi-target or survival setting: the cohort with every target, each target as a
    `Prepared` (its values, its own causal programs) and the cohort with that target alone."""

    setting: Setting
    data: Any  # CohortArrays with every target
    targets: list  # data.targets (TargetArrays), in the cohort's order
    views: dict[str, Prepared]
    known: dict[str, np.ndarray]  # target -> whether each row has a value
    single: dict[str, Any]  # target -> CohortArrays with it alone (several targets only)
    strata: np.ndarray
    truth: dict


def _target_view(base: Prepared, t: Any, causal: Sequence[str], frames: tuple) -> Prepared:
    """One target as a `Prepared`: class codes (-1 where missing), values or a survival array,
    and the true programs (and their genetic part) of its own causal genes."""
    from sksurv.util import Surv

    programs, genetic = (f[list(causal)].to_numpy() for f in frames)
    if t.kind == "survival":
        # Rows without a value are never scored; 0 keeps Surv's checks quiet about them.
        time, event = np.nan_to_num(t.values[:, 0]), np.nan_to_num(t.values[:, 1])
        task, y = "survival", Surv.from_arrays(event == 1, time)
    elif t.kind == "numeric":
        task, y = "regression", np.asarray(t.values, dtype=np.float64)
    else:
        task = "classification"
        y = np.array([-1 if v is None else t.classes.index(v) for v in t.values], dtype=np.int64)
    return replace(base, task=task, y=y, programs=programs, genetic=genetic)


def _target_strata(targets: Sequence[Any]) -> np.ndarray:
    """Split strata: every classes target's class or "missing", survival's event, numeric's
    quintile or "missing" (each split then holds the same share of every target's rows)."""
    parts = []
    for t in targets:
        if t.kind == "survival":
            parts.append(np.where(t.known(), t.values[:, 1].astype(str), "missing"))
        elif t.kind == "numeric":
            q = np.searchsorted(np.nanquantile(t.values, [0.2, 0.4, 0.6, 0.8]), t.values)
            parts.append(np.where(t.known(), q.astype(str), "missing"))
        else:
            parts.append(np.array(["missing" if v is None else str(v) for v in t.values]))
    return np.unique(["/".join(p) for p in zip(*parts, strict=True)], return_inverse=True)[1]


def prepare_targets(work: Path, setting: Setting) -> TargetsPrepared:
    """Simulate and build a multi-target or survival setting's cohort (once) and read it.

    Parameters
    ----------
    work
        Folder of the simulations and cohorts.
    setting
        The setting (`has_targets`).

    Returns
    -------
    TargetsPrepared
        The cohort with every target, per target its view and the cohort with it alone
        (`multitask.only_target`), and the split strata.
    """
    import pandas as pd
    from multitask import only_target

    from deepgami.data.arrays import read_arrays
    from deepgami.data.cohort import read_cohort

    sim_dir, cohort = _simulate(work, setting), work / f"{setting.name}.h5mu"
    data = _cohort_arrays(sim_dir, cohort, ("snp", "expr"), targets=_target_options(setting.sim))
    if isinstance(data, str):
        raise SystemExit(f"{setting.name}: {data}")
    truth = json.loads((sim_dir / "truth.json").read_text())
    rows = list(data.obs_names)
    frames = tuple(
        pd.read_csv(sim_dir / truth["files"][role], index_col=0).loc[rows]
        for role in ("programs", "genetic_programs")
    )
    strata = _target_strata(data.targets)
    none = np.empty(0)
    base = Prepared(setting, data, None, "", "", none, none, none, none, strata, truth, cohort)
    views = {
        t.name: _target_view(base, t, truth["targets"][t.name]["causal_genes"], frames)
        for t in data.targets
    }
    single = {}
    if len(data.targets) > 1:
        mdata = read_cohort(cohort)
        single = {t.name: read_arrays(only_target(mdata, t.name)) for t in data.targets}
    known = {t.name: t.known() for t in data.targets}
    return TargetsPrepared(setting, data, data.targets, views, known, single, strata, truth)


def _fit_predict(data: Any, tr: np.ndarray, te: np.ndarray, params: dict, seed: int) -> tuple:
    """DeepGAMI.fit on the training rows (the family's parameters: its own inner CV and bagging),
    its prediction table of the test rows (in `te`'s order), and the fit's cost and setting."""
    from deepgami.model import DeepGAMI

    split = np.full(len(data.obs_names), "test", dtype=object)
    split[tr] = "train"
    start, cpu = time.perf_counter(), time.process_time()
    model = DeepGAMI.fit(replace(data, split=split), params, seed=seed)
    info = {
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "setting": _chosen(model),
    }
    return model.predict(model.inputs(data, te)), info


def _target_score(tp: TargetsPrepared, t: Any, table: Any, te: np.ndarray) -> float:
    """A target's metric from a prediction table of rows `te`, on the rows where it is known."""
    from multitask import harrell_c

    keep = tp.known[t.name][te]
    view, rows = tp.views[t.name], te[keep]
    if t.kind == "survival":
        return harrell_c(view.y[rows], table[f"{t.name}:risk"].to_numpy(np.float64)[keep])
    columns = (
        [f"{t.name}:predicted"]
        if t.kind == "numeric"
        else [f"{t.name}:prob_{c}" for c in t.classes]
    )
    pred = table[columns].to_numpy(np.float64)[keep]
    return score(view.task, view.y[rows], pred[:, 0] if t.kind == "numeric" else pred)


def survival_methods(
    view: Prepared, tr: np.ndarray, te: np.ndarray, seed: int, methods: Sequence[str]
) -> dict[str, Any]:
    """The oracle Cox model and the penalized Cox baseline on one split (benchmarks/multitask.py's).

    Parameters
    ----------
    view
        The survival target (`prepare_targets`).
    tr, te
        Training and test row positions (rows with a value).
    seed
        Seed of Coxnet's inner CV.
    methods
        Which of ``oracle_cox`` and ``coxnet`` to run.

    Returns
    -------
    dict
        Harrell's C per method, and ``cpu_seconds``.
    """
    from multitask import coxnet_c, oracle_cox_c

    X = np.hstack([np.asarray(x, dtype=np.float64) for x in view.data.X])
    fits = {
        "oracle_cox": lambda: oracle_cox_c(view.programs, view.y, tr, te),
        "coxnet": lambda: coxnet_c(X, view.y, tr, te, seed),
    }
    out: dict[str, Any] = {"cpu_seconds": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, fit in fits.items():
            if key in methods:
                start = time.process_time()
                out[key] = fit()
                out["cpu_seconds"][key] = round(time.process_time() - start, 1)
    return out


def run_target_split(
    tp: TargetsPrepared,
    tr: np.ndarray,
    te: np.ndarray,
    params: dict,
    seed: int,
    methods: Sequence[str],
) -> dict:
    """Every method on one split of a multi-target or survival setting, scored per target.

    Parameters
    ----------
    tp
        The setting.
    tr, te
        Training and test row positions (every row: DeepGAMI on all targets trains on each
        training row that has any target; each target's other methods on its known rows).
    params
        DeepGAMI parameters (full).
    seed
        Seed of the fits (DeepGAMI on all targets and on each alone share it).
    methods
        Keys of `TARGET_METHODS` to run.

    Returns
    -------
    dict
        ``targets``: per target, its known training and test rows and the metric of each method
        on its known test rows; ``fits``: each DeepGAMI fit's cost and chosen setting.
    """
    out: dict = {"targets": {}, "fits": {}}
    for t in tp.targets:
        view, known = tp.views[t.name], tp.known[t.name]
        ktr, kte = tr[known[tr]], te[known[te]]
        row = {"n_train": len(ktr), "n_test": len(kte)}
        if view.task == "survival":
            row.update(survival_methods(view, ktr, kte, seed, methods))
        else:
            row.update(other_methods(view, ktr, kte, seed, methods))
        out["targets"][t.name] = row
    fits = [("deepgami", None, tp.data)] if "deepgami" in methods else []
    if "deepgami_single" in methods:
        fits += [("deepgami_single", name, data) for name, data in tp.single.items()]
    for key, alone, data in fits:
        table, out["fits"][f"{key}:{alone or 'all'}"] = _fit_predict(data, tr, te, params, seed)
        for t in tp.targets:
            if alone in (None, t.name):
                out["targets"][t.name][key] = _target_score(tp, t, table, te)
    return out


def summarize_targets(splits: list[dict], tp: TargetsPrepared) -> dict:
    """`summarize` per target, over its known rows, with the `TARGET_CONTRASTS`.

    Parameters
    ----------
    splits
        What `run_target_split` returned per split.
    tp
        The setting.

    Returns
    -------
    dict
        ``targets``: per target, `summarize`'s dict plus ``kind``, ``classes`` and ``n`` (the rows
        with a value); the corrected intervals use its mean known training and test rows.
    """
    out = {}
    for t in tp.targets:
        rows = [s["targets"][t.name] for s in splits]
        n_train = int(round(np.mean([r["n_train"] for r in rows])))
        n_test = int(round(np.mean([r["n_test"] for r in rows])))
        s = summarize(rows, tp.views[t.name].task, n_train, n_test, TARGET_CONTRASTS)
        out[t.name] = {**s, "kind": t.kind, "classes": t.classes, "n": int(tp.known[t.name].sum())}
    return {"targets": out}


def run_target_setting(
    setting: Setting,
    work: Path,
    n_splits: int,
    params: dict,
    seed: int = 0,
    methods: Sequence[str] = TARGET_METHODS,
) -> dict:
    """Every method on `n_splits` shared splits of a multi-target or survival setting.

    Parameters
    ----------
    setting, work, n_splits, params, seed
        As for `run_setting`.
    methods
        Keys of `METHODS` to run (those outside `TARGET_METHODS` do not apply and are skipped).

    Returns
    -------
    dict
        ``setting``, ``task`` (``targets``), ``truth`` (truth.json's ``targets``), ``splits``,
        ``summary`` (`summarize_targets`), ``wall_seconds``.
    """
    start = time.perf_counter()
    tp = prepare_targets(work, setting)
    methods = [m for m in methods if m in TARGET_METHODS]
    per_split = []
    for i, (tr, te) in enumerate(splits_of(tp, n_splits, seed)):
        per_split.append(run_target_split(tp, tr, te, params, seed + i, methods))
        shown = "; ".join(
            f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k in LABELS)
            for name, row in per_split[-1]["targets"].items()
        )
        print(f"{setting.name} split {i}: {shown}", file=sys.stderr, flush=True)
    return {
        "setting": asdict(setting),
        "task": "targets",
        "truth": tp.truth.get("targets", {}),
        "splits": per_split,
        "summary": summarize_targets(per_split, tp),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


# -- summary --------------------------------------------------------------------------------------


def _values(splits: list[dict], key: str) -> list[float] | None:
    """A method's metric per split, None unless every split has a number."""
    vals = [s.get(key) for s in splits]
    if not vals or any(not isinstance(v, float) for v in vals):
        return None
    return vals


def paired(splits: list[dict], a: str, b: str, n_train: int, n_test: int) -> dict | None:
    """Mean and corrected resampled t 95% interval of `a` minus `b` over the splits.

    Parameters
    ----------
    splits
        Per-split metrics.
    a, b
        Method keys.
    n_train, n_test
        Training and test rows per split.

    Returns
    -------
    dict or None
        ``a``, ``b``, ``mean``, ``lo``, ``hi``; None when either method has no numbers.
    """
    va, vb = _values(splits, a), _values(splits, b)
    if va is None or vb is None:
        return None
    mean, lo, hi = corrected_resampled_t(
        [x - y for x, y in zip(va, vb, strict=True)], n_train, n_test
    )
    return {"a": a, "b": b, "mean": mean, "lo": lo, "hi": hi}


def summarize(
    splits: list[dict],
    task: str,
    n_train: int,
    n_test: int,
    contrasts: dict[str, tuple[str, str]] = CONTRASTS,
) -> dict:
    """Per method: mean, sd, the interval of the mean minus chance and a tie flag; the contrasts.

    Parameters
    ----------
    splits
        Per-split metrics of one setting (or of one target of a multi-target setting).
    task
        ``classification``, ``regression`` or ``survival`` (chance: C-index 0.5).
    n_train, n_test
        Training and test rows per split.
    contrasts
        Name -> (method a, method b) of the paired differences a - b; b may be `BEST`.

    Returns
    -------
    dict
        ``methods`` (key -> mean, sd, chance_lo, chance_hi, ties_chance, or ``unavailable``),
        ``best_baseline``, ``contrasts`` (name -> `paired`), n_splits, n_train, n_test.
    """
    methods: dict[str, dict] = {}
    for key in ALL:
        vals = _values(splits, key)
        if vals is None:
            reasons = {s[key] for s in splits if isinstance(s.get(key), str)}
            if reasons:
                methods[key] = {"unavailable": sorted(reasons)[0]}
            continue
        base = chance(task)
        mean, lo, hi = corrected_resampled_t([v - base for v in vals], n_train, n_test)
        methods[key] = {
            "mean": float(np.mean(vals)),
            "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
            "chance_lo": lo + base,
            "chance_hi": hi + base,
            "ties_chance": bool(lo <= 0),
        }
    present = [k for k in BASELINES if "mean" in methods.get(k, {})]
    best = max(present, key=lambda k: methods[k]["mean"]) if present else None
    pairs = {name: (a, best if b == BEST else b) for name, (a, b) in contrasts.items()}
    return {
        "n_splits": len(splits),
        "n_train": n_train,
        "n_test": n_test,
        "methods": methods,
        "best_baseline": best,
        "contrasts": {
            name: paired(splits, a, b, n_train, n_test) if b else None
            for name, (a, b) in pairs.items()
        },
    }


def _ci(c: dict | None) -> str:
    return "" if c is None else f"{c['mean']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]"


def _mean(summary: dict, key: str | None) -> str:
    m = summary["methods"].get(key or "", {})
    if "mean" in m:
        return f"{m['mean']:.3f}"
    return "unavailable" if "unavailable" in m else ""


def phenotype_label(sim: dict) -> str:
    """The phenotype and its metric, for the tables.

    Parameters
    ----------
    sim
        A setting's `SimulationSettings` fields.

    Returns
    -------
    str
        ``binary AUC``, ``K-class [ordinal] macro AUC`` or ``numeric R^2``.
    """
    kind, k = sim.get("phenotype", "classes"), sim.get("classes", 2)
    if kind == "numeric":
        return "numeric R^2"
    if k == 2:
        return "binary AUC" if kind == "classes" else "2-class ordinal AUC"
    return f"{k}-class {'ordinal ' if kind == 'ordinal' else ''}macro AUC"


def overview_row(name: str, result: dict) -> dict[str, str]:
    """One row of the overview table.

    Parameters
    ----------
    name
        The setting's name.
    result
        What `run_setting` returned.

    Returns
    -------
    dict of str to str
        One cell per `OVERVIEW_COLUMNS` entry, in that order.
    """
    s, setting = result["summary"], result["setting"]
    best = s["best_baseline"]
    ties = [k for k, m in s["methods"].items() if m.get("ties_chance") and k != "bayes"]
    return {
        "setting": name,
        "metric": phenotype_label(setting["sim"]),
        "n": str(setting["sim"].get("n_samples", 600)),
        "Bayes": _mean(s, "bayes"),
        "oracle: programs": _mean(s, "oracle_programs"),
        "oracle: genetic": _mean(s, "oracle_genetic"),
        "best baseline": f"{LABELS.get(best or '', '')} {_mean(s, best)}".strip(),
        "DeepGAMI": _mean(s, "deepgami"),
        "DeepGAMI from snp": _mean(s, "deepgami_snp"),
        "DeepGAMI snp alone": _mean(s, "deepgami_snp_alone"),
        "DeepGAMI - best baseline [95% CI]": _ci(s["contrasts"]["deepgami_minus_best_baseline"]),
        "DeepGAMI - programs oracle [95% CI]": _ci(
            s["contrasts"]["deepgami_minus_oracle_programs"]
        ),
        "from snp - genetic oracle [95% CI]": _ci(
            s["contrasts"]["deepgami_snp_minus_oracle_genetic"]
        ),
        "from snp - snp alone [95% CI]": _ci(s["contrasts"]["deepgami_snp_minus_snp_alone"]),
        "planted-link precision@K": _link_precision(result["splits"]),
        "ties chance": ", ".join(ties) if ties else "none",
    }


def _link_precision(splits: list[dict]) -> str:
    """Mean (min-max) over the splits of DeepGAMI's planted-link precision@K."""
    values = [s["link_precision"] for s in splits if isinstance(s.get("link_precision"), float)]
    if not values:
        return ""
    return f"{np.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _md_table(columns: Sequence[str], rows: list[dict[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    return lines + ["| " + " | ".join(r.get(c, "") for c in columns) + " |" for r in rows]


def setting_markdown(name: str, result: dict) -> str:
    """The detail table of one setting.

    Parameters
    ----------
    name
        The setting's name.
    result
        What `run_setting` returned.

    Returns
    -------
    str
        Markdown: every method's mean (sd), the 95% interval of its mean, the paired difference to
        the best baseline, and a line on DeepGAMI's fits.
    """
    if has_targets(result["setting"]["sim"]):
        return targets_setting_markdown(name, result)
    s = result["summary"]
    metric = "R^2" if result["task"] == "regression" else "AUC"
    lines = [
        f"**{name}** ({result['setting']['what']}): {s['n_splits']} stratified 70/30 splits "
        f"({s['n_train']} train / {s['n_test']} test), {result['wall_seconds']} s wall",
        "",
    ]
    lines += _method_table(s, result["splits"], metric)
    return "\n".join(lines + ["", deepgami_notes(result["splits"])])


def _method_table(s: dict, splits: list[dict], metric: str) -> list[str]:
    """Markdown lines: each method's mean (sd), the interval of its mean, minus the best baseline."""
    rows = []
    for key, m in s["methods"].items():
        if "unavailable" in m:
            rows.append(
                {"method": LABELS[key], f"mean {metric} (sd)": "unavailable: " + m["unavailable"]}
            )
            continue
        diff = paired(splits, key, s["best_baseline"], s["n_train"], s["n_test"])
        rows.append(
            {
                "method": LABELS[key],
                f"mean {metric} (sd)": f"{m['mean']:.3f} ({m['sd']:.3f})",
                "95% CI of the mean": f"[{m['chance_lo']:.3f}, {m['chance_hi']:.3f}]"
                + (" ties chance" if m["ties_chance"] else ""),
                "minus best baseline [95% CI]": "" if key == s["best_baseline"] else _ci(diff),
            }
        )
    cols = ("method", f"mean {metric} (sd)", "95% CI of the mean", "minus best baseline [95% CI]")
    return _md_table(cols, rows)


def target_metric(s: dict) -> str:
    """A target's metric, for the tables.

    Parameters
    ----------
    s
        The target's summary (`summarize_targets`).

    Returns
    -------
    str
        ``Harrell's C``, ``numeric R^2``, ``binary AUC`` or ``K-class macro AUC``.
    """
    if s["kind"] == "survival":
        return "Harrell's C"
    if s["kind"] == "numeric":
        return "numeric R^2"
    k = len(s["classes"])
    return "binary AUC" if k == 2 else f"{k}-class macro AUC"


def target_rows(name: str, result: dict) -> list[dict[str, str]]:
    """The rows of the targets table for one multi-target or survival setting.

    Parameters
    ----------
    name
        The setting's name.
    result
        What `run_target_setting` returned.

    Returns
    -------
    list of dict of str to str
        One row per target, one cell per `TARGET_COLUMNS` entry; the oracle is L1 logistic
        regression (lasso) on the target's causal programs, or the Cox model on them.
    """
    rows = []
    for target, s in result["summary"]["targets"].items():
        oracle = "oracle_cox" if s["kind"] == "survival" else "oracle_programs"
        best, c = s["best_baseline"], s["contrasts"]
        ties = [k for k, m in s["methods"].items() if m.get("ties_chance")]
        rows.append(
            {
                "setting": name,
                "target": target,
                "metric": target_metric(s),
                "n": f"{s['n']} of {result['setting']['sim'].get('n_samples', 600)}",
                "oracle": _mean(s, oracle),
                "best baseline": f"{LABELS.get(best or '', '')} {_mean(s, best)}".strip(),
                "DeepGAMI, all targets": _mean(s, "deepgami"),
                "DeepGAMI, this target alone": _mean(s, "deepgami_single"),
                "all targets - this target alone [95% CI]": _ci(c["deepgami_minus_single"]),
                "DeepGAMI - best baseline [95% CI]": _ci(c["deepgami_minus_best_baseline"]),
                "DeepGAMI - oracle [95% CI]": _ci(c[f"deepgami_minus_{oracle}"]),
                "ties chance": ", ".join(ties) if ties else "none",
            }
        )
    return rows


def targets_markdown(results: dict) -> str:
    """The targets table: one row per target of each multi-target or survival setting.

    Parameters
    ----------
    results
        Setting name (and ``rosmap``) -> result.

    Returns
    -------
    str
        Markdown, or "" when no such setting ran.
    """
    rows = [
        row
        for n, r in results.items()
        if n != "rosmap" and has_targets(r["setting"]["sim"])
        for row in target_rows(n, r)
    ]
    return "\n".join(_md_table(TARGET_COLUMNS, rows)) if rows else ""


def targets_setting_markdown(name: str, result: dict) -> str:
    """The detail tables of a multi-target or survival setting, one per target.

    Parameters
    ----------
    name
        The setting's name.
    result
        What `run_target_setting` returned.

    Returns
    -------
    str
        Markdown: per target, `setting_markdown`'s table over its known rows; a line on the fits.
    """
    targets = result["summary"]["targets"]
    n_splits = len(result["splits"])
    lines = [
        f"**{name}** ({result['setting']['what']}): {n_splits} stratified 70/30 splits, "
        f'{result["wall_seconds"]} s wall; "DeepGAMI, snp + expr" is fitted on every target',
        "",
    ]
    for target, s in targets.items():
        metric = target_metric(s)
        lines += [
            f"*{target}* ({metric}; rows with a value: {s['n_train']} train / {s['n_test']} test)",
            "",
            *_method_table(s, [x["targets"][target] for x in result["splits"]], metric),
            "",
        ]
    return "\n".join(lines + [target_fit_notes(result["splits"])])


def target_fit_notes(splits: list[dict]) -> str:
    """One line on the DeepGAMI fits of a multi-target or survival setting.

    Parameters
    ----------
    splits
        Per-split results (`run_target_split`).

    Returns
    -------
    str
        CPU seconds per fit (on every target; on each alone) and the setting chosen per split.
    """
    fits: dict[str, list[dict]] = {}
    for s in splits:
        for key, info in s.get("fits", {}).items():
            fits.setdefault(key, []).append(info)
    if not fits:
        return "DeepGAMI: not fitted."
    cpu = ", ".join(f"{k} {np.mean([f['cpu_seconds'] for f in v]):.1f} s" for k, v in fits.items())
    chosen = "; ".join(_setting_text(f["setting"]) for f in fits.get("deepgami:all", []))
    return f"DeepGAMI: CPU per fit {cpu}; chosen per split (all targets): {chosen}."


def _setting_text(setting: dict) -> str:
    """A chosen DeepGAMI setting in a line (penalties to 3 significant digits: the tpe search
    draws them from a continuous range)."""
    return ", ".join(
        f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in setting.items()
        if k != "hidden_layers"
    )


def deepgami_notes(splits: list[dict]) -> str:
    """One line on DeepGAMI's fits.

    Parameters
    ----------
    splits
        Per-split results of one setting.

    Returns
    -------
    str
        The mean SD of its test predictions (0: it predicts the class prior or the mean for every
        sample), the imputed expression block's R^2, CPU seconds and the setting chosen per split.
    """
    fitted = [s for s in splits if isinstance(s.get("deepgami"), float)]
    if not fitted:
        return "DeepGAMI: not fitted."
    sd = np.mean([s["prediction_sd"] for s in fitted])
    chosen = "; ".join(_setting_text(s["setting"]) for s in fitted)
    r2 = [s["r2_expr_imputed"] for s in fitted if s.get("r2_expr_imputed") is not None]
    cpu = np.mean([s["deepgami_cpu_seconds"] for s in fitted])
    return (
        f"DeepGAMI: SD of its test predictions {sd:.3f} (0 = the prior for every sample); "
        f"imputed expression block R^2 {np.mean(r2) if r2 else float('nan'):.3f}; "
        f"{cpu:.0f} s CPU per fit; chosen per split: {chosen}."
    )


def overview_markdown(results: dict) -> str:
    """The overview table.

    Parameters
    ----------
    results
        Setting name (and ``rosmap``, left out here) -> result.

    Returns
    -------
    str
        Markdown, one row per simulated one-label setting ("" without one).
    """
    rows = [
        overview_row(n, r)
        for n, r in results.items()
        if n != "rosmap" and not has_targets(r["setting"]["sim"])
    ]
    return "\n".join(_md_table(OVERVIEW_COLUMNS, rows)) if rows else ""


# -- drivers --------------------------------------------------------------------------------------


def run_setting(
    setting: Setting,
    work: Path,
    n_splits: int,
    params: dict,
    seed: int = 0,
    methods: Sequence[str] = ALL,
) -> dict:
    """Every method on `n_splits` shared splits of one setting.

    Parameters
    ----------
    setting
        The setting.
    work
        Folder of the simulations and cohorts.
    n_splits
        Random stratified 70/30 splits.
    params
        DeepGAMI parameters (full, from `deepgami.train.load_params`).
    seed
        Seed of the splits; split i fits with seed + i.
    methods
        Keys of `METHODS` to run.

    Returns
    -------
    dict
        ``setting``, ``task``, ``truth`` (the simulator's Bayes figures), ``splits``, ``summary``,
        ``wall_seconds``.
    """
    import torch

    torch.set_num_threads(1)
    if has_targets(setting.sim):
        return run_target_setting(setting, work, n_splits, params, seed, methods)
    start = time.perf_counter()
    prep = prepare(work, setting)
    per_split, state = [], {}
    for i, (tr, te) in enumerate(splits_of(prep, n_splits, seed)):
        per_split.append(run_split(prep, tr, te, params, seed + i, methods, state))
        shown = {k: v for k, v in per_split[-1].items() if isinstance(v, float) and k in LABELS}
        print(
            f"{setting.name} split {i}: " + ", ".join(f"{k} {v:.3f}" for k, v in shown.items()),
            file=sys.stderr,
            flush=True,
        )
    bayes = {k: v for k, v in prep.truth.items() if k.startswith("bayes_optimal")}
    return {
        "setting": asdict(setting),
        "task": prep.task,
        "truth": bayes,
        "splits": per_split,
        "summary": summarize(per_split, prep.task, len(tr), len(te)),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def run_rosmap(work: Path, n_splits: int, params: dict, seed: int = 0) -> dict:
    """ROSMAP through benchmarks/repeated_splits.py.

    Parameters
    ----------
    work
        Folder of the built cohorts.
    n_splits
        Random stratified 70/30 splits.
    params
        DeepGAMI parameters (full).
    seed
        Seed of the splits.

    Returns
    -------
    dict
        `repeated_splits.run_cohort`'s result (DeepGAMI, L2 LR, RBF SVM, single-modality LR), its
        summary extended with DeepGAMI minus LR and minus the better of LR and SVM.
    """
    import torch
    from repeated_splits import run_cohort

    torch.set_num_threads(1)
    out = run_cohort(work, "rosmap", n_splits, params, seed, {"svm": True, "single_lr": True})
    s = out["splits"]
    best = max(("lr", "svm"), key=lambda k: float(np.mean([x[k] for x in s])))
    n_train, n_test = out["summary"]["n_train"], out["summary"]["n_test"]
    out["summary"]["best_baseline"] = best
    out["summary"]["deepgami_minus_best_baseline"] = paired(s, "deepgami", best, n_train, n_test)
    out["summary"]["deepgami_minus_lr"] = paired(s, "deepgami", "lr", n_train, n_test)
    return out


def _job(kind: str, payload: Any, work: Path, n_splits: int, params: dict, seed: int) -> tuple:
    if kind == "rosmap":
        return "rosmap", run_rosmap(work, n_splits, params, seed)
    return payload.name, run_setting(payload, work, n_splits, params, seed)


def _run_jobs(jobs: list[tuple], n_jobs: int, work: Path, params: dict, seed: int):
    """Yield (name, result) per job as it ends: in this process, or in `n_jobs` spawned ones."""
    if n_jobs <= 1:
        for kind, payload, n in jobs:
            yield _job(kind, payload, work, n, params, seed)
        return
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch threads
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_job, k, p, work, n, params, seed) for k, p, n in jobs]
        for fut in as_completed(futures):
            yield fut.result()


def rosmap_markdown(result: dict) -> str:
    """The ROSMAP tables.

    Parameters
    ----------
    result
        What `run_rosmap` returned.

    Returns
    -------
    str
        repeated_splits' markdown plus DeepGAMI minus LR and minus the best baseline.
    """
    from repeated_splits import markdown

    s = result["summary"]
    return (
        markdown("ROSMAP", s)
        + f"\n\nDeepGAMI minus LR: {_ci(s['deepgami_minus_lr'])}; minus the best baseline "
        f"({s['best_baseline']}): {_ci(s['deepgami_minus_best_baseline'])} "
        f"({result['wall_seconds']} s wall)"
    )


def report(results: dict) -> str:
    """The whole markdown report.

    Parameters
    ----------
    results
        Setting name (and ``rosmap``) -> result.

    Returns
    -------
    str
        The overview table, the targets table (multi-target and survival settings), ROSMAP's
        tables, then each setting's detail table.
    """
    parts = ["## Benchmark family"]
    overview, targets = overview_markdown(results), targets_markdown(results)
    parts += ["", overview] if overview else []
    parts += ["", "### Several targets and survival", "", targets] if targets else []
    if "rosmap" in results:
        parts += ["", rosmap_markdown(results["rosmap"])]
    parts += ["", *(setting_markdown(n, r) + "\n" for n, r in results.items() if n != "rosmap")]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 tiny settings, 2 splits each")
    parser.add_argument("--splits", type=int, default=None, help="splits per setting (5; quick 2)")
    parser.add_argument("--settings", default=None, help="comma-separated setting names")
    parser.add_argument("--rosmap-splits", type=int, default=None, help="(20; quick 2)")
    parser.add_argument("--no-rosmap", action="store_true")
    parser.add_argument("--jobs", type=int, default=1, help="settings run in parallel processes")
    parser.add_argument("--params", default=None, help="DeepGAMI params YAML (default: packaged)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "family"))
    parser.add_argument(
        "--report-only", action="store_true", help="print the tables of --out's family.json"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        results = json.loads((Path(args.out) / "family.json").read_text())
        print(report(results))
        return 0

    from deepgami.train.params import load_params

    params = load_params(args.params)
    catalogue = QUICK_SETTINGS if args.quick else SETTINGS
    chosen = args.settings.split(",") if args.settings else [s.name for s in catalogue]
    by_name = {s.name: s for s in SETTINGS + QUICK_SETTINGS}
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
    n_splits = args.splits or (2 if args.quick else 5)
    jobs = [("setting", by_name[n], n_splits) for n in chosen]
    if not args.no_rosmap:
        jobs.append(("rosmap", None, args.rosmap_splits or (2 if args.quick else 20)))
    # Longest first, so that parallel workers finish together.
    jobs.sort(key=lambda j: -(j[1].sim.get("n_samples", 600) if j[1] else 900))
    out = Path(args.out)
    work = out / "cohorts"
    work.mkdir(parents=True, exist_ok=True)
    results_path = out / "family.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    start = time.perf_counter()
    for name, result in _run_jobs(jobs, args.jobs, work, params, args.seed):
        results[name] = result
        results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"{name}: done in {result['wall_seconds']} s", file=sys.stderr, flush=True)
    order = [n for n in chosen if n in results] + (["rosmap"] if "rosmap" in results else [])
    ordered = {n: results[n] for n in order}
    text = report(ordered) + f"\n\nTotal wall time: {time.perf_counter() - start:.0f} s\n"
    (out / "family.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
