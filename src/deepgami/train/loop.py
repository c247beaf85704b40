"""The fit loop: minibatches, Adam, the task + auxiliary loss, early stopping on the inner validation rows."""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from deepgami.data.lazy_inputs import InputBlock, chunk_rows, materialize
from deepgami.errors import TrainingDiverged
from deepgami.nn.network import DeepGAMINetwork
from deepgami.train.params import TrainingSettings

# -- the fit loop -------------------------------------------------------------------------------

# The device training and prediction run on: set by `device_scope` (DeepGAMI.fit / predict take
# `device=`), read where tensors meet the network. CPU by default, where nothing is moved, so the
# CPU path is unchanged.
_DEVICE: contextvars.ContextVar[torch.device] = contextvars.ContextVar(
    "deepgami_device",
    default=torch.device("cpu"),  # noqa: B039 (a torch.device is immutable)
)


@contextlib.contextmanager
def device_scope(device: str | torch.device | None) -> Iterator[torch.device]:
    """Run the enclosed training and prediction on `device` (None: leave the current one).

    Parameters
    ----------
    device : str or torch.device or None
        The device to run on; None keeps the current one.

    Yields
    ------
    torch.device
        The device in effect inside the scope.
    """
    if device is None:
        yield _DEVICE.get()
        return
    token = _DEVICE.set(torch.device(device))
    try:
        yield _DEVICE.get()
    finally:
        _DEVICE.reset(token)


def current_device() -> torch.device:
    """Return the device of the enclosing `device_scope` (CPU outside any).

    Returns
    -------
    torch.device
        The device training and prediction run on.
    """
    return _DEVICE.get()


def to_device(tensors: Sequence[Tensor], device: torch.device) -> list[Tensor]:
    """Move `tensors` to `device`; the same objects on the CPU.

    Parameters
    ----------
    tensors : Sequence of torch.Tensor
        The tensors to move.
    device : torch.device
        The device to move them to.

    Returns
    -------
    list of torch.Tensor
        The tensors on `device` (the same objects when it is the CPU).
    """
    return (
        list(tensors)
        if device.type == "cpu"
        else [t.to(device, non_blocking=True) for t in tensors]
    )


@dataclass
class Batch:
    """Some rows: inputs per modality (preprocessed on demand), presence (rows x K), targets.

    Parameters
    ----------
    xs : list of InputBlock
        The inputs of each modality, preprocessed on demand.
    present : torch.Tensor
        Which modalities each row has (rows x K, boolean).
    y : torch.Tensor
        The targets of the rows.
    """

    xs: list[InputBlock]
    present: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.present.shape[0])

    def rows(self, idx: Tensor | np.ndarray) -> Batch:
        """Select some rows of the batch.

        Parameters
        ----------
        idx : torch.Tensor or numpy.ndarray
            The positions of the rows to keep.

        Returns
        -------
        Batch
            The selected rows.
        """
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Batch([x[idx] for x in self.xs], self.present[idx], self.y[idx])


class Adam:
    """Adam (Kingma & Ba 2015) with L2 weight decay: the update of `torch.optim.Adam`.

    It has the same betas, eps, bias correction and decay added to the gradient. Written out
    because constructing any `torch.optim` optimizer imports torch._dynamo, 5-20 s per process,
    more than most fits here.

    Parameters
    ----------
    params : Iterable of torch.nn.Parameter
        The parameters to optimize (those that do not require a gradient are left out).
    lr : float, default 1e-3
        The learning rate.
    betas : tuple of float, default (0.9, 0.999)
        The decay rates of the first and second moment estimates.
    eps : float, default 1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default 0.0
        The L2 penalty, added to the gradient.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        """Clear the gradients of the optimized parameters (set them to None)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Take one Adam step on every parameter that has a gradient."""
        self.step_count += 1
        b1, b2 = self.betas
        correction1 = 1 - b1**self.step_count
        correction2 = 1 - b2**self.step_count
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=False):
            if p.grad is None:
                continue
            grad = p.grad if self.weight_decay == 0 else p.grad.add(p, alpha=self.weight_decay)
            m.lerp_(grad, 1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(correction2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / correction1)


def task_loss_fn(task: str, class_weight: np.ndarray | None = None) -> nn.Module:
    """Return the task loss: mean squared error (regression) or cross-entropy (classification).

    Parameters
    ----------
    task : str
        ``classification`` or ``regression``.
    class_weight : numpy.ndarray or None, default None
        Per-class weights of the cross-entropy (None: equal).

    Returns
    -------
    torch.nn.Module
        The loss function.
    """
    if task == "regression":
        return nn.MSELoss()
    weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight)


def _task_output(logits: Tensor, task: str) -> Tensor:
    return logits[:, 0] if task == "regression" else logits


def hide_modalities(present: Tensor, rate: float, generator: torch.Generator) -> Tensor:
    """Apply modality dropout: hide one modality of some rows at random.

    For each row with two or more modalities, with probability `rate` one of them is hidden
    (uniformly), so the head also learns from imputed blocks.

    Parameters
    ----------
    present : torch.Tensor
        Which modalities each row has (rows x K, boolean).
    rate : float
        The probability of hiding one modality of a row (0 or less: none hidden).
    generator : torch.Generator
        The random generator that picks the rows and modalities.

    Returns
    -------
    torch.Tensor
        The presence the head sees (`present` itself when nothing is hidden).
    """
    if rate <= 0:
        return present
    n_present = present.sum(dim=1)
    drop = (torch.rand(present.shape[0], generator=generator) < rate) & (n_present >= 2)
    if not drop.any():
        return present
    scores = torch.rand(present.shape, generator=generator).masked_fill(~present, -1.0)
    which = scores.argmax(dim=1)
    hidden = present.clone()
    rows = torch.nonzero(drop).flatten()
    hidden[rows, which[rows]] = False
    return hidden


def evaluate_loss(
    net: DeepGAMINetwork,
    data: Batch,
    task: str,
    loss_fn: nn.Module,
    lam: float,
    aux_target: str,
    batch_size: int = 1024,
) -> tuple[float, float]:
    """Compute the (task loss, auxiliary loss) of `data` in eval mode, averaged over rows.

    Parameters
    ----------
    net : DeepGAMINetwork
        The network to evaluate (set to eval mode).
    data : Batch
        The rows to evaluate.
    task : str
        ``classification`` or ``regression``.
    loss_fn : torch.nn.Module
        The task loss.
    lam : float
        The auxiliary loss's weight (unused: the two losses are returned apart).
    aux_target : str
        What the auxiliary loss compares the latent blocks with.
    batch_size : int, default 1024
        The most rows per evaluated chunk.

    Returns
    -------
    tuple of float
        The mean task loss and the mean auxiliary loss.
    """
    device = current_device()
    net.eval()
    task_total, aux_total, n = 0.0, 0.0, 0
    batch_size = chunk_rows(data.xs, batch_size)
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            part = data.rows(np.arange(start, min(start + batch_size, len(data))))
            xs, (present, y) = (
                to_device(materialize(part.xs), device),
                to_device([part.present, part.y], device),
            )
            out = net(xs, present)
            task_total += float(loss_fn(_task_output(out.logits, task), y)) * len(part)
            aux_total += float(net.auxiliary_loss(out.latent, present, aux_target)) * len(part)
            n += len(part)
    return task_total / max(n, 1), aux_total / max(n, 1)


@dataclass
class _EarlyStopping:
    """The best monitored loss so far, its epoch and weights, and the epochs since it improved."""

    patience: int
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    stale: int = 0

    def update(self, net: nn.Module, epoch: int, monitored: float) -> bool:
        """Record one epoch's loss; True when training should stop."""
        if monitored < self.best_loss - 1e-6:
            self.best_loss, self.best_epoch, self.stale = monitored, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience


def _optimizers(net: DeepGAMINetwork, training: TrainingSettings, started: Sequence[int]) -> list:
    """One Adam for the head (and encoders that start at random), one for the encoders in `started`
    at `encoder_lr_scale` times the learning rate (none when that is 0: they stay frozen)."""
    lr, decay = float(training.learning_rate), float(training.weight_decay)
    slow = {id(p) for k in started for p in net.encoders[k].parameters()}
    encoder_lr = lr * float(training.encoder_lr_scale)
    optimizers = [
        Adam([p for p in net.parameters() if id(p) not in slow], lr=lr, weight_decay=decay)
    ]
    if slow and encoder_lr > 0:
        optimizers.append(
            Adam([p for p in net.parameters() if id(p) in slow], lr=encoder_lr, weight_decay=decay)
        )
    return optimizers


def _batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch; a lone last sample makes a noisy step, so it joins the
    previous batch."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < 2:
        starts.pop()
    return [(s, starts[b + 1] if b + 1 < len(starts) else n) for b, s in enumerate(starts)]


def _train_epoch(
    net: DeepGAMINetwork,
    train: Batch,
    training: TrainingSettings,
    task: str,
    loss_fn: nn.Module,
    optimizers: list,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> tuple[float, float]:
    """One pass over `train` in a seeded order; returns the mean (task, auxiliary) loss."""
    device = current_device()
    lam, group_lasso = float(training.aux_weight), float(training.group_lasso)
    hide_rate = training.hiding_rate(net.latent_combine)
    net.train()
    order = rng.permutation(len(train))
    sums = np.zeros(3)
    for start, stop in _batch_bounds(len(train), int(training.batch_size)):
        part = train.rows(order[start:stop])
        head_present = hide_modalities(part.present, hide_rate, gen)
        xs = to_device(materialize(part.xs), device)
        present, head_present, y = to_device([part.present, head_present, part.y], device)
        out = net(xs, present, head_present=head_present)
        task_loss = loss_fn(_task_output(out.logits, task), y)
        aux_loss = net.auxiliary_loss(out.latent, present, training.aux_target)
        loss = task_loss + lam * aux_loss
        if group_lasso > 0:
            loss = loss + group_lasso * net.head_group_norm()
        net.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()
        sums += np.array([task_loss.item(), aux_loss.item(), 1.0]) * len(part)
    return sums[0] / sums[2], sums[1] / sums[2]


def _epoch_record(
    net: DeepGAMINetwork,
    epoch: int,
    losses: tuple[float, float],
    val: Batch | None,
    training: TrainingSettings,
    task: str,
    loss_fn: nn.Module,
) -> tuple[dict, float]:
    """The history row of one epoch and the loss early stopping monitors (`early_stopping_on`:
    task, or total = task + lambda * auxiliary; on the validation rows when there are any)."""
    lam = float(training.aux_weight)
    train_task, train_aux = losses
    record = {
        "epoch": epoch,
        "train_loss": train_task + lam * train_aux,
        "train_task_loss": train_task,
        "train_aux_loss": train_aux,
    }
    task_loss, aux_loss = train_task, train_aux
    if val is not None:
        task_loss, aux_loss = evaluate_loss(net, val, task, loss_fn, lam, training.aux_target)
        record.update(
            val_loss=task_loss + lam * aux_loss, val_task_loss=task_loss, val_aux_loss=aux_loss
        )
    monitored = task_loss if training.early_stopping_on == "task" else task_loss + lam * aux_loss
    return record, monitored


def _check_finite(losses: tuple[float, float], epoch: int) -> None:
    """Stop with one line when the training loss is no longer a number (no model is written)."""
    if not math.isfinite(sum(losses)):
        raise TrainingDiverged(
            None,
            f"training loss became {sum(losses)} at epoch {epoch}: "
            "non-finite input values, or a learning rate too high",
        )


def _to_training_device(net: DeepGAMINetwork, loss_fn: nn.Module) -> nn.Module:
    """Move the network and the loss (its class weights) to the enclosing `device_scope`'s device;
    each minibatch moves there too, and the weights come back to the CPU at the end."""
    device = current_device()
    if device.type != "cpu":
        net.to(device)
        loss_fn.to(device)
    return loss_fn


def train_network(
    net: DeepGAMINetwork,
    train: Batch,
    val: Batch | None,
    training: TrainingSettings,
    task: str,
    seed: int,
    class_weight: np.ndarray | None = None,
    on_epoch: Callable[[int, float, float | None], None] | None = None,
    started: Sequence[int] = (),
    loss: nn.Module | None = None,
) -> tuple[pd.DataFrame, int]:
    """Adam on task loss + lambda * auxiliary MSE; early stopping on the validation loss.

    Parameters
    ----------
    net
        Trained in place on the `device_scope`'s device; left on the CPU in eval mode.
    train, val
        Training and inner validation rows (None or empty: no early stopping, last epoch kept).
    training
        The loop's settings.
    task
        ``classification`` or ``regression``.
    seed
        Seeds batch order and modality dropout.
    class_weight
        Per-class weights of the cross-entropy (None: equal).
    on_epoch
        Called after each epoch with (epoch, train task loss, validation task loss or None).
    started
        Encoders that start at the prior's regression: they train at `encoder_lr_scale` times
        the learning rate (0 holds them at their start).
    loss
        The task loss on the head's whole output (several targets: a
        `deepgami.train.multitask.MultiTaskLoss`, with `task` ``multi``); None: `task_loss_fn`.

    Returns
    -------
    history, best_epoch
        The per-epoch losses (``best`` marks the epoch whose weights are kept) and that epoch
        (1-based).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    loss_fn = _to_training_device(
        net, loss if loss is not None else task_loss_fn(task, class_weight)
    )
    optimizers = _optimizers(net, training, started)
    val = val if val is not None and len(val) > 0 else None
    stopping, rows = _EarlyStopping(int(training.patience)), []
    for epoch in range(1, int(training.max_epochs) + 1):
        losses = _train_epoch(net, train, training, task, loss_fn, optimizers, rng, gen)
        _check_finite(losses, epoch)
        record, monitored = _epoch_record(net, epoch, losses, val, training, task, loss_fn)
        rows.append(record)
        if on_epoch is not None:
            on_epoch(epoch, losses[0], record.get("val_task_loss"))
        if val is None:
            stopping.best_epoch = epoch
        elif stopping.update(net, epoch, monitored):
            break
    return _finish(net, stopping, rows)


def _finish(
    net: DeepGAMINetwork, stopping: _EarlyStopping, rows: list[dict]
) -> tuple[pd.DataFrame, int]:
    """Restore the best epoch's weights, bring the network back to the CPU in eval mode, and
    return the history (``best`` marks that epoch) and the epoch."""
    if stopping.best_state is not None:
        net.load_state_dict(stopping.best_state)
    if current_device().type != "cpu":
        net.to("cpu")
    net.eval()
    history = pd.DataFrame(rows)
    history["best"] = history["epoch"] == stopping.best_epoch
    return history, stopping.best_epoch
