"""What `evaluate` runs: protocols, methods, and the `EvalConfig` with its defaults and their cost.

The defaults are sized so that `deepgami evaluate` on a 1,200-sample simulated cohort (genotype +
expression, two priors) finishes within 10 minutes on two cores and `--fast` within 2; the measured
cost of each part is in the README ("Evaluation: what it costs") and `benchmarks/evaluate_speed.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from deepgami.errors import InputError
from deepgami.evaluation import baselines as bl

PROTOCOLS = ("holdout", "cv", "repeated", "independent")
DEFAULT_PROTOCOLS = ("holdout", "cv", "repeated")
# --fast: one held-out split and a 3-fold CV (the paired tests need several splits).
FAST_PROTOCOLS = ("holdout", "cv")
DEFAULT_FOLDS, FAST_FOLDS = 5, 3
# --fast: at most this many bagged networks per DeepGAMI fit (each costs about as much as the refit).
FAST_BAGGING = 2
# DeepGAMI trained on one modality of the cohort (one unit per split and modality), scored from it;
# compared with "deepgami" trained on all and predicted from that modality (cohorts of 2+ modalities).
ALONE = "deepgami_alone"
DEEPGAMI_METHODS = (
    "deepgami",
    "deepgami_dense",
    "deepgami_random_prior",
    "deepgami_bernoulli_prior",
    ALONE,
)
PRIOR_METHODS = ("deepgami_dense", "deepgami_random_prior", "deepgami_bernoulli_prior")
MEANFILL = "deepgami_meanfill"
TUNE_MODES = ("once", "each", "none")
METRIC_COLUMNS = ["method", "modalities", "protocol", "split", "metric", "value"]
# Stable indices for seeds: a method keeps its seed whichever other methods run. ALONE has a fixed
# index past the baselines, so that adding it (or a baseline) changes no other method's seed.
METHOD_INDEX = {
    m: i
    for i, m in enumerate(
        ("deepgami", *PRIOR_METHODS) + bl.CLASSIFIERS + ("ridge", "lasso", "coxnet")
    )
}
METHOD_INDEX[ALONE] = 1000
# Ablations (the prior variants) cost as much as DeepGAMI each; by default they run on the held-out
# split (a paired bootstrap of its samples gives their intervals), not on every fold and repeated
# split: on 1,200 samples adding the CV folds costs 2 minutes on two cores (--ablation-protocols).
DEFAULT_ABLATION_PROTOCOLS = ("holdout", "independent")
FAST_ABLATION_PROTOCOLS = ("holdout", "independent")
# The budget never trims the repeated protocol below this many splits (a paired test needs two).
MIN_REPEATS = 2


def method_names(task: str = "classification") -> tuple[str, ...]:
    """Return the methods `evaluate` runs by default for a task, in report order.

    Parameters
    ----------
    task : str, default "classification"
        ``classification`` or ``regression``.

    Returns
    -------
    tuple of str
        DeepGAMI's variants, then the task's baselines.
    """
    return DEEPGAMI_METHODS + bl.names(task)


@dataclass
class EvalConfig:
    """What `evaluate` runs.

    `fast` skips DeepGAMI's grid search (first value of each grid entry), uses the baselines'
    small grids with at most 3 inner folds and changes the defaults of `protocols` (held-out split
    and CV only) and `folds` (3), values given explicitly kept, and bags at most `FAST_BAGGING`
    networks per DeepGAMI fit. `ablation_protocols` are the protocols on which the prior ablations
    run. `budget` (minutes) trims the repeated protocol to the splits that fit (never below
    `MIN_REPEATS`); the report says how many ran.

    Parameters
    ----------
    protocols : Sequence of str or None, default None
        The protocols to run (None: `DEFAULT_PROTOCOLS`, or `FAST_PROTOCOLS` with `fast`).
    folds : int or None, default None
        The folds of the CV protocol (None: 5, or 3 with `fast`).
    repeats : int, default 10
        The number of repeated random splits.
    test_fraction : float, default 0.2
        The held-out share of the random splits.
    methods : Sequence of str or None, default None
        The methods to run (None: all).
    fast : bool, default False
        Whether to run the fast evaluation.
    tune : str, default "once"
        DeepGAMI's grid search: ``once`` on the first split, on ``each`` split, or ``none``.
    inner_folds : int, default 3
        The baselines' inner CV folds.
    ablation_protocols : Sequence of str or None, default None
        The protocols the prior ablations run on (None: holdout and independent).
    budget : float or None, default None
        Minutes the repeated splits may take (None: no limit).
    bernoulli_keep : float, default 0.8
        The probability of keeping a prior edge in a Bernoulli network.
    bernoulli_add : float, default 0.2
        The probability of adding another pair to a Bernoulli network.
    seed : int, default 0
        The random seed of the splits and fits.
    """

    protocols: Sequence[str] | None = None
    folds: int | None = None
    repeats: int = 10
    test_fraction: float = 0.2
    methods: Sequence[str] | None = None
    fast: bool = False
    tune: str = "once"
    inner_folds: int = 3
    ablation_protocols: Sequence[str] | None = None
    budget: float | None = None
    bernoulli_keep: float = 0.8
    bernoulli_add: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        # None: the default, which depends on `fast`.
        if self.folds is None:
            self.folds = FAST_FOLDS if self.fast else DEFAULT_FOLDS
        if self.ablation_protocols is None:
            self.ablation_protocols = (
                FAST_ABLATION_PROTOCOLS if self.fast else DEFAULT_ABLATION_PROTOCOLS
            )
        self.ablation_protocols = tuple(self.ablation_protocols)

    def resolved_protocols(self) -> tuple[str, ...]:
        """Return the protocols to run: as given, else the defaults (`FAST_PROTOCOLS` with `fast`).

        Returns
        -------
        tuple of str
            The protocols to run.
        """
        if self.protocols is not None:
            return tuple(self.protocols)
        return FAST_PROTOCOLS if self.fast else DEFAULT_PROTOCOLS

    def check(self) -> None:
        """Raise InputError on a value `evaluate` cannot use."""
        protocols = self.resolved_protocols()
        unknown = [p for p in protocols if p not in PROTOCOLS]
        if unknown or not protocols:
            raise InputError(
                None,
                f"--protocols: unknown protocol '{unknown[0] if unknown else ''}' "
                f"(choose from {', '.join(PROTOCOLS)})",
            )
        bad = [p for p in self.ablation_protocols if p not in PROTOCOLS]
        if bad:
            raise InputError(
                None,
                f"--ablation-protocols: unknown protocol '{bad[0]}' "
                f"(choose from {', '.join(PROTOCOLS)})",
            )
        if self.folds < 2:
            raise InputError(None, f"--folds must be at least 2 (got {self.folds})")
        if self.repeats < 1:
            raise InputError(None, f"--repeats must be at least 1 (got {self.repeats})")
        if not 0 < self.test_fraction < 1:
            raise InputError(None, f"--test-fraction must be in (0, 1) (got {self.test_fraction})")
        if self.tune not in TUNE_MODES:
            raise InputError(
                None, f"--tune must be one of {', '.join(TUNE_MODES)} (got {self.tune})"
            )
        if self.inner_folds < 2:
            raise InputError(None, f"--inner-folds must be at least 2 (got {self.inner_folds})")
        if self.budget is not None and not self.budget > 0:
            raise InputError(
                None, f"--budget must be a positive number of minutes (got {self.budget})"
            )
        for name, p in (
            ("--bernoulli-keep", self.bernoulli_keep),
            ("--bernoulli-add", self.bernoulli_add),
        ):
            if not 0 <= p <= 1:
                raise InputError(None, f"{name} must be a probability in [0, 1] (got {p})")


def option_names() -> tuple[str, ...]:
    """Return the names of evaluate's options: the fields of `EvalConfig`, in order.

    Returns
    -------
    tuple of str
        The keys an ``evaluate:`` section of a params file may hold.
    """
    return tuple(f.name for f in fields(EvalConfig))
