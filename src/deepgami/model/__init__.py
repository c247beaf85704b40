"""The user-facing model: `DeepGAMI` fits on a cohort MuData (fit = tune + fit), saves, loads and
predicts from any subset of modalities; `tune_setting` is the one grid search of train and evaluate."""

from deepgami.model._base import BaseModel
from deepgami.model._inputs import ModelInputs
from deepgami.model._tuning import prior_warning, training_rows, tune_setting
from deepgami.model.deepgami_model import DeepGAMI, FoldResult, fit_predict_fold

__all__ = [
    "BaseModel",
    "DeepGAMI",
    "FoldResult",
    "ModelInputs",
    "fit_predict_fold",
    "prior_warning",
    "training_rows",
    "tune_setting",
]
