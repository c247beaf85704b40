"""The splits of each protocol, and the cohort pair of the independent protocol.

Every split is a pair of row positions into the cohort arrays; all methods of a split see the same
rows. Splits depend only on the seed and the protocol, never on which methods run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepgami.data.arrays import strata
from deepgami.errors import InputError
from deepgami.evaluation.config import PROTOCOLS, EvalConfig


@dataclass
class Split:
    """Training and held-out rows (positions into the cohort arrays) of one split of a protocol.

    Parameters
    ----------
    protocol : str
        The protocol (``holdout``, ``cv``, ``repeated`` or ``independent``).
    index : int
        The split's index within its protocol.
    train : numpy.ndarray
        The positions of the training rows.
    test : numpy.ndarray
        The positions of the held-out rows.
    """

    protocol: str
    index: int
    train: np.ndarray
    test: np.ndarray


def eligible_rows(data: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """Return the rows with a known label (one of the classes) and at least one modality.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    rows : numpy.ndarray or None, default None
        Positions to restrict the result to (None: all rows).

    Returns
    -------
    numpy.ndarray
        The sorted positions of the eligible rows.
    """
    ok = data.has_label() & data.present.any(axis=1)
    if data.task == "classification":
        ok &= np.isin(np.asarray(data.labels, dtype=object), data.classes)
    idx = np.flatnonzero(ok)
    return idx if rows is None else np.intersect1d(idx, rows)


def check_classes(data: Any, rows: np.ndarray, need: int, what: str) -> None:
    """Check that `rows` are enough for a protocol's splits.

    Splits stratified by classes (a classification; several targets: the first target's classes
    when every row has one) need two classes and at least `need` rows of each; others at least
    twice `need` rows.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    rows : numpy.ndarray
        The positions of the eligible rows.
    need : int
        The fewest rows per class (twice that in all, for a numeric phenotype).
    what : str
        The protocol, as error messages name it.

    Raises
    ------
    InputError
        When the rows are too few or hold a single class.
    """
    y, classify = strata(data, rows)
    if not classify:
        if len(rows) < 2 * need:
            raise InputError(None, f"{len(rows)} labelled samples are too few for {what}")
        return
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise InputError(None, f"{what} needs two classes; the labelled samples hold one")
    if counts.min() < need:
        raise InputError(
            None,
            f"class '{counts.idxmin()}' has {counts.min()} samples, too few for {what} "
            f"(needs {need})",
        )


def make_splits(
    data: Any, protocol: str, config: EvalConfig, rows: np.ndarray
) -> tuple[list[Split], str]:
    """Make the splits of `protocol` over `rows` and say how they were made.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    protocol : str
        ``holdout``, ``cv`` or ``repeated``.
    config : EvalConfig
        The evaluation config (seed, folds, repeats, test fraction).
    rows : numpy.ndarray
        The positions of the eligible rows.

    Returns
    -------
    splits : list of Split
        The protocol's splits.
    description : str
        A sentence saying how they were made.

    Raises
    ------
    InputError
        When the rows are too few for the protocol.
    ValueError
        When `protocol` is not one of the three.
    """
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    from deepgami.train import cv_splits, derive_seed

    y, classify = strata(data, rows)  # several targets: the first target's classes, if any
    seed = derive_seed(config.seed, 10 + PROTOCOLS.index(protocol)) % 2**32
    if protocol == "holdout":
        if data.split is not None:
            tr, te = rows[data.split[rows] == "train"], rows[data.split[rows] == "test"]
            if len(tr) and len(te):
                return [Split("holdout", 0, tr, te)], (
                    f"the cohort's split column ({len(tr)} train, {len(te)} test samples)"
                )
        check_classes(data, rows, 2, "a held-out split")
        splitter = (StratifiedShuffleSplit if classify else ShuffleSplit)(
            n_splits=1, test_size=config.test_fraction, random_state=seed
        )
        tr, te = next(splitter.split(np.zeros(len(rows)), y if classify else None))
        why = "no test rows in the split column" if data.split is not None else "no split column"
        return [Split("holdout", 0, rows[np.sort(tr)], rows[np.sort(te)])], (
            f"a {'stratified ' if classify else ''}random {1 - config.test_fraction:.0%}/{config.test_fraction:.0%} "
            f"split ({why}; {len(tr)} train, {len(te)} test samples)"
        )
    if protocol == "cv":
        check_classes(data, rows, config.folds, f"{config.folds}-fold cross-validation")
        folds = cv_splits(y, config.folds, seed, classify)
        return [Split("cv", i, rows[tr], rows[te]) for i, (tr, te) in enumerate(folds)], (
            f"{'stratified ' if classify else ''}{config.folds}-fold cross-validation over {len(rows)} samples"
        )
    if protocol == "repeated":
        check_classes(data, rows, 2, "repeated random splits")
        splitter = (StratifiedShuffleSplit if classify else ShuffleSplit)(
            n_splits=config.repeats, test_size=config.test_fraction, random_state=seed
        )
        splits = [
            Split("repeated", i, rows[np.sort(tr)], rows[np.sort(te)])
            for i, (tr, te) in enumerate(
                splitter.split(np.zeros(len(rows)), y if classify else None)
            )
        ]
        return splits, (
            f"{config.repeats} {'stratified ' if classify else ''}random "
            f"{1 - config.test_fraction:.0%}/{config.test_fraction:.0%} splits of {len(rows)} samples"
        )
    raise ValueError(protocol)


# -- the independent cohort ----------------------------------------------------------------------


def _test_block(train: Any, test: Any, k: int, j: int, test_path: str | None) -> np.ndarray:
    """The test cohort's matrix of modality j in the column order of the training cohort's
    modality k; InputError when it lacks some of those features."""
    idx = test.var_names[j].get_indexer(train.var_names[k])
    if (idx < 0).any():
        missing = train.var_names[k][idx < 0]
        raise InputError(
            test_path,
            f"modality '{train.modalities[k]}' lacks {len(missing)} of the training cohort's "
            f"{len(idx)} features (e.g. {', '.join(map(str, missing[:3]))})",
        )
    return test.X[j][:, idx]


def _combined_labels(train: Any, test: Any) -> np.ndarray | None:
    """The training cohort's labels, then the test cohort's (None where it has none)."""
    if train.labels is None:
        return None
    kind = object if train.task == "classification" else float
    other = (
        test.labels if test.labels is not None else np.full(len(test.obs_names), None, dtype=object)
    )
    return np.concatenate([np.asarray(train.labels, dtype=kind), np.asarray(other, dtype=kind)])


def combine_cohorts(
    train: Any, test: Any, test_path: str | None = None
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Combine the training cohort's rows, then the test cohort's rows, into one CohortArrays.

    The test matrices are reordered to the training cohort's features (looked up by name). A test
    cohort may lack a whole modality (its block is then absent for every test sample) but not
    single features of a modality it has.

    Parameters
    ----------
    train : CohortArrays
        The training cohort's arrays.
    test : CohortArrays
        The test cohort's arrays.
    test_path : str or None, default None
        The test cohort's file, named in errors.

    Returns
    -------
    arrays : CohortArrays
        The combined cohort (split column ``train`` / ``independent``).
    train_rows : numpy.ndarray
        The positions of the training cohort's rows.
    test_rows : numpy.ndarray
        The positions of the test cohort's rows.

    Raises
    ------
    InputError
        When the phenotypes differ, the test cohort has none of the modalities, or it lacks some
        features of a modality it has.
    """
    from deepgami.data.arrays import CohortArrays

    if test.task != train.task:
        raise InputError(
            test_path,
            f"the test cohort's phenotype is {test.task}, the training cohort's {train.task}",
        )
    shared = [m for m in train.modalities if m in test.modalities]
    if not shared:
        raise InputError(
            test_path, f"the test cohort has none of the modalities {', '.join(train.modalities)}"
        )
    n_a, n_b = len(train.obs_names), len(test.obs_names)
    xs, present = [], np.zeros((n_a + n_b, len(train.modalities)), dtype=bool)
    present[:n_a] = train.present
    for k, m in enumerate(train.modalities):
        j = test.modalities.index(m) if m in test.modalities else None
        # int8 only when both cohorts store int8 dosages; float32 dosages must not be truncated.
        dtype = np.result_type(
            train.X[k].dtype, test.X[j].dtype if j is not None else train.X[k].dtype
        )
        block = np.zeros((n_b, train.X[k].shape[1]), dtype=dtype)
        if j is not None:
            block = _test_block(train, test, k, j, test_path).astype(dtype, copy=False)
            present[n_a:, k] = test.present[:, j]
        xs.append(np.concatenate([train.X[k].astype(dtype, copy=False), block]))
    labels = _combined_labels(train, test)
    split = np.array(["train"] * n_a + ["independent"] * n_b, dtype=object)
    obs = pd.Index([f"{s}" for s in train.obs_names] + [f"{s}" for s in test.obs_names])
    if obs.has_duplicates:  # both files may use the same ids; tell them apart in predictions
        obs = pd.Index(list(train.obs_names) + [f"test:{s}" for s in test.obs_names])
    combined = CohortArrays(
        obs_names=obs,
        modalities=list(train.modalities),
        X=xs,
        var_names=list(train.var_names),
        present=present,
        labels=labels,
        task=train.task,
        classes=list(train.classes),
        split=split,
        latent_nodes=train.latent_nodes,
        priors=list(train.priors),
        edges=list(train.edges),
    )
    return combined, np.arange(n_a), np.arange(n_a, n_a + n_b)
