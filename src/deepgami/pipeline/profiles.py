"""Reduced settings, in one place: the `test` profile (the bundled test samplesheet) and `demo`.

- `test`: what the Nextflow test profile passes (conf/test.config, EVALUATE's ext.args): one
  held-out split, DeepGAMI and one baseline. `deepgami run --profile test` uses it, and so does
  `deepgami run` on the bundled `assets/samplesheet_test.csv` (whose rows already carry tiny
  training params).
- `demo`: what `make demo` (`python -m deepgami.demo`) runs: a 300-sample simulated cohort and
  ROSMAP, a 4-point training grid by 3-fold CV, and `deepgami evaluate --fast`.

A profile adds arguments to stages, like Nextflow's ext.args; the user's own `--stage-args` come
after them and win.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# conf/test.config holds the same string after "--seed ${params.seed} " (tests/test_evaluation.py checks).
TEST_EVALUATE_ARGS = "--fast --protocols holdout --methods deepgami,logistic_regression"

# make demo: a 4-point grid by 3-fold CV (the defaults: a 10-setting tpe search by 5-fold CV).
DEMO_PARAMS = """\
# make demo: a reduced training search (the grid's 4 points by 3-fold CV) to keep the demo short.
search: grid
grid:
  weight_decay: [0.0001]
  lambda: [0.1, 1.0]
cv_folds: 3
"""
DEMO_SIMULATION = (
    "--n-samples",
    "300",
    "--n-snps",
    "300",
    "--n-tfs",
    "20",
    "--n-genes",
    "50",
    "--seed",
    "0",
)
DEMO_EVALUATE_ARGS = "--fast"


@dataclass(frozen=True)
class Profile:
    """Extra arguments per stage, and a sentence for the evaluation report saying what was reduced.

    Parameters
    ----------
    name : str
        The profile's name.
    stage_args : dict of str to list of str
        Extra arguments per stage, like Nextflow's ext.args.
    note : str, default ""
        Sentence for the evaluation report saying what was reduced.
    """

    name: str
    stage_args: dict[str, list[str]] = field(default_factory=dict)
    note: str = ""


PROFILES = {
    "test": Profile(
        "test",
        {"evaluate": shlex.split(TEST_EVALUATE_ARGS)},
        "deepgami run's test profile (the Nextflow test profile's settings): evaluate "
        + TEST_EVALUATE_ARGS
        + ".",
    ),
    "demo": Profile(
        "demo",
        {"evaluate": shlex.split(DEMO_EVALUATE_ARGS)},
        "make demo ran this evaluation with reduced settings to finish in minutes: evaluate "
        + DEMO_EVALUATE_ARGS
        + "; the model beside it was trained with a 4-point grid (lambda 0.1 / "
        "1.0, early stopping on the task or total loss) searched by 3-fold CV. For the full settings run `deepgami evaluate COHORT --out DIR`.",
    ),
}


def bundled_test_samplesheet() -> Path | None:
    """Find ``assets/samplesheet_test.csv`` of the source tree this package runs from.

    Returns
    -------
    pathlib.Path or None
        Its path, or None when it is not present (e.g. an installed package).
    """
    path = Path(__file__).resolve().parents[3] / "assets" / "samplesheet_test.csv"
    return path if path.is_file() else None


def is_bundled_test_samplesheet(path: str | os.PathLike) -> bool:
    """Tell whether `path` is the bundled test samplesheet itself (not a copy elsewhere).

    Parameters
    ----------
    path : str or os.PathLike
        A samplesheet path.

    Returns
    -------
    bool
        True for the bundled test samplesheet itself; False otherwise, or when `path` cannot be
        resolved.
    """
    bundled = bundled_test_samplesheet()
    try:
        return bundled is not None and Path(path).resolve().samefile(bundled)
    except OSError:
        return False


def stage_args(profile: str | None) -> dict[str, list[str]]:
    """Return a profile's extra arguments per stage.

    A fresh copy, with the report note added to evaluate's arguments (``--note``).

    Parameters
    ----------
    profile : str or None
        A name in ``PROFILES`` (``"test"`` or ``"demo"``), or None.

    Returns
    -------
    dict of str to list of str
        Extra arguments per stage; ``{}`` for None.

    Raises
    ------
    KeyError
        If `profile` is not a known profile.
    """
    if profile is None:
        return {}
    chosen = PROFILES[profile]
    out = {stage: list(args) for stage, args in chosen.stage_args.items()}
    if chosen.note:
        out.setdefault("evaluate", []).extend(["--note", chosen.note])
    return out
