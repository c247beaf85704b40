"""Scikit-learn baselines on the concatenated modalities, each tuned by an inner cross-validation.

The paper compared DeepGAMI with logistic regression, lasso-logistic, random forest, SVM and MLP
fitted on the concatenated, preprocessed inputs. Each baseline here is a small record: an estimator
factory and its hyperparameter grid (a full one and a `fast` one). `BASELINES` is the one registry
of what the report, the figures and `deepgami evaluate --help` show of each: adding a baseline is an
entry there and its estimator in `_classifiers` / `_regressors`. `fit_baseline` runs a
`GridSearchCV` on the training rows only and returns the refit best estimator; `predict_scores`
returns class probabilities in the cohort's class order, so every method is scored by the same
`deepgami.metrics` functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BaselineInfo:
    """What is shown of a baseline: display label, figure colour, help text, and its tasks.

    Parameters
    ----------
    label : str
        The display label.
    color : str
        The figure colour.
    help : str
        The help text.
    tasks : tuple of str
        The tasks it handles (``classification``, ``regression``).
    """

    label: str
    color: str
    help: str
    tasks: tuple[str, ...]


# Order matters: it is the report order, and `evaluation/config.METHOD_INDEX` (each method's seed
# index) lists the classifiers in it; append new baselines at the end.
BASELINES: dict[str, BaselineInfo] = {
    "logistic_regression": BaselineInfo(
        "Logistic regression", "#2e8b57", "L2-penalized logistic regression", ("classification",)
    ),
    "lasso_logistic": BaselineInfo(
        "Lasso-logistic", "#9bc89b", "L1-penalized logistic regression", ("classification",)
    ),
    "random_forest": BaselineInfo(
        "Random forest", "#8c564b", "100 trees", ("classification", "regression")
    ),
    "svm": BaselineInfo(
        "SVM",
        "#d4a21a",
        "support vector machine (RBF or linear kernel)",
        ("classification", "regression"),
    ),
    "mlp": BaselineInfo(
        "MLP", "#7f7f7f", "one hidden layer of 64 units", ("classification", "regression")
    ),
    "ridge": BaselineInfo(
        "Ridge regression", "#2e8b57", "L2-penalized regression", ("regression",)
    ),
    "lasso": BaselineInfo("Lasso", "#9bc89b", "L1-penalized regression", ("regression",)),
    # scikit-survival's elastic-net Cox model: a scikit-learn estimator, so it runs through the
    # same splits, scalers and inner CV as the others, and the same library gives Harrell's and
    # Uno's C-index.
    "coxnet": BaselineInfo(
        "Penalized Cox", "#1f78b4", "elastic-net Cox model (scikit-survival Coxnet)", ("survival",)
    ),
}
CLASSIFIERS = tuple(n for n, b in BASELINES.items() if "classification" in b.tasks)
SURVIVAL = tuple(n for n, b in BASELINES.items() if "survival" in b.tasks)
# The linear models lead in both lists; for regression those are the regression-only ones.
REGRESSORS = tuple(
    sorted(
        (n for n, b in BASELINES.items() if "regression" in b.tasks),
        key=lambda n: "classification" in BASELINES[n].tasks,
    )
)


@dataclass(frozen=True)
class Baseline:
    """One baseline: an untuned estimator factory and its `GridSearchCV` parameter grids.

    `make(seed)` builds the untuned estimator; `grid` / `fast_grid` are the `GridSearchCV`
    parameter grids (keys as GridSearchCV names them).

    Parameters
    ----------
    name : str
        The baseline's name.
    make : Callable[[int], Any]
        Builds the untuned estimator from a seed.
    grid : dict of str to list, default {}
        The parameter grid.
    fast_grid : dict of str to list, default {}
        The parameter grid of a fast evaluation.
    binary : dict of str to Any, default {}
        Estimator parameters set when the label has two classes (a faster solver).
    """

    name: str
    make: Callable[[int], Any]
    grid: dict[str, list] = field(default_factory=dict)
    fast_grid: dict[str, list] = field(default_factory=dict)
    binary: dict[str, Any] = field(default_factory=dict)


def _classifiers() -> dict[str, Baseline]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    def svm(seed: int) -> Any:
        # SVC(probability=True) is deprecated in scikit-learn 1.9; this is its documented replacement
        # (Platt scaling on internal folds, then one SVC refit on all rows).
        return CalibratedClassifierCV(
            SVC(kernel="rbf", random_state=seed),
            ensemble=False,
            cv=StratifiedKFold(3, shuffle=True, random_state=seed),
        )

    return {
        "logistic_regression": Baseline(
            "logistic_regression",
            lambda seed: LogisticRegression(l1_ratio=0.0, max_iter=5000, random_state=seed),
            {"C": [0.001, 0.01, 0.1, 1.0, 10.0]},
            {"C": [0.01, 0.1, 1.0]},
        ),
        "lasso_logistic": Baseline(
            "lasso_logistic",
            # saga: liblinear refuses three or more classes (scikit-learn >= 1.8); for two classes
            # liblinear, ~50x faster here (1,200 samples: 470 s of saga per --fast evaluation).
            lambda seed: LogisticRegression(
                l1_ratio=1.0, solver="saga", max_iter=5000, random_state=seed
            ),
            {"C": [0.01, 0.05, 0.1, 0.5, 1.0, 10.0]},
            {"C": [0.05, 0.2, 1.0]},
            {"solver": "liblinear"},
        ),
        "random_forest": Baseline(
            "random_forest",
            lambda seed: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
            {"max_features": ["sqrt", "log2"], "min_samples_leaf": [1, 5]},
            {"max_features": ["sqrt"], "min_samples_leaf": [1, 5]},
        ),
        "svm": Baseline(
            "svm",
            svm,
            {"estimator__kernel": ["linear", "rbf"], "estimator__C": [0.01, 0.1, 1.0, 10.0]},
            {"estimator__kernel": ["rbf"], "estimator__C": [0.1, 1.0, 10.0]},
        ),
        "mlp": Baseline(
            "mlp",
            # Adam for a fixed 200 epochs: on a few hundred samples early stopping's 10% validation
            # split is too noisy (ROSMAP: AUC 0.80 against 0.86), and weight decay does the regularizing.
            lambda seed: MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=seed),
            {"hidden_layer_sizes": [(64,)], "alpha": [0.1, 1.0, 10.0]},
            {"hidden_layer_sizes": [(64,)], "alpha": [1.0, 10.0]},
        ),
    }


def _regressors() -> dict[str, Baseline]:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Lasso, Ridge
    from sklearn.neural_network import MLPRegressor
    from sklearn.svm import SVR

    return {
        "ridge": Baseline(
            "ridge",
            lambda seed: Ridge(),
            {"alpha": [0.1, 1.0, 10.0, 100.0]},
            {"alpha": [1.0, 10.0, 100.0]},
        ),
        "lasso": Baseline(
            "lasso",
            lambda seed: Lasso(max_iter=10000, random_state=seed),
            {"alpha": [0.001, 0.01, 0.1, 1.0]},
            {"alpha": [0.01, 0.1]},
        ),
        "random_forest": Baseline(
            "random_forest",
            lambda seed: RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1),
            {"max_features": ["sqrt", "log2"], "min_samples_leaf": [1, 5]},
            {"max_features": ["sqrt"], "min_samples_leaf": [1, 5]},
        ),
        "svm": Baseline(
            "svm",
            lambda seed: SVR(),
            {"kernel": ["linear", "rbf"], "C": [0.1, 1.0, 10.0]},
            {"kernel": ["rbf"], "C": [1.0, 10.0]},
        ),
        "mlp": Baseline(
            "mlp",
            lambda seed: MLPRegressor(hidden_layer_sizes=(64,), max_iter=200, random_state=seed),
            {"hidden_layer_sizes": [(64,)], "alpha": [0.1, 1.0, 10.0]},
            {"hidden_layer_sizes": [(64,)], "alpha": [1.0, 10.0]},
        ),
    }


def registry(task: str = "classification") -> dict[str, Baseline]:
    """Return the baselines for a task, by name, in display order.

    Parameters
    ----------
    task : str, default "classification"
        ``classification``, ``regression`` or ``survival``.

    Returns
    -------
    dict of str to Baseline
        The task's baselines.
    """
    if task == "survival":
        return _survival()
    return _classifiers() if task == "classification" else _regressors()


def _survival() -> dict[str, Baseline]:
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    alphas = [[0.3], [0.1], [0.05], [0.03], [0.01]]
    return {
        "coxnet": Baseline(
            "coxnet",
            lambda seed: CoxnetSurvivalAnalysis(l1_ratio=0.5, fit_baseline_model=False),
            {"alphas": alphas},
            {"alphas": alphas[1:4]},
        )
    }


def names(task: str = "classification") -> tuple[str, ...]:
    """Return the baseline names for a task, without importing scikit-learn.

    Parameters
    ----------
    task : str, default "classification"
        ``classification`` or ``regression``.

    Returns
    -------
    tuple of str
        The task's baseline names, in display order.
    """
    if task == "survival":
        return SURVIVAL
    return CLASSIFIERS if task == "classification" else REGRESSORS


def help_lines(indent: int = 2, width: int = 28) -> str:
    """One ``name  help (tasks)`` line per baseline, for ``deepgami evaluate --help``.

    Parameters
    ----------
    indent
        Spaces before each name.
    width
        Column of the help text.

    Returns
    -------
    str
        The lines, joined by newlines.
    """
    return "\n".join(
        f"{' ' * indent}{name:<{width - indent}}{b.help} ({', '.join(b.tasks)})"
        for name, b in BASELINES.items()
    )


@dataclass
class FittedBaseline:
    """A refit best estimator, the chosen hyperparameters and the inner-CV score.

    Parameters
    ----------
    name : str
        The baseline's name.
    estimator : Any
        The refit best estimator.
    best_params : dict
        The chosen hyperparameters.
    inner_score : float or None
        The chosen point's inner-CV score (None: there was no search).
    """

    name: str
    estimator: Any
    best_params: dict
    inner_score: float | None


def fit_baseline(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    task: str = "classification",
    seed: int = 0,
    inner_folds: int = 5,
    fast: bool = False,
) -> FittedBaseline:
    """Tune baseline `name` by `inner_folds`-fold CV on (X, y) (training rows only) and refit it.

    The inner CV maximizes ROC AUC (one-vs-rest macro for several classes) or R^2. With fewer
    rows per class than folds, the fold count shrinks; with one grid point there is no search.

    Parameters
    ----------
    name : str
        The baseline's name (a key of `registry(task)`).
    X : numpy.ndarray
        The training inputs.
    y : numpy.ndarray
        The training targets (class codes, values, or a `sksurv.util.Surv` array for survival).
    task : str, default "classification"
        ``classification``, ``regression`` or ``survival`` (the inner CV maximizes Harrell's C).
    seed : int, default 0
        Seeds the estimator and the inner folds.
    inner_folds : int, default 5
        The most folds of the inner CV.
    fast : bool, default False
        Whether to search the fast grid.

    Returns
    -------
    FittedBaseline
        The refit estimator, its hyperparameters and inner-CV score.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    base = registry(task)[name]
    grid = base.fast_grid if fast else base.grid
    estimator = base.make(seed)
    if task == "classification" and len(np.unique(y)) == 2:
        estimator.set_params(**base.binary)
    n_points = int(np.prod([len(v) for v in grid.values()])) if grid else 1
    # One BLAS thread: these matrices are small, extra threads only spin (and it keeps results
    # independent of the machine's core count).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Inner fits of weak settings may stop at max_iter; the search then prefers other settings.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        if task == "classification":
            folds = min(inner_folds, int(np.unique(y, return_counts=True)[1].min()))
            scoring = "roc_auc" if len(np.unique(y)) == 2 else "roc_auc_ovr"
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed) if folds >= 2 else None
        else:
            folds = min(inner_folds, len(y) // 2)
            # Survival: the estimator's own score, Harrell's C-index (y a sksurv structured array).
            scoring = None if task == "survival" else "r2"
            cv = KFold(folds, shuffle=True, random_state=seed) if folds >= 2 else None
        if n_points > 1 and cv is not None and name == "svm" and scoring == "roc_auc":
            return _fit_calibrated_svm(name, estimator, grid, X, y, cv)
        if n_points == 1 or cv is None:
            point = {k: v[0] for k, v in grid.items()}
            estimator.set_params(**point)
            estimator.fit(X, y)
            return FittedBaseline(name, estimator, point, None)
        search = GridSearchCV(
            estimator,
            grid,
            scoring=scoring,
            cv=cv,
            n_jobs=1,
            refit=True,
            # A Cox fit can fail numerically at a small penalty: it then scores as chance.
            error_score=0.5 if task == "survival" else "raise",
        )
        search.fit(X, y)
    return FittedBaseline(
        name, search.best_estimator_, dict(search.best_params_), float(search.best_score_)
    )


def _fit_calibrated_svm(
    name: str, estimator: Any, grid: dict[str, list], X: np.ndarray, y: np.ndarray, cv: Any
) -> FittedBaseline:
    """Binary SVM: search the plain SVC by the AUC of its decision function, then calibrate the best once.

    With `ensemble=False` the calibrated model is a sigmoid of the SVC refit on all rows, so it ranks
    samples as the SVC does and has its AUC: searching the calibrated model would cost four SVC fits
    per grid point and fold instead of one, for the same choice.
    """
    from sklearn.model_selection import GridSearchCV

    inner_grid = {k.removeprefix("estimator__"): v for k, v in grid.items()}
    search = GridSearchCV(
        estimator.estimator,
        inner_grid,
        scoring="roc_auc",
        cv=cv,
        n_jobs=1,
        refit=False,
        error_score="raise",
    )
    search.fit(X, y)
    best = {f"estimator__{k}": v for k, v in search.best_params_.items()}
    estimator.set_params(**best)
    estimator.fit(X, y)
    return FittedBaseline(name, estimator, best, float(search.best_score_))


def predict_scores(
    fitted: FittedBaseline, X: np.ndarray, n_classes: int | None = None
) -> np.ndarray:
    """Predict class probabilities, or values with `n_classes=None`.

    Class probabilities are n x n_classes (the estimator was fitted on class codes
    0..n_classes-1); predicted values are (n,). A class absent from training gets probability 0.

    Parameters
    ----------
    fitted : FittedBaseline
        The fitted baseline.
    X : numpy.ndarray
        The inputs to score.
    n_classes : int or None, default None
        The number of classes (None: a regression).

    Returns
    -------
    numpy.ndarray
        The class probabilities, or the predicted values.
    """
    est = fitted.estimator
    if n_classes is None:
        return np.asarray(est.predict(X), dtype=np.float64)
    proba = np.asarray(est.predict_proba(X), dtype=np.float64)
    out = np.zeros((len(X), n_classes))
    out[:, np.asarray(est.classes_, dtype=np.int64)] = proba
    return out
