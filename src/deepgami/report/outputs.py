"""Writing an evaluation: its tables, run.json, the figures and report.html, into one folder at once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from deepgami.errors import InputError, atomic_path
from deepgami.evaluation import EvaluationResult
from deepgami.report.html import write_report, write_targets_report


def _tsv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, sep="\t", index=False, float_format="%.6g", lineterminator="\n")


def write_evaluation(
    result: EvaluationResult,
    out: str | Path,
    *,
    prioritize_dir: str | Path | None = None,
    model_dir: str | Path | None = None,
    figures: bool = True,
) -> Path:
    """Write an evaluation's tables, run.json, figures and report into one directory, atomically.

    The directory gets metrics.tsv (tidy), summary.tsv, ks_tests.tsv, paired_tests.tsv,
    predictions.tsv, training_history.tsv, tuning.tsv, baseline_params.tsv (the last three when
    there is something to write), run.json, figures/*.png and report.html. A cohort with targets:
    those tables with a ``target`` column, and ``targets/<target>/`` with each target's own
    tables, figures and report.html; report.html then shows each target's verdict and links
    to its report.

    Parameters
    ----------
    result : EvaluationResult
        The evaluation to write.
    out : str or pathlib.Path
        The output directory (replaced as a whole).
    prioritize_dir : str or pathlib.Path or None, optional
        A prioritization directory shown in the report (default: ``prioritize/`` beside `out`, when
        it exists).
    model_dir : str or pathlib.Path or None, optional
        A model directory shown in the report (default: ``model/`` beside `out`, when it exists).
    figures : bool, default True
        Whether to draw the figures and write report.html.

    Returns
    -------
    pathlib.Path
        `out`.

    Raises
    ------
    InputError
        When `out` exists and is not a directory.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a directory")
    # final_dir: the report looks for prioritize/, model/ and predictions/ beside `out`.
    around = {"prioritize_dir": prioritize_dir, "model_dir": model_dir, "final_dir": out}
    with atomic_path(out, suffix="") as tmp:
        tmp.mkdir()
        _write_tables(result, tmp)
        if not result.targets:
            if figures:
                write_report(tmp, **around)
            return out
        for t in result.info["targets"]:
            sub = tmp / "targets" / t["dir"]
            sub.mkdir(parents=True)
            _write_tables(result.targets[t["name"]], sub)
            if figures:
                write_report(sub, **around)
        if figures:
            write_targets_report(tmp)
    return out


def _write_tables(result: EvaluationResult, tmp: Path) -> None:
    """An evaluation's tables and run.json into folder `tmp`."""
    _tsv(result.metrics, tmp / "metrics.tsv")
    _tsv(result.summary, tmp / "summary.tsv")
    _tsv(result.ks_tests, tmp / "ks_tests.tsv")
    _tsv(result.paired_tests, tmp / "paired_tests.tsv")
    _tsv(result.predictions, tmp / "predictions.tsv")
    if not result.histories.empty:
        _tsv(result.histories, tmp / "training_history.tsv")
    if result.tuning is not None:
        _tsv(result.tuning, tmp / "tuning.tsv")
    if not result.baseline_params.empty:
        _tsv(result.baseline_params, tmp / "baseline_params.tsv")
    (tmp / "run.json").write_text(json.dumps(result.info, indent=1, default=str) + "\n")
