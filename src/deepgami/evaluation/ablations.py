"""DeepGAMI's prior ablations: random networks with the prior's edge count and Bernoulli networks."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from deepgami.errors import InputError
from deepgami.evaluation.config import EvalConfig

# A Bernoulli network with more edges than this would not fit a sparse encoder in memory.
MAX_BERNOULLI_EDGES = 20_000_000


def random_network(
    n_features: int, n_latent: int, n_edges: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw `n_edges` distinct (feature, latent node) pairs uniformly: the paper's random prior.

    Parameters
    ----------
    n_features : int
        The number of input features.
    n_latent : int
        The number of latent nodes.
    n_edges : int
        The number of edges to draw (at most every pair).
    rng : numpy.random.Generator
        The random generator.

    Returns
    -------
    src : numpy.ndarray
        The edges' feature positions.
    dst : numpy.ndarray
        The edges' latent node positions.
    """
    n_pairs = n_features * n_latent
    codes = np.sort(rng.choice(n_pairs, size=min(n_edges, n_pairs), replace=False))
    return (codes // n_latent).astype(np.int64), (codes % n_latent).astype(np.int64)


def bernoulli_network(
    src: np.ndarray,
    dst: np.ndarray,
    n_features: int,
    n_latent: int,
    keep: float,
    add: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Perturb a prior: keep each prior edge with probability `keep`, add other pairs with `add`.

    Each other (feature, node) pair is added with probability `add` (the paper's Bernoulli
    network, p = 0.8 / 0.2).

    Parameters
    ----------
    src : numpy.ndarray
        The prior edges' feature positions.
    dst : numpy.ndarray
        The prior edges' latent node positions.
    n_features : int
        The number of input features.
    n_latent : int
        The number of latent nodes.
    keep : float
        The probability of keeping a prior edge.
    add : float
        The probability of adding a pair that is not a prior edge.
    rng : numpy.random.Generator
        The random generator.

    Returns
    -------
    src : numpy.ndarray
        The edges' feature positions.
    dst : numpy.ndarray
        The edges' latent node positions.

    Raises
    ------
    InputError
        When the network would add more than MAX_BERNOULLI_EDGES edges.
    """
    edges = np.unique(np.asarray(src, dtype=np.int64) * n_latent + np.asarray(dst, dtype=np.int64))
    kept = edges[rng.random(len(edges)) < keep]
    n_other = n_features * n_latent - len(edges)
    n_add = int(rng.binomial(n_other, add)) if n_other > 0 else 0
    if n_add > MAX_BERNOULLI_EDGES:
        raise InputError(
            None,
            f"a Bernoulli network would add {n_add:,} edges ({n_features:,} features x "
            f"{n_latent:,} latent nodes x p={add}); lower --bernoulli-add or select features",
        )
    # Draw positions among the non-edges, then skip over the prior edges to get pair codes.
    picks = (
        np.sort(rng.choice(n_other, size=n_add, replace=False))
        if n_add
        else np.zeros(0, dtype=np.int64)
    )
    added = picks + np.searchsorted(edges - np.arange(len(edges)), picks, side="right")
    codes = np.sort(np.concatenate([kept, added]))
    return (codes // n_latent).astype(np.int64), (codes % n_latent).astype(np.int64)


def variant_arrays(data: Any, method: str, config: EvalConfig, seed: int) -> Any:
    """Return the cohort arrays a DeepGAMI variant trains on: priors removed, randomized, perturbed.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    method : str
        The DeepGAMI variant (one of `DEEPGAMI_METHODS`).
    config : EvalConfig
        The evaluation config (the Bernoulli probabilities).
    seed : int
        Seeds the random and Bernoulli networks.

    Returns
    -------
    CohortArrays
        The variant's arrays (`data` itself for ``deepgami``).

    Raises
    ------
    InputError
        When a variant's network of a modality has no edge.
    """
    if method == "deepgami":
        return data
    if method == "deepgami_dense":
        k = len(data.modalities)
        return dataclasses.replace(data, latent_nodes=None, priors=[None] * k, edges=[None] * k)
    rng = np.random.default_rng(seed)
    n_latent = len(data.latent_nodes)
    edges, priors = [], []
    for k, e in enumerate(data.edges):
        if e is None:
            edges.append(None)
            priors.append(None)
            continue
        n_features = data.X[k].shape[1]
        if method == "deepgami_random_prior":
            edges.append(random_network(n_features, n_latent, len(e[0]), rng))
            priors.append(f"random:{data.priors[k]}")
        else:
            edges.append(
                bernoulli_network(
                    e[0],
                    e[1],
                    n_features,
                    n_latent,
                    config.bernoulli_keep,
                    config.bernoulli_add,
                    rng,
                )
            )
            priors.append(f"bernoulli:{data.priors[k]}")
        if len(edges[-1][0]) == 0:
            raise InputError(
                None, f"the {method} network of modality '{data.modalities[k]}' has no edge"
            )
    return dataclasses.replace(data, edges=edges, priors=priors)


def alone_arrays(data: Any, modality: str) -> Any:
    """Return the cohort arrays restricted to one modality, with its prior, for `deepgami_alone`.

    The modality keeps its matrix, presence and prior edges into the same latent nodes (targets
    common to all the cohort's priors) as DeepGAMI trained on every modality, so the two differ only
    in the modalities they train on. A modality without a prior stays unguided (dense into the
    latent nodes, as in the full model).

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    modality : str
        The modality kept.

    Returns
    -------
    CohortArrays
        The arrays of that modality alone.
    """
    k = data.modalities.index(modality)
    return dataclasses.replace(
        data,
        modalities=[modality],
        X=[data.X[k]],
        var_names=[data.var_names[k]],
        present=data.present[:, [k]],
        priors=[data.priors[k]],
        edges=[data.edges[k]],
    )
