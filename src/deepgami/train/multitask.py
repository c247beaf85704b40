"""The losses of several targets at once: one slice of the head's outputs per target.

The head's last layer has one block of outputs per target (classes: one per class; numeric and
survival: one). A rows x columns target matrix `y` holds, per target, one column (class code or
standardized value) or two (survival time, event), NaN where the sample lacks that target.
`MultiTaskLoss` is the weighted mean over targets of their losses (sum of weight x loss divided by
the sum of the weights), each loss on the rows that know that target only (a batch where none does
adds 0 for it, and unknown rows never reach a gradient). A mean, not a sum: the penalties beside it
(weight decay, group lasso, lambda x auxiliary loss) were set for one target's loss, and a sum of K
losses would make them K times weaker relative to the data (simulated two-target cohort,
benchmarks/multitask.py: the other target's multi - single AUC -0.028 with the sum, +0.000 with
the mean).

The Cox partial likelihood is written here in torch: scikit-survival and lifelines fit Cox models
with their own optimizers but offer no differentiable torch loss, and no maintained library does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class HeadSlice:
    """Where one target lives in the head's outputs and in the target matrix.

    Parameters
    ----------
    kind : str
        ``classes``, ``numeric`` or ``survival``.
    start : int
        Its first output column.
    width : int
        Its number of outputs (classes: one per class; else one).
    column : int
        Its first column of the target matrix (survival: time, then event).
    weight : float, default 1.0
        Its weight in the summed loss.
    """

    kind: str
    start: int
    width: int
    column: int
    weight: float = 1.0


def cox_partial_nll(risk: Tensor, time: Tensor, event: Tensor) -> Tensor:
    """Compute the negative Cox partial log-likelihood (Breslow ties), per observed event.

    ``-(1/d) sum_{i: event} [risk_i - log sum_{j: time_j >= time_i} exp(risk_j)]``, d the
    number of events: a tied event's risk set holds every sample tied with it (Breslow).

    Parameters
    ----------
    risk : torch.Tensor
        Log relative hazard per sample (n,).
    time : torch.Tensor
        Follow-up time per sample (n,).
    event : torch.Tensor
        1 where the event was observed, 0 where censored (n,).

    Returns
    -------
    torch.Tensor
        A scalar; 0 (still attached to `risk`) when no event is observed.
    """
    order = torch.argsort(time, descending=True)
    risk_s, time_s, event_s = risk[order], time[order], event[order]
    log_cum = torch.logcumsumexp(risk_s, dim=0)
    # The risk set of a sample ends at the last sample tied with it (times descending).
    last = torch.searchsorted(-time_s.contiguous(), -time_s.contiguous(), right=True) - 1
    n_events = event_s.sum()
    if float(n_events) == 0:
        return risk.sum() * 0.0
    return -((risk_s - log_cum[last]) * event_s).sum() / n_events


def target_loss(kind: str, out: Tensor, y: Tensor) -> Tensor:
    """Compute one target's loss on rows that all know it.

    Parameters
    ----------
    kind : str
        ``classes`` (cross-entropy), ``numeric`` (MSE) or ``survival`` (Cox, Breslow).
    out : torch.Tensor
        The target's outputs (rows x width).
    y : torch.Tensor
        Its columns of the target matrix (rows x 1, or rows x 2 for survival).

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    if kind == "classes":
        return F.cross_entropy(out, y[:, 0].long())
    if kind == "numeric":
        return F.mse_loss(out[:, 0], y[:, 0])
    return cox_partial_nll(out[:, 0], y[:, 0], y[:, 1])


class MultiTaskLoss(nn.Module):
    """Weighted mean over targets of their losses, each masked to the rows that know the target.

    Parameters
    ----------
    slices : sequence of HeadSlice
        Each target's outputs, columns and weight.
    """

    def __init__(self, slices: Sequence[HeadSlice]) -> None:
        super().__init__()
        self.slices = list(slices)
        total = sum(s.weight for s in self.slices)
        self.scale = 1.0 / total if total > 0 else 1.0

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        """Compute the weighted mean loss (one target: its weight x its loss).

        Parameters
        ----------
        logits : torch.Tensor
            The head's outputs (rows x all targets' outputs).
        y : torch.Tensor
            The target matrix (rows x columns; NaN where unknown).

        Returns
        -------
        torch.Tensor
            A scalar.
        """
        total = logits.sum() * 0.0
        for s in self.slices:
            n_cols = 2 if s.kind == "survival" else 1
            cols = y[:, s.column : s.column + n_cols]
            known = ~torch.isnan(cols).any(dim=1)
            if not bool(known.any()):
                continue
            out = logits[known, s.start : s.start + s.width]
            total = total + s.weight * target_loss(s.kind, out, cols[known])
        return total * self.scale if len(self.slices) > 1 else total
