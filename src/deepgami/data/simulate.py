"""Planted-signal cohorts: genotype + expression + phenotype with known causal prior links.

The generator mirrors how DeepGAMI consumes a cohort, so that a correct model can recover what was
planted and a benchmark can compare it with the Bayes-optimal predictor.

Generative model
----------------
Notation: ``z_s`` is the standardized dosage of SNP ``s`` (``(d - 2 maf) / sqrt(2 maf (1 - maf))``,
mean 0 and variance 1 under Hardy-Weinberg with the true MAF), ``x_t`` the standardized expression
of transcription factor ``t``.

1. Genotype: per SNP a MAF ~ U(0.05, 0.5); dosage ~ Binomial(2, MAF) (Hardy-Weinberg, no LD).
2. Priors. Every target gene gets 2-4 cis-eQTL SNPs (``eqtl.tsv``) and 2-4 regulating TFs
   (``grn.tsv``); in each set at least one edge is causal (nonzero effect) and at least one is a
   decoy (weight 0). Cis SNPs are drawn without replacement across genes while SNPs last, so most
   SNPs belong to one gene's locus; the rest are null SNPs or TF drivers.
3. Gene program (the latent node DeepGAMI learns, one per gene, shared by both encoders)::

       p_g = sum_{causal eQTL s->g} w_sg z_s + sum_{causal GRN t->g} w_tg x_t

   Weights are scaled so that ``Var(p_g) = 1`` exactly, with a per-gene genetic share
   ``h_g ~ U(0.4, 0.8)`` of the direct (cis) part; ``weight`` in the TSVs is ``w`` in these units.
4. Observed expression of gene ``g``: ``mu_g + sd_g * (p_g + noise_sd * eps)``; TFs are
   ``mu_t + sd_t * x_t``. Both are written to ``expression.csv`` (targets are variables of the
   expression modality, as the design requires).
5. Phenotype: a handful of causal genes drive the class scores, linearly and non-linearly
   (a product of two causal programs and a centered square of a third)::

       score_k = c * (sum_{g causal} beta_gk p_g
                      + gamma_k (p_a p_b - E[p_a p_b]) + delta_k (p_c^2 - 1))

   with ``|beta| ~ U(0.6, 1.1)``, ``|gamma| = 0.9``, ``|delta| = 0.5``, random signs, the
   non-linear terms centered with their exact population means (so classes are roughly balanced,
   no intercept) and ``c = effect_size`` (times ``sqrt(1/2)`` for K > 2, since a difference of two
   iid scores has twice the variance of one logit). Binary: ``P(case) = sigmoid(score)``; K
   classes: softmax over K scores. Because the programs
   are deterministic functions of the observed SNPs and TFs, the class probability used to draw
   the labels *is* the Bayes-optimal predictor from the observed inputs (gene-expression noise is
   independent of the label given the programs); its test AUC is reported in ``truth.json``.
   ``interaction`` multiplies ``gamma`` and ``delta`` (0: a purely linear phenotype).

Phenotype types (``phenotype``)
-------------------------------
- ``classes`` (default): as above, one logit (binary) or a softmax over K scores.
- ``ordinal``: one score ``s`` (as for the binary logit) and K ordered classes by thresholding the
  liability ``s + L`` (``L`` standard logistic) at its sample quantiles ``k / K``, so the classes are
  about equally frequent: ``P(y <= k) = sigmoid(t_k - s)``; the thresholds ``t_k`` are recorded.
- ``numeric``: the liability itself, ``y = s + e`` with ``e ~ N(0, pi^2 / 3)`` (the variance of the
  logistic noise that the binary and ordinal phenotypes threshold); ``E[y | inputs] = s`` is the
  Bayes-optimal prediction (``truth_expected.csv``) and its test R^2 is in ``truth.json``.

Oracle inputs
-------------
``programs.csv`` holds every gene's program ``p_g`` and ``genetic_programs.csv`` its genetic part
``E[p_g | genotype] = sum_s (w_sg + sqrt(F) sum_t a_st w_tg) z_s`` (cis plus, with shared signal,
the part mediated by the TFs' driver SNPs), computed with the true allele frequencies. With
``targets_measured = False`` the expression modality holds only the TFs: the target genes stay the
priors' targets (latent nodes) but are not measured (their values are still drawn, so the same seed
gives the same genotypes, TFs, programs and labels).

Shared signal (``shared_signal = F``)
-------------------------------------
Real TF expression is partly heritable. With ``F > 0`` each TF gets 2-3 cis "driver" SNPs (drawn,
while SNPs last, from SNPs that are no gene's cis-eQTL) and::

    x_t = sqrt(F) * (sum_s a_st z_s) + sqrt(1 - F) * e_t,   sum_s a_st^2 = 1,

so a fraction ``F`` of every TF's variance is genetic. A driver SNP is then a genuine *trans*-eQTL
of each causal target of its TF (its effect is mediated by the TF), so those ``driver -> target``
edges are added to ``eqtl.tsv`` with ``kind = trans`` and the mediated effect as ``weight``. This
is what makes one modality's latent block imputable from the other's at the *same* latent node:
the expression-encoder node of gene ``g`` sees ``sum_t w_tg x_t``, whose genetic part
``sqrt(F) sum_t w_tg sum_s a_st z_s`` is a linear function of SNPs that are eQTL sources of ``g``,
i.e. inputs of the genotype-encoder node of ``g``. The population R^2 of the GRN part of ``p_g`` on
the eQTL sources of ``g`` is ``F`` (exactly, when loci do not overlap; 0.5 at ``F = 0.5``), and
the genotype-encoder node can
also carry the cis part. With ``F = 0`` the two parts are independent and no trans edges exist.
The random draws do not depend on ``F``: the same seed gives the same priors, loci and drivers
(recorded in ``truth.json`` as ``tf_drivers`` when ``F > 0``).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from deepgami import __version__
from deepgami.data.simulate_targets import extra_targets
from deepgami.errors import InputError, atomic_path

__all__ = [
    "SimulationSettings",
    "SimulatedCohort",
    "simulate_cohort",
    "write_cohort",
    "simulate",
    "check_out_dir",
    "build_command",
]

FileFormat = Literal["csv", "tsv", "parquet"]
_EXT = {"csv": ".csv", "tsv": ".tsv", "parquet": ".parquet"}
FLOAT_FORMAT = "%.6g"  # fixed so that the same seed gives byte-identical files

# Effect-size constants, tuned over seeds 0-11 (see tests/test_simulate.py) so that the default
# binary cohort has a Bayes-optimal AUC of about 0.90 (0.85-0.93 on 120 test rows), an L1 logistic
# regression on the SNPs alone reaches test AUC of about 0.72 and one on the TFs alone about 0.67.
_BETA_RANGE = (0.6, 1.1)  # |linear coefficient| per causal gene program
_GAMMA = 0.9  # |coefficient| of the product term
_DELTA = 0.5  # |coefficient| of the centered square term
_H_RANGE = (0.4, 0.8)  # genetic (cis) share of a gene program's variance
NUMERIC_NOISE_SD = math.pi / math.sqrt(3)  # SD of the standard logistic: numeric = the liability
PHENOTYPES = ("classes", "ordinal", "numeric")


@dataclass(frozen=True)
class SimulationSettings:
    """All knobs of :func:`simulate_cohort` (recorded verbatim in ``truth.json``).

    Integer and float fields are coerced on construction (JSON-safe, e.g. numpy ints become
    ``int``); :meth:`validate` checks them.

    Parameters
    ----------
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same seed gives byte-identical files.
    n_samples : int, default 600
        Number of samples.
    n_snps : int, default 1000
        Number of SNPs.
    n_tfs : int, default 40
        Number of transcription factors.
    n_genes : int, default 200
        Number of target genes (latent nodes).
    classes : int, default 2
        Number of phenotype classes.
    shared_signal : float, default 0.0
        Genetic share ``F`` of every TF's variance (see the module docstring).
    test_fraction : float, default 0.2
        Fraction of each class put in the test split.
    n_causal_genes : int or None, optional
        Genes that drive the phenotype; None gives ``min(10, n_genes)``.
    effect_size : float, default 1.0
        Multiplier ``c`` of the class scores.
    expression_noise : float, default 0.5
        Noise SD of the observed expression, in program units.
    eqtl_edges_per_gene : int or None, optional
        eQTL prior edges per gene; None: drawn per gene (2-4 edges, at least one causal and one
        decoy). E.g. 8 with 2 causal: few true regulators among decoys.
    eqtl_causal_per_gene : int or None, optional
        How many of a gene's eQTL edges are causal; None: drawn per gene.
    grn_edges_per_gene : int or None, optional
        GRN prior edges per gene; None: drawn per gene (2-4 edges, at least one causal and one
        decoy). E.g. 6 with 2 causal.
    grn_causal_per_gene : int or None, optional
        How many of a gene's GRN edges are causal; None: drawn per gene.
    phenotype : {"classes", "ordinal", "numeric"}, default "classes"
        ``classes``: a logit (binary) or a softmax over `classes` scores; ``ordinal``: `classes`
        ordered classes by thresholding one latent score; ``numeric``: that score plus noise
        (`classes` is then ignored). See the module docstring.
    targets_measured : bool, default True
        Put the target genes in the expression modality; False: only the TFs are measured and the
        targets are latent nodes of the priors only.
    interaction : float, default 1.0
        Weight of the phenotype's product and square terms (0: linear in the programs).
    n_targets : int, default 1
        Labels drawn (``label``, ``label2``, ...); the extra ones share `shared_programs` of the
        first label's causal genes (`deepgami.data.simulate_targets`).
    shared_programs : float, default 0.5
        The share of an extra target's causal genes taken from the first label's.
    missing_fraction : float, default 0.0
        The share of samples with no value for the last extra target.
    survival : bool, default False
        Add a time-to-event outcome (``time``, ``event``) from the first label's causal programs.
    """

    seed: int = 0
    n_samples: int = 600
    n_snps: int = 1000
    n_tfs: int = 40
    n_genes: int = 200
    classes: int = 2
    shared_signal: float = 0.0
    test_fraction: float = 0.2
    n_causal_genes: int | None = None  # None: min(10, n_genes)
    effect_size: float = 1.0
    expression_noise: float = 0.5
    # Prior edges per gene and how many of them are causal; None: drawn per gene (2-4 edges, at least
    # one causal and one decoy). E.g. 8 and 2 for eQTL, 6 and 2 for GRN: few true regulators among decoys.
    eqtl_edges_per_gene: int | None = None
    eqtl_causal_per_gene: int | None = None
    grn_edges_per_gene: int | None = None
    grn_causal_per_gene: int | None = None
    phenotype: str = "classes"
    targets_measured: bool = True
    interaction: float = 1.0
    n_targets: int = 1
    shared_programs: float = 0.5
    missing_fraction: float = 0.0
    survival: bool = False

    def __post_init__(self) -> None:
        for name in ("seed", "n_samples", "n_snps", "n_tfs", "n_genes", "classes", "n_targets"):
            object.__setattr__(self, name, int(getattr(self, name)))  # JSON-safe (numpy ints)
        for name in (
            "shared_signal",
            "test_fraction",
            "effect_size",
            "expression_noise",
            "interaction",
            "shared_programs",
            "missing_fraction",
        ):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "phenotype", str(self.phenotype))
        object.__setattr__(self, "targets_measured", bool(self.targets_measured))
        object.__setattr__(self, "survival", bool(self.survival))
        for name in (
            "eqtl_edges_per_gene",
            "eqtl_causal_per_gene",
            "grn_edges_per_gene",
            "grn_causal_per_gene",
        ):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        if self.n_causal_genes is not None:
            object.__setattr__(self, "n_causal_genes", int(self.n_causal_genes))
        else:
            object.__setattr__(self, "n_causal_genes", min(10, max(self.n_genes, 1)))

    def _outcome_problems(self) -> list[tuple[bool, str]]:
        """(ok, message) of each check of the extra-outcome settings."""
        return [
            (self.interaction >= 0, f"--interaction must be non-negative (got {self.interaction})"),
            (self.n_targets >= 1, f"--targets must be at least 1 (got {self.n_targets})"),
            (
                0 <= self.shared_programs <= 1,
                f"--shared-programs must be in [0, 1] (got {self.shared_programs})",
            ),
            (
                0 <= self.missing_fraction < 1,
                f"--missing-fraction must be in [0, 1) (got {self.missing_fraction})",
            ),
        ]

    def validate(self, where: str | os.PathLike | None = None) -> None:
        """Raise :class:`InputError` for settings that cannot give a usable cohort.

        Parameters
        ----------
        where : str, os.PathLike or None, optional
            Path named in the error message (e.g. the output directory).

        Raises
        ------
        InputError
            If a setting is out of range, or `n_samples` is too small for every class to have
            rows in both splits.
        """

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise InputError(where, message)

        need(
            self.phenotype in PHENOTYPES,
            f"--phenotype must be one of {', '.join(PHENOTYPES)} (got '{self.phenotype}')",
        )
        need(self.classes >= 2, f"--classes must be at least 2 (got {self.classes})")
        for ok, message in self._outcome_problems():
            need(ok, message)
        need(self.n_samples >= 1, f"--n-samples must be positive (got {self.n_samples})")
        need(self.n_snps >= 2, f"--n-snps must be at least 2 (got {self.n_snps})")
        need(self.n_tfs >= 2, f"--n-tfs must be at least 2 (got {self.n_tfs})")
        need(self.n_genes >= 1, f"--n-genes must be positive (got {self.n_genes})")
        need(
            1 <= self.n_causal_genes <= self.n_genes,
            f"--n-causal-genes must be between 1 and --n-genes={self.n_genes} "
            f"(got {self.n_causal_genes})",
        )
        need(
            0.0 <= self.shared_signal <= 1.0,
            f"--shared-signal must be in [0, 1] (got {self.shared_signal})",
        )
        need(
            0.0 < self.test_fraction < 1.0,
            f"--test-fraction must be strictly between 0 and 1 (got {self.test_fraction})",
        )
        need(self.effect_size > 0, f"--effect-size must be positive (got {self.effect_size})")
        need(
            self.expression_noise >= 0,
            f"--expression-noise must be non-negative (got {self.expression_noise})",
        )
        # Every class needs rows in train and test for a stratified split and a test AUC.
        smaller_split = min(self.test_fraction, 1 - self.test_fraction)
        groups = self.classes if self.phenotype != "numeric" else 2
        min_n = max(20, math.ceil(2 * groups / smaller_split))
        need(
            self.n_samples >= min_n,
            f"--n-samples={self.n_samples} is too small for {groups} classes and "
            f"--test-fraction={self.test_fraction} (need at least {min_n})",
        )
        need(self.seed >= 0, f"--seed must be non-negative (got {self.seed})")
        for prior in ("eqtl", "grn"):
            edges, causal = (
                getattr(self, f"{prior}_edges_per_gene"),
                getattr(self, f"{prior}_causal_per_gene"),
            )
            flag = f"--{prior}-edges-per-gene"
            need(edges is None or edges >= 1, f"{flag} must be positive (got {edges})")
            need(
                causal is None or causal >= 1,
                f"--{prior}-causal-per-gene must be positive (got {causal})",
            )
            need(
                edges is None or causal is None or causal <= edges,
                f"--{prior}-causal-per-gene={causal} exceeds {flag}={edges}",
            )


@dataclass
class SimulatedCohort:
    """An in-memory simulated cohort; :func:`write_cohort` writes it as raw user files.

    Parameters
    ----------
    settings : SimulationSettings
        The settings it was drawn with.
    genotype : pandas.DataFrame
        Samples x SNPs, int8 dosages, index named ``"sample"``.
    expression : pandas.DataFrame
        Samples x (TFs + genes), float64.
    labels : pandas.DataFrame
        Columns ``sample``, ``label``, ``split``.
    eqtl : pandas.DataFrame
        Columns ``source``, ``target``, ``weight``, ``kind`` (cis, trans or decoy).
    grn : pandas.DataFrame
        Columns ``source``, ``target``, ``weight``, ``kind`` (causal or decoy).
    probabilities : pandas.DataFrame
        Columns ``sample``, ``split``, ``prob_<class>``: the true (Bayes) class probabilities;
        for a numeric phenotype ``sample``, ``split``, ``expected`` (``E[y | inputs]``).
    truth : dict
        The truth record written as ``truth.json``.
    programs : pandas.DataFrame or None
        Samples x genes: every gene's program ``p_g`` (the oracle's inputs).
    genetic_programs : pandas.DataFrame or None
        Samples x genes: the genetic part of every program, ``E[p_g | genotype]``.
    """

    settings: SimulationSettings
    genotype: pd.DataFrame  # samples x SNPs, int8 dosages, index named "sample"
    expression: pd.DataFrame  # samples x (TFs + genes), float64
    labels: pd.DataFrame  # columns sample, label, split
    eqtl: pd.DataFrame  # source, target, weight, kind (cis | trans | decoy)
    grn: pd.DataFrame  # source, target, weight, kind (causal | decoy)
    probabilities: pd.DataFrame  # sample, split, prob_<class>: the true (Bayes) class probabilities
    truth: dict[str, Any] = field(default_factory=dict)
    programs: pd.DataFrame | None = None  # samples x genes, p_g
    genetic_programs: pd.DataFrame | None = None  # samples x genes, E[p_g | genotype]


def _g6(v: float) -> float:
    """A float as written in the TSVs (FLOAT_FORMAT), so truth.json and the files agree."""
    return float(FLOAT_FORMAT % v)


def _ids(prefix: str, n: int, width: int) -> list[str]:
    width = max(width, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _split_norm(raw: np.ndarray, target_var: float) -> np.ndarray:
    """Scale raw weights so that their squared norm is `target_var`."""
    norm = float(np.sqrt(np.sum(raw**2)))
    return raw * (math.sqrt(target_var) / norm) if norm > 0 else raw


def _row_block(n_cols: int) -> int:
    """Rows per block so that a float64 block stays around 64 MB."""
    return max(1, (1 << 23) // max(n_cols, 1))


def _z_dot(dosage: np.ndarray, maf: np.ndarray, sd: np.ndarray, w: sparse.sparray) -> np.ndarray:
    """``z @ w`` for standardized dosages ``z = (dosage - 2 maf) / sd``, in row blocks."""
    w = sparse.csr_array(sparse.diags_array(1.0 / sd) @ w)
    offset = (2 * maf) @ w  # the centering, applied once instead of per entry
    out = np.empty((dosage.shape[0], w.shape[1]))
    step = _row_block(dosage.shape[1])
    for i in range(0, dosage.shape[0], step):
        out[i : i + step] = np.asarray((w.T @ dosage[i : i + step].T.astype(np.float64)).T) - offset
    return out


def _stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean test mask with round(fraction * n_c) rows of each class c (at least 1, not all)."""
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_test = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        test[rng.permutation(idx)[:n_test]] = True
    return test


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged; no sklearn import needed."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _auc_metrics(y: np.ndarray, prob: np.ndarray, k: int) -> dict[str, float]:
    """AUC (binary; macro one-vs-rest for K > 2) and balanced accuracy of the argmax."""
    if k == 2:
        auc = _auc(y == 1, prob[:, 1])
    else:
        auc = float(np.mean([_auc(y == c, prob[:, c]) for c in range(k)]))
    pred = prob.argmax(axis=1)
    recall = [float(np.mean(pred[y == c] == c)) for c in range(k)]
    return {"auc": auc, "balanced_accuracy": float(np.mean(recall))}


@dataclass
class _Priors:
    """The planted prior structure: direct effects, every prior edge (causal and decoy), TF drivers."""

    wc: sparse.csr_array  # SNP -> gene (cis) effects
    wg: sparse.csr_array  # TF -> gene effects
    drivers: sparse.csr_array  # SNP -> TF effects (before scaling by sqrt(shared_signal))
    eqtl_rows: list[tuple[int, int]]
    grn_rows: list[tuple[int, int]]


def _draw_genotypes(
    rng: np.random.Generator, n: int, n_snp: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hardy-Weinberg dosages of independent SNPs (int8), their allele frequencies and dosage SDs."""
    maf = rng.uniform(0.05, 0.5, size=n_snp)
    # One uniform per genotype against the HWE cut points (1-p)^2 and 1-p^2: exact and much faster
    # than a per-entry binomial; row blocks avoid a float64 copy of the whole matrix.
    lo, hi = (1 - maf) ** 2, 1 - maf**2
    dosage = np.empty((n, n_snp), dtype=np.int8)
    step = _row_block(n_snp)
    for i in range(0, n, step):  # row blocks consume the stream exactly as one call would
        u = rng.random((min(step, n - i), n_snp))
        dosage[i : i + step] = (u >= lo).astype(np.int8) + (u >= hi)
    return dosage, maf, np.sqrt(2 * maf * (1 - maf))


def _draw_priors(rng: np.random.Generator, s: SimulationSettings) -> _Priors:
    """cis-eQTL loci and GRN edges per gene (a few causal among decoys), and the SNP drivers of each TF."""
    n_snp, n_tf, n_gene = s.n_snps, s.n_tfs, s.n_genes
    pool = list(rng.permutation(n_snp))  # SNPs not yet claimed by a locus
    h = rng.uniform(*_H_RANGE, size=n_gene)  # share of each gene's program that is cis-genetic

    def take_snps(m: int) -> np.ndarray:
        m = min(m, n_snp)
        if len(pool) >= m:
            return np.array([pool.pop() for _ in range(m)])
        return rng.choice(n_snp, size=m, replace=False)  # loci exhausted: reuse SNPs

    def take_tfs(m: int) -> np.ndarray:
        return rng.choice(n_tf, size=min(m, n_tf), replace=False)

    # Triplets (source, gene, weight) of the direct effects: cis SNP -> gene, TF -> gene.
    trip: dict[str, list[list[float]]] = {"eqtl": [[], [], []], "grn": [[], [], []]}
    rows: dict[str, list[tuple[int, int]]] = {"eqtl": [], "grn": []}
    for g in range(n_gene):
        for key, pick, share, edges, causal in (
            ("eqtl", take_snps, h[g], s.eqtl_edges_per_gene, s.eqtl_causal_per_gene),
            ("grn", take_tfs, 1 - h[g], s.grn_edges_per_gene, s.grn_causal_per_gene),
        ):
            # Drawn unless fixed: 2-4 edges, at least one causal and one decoy (draw order kept for the seed).
            src = pick(int(rng.integers(2, 5)) if edges is None else edges)
            n_causal = int(rng.integers(1, len(src))) if causal is None else min(causal, len(src))
            raw = rng.choice([-1.0, 1.0], size=n_causal) * rng.uniform(0.5, 1.5, size=n_causal)
            trip[key][0] += src[:n_causal].tolist()
            trip[key][1] += [g] * n_causal
            trip[key][2] += _split_norm(raw, share).tolist()
            rows[key].extend((int(x), g) for x in src)
    wc = sparse.csr_array(
        (trip["eqtl"][2], (trip["eqtl"][0], trip["eqtl"][1])), shape=(n_snp, n_gene)
    )
    wg = sparse.csr_array((trip["grn"][2], (trip["grn"][0], trip["grn"][1])), shape=(n_tf, n_gene))

    # TF drivers are drawn whatever shared_signal is, so that it only changes values, not structure.
    drv: list[list[float]] = [[], [], []]
    for t in range(n_tf):
        src = take_snps(int(rng.integers(2, 4)))
        raw = rng.uniform(0.5, 1.5, size=len(src)) * rng.choice([-1.0, 1.0], size=len(src))
        drv[0] += src.tolist()
        drv[1] += [t] * len(src)
        drv[2] += _split_norm(raw, 1.0).tolist()
    drivers = sparse.csr_array((drv[2], (drv[0], drv[1])), shape=(n_snp, n_tf))
    return _Priors(wc, wg, drivers, rows["eqtl"], rows["grn"])


def _unit_variance_programs(
    priors: _Priors, d: sparse.csr_array, F: float
) -> tuple[sparse.csr_array, sparse.csr_array, sparse.csc_array, sparse.csc_array]:
    """Rescale the effects so every gene program has exactly unit variance.

    The program is p = z @ (wc + d wg) + sqrt(1-F) e @ wg; returns (wc, wg, the SNP coefficients and
    the TF-noise coefficients of p), all rescaled."""
    wc, wg = priors.wc, priors.wg
    snp_coef = (wc + d @ wg).tocsc()
    var = np.asarray(snp_coef.multiply(snp_coef).sum(axis=0)).ravel()
    var += (1 - F) * np.asarray(wg.multiply(wg).sum(axis=0)).ravel()
    scale = sparse.diags_array(1.0 / np.sqrt(var))
    wc, wg, snp_coef = (wc @ scale).tocsr(), (wg @ scale).tocsr(), (snp_coef @ scale).tocsc()
    return wc, wg, snp_coef, (wg * math.sqrt(1 - F)).tocsc()


@dataclass
class _Phenotype:
    """The drawn phenotype: labels (class indices, or values), the Bayes-optimal prediction (class
    probabilities, or ``E[y]`` as one column), the causal genes, their linear coefficients, the
    non-linear terms and extra fields of the phenotype model (thresholds, noise)."""

    y: np.ndarray
    prob: np.ndarray
    causal: np.ndarray
    beta: np.ndarray
    terms: list[dict[str, Any]]
    model: dict[str, Any] = field(default_factory=dict)


def _phenotype_scores(
    rng: np.random.Generator,
    s: SimulationSettings,
    program: np.ndarray,
    cov: Callable[[int, int], float],
    genes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """The scores (samples x 1, or x K for a K-class softmax): a linear function of the causal genes'
    programs plus a centered product and square (times `interaction`), times the effect size.

    Returns (scores, causal gene indices, linear coefficients, the non-linear terms)."""
    n_gene, k = s.n_genes, s.classes
    causal = np.sort(rng.choice(n_gene, size=s.n_causal_genes, replace=False))
    order = rng.permutation(causal)  # which causal genes enter the non-linear terms
    n_scores = k if s.phenotype == "classes" and k > 2 else 1
    beta = rng.choice([-1.0, 1.0], size=(len(causal), n_scores)) * rng.uniform(
        *_BETA_RANGE, size=(len(causal), n_scores)
    )
    terms: list[dict[str, Any]] = []
    p = program[:, causal]
    col = {int(g): i for i, g in enumerate(causal)}
    score = p @ beta
    if len(order) >= 2:
        a, b = int(order[0]), int(order[1])
        gamma = rng.choice([-1.0, 1.0], size=n_scores) * _GAMMA * s.interaction
        score += np.outer(p[:, col[a]] * p[:, col[b]] - cov(a, b), gamma)  # centered product
        terms.append(
            {
                "type": "product",
                "genes": [genes[a], genes[b]],
                "coef": gamma.tolist(),
                "offset": cov(a, b),
            }
        )
    if len(order) >= 3:
        c = int(order[2])
        delta = rng.choice([-1.0, 1.0], size=n_scores) * _DELTA * s.interaction
        score += np.outer(p[:, col[c]] ** 2 - 1.0, delta)  # centered square
        terms.append({"type": "square", "genes": [genes[c]], "coef": delta.tolist(), "offset": 1.0})
    # K iid scores: a difference of two has twice the variance of the binary logit, so shrink.
    score *= s.effect_size * (1.0 if n_scores == 1 else math.sqrt(0.5))
    return score, causal, beta, terms


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _draw_phenotype(
    rng: np.random.Generator,
    s: SimulationSettings,
    program: np.ndarray,
    cov: Callable[[int, int], float],
    genes: list[str],
) -> _Phenotype:
    """Labels from the causal genes' programs (see the module docstring for the three types)."""
    n, k = s.n_samples, s.classes
    score, causal, beta, terms = _phenotype_scores(rng, s, program, cov, genes)
    if s.phenotype == "numeric":
        y = score[:, 0] + NUMERIC_NOISE_SD * rng.standard_normal(n)
        return _Phenotype(y, score[:, :1], causal, beta, terms, {"noise_sd": NUMERIC_NOISE_SD})
    u = rng.uniform(size=n)
    if s.phenotype == "ordinal":
        with np.errstate(divide="ignore"):
            liability = score[:, 0] + np.log(u) - np.log1p(-u)  # + standard logistic noise
        thresholds = np.quantile(liability, np.arange(1, k) / k)
        cdf = _sigmoid(thresholds[None, :] - score)  # P(y <= j), j < K - 1
        prob = np.diff(np.column_stack([np.zeros(n), cdf, np.ones(n)]), axis=1)
        y = (liability[:, None] > thresholds[None, :]).sum(axis=1)
        return _Phenotype(y, prob, causal, beta, terms, {"thresholds": thresholds.tolist()})
    if k == 2:
        score = np.column_stack([np.zeros(n), score[:, 0]])  # logit of "case" vs "control"
    score -= score.max(axis=1, keepdims=True)
    prob = np.exp(score)
    prob /= prob.sum(axis=1, keepdims=True)
    # Inverse-CDF draw: one uniform per sample keeps the stream independent of K.
    y = np.minimum((prob.cumsum(axis=1) < u[:, None]).sum(axis=1), k - 1)
    return _Phenotype(y, prob, causal, beta, terms)


def _edge_table(
    rows: list[tuple[int, int]],
    w: sparse.csr_array,
    names: list[str],
    genes: list[str],
    causal_kind: str,
) -> pd.DataFrame:
    """source, target, weight, kind (causal_kind where the planted weight is non-zero, else decoy)."""
    src = np.array([r[0] for r in rows], dtype=int)
    tgt = np.array([r[1] for r in rows], dtype=int)
    weight = np.asarray(w[src, tgt]).ravel() if len(src) else np.zeros(0)
    return pd.DataFrame(
        {
            "source": np.array(names, dtype=object)[src],
            "target": np.array(genes, dtype=object)[tgt],
            "weight": weight,
            "kind": np.where(weight != 0, causal_kind, "decoy"),
        }
    )


def _trans_eqtl(
    priors: _Priors,
    d: sparse.csr_array,
    wg: sparse.csr_array,
    snps: list[str],
    tfs: list[str],
    genes: list[str],
) -> tuple[pd.DataFrame | None, dict[str, list[dict[str, Any]]]]:
    """The SNP -> gene edges mediated by TFs (not already cis) and each TF's driver SNPs."""
    mediated = (d @ wg).tocsr()  # SNP -> gene effect through the TFs
    cis_pairs = set(priors.eqtl_rows)
    dcoo = d.tocoo()
    trans: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    tf_drivers: dict[str, list[dict[str, Any]]] = {}
    for si, ti, w in sorted(
        zip(dcoo.row.tolist(), dcoo.col.tolist(), dcoo.data.tolist(), strict=False),
        key=lambda st: (st[1], st[0]),
    ):
        tf_drivers.setdefault(tfs[ti], []).append({"snp": snps[si], "weight": _g6(w)})
        for gi in sorted(wg[[ti]].indices.tolist()):
            pair = (si, gi)
            if pair not in seen and pair not in cis_pairs:
                seen.add(pair)
                trans.append(pair)
    if not trans:
        return None, tf_drivers
    table = _edge_table(trans, mediated, snps, genes, "trans")
    table["kind"] = "trans"
    return table, tf_drivers


def _edge_counts(
    eqtl: pd.DataFrame, grn: pd.DataFrame, links: list[dict], mediated_links: list[dict]
) -> dict[str, int]:
    """The edge counts of truth.json, by prior and kind."""
    return {
        "eqtl_edges": int(len(eqtl)),
        "eqtl_cis": int((eqtl["kind"] == "cis").sum()),
        "eqtl_trans": int((eqtl["kind"] == "trans").sum()),
        "eqtl_decoys": int((eqtl["kind"] == "decoy").sum()),
        "grn_edges": int(len(grn)),
        "grn_causal": int((grn["kind"] == "causal").sum()),
        "grn_decoys": int((grn["kind"] == "decoy").sum()),
        "causal_links": len(links),
        "mediated_links": len(mediated_links),
        "snps_in_eqtl": int(eqtl["source"].nunique()),
    }


def _bayes_metrics(s: SimulationSettings, ph: _Phenotype, test: np.ndarray) -> dict[str, Any]:
    """The Bayes-optimal predictor's test and train metrics (AUC and balanced accuracy; R^2)."""
    if s.phenotype == "numeric":
        r2 = {}
        for name, rows in (("test", test), ("train", ~test)):
            resid = ph.y[rows] - ph.prob[rows, 0]
            r2[name] = float(1 - resid.var() / ph.y[rows].var())
        return {"bayes_optimal_test_r2": r2["test"], "bayes_optimal_train_r2": r2["train"]}
    k = s.classes
    m_test = _auc_metrics(ph.y[test], ph.prob[test], k)
    m_train = _auc_metrics(ph.y[~test], ph.prob[~test], k)
    return {
        "bayes_optimal_test_auc": m_test["auc"],
        "bayes_optimal_test_balanced_accuracy": m_test["balanced_accuracy"],
        "bayes_optimal_train_auc": m_train["auc"],
    }


def _phenotype_model(
    s: SimulationSettings, ph: _Phenotype, genes: list[str], genetic_var: np.ndarray
) -> dict[str, Any]:
    """truth.json's record of the phenotype model, coefficients in the scores' units."""
    mult = s.effect_size * (1.0 if ph.beta.shape[1] == 1 else math.sqrt(0.5))
    scores = {
        "classes": "binary: logit P(case); multi-class: softmax over one score per class",
        "ordinal": "one score s; P(y <= k) = sigmoid(thresholds[k] - s)",
        "numeric": "y = s + N(0, noise_sd^2); E[y | inputs] = s",
    }[s.phenotype]
    out = {
        "scores": scores,
        "linear": {
            genes[g]: [float(v) * mult for v in ph.beta[i]] for i, g in enumerate(ph.causal)
        },
        "nonlinear": [{**t, "coef": [c * mult for c in t["coef"]]} for t in ph.terms],
    }
    if s.phenotype != "classes":
        out["type"] = s.phenotype
        out.update(ph.model)
    # Var(E[p_g | genotype]) of each causal gene's unit-variance program.
    out["genetic_variance"] = {genes[g]: float(genetic_var[g]) for g in ph.causal}
    return out


def _truth(
    s: SimulationSettings,
    class_names: list[str],
    ph: _Phenotype,
    test: np.ndarray,
    genes: list[str],
    genetic_var: np.ndarray,
    priors: tuple[pd.DataFrame, pd.DataFrame, dict[str, list[dict[str, Any]]]],
) -> dict[str, Any]:
    """truth.json: the planted causal genes and links, the phenotype model and the Bayes-optimal scores."""
    eqtl, grn, tf_drivers = priors
    causal_names = [genes[g] for g in ph.causal]
    causal_set = set(causal_names)
    links = []
    for prior, table in (("eqtl", eqtl), ("grn", grn)):
        sel = table[table["target"].isin(causal_set) & table["kind"].isin(["cis", "causal"])]
        links += [
            {"source": r.source, "target": r.target, "prior": prior, "weight": _g6(r.weight)}
            for r in sel.itertuples(index=False)
        ]
    mediated_links = [
        {"source": r.source, "target": r.target, "prior": "eqtl", "weight": _g6(r.weight)}
        for r in eqtl[(eqtl["kind"] == "trans") & eqtl["target"].isin(causal_set)].itertuples(
            index=False
        )
    ]
    if s.phenotype == "numeric":
        counts = {}
    else:
        n_class = np.bincount(ph.y, minlength=len(class_names))
        counts = {name: int(c) for name, c in zip(class_names, n_class, strict=False)}
    return {
        "generator": f"deepgami.data.simulate {__version__}",
        "seed": s.seed,
        "settings": settings_record(s),
        "classes": class_names,
        "class_counts": counts,
        "n_test": int(test.sum()),
        "n_train": int((~test).sum()),
        **_bayes_metrics(s, ph, test),
        "causal_genes": causal_names,
        "causal_links": links,
        "mediated_links": mediated_links,
        "phenotype_model": _phenotype_model(s, ph, genes, genetic_var),
        "counts": _edge_counts(eqtl, grn, links, mediated_links),
        "tf_drivers": tf_drivers,
    }


def _draw_expression(
    rng: np.random.Generator,
    s: SimulationSettings,
    genotypes: tuple[np.ndarray, np.ndarray, np.ndarray],
    d: Any,
    wc: Any,
    wg: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TFs from their drivers and noise, genes from their programs and noise (same draw order)."""
    dosage, maf, snp_sd = genotypes
    n, n_tf, n_gene = s.n_samples, s.n_tfs, s.n_genes
    e = rng.standard_normal((n, n_tf))
    x = _z_dot(dosage, maf, snp_sd, d) + math.sqrt(1 - float(s.shared_signal)) * e
    program = _z_dot(dosage, maf, snp_sd, wc) + np.asarray(x @ wg)
    noise = rng.standard_normal((n, n_gene))
    tf_mu, tf_sd = rng.uniform(4, 10, n_tf), rng.uniform(0.4, 1.0, n_tf)
    g_mu, g_sd = rng.uniform(4, 10, n_gene), rng.uniform(0.4, 1.0, n_gene)
    tf_expr = tf_mu + tf_sd * x
    gene_expr = g_mu + g_sd * (program + s.expression_noise * noise)
    return tf_expr, gene_expr, program


def simulate_cohort(settings: SimulationSettings | None = None, **kwargs: Any) -> SimulatedCohort:
    """Draw a planted-signal genotype + expression cohort (see the module docstring).

    Parameters
    ----------
    settings : SimulationSettings or None, optional
        A :class:`SimulationSettings`; keyword arguments override its fields (or give them all).
    **kwargs
        Fields of :class:`SimulationSettings`.

    Returns
    -------
    SimulatedCohort
        Tables ready to write as user files, the true class probabilities and the truth record.
        Deterministic in ``seed`` (``numpy.random.default_rng``).

    Raises
    ------
    InputError
        If the settings are invalid, or the drawn labels leave a class with fewer than two
        samples.
    """
    s = settings if settings is not None else SimulationSettings(**kwargs)
    if settings is not None and kwargs:
        s = SimulationSettings(**{**asdict(settings), **kwargs})
    s.validate()
    rng = np.random.default_rng(s.seed)
    n, n_tf, n_gene = s.n_samples, s.n_tfs, s.n_genes
    F = float(s.shared_signal)
    samples, snps = _ids("S", n, 4), _ids("snp", s.n_snps, 5)
    tfs, genes = _ids("TF", n_tf, 3), _ids("GENE", n_gene, 4)

    dosage, maf, snp_sd = _draw_genotypes(rng, n, s.n_snps)
    priors = _draw_priors(rng, s)
    d = priors.drivers * math.sqrt(F)  # x = z @ d + sqrt(1 - F) e
    wc, wg, snp_coef, tf_coef = _unit_variance_programs(priors, d, F)

    def cov(a: int, b: int) -> float:
        """Population covariance (= correlation) of programs a and b."""
        dot = lambda m: float((m[:, [a]].multiply(m[:, [b]])).sum())  # noqa: E731
        return dot(snp_coef) + dot(tf_coef)

    genotypes = (dosage, maf, snp_sd)
    tf_expr, gene_expr, program = _draw_expression(rng, s, genotypes, d, wc, wg)

    ph = _draw_phenotype(rng, s, program, cov, genes)
    class_names = _class_names(s, ph.y)
    test = _test_split(s, ph.y, rng)

    index = pd.Index(samples, name="sample")
    genotype = pd.DataFrame(dosage, index=index, columns=snps)
    measured = np.hstack([tf_expr, gene_expr]) if s.targets_measured else tf_expr
    expression = pd.DataFrame(
        measured, index=index, columns=tfs + genes[: measured.shape[1] - n_tf]
    )
    labels, prob_df = _label_tables(s, ph, class_names, samples, test)
    eqtl = _edge_table(priors.eqtl_rows, wc, snps, genes, "cis")
    grn = _edge_table(priors.grn_rows, wg, tfs, genes, "causal")
    tf_drivers: dict[str, list[dict[str, Any]]] = {}
    if F > 0:
        trans, tf_drivers = _trans_eqtl(priors, d, wg, snps, tfs, genes)
        if trans is not None:
            eqtl = pd.concat([eqtl, trans], ignore_index=True)
    genetic_var = np.asarray(snp_coef.multiply(snp_coef).sum(axis=0)).ravel()
    truth = _truth(s, class_names, ph, test, genes, genetic_var, (eqtl, grn, tf_drivers))
    if s.n_targets > 1 or s.survival:
        labels, truth["targets"] = extra_targets(s, labels, program, ph.causal, ph.beta, genes)
    programs = pd.DataFrame(program, index=index, columns=genes)
    genetic = pd.DataFrame(_z_dot(dosage, maf, snp_sd, snp_coef), index=index, columns=genes)
    return SimulatedCohort(
        s, genotype, expression, labels, eqtl, grn, prob_df, truth, programs, genetic
    )


def settings_record(s: SimulationSettings) -> dict[str, Any]:
    """Return the settings as truth.json records them.

    The extra-outcome fields appear only when set, so a cohort drawn without them keeps the
    bytes it had before they existed.

    Parameters
    ----------
    s : SimulationSettings
        The settings.

    Returns
    -------
    dict
        Field -> value.
    """
    record = asdict(s)
    for name, default in _EXTRA_DEFAULTS.items():
        if record[name] == default:
            del record[name]
    return record


_EXTRA_DEFAULTS = {
    "n_targets": 1,
    "shared_programs": 0.5,
    "missing_fraction": 0.0,
    "survival": False,
}


def _class_names(s: SimulationSettings, y: np.ndarray) -> list[str]:
    """control/case or class0.. (none for a numeric phenotype); refuse a class with < 2 samples."""
    if s.phenotype == "numeric":
        return []
    k = s.classes
    class_names = ["control", "case"] if k == 2 else [f"class{i}" for i in range(k)]
    counts = np.bincount(y, minlength=k)
    if counts.min() < 2:
        raise InputError(
            None,
            f"the drawn labels have only {counts.min()} sample(s) in class "
            f"'{class_names[int(counts.argmin())]}'; increase --n-samples or change --seed",
        )
    return class_names


def _test_split(s: SimulationSettings, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The stratified test mask: by class, or by quintile of a numeric phenotype."""
    if s.phenotype == "numeric":
        y = np.searchsorted(np.quantile(y, [0.2, 0.4, 0.6, 0.8]), y)
    return _stratified_split(y, s.test_fraction, rng)


def _label_tables(
    s: SimulationSettings,
    ph: _Phenotype,
    class_names: list[str],
    samples: list[str],
    test: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """labels (sample, label, split) and the Bayes-optimal prediction per sample."""
    split = np.where(test, "test", "train")
    if s.phenotype == "numeric":
        label: np.ndarray = ph.y
    else:
        label = np.array(class_names, dtype=object)[ph.y]
    labels = pd.DataFrame({"sample": samples, "label": label, "split": split})
    prob_df = pd.DataFrame({"sample": samples, "split": labels["split"]})
    if s.phenotype == "numeric":
        prob_df["expected"] = ph.prob[:, 0]
    for i, name in enumerate(class_names):
        prob_df[f"prob_{name}"] = ph.prob[:, i]
    return labels, prob_df


def _write_matrix(df: pd.DataFrame, path: Path, fmt: FileFormat) -> None:
    if fmt == "parquet":
        df.reset_index().to_parquet(path, index=False)
    else:
        sep = "," if fmt == "csv" else "\t"
        df.to_csv(path, sep=sep, float_format=FLOAT_FORMAT, lineterminator="\n")


def check_out_dir(out: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse an output directory that exists and is not empty, unless it may be replaced.

    It may be replaced when it is a previous simulation (holds a ``truth.json``) and `overwrite`
    is set; it is then replaced as a whole, so nothing else may live there.

    Parameters
    ----------
    out : str or os.PathLike
        The output directory.
    overwrite : bool, default False
        Allow replacing a previous simulation.

    Raises
    ------
    InputError
        If `out` exists and is not a directory, or is a non-empty directory that may not be
        replaced.
    """
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(out, "exists and is not a directory")
    if any(out.iterdir()):
        if not overwrite:
            raise InputError(
                out,
                "directory exists and is not empty (pass --overwrite to replace "
                "a previous simulation)",
            )
        if not (out / "truth.json").is_file():
            raise InputError(
                out,
                "refusing to overwrite a non-empty directory that is not a "
                "deepgami simulation (no truth.json)",
            )


def write_cohort(
    cohort: SimulatedCohort,
    out: str | os.PathLike,
    fmt: FileFormat = "csv",
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the cohort's files into directory `out` atomically.

    Roles: ``genotype``, ``expression`` (``.csv``/``.tsv``/``.parquet`` by `fmt`), ``labels``
    (``labels.csv``), ``eqtl``, ``grn`` (``.tsv``), ``probabilities``
    (``truth_probabilities.csv``; for a numeric phenotype ``truth_expected.csv``), ``truth``
    (``truth.json``), and the oracle inputs ``programs`` and ``genetic_programs``
    (``programs.csv``, ``genetic_programs.csv``: samples x genes) when the cohort has them.

    Parameters
    ----------
    cohort : SimulatedCohort
        The cohort to write.
    out : str or os.PathLike
        Output directory.
    fmt : {"csv", "tsv", "parquet"}, default "csv"
        Format of the genotype and expression matrices.
    overwrite : bool, default False
        Replace an existing non-empty `out`; only allowed when it holds a previous simulation
        (a ``truth.json``).

    Returns
    -------
    dict of str to pathlib.Path
        ``{role: final path}``.

    Raises
    ------
    InputError
        If `fmt` is unknown or `out` may not be written (see :func:`check_out_dir`).
    """
    out = Path(out)
    if fmt not in _EXT:
        raise InputError(out, f"unknown format '{fmt}' (choose csv, tsv or parquet)")
    check_out_dir(out, overwrite)
    names = {
        "genotype": f"genotype{_EXT[fmt]}",
        "expression": f"expression{_EXT[fmt]}",
        "labels": "labels.csv",
        "eqtl": "eqtl.tsv",
        "grn": "grn.tsv",
        "probabilities": "truth_probabilities.csv",
        "truth": "truth.json",
    }
    if "expected" in cohort.probabilities:
        names["probabilities"] = "truth_expected.csv"
    oracle = {"programs": cohort.programs, "genetic_programs": cohort.genetic_programs}
    names.update({role: f"{role}.csv" for role, frame in oracle.items() if frame is not None})
    with atomic_path(out, suffix="") as tmp:
        tmp.mkdir()
        _write_matrix(cohort.genotype, tmp / names["genotype"], fmt)
        _write_matrix(cohort.expression, tmp / names["expression"], fmt)
        cohort.labels.to_csv(
            tmp / names["labels"], index=False, float_format=FLOAT_FORMAT, lineterminator="\n"
        )
        for role, frame in oracle.items():
            if frame is not None:
                _write_matrix(frame, tmp / names[role], "csv")
        for role in ("eqtl", "grn"):
            getattr(cohort, role).to_csv(
                tmp / names[role],
                sep="\t",
                index=False,
                float_format=FLOAT_FORMAT,
                lineterminator="\n",
            )
        cohort.probabilities.to_csv(
            tmp / names["probabilities"],
            index=False,
            float_format=FLOAT_FORMAT,
            lineterminator="\n",
        )
        truth = {**cohort.truth, "files": names}
        (tmp / names["truth"]).write_text(json.dumps(truth, indent=2) + "\n")
    return {role: out / name for role, name in names.items()}


def build_command(paths: dict[str, Path], cohort_path: str | os.PathLike | None = None) -> str:
    """Return the ``deepgami build`` command line that turns the written files into a cohort.h5mu.

    Parameters
    ----------
    paths : dict of str to pathlib.Path
        ``{role: path}`` as returned by :func:`write_cohort`.
    cohort_path : str, os.PathLike or None, optional
        Where the command writes the cohort; default ``cohort.h5mu`` beside ``truth.json``.

    Returns
    -------
    str
        The command line, shell-quoted.
    """
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    cohort_path = cohort_path or paths["truth"].parent / "cohort.h5mu"
    header = pd.read_csv(paths["labels"], nrows=0).columns if paths["labels"].exists() else []
    extra = [c for c in header if c.startswith("label") and c != "label"]
    targets = (f" --label-column {','.join(['label', *extra])}" if extra else "") + (
        " --survival-columns time,event" if "time" in header else ""
    )
    return (
        f"deepgami build --modality snp={q(paths['genotype'])} "
        f"--modality expr={q(paths['expression'])} "
        f"--labels {q(paths['labels'])}{targets} --prior snp:eqtl={q(paths['eqtl'])} "
        f"--prior expr:grn={q(paths['grn'])} --out {q(cohort_path)}"
    )


def simulate(
    out: str | os.PathLike, fmt: FileFormat = "csv", overwrite: bool = False, **settings: Any
) -> tuple[SimulatedCohort, dict[str, Path]]:
    """Simulate a cohort and write it to `out`.

    The settings and the output directory are checked before the work, not after.

    Parameters
    ----------
    out : str or os.PathLike
        Output directory.
    fmt : {"csv", "tsv", "parquet"}, default "csv"
        Format of the genotype and expression matrices.
    overwrite : bool, default False
        Replace a previous simulation in `out`.
    **settings
        Fields of :class:`SimulationSettings`.

    Returns
    -------
    cohort : SimulatedCohort
        The simulated cohort.
    paths : dict of str to pathlib.Path
        ``{role: final path}`` of the written files.

    Raises
    ------
    InputError
        If the settings are invalid or `out` may not be written.
    """
    s = SimulationSettings(**settings)
    s.validate()
    check_out_dir(out, overwrite)  # fail before the work, not after
    cohort = simulate_cohort(s)
    return cohort, write_cohort(cohort, out, fmt=fmt, overwrite=overwrite)
