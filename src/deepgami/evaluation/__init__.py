"""Evaluation: protocols (held-out, CV, repeated splits, independent cohort), ablations, baselines, significance."""

from deepgami.evaluation.protocols import (
    DEEPGAMI_METHODS,
    MEANFILL,
    METHOD_LABELS,
    EvalConfig,
    EvaluationResult,
    evaluate,
)

__all__ = ["DEEPGAMI_METHODS", "MEANFILL", "METHOD_LABELS", "EvalConfig", "EvaluationResult", "evaluate"]
