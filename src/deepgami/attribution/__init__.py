"""Prioritization: integrated gradients of input features, latent genes and prior links; gene-set enrichment."""

from deepgami.attribution.integrated_gradients import (
    FLOAT_FORMAT,
    Prioritization,
    precision_at_k,
    prioritize,
)

__all__ = ["FLOAT_FORMAT", "Prioritization", "precision_at_k", "prioritize"]
