"""Evaluation: protocols (held-out, CV, repeated splits, independent cohort), ablations, baselines,
paired comparisons and significance, run in parallel worker processes."""

from deepgami.evaluation.config import DEEPGAMI_METHODS, MEANFILL, PRIOR_METHODS, EvalConfig
from deepgami.evaluation.protocols import EvaluationResult, evaluate

__all__ = [
    "DEEPGAMI_METHODS",
    "MEANFILL",
    "PRIOR_METHODS",
    "EvalConfig",
    "EvaluationResult",
    "evaluate",
]
