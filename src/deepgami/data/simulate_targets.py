"""Extra outcomes of a simulated cohort: more targets sharing some causal programs, missing values,
and a time-to-event outcome from the same programs (`deepgami simulate --targets 2 --survival`).

Drawn after everything else, from a generator of their own (``default_rng([seed, 25])``), so the
first label, genotypes, expression and priors are those of the same seed without them.

- Target ``label<t>`` (t = 2..n_targets): ``n_causal`` causal genes, a share `shared_programs` of
  them drawn from the first label's causal genes, the rest from the other genes; a linear score
  ``c * sum_g beta_g p_g`` (``|beta| ~ U(0.6, 1.1)``), drawn as control/case by
  ``P(case) = sigmoid(score)`` (numeric: score + logistic-scale noise, as the first label).
  A share `missing_fraction` of the samples have no value for the last of these targets.
- Survival (``time``, ``event``): the linear part of the first label's score,
  ``eta = c * sum_g beta_g1 p_g`` over its causal genes; ``T ~ Exponential(rate 0.1 exp(eta))``
  (a Cox model with log hazard ratio eta), independent censoring ``C ~ Exponential`` with mean
  twice the median of T; ``time = min(T, C)``, ``event = T <= C``. The oracle Cox model on the
  true programs is the one fitted on ``programs.csv``'s causal genes; ``truth.json`` records the
  genes, coefficients and the C-index of the true eta on the test split.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from deepgami.metrics import harrell_c

SURVIVAL_BASE_RATE = 0.1
BETA_RANGE = (0.6, 1.1)
NUMERIC_NOISE_SD = math.pi / math.sqrt(3)


def extra_targets(
    s: Any,
    labels: pd.DataFrame,
    program: np.ndarray,
    causal: np.ndarray,
    beta: np.ndarray,
    genes: list[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Add the extra targets' columns to the label table and describe them for truth.json.

    Parameters
    ----------
    s : SimulationSettings
        The settings (``n_targets``, ``shared_programs``, ``missing_fraction``, ``survival``).
    labels : pandas.DataFrame
        The label table (``sample``, ``label``, ``split``).
    program : numpy.ndarray
        Samples x genes programs.
    causal : numpy.ndarray
        The first label's causal gene indices.
    beta : numpy.ndarray
        Their linear coefficients (first column used).
    genes : list of str
        Gene names.

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The label table with the new columns, and truth.json's ``targets`` entry.
    """
    rng = np.random.default_rng([s.seed, 25])
    labels = labels.copy()
    info: dict[str, Any] = {"label": {"causal_genes": [genes[g] for g in causal]}}
    test = (labels["split"] == "test").to_numpy()
    for t in range(2, s.n_targets + 1):
        name = f"label{t}"
        values, info[name] = _one_target(rng, s, program, causal, genes)
        if t == s.n_targets and s.missing_fraction > 0:
            hide = rng.uniform(size=len(values)) < s.missing_fraction
            values = pd.Series(values, dtype=object).where(~hide, None).to_numpy()
            info[name]["missing"] = int(hide.sum())
        labels[name] = values
    if s.survival:
        eta = s.effect_size * (program[:, causal] @ beta[:, 0])
        time, event = _survival_times(rng, eta)
        labels["time"], labels["event"] = np.round(time, 6), event.astype(int)
        info["survival"] = {
            "causal_genes": [genes[g] for g in causal],
            "log_hazard_coef": [float(b) * s.effect_size for b in beta[:, 0]],
            "events": int(event.sum()),
            "c_index_true_risk_test": harrell_c(event[test].astype(bool), time[test], eta[test]),
        }
    return labels, info


def _one_target(
    rng: np.random.Generator,
    s: Any,
    program: np.ndarray,
    causal: np.ndarray,
    genes: list[str],
) -> tuple[np.ndarray, dict[str, Any]]:
    """One extra target sharing `shared_programs` of the first label's causal genes."""
    k = len(causal)
    n_shared = int(round(s.shared_programs * k))
    shared = np.sort(rng.choice(causal, size=n_shared, replace=False)) if n_shared else []
    others = np.setdiff1d(np.arange(program.shape[1]), causal)
    fresh = rng.choice(others, size=min(k - n_shared, len(others)), replace=False)
    chosen = np.sort(np.concatenate([np.asarray(shared, dtype=np.int64), fresh]))
    beta = rng.choice([-1.0, 1.0], size=len(chosen)) * rng.uniform(*BETA_RANGE, size=len(chosen))
    score = s.effect_size * (program[:, chosen] @ beta)
    n = program.shape[0]
    if s.phenotype == "numeric":
        values: np.ndarray = score + NUMERIC_NOISE_SD * rng.standard_normal(n)
    else:
        case = rng.uniform(size=n) < 0.5 * (1.0 + np.tanh(0.5 * score))
        values = np.where(case, "case", "control").astype(object)
    record = {
        "causal_genes": [genes[g] for g in chosen],
        "shared_genes": [genes[g] for g in np.asarray(shared, dtype=np.int64)],
        "beta": [float(b) for b in beta],
    }
    return values, record


def _survival_times(rng: np.random.Generator, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exponential event times with log hazard `eta`, independent exponential censoring."""
    event_time = rng.exponential(size=len(eta)) / (SURVIVAL_BASE_RATE * np.exp(eta))
    censor = rng.exponential(scale=2.0 * float(np.median(event_time)), size=len(eta))
    return np.minimum(event_time, censor), event_time <= censor
