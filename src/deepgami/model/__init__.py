"""The user-facing model: `DeepGAMI` fits on a cohort MuData, saves, loads and predicts from any subset."""

from deepgami.model.deepgami_model import (
    BAG_FRACTION,
    DeepGAMI,
    FoldResult,
    ModelInputs,
    fit_predict_fold,
    threads_for,
)

__all__ = ["BAG_FRACTION", "DeepGAMI", "FoldResult", "ModelInputs", "fit_predict_fold", "threads_for"]
