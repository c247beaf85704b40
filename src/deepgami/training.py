"""Training: parameters (YAML + defaults), the grid, the fit loop with early stopping, CV splits.

Nothing here knows about MuData: `deepgami.model` turns a cohort into tensors and calls
`train_network` per fit, and `grid_search` with a callback that fits and scores one fold.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit
from torch import Tensor, nn

from deepgami.errors import InputError
from deepgami.lazy_inputs import InputBlock, chunk_rows, materialize
from deepgami.network import ACTIVATIONS, AUX_TARGETS, IMPUTERS, AffineImputer, DeepGAMINetwork
from deepgami.preprocessing import SCALINGS, SELECTIONS

# Hyperparameters the CV grid search may vary (the paper's list).
GRID_KEYS = ("hidden_layers", "dropout", "learning_rate", "weight_decay", "lambda", "batch_size", "latent_dim",
             "group_lasso", "early_stopping_on")
MISSING = ("impute", "complete_case")
BALANCES = ("none", "smote", "class_weights")
MONITORS = ("total", "task")
ENCODER_INITS = ("targets", "random")


# -- parameters ---------------------------------------------------------------------------------

def default_params() -> dict:
    """The packaged defaults (src/deepgami/default_params.yaml) as a fresh dict."""
    text = resources.files("deepgami").joinpath("default_params.yaml").read_text()
    return yaml.safe_load(text)


def read_params_file(path: str | Path) -> dict:
    """The mapping in a params YAML file (train's parameters and evaluate's `evaluate:` section)."""
    try:
        user = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise InputError(path, f"cannot read params file: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML: {str(err).splitlines()[0]}") from None
    user = {} if user is None else user
    if not isinstance(user, dict):
        raise InputError(path, "params file must be a mapping of parameter: value")
    return user


def load_params(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Defaults, then the YAML file at `path`, then `overrides`; validated. Raises InputError."""
    params = default_params()
    sources: list[tuple[Any, dict]] = []
    if path is not None:
        # One params file serves train and evaluate: its `evaluate:` section is evaluate's alone.
        user = {k: v for k, v in read_params_file(path).items() if k != "evaluate"}
        sources.append((path, user))
    if overrides:
        sources.append((path, overrides))
    for where, user in sources:
        params = merge_params(params, user, where)
    validate_params(params, path)
    return params


def merge_params(base: dict, user: dict, where: Any = None) -> dict:
    """`user` over `base`: a user grid replaces only the grid entries it names."""
    out = copy.deepcopy(base)
    for key, value in user.items():
        if key not in out:
            raise InputError(where, f"unknown parameter {key!r} (known: {', '.join(sorted(out))})")
        if key == "grid":
            if not isinstance(value, dict):
                raise InputError(where, "'grid' must be a mapping of hyperparameter: [values]")
            for gkey, gval in value.items():
                if gkey not in GRID_KEYS:
                    raise InputError(where, f"unknown grid entry {gkey!r} (known: {', '.join(GRID_KEYS)})")
                out["grid"][gkey] = gval
        else:
            out[key] = value
    return out


def validate_params(params: dict, where: Any = None) -> None:
    """Raise InputError on a value the training cannot use."""

    def bad(message: str) -> None:
        raise InputError(where, message)

    grid = params.get("grid", {})
    for key in GRID_KEYS:
        values = grid.get(key)
        if not isinstance(values, list) or not values:
            bad(f"grid.{key} must be a non-empty list of values")
        for v in values:
            if key == "hidden_layers":
                if not isinstance(v, list) or not all(isinstance(h, int) and h > 0 for h in v):
                    bad(f"grid.hidden_layers entries are lists of positive layer widths, got {v!r}")
            elif key in ("batch_size", "latent_dim"):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    bad(f"grid.{key} values must be positive integers, got {v!r}")
            elif key == "early_stopping_on":
                if v not in MONITORS:
                    bad(f"grid.early_stopping_on values must be one of {', '.join(MONITORS)}, got {v!r}")
            elif key == "dropout":
                if not _is_number(v) or not 0 <= v < 1:
                    bad(f"grid.dropout values must be in [0, 1), got {v!r}")
            elif not _is_number(v) or v < 0 or (key == "learning_rate" and v == 0):
                bad(f"grid.{key} values must be non-negative numbers, got {v!r}")
    for key, lo in (("cv_folds", 0), ("bagging", 0), ("max_epochs", 1), ("patience", 1), ("selection_top_k", 1),
                    ("min_features", 1)):
        v = params.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            bad(f"{key} must be an integer >= {lo}, got {v!r}")
    scale = params.get("encoder_lr_scale")
    if not _is_number(scale) or scale < 0:
        bad(f"encoder_lr_scale must be a non-negative number, got {scale!r}")
    for key, lo, hi in (("val_fraction", 0.0, 0.5), ("selection_pvalue", 0.0, 1.0), ("modality_dropout", 0.0, 1.0)):
        v = params.get(key)
        if not _is_number(v) or not lo <= v <= hi:
            bad(f"{key} must be a number in [{lo}, {hi}], got {v!r}")
    for key, allowed in (("imputer", IMPUTERS), ("encoder_activation", ACTIVATIONS), ("aux_target", AUX_TARGETS),
                         ("missing", MISSING), ("balance", BALANCES), ("encoder_init", ENCODER_INITS)):
        if params.get(key) not in allowed:
            bad(f"{key} must be one of {', '.join(allowed)}, got {params.get(key)!r}")
    for key in ("latent_norm", "calibrate_imputer"):
        if not isinstance(params.get(key), bool):
            bad(f"{key} must be true or false, got {params.get(key)!r}")
    for key, allowed in (("selection", SELECTIONS), ("scaling", SCALINGS)):
        v = params.get(key)
        values = v.values() if isinstance(v, dict) else [v]
        for item in values:
            if item not in allowed:
                bad(f"{key} must be one of {', '.join(allowed)} (or a mapping modality: value), got {item!r}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def expand_grid(params: dict, dense: bool = True) -> list[dict]:
    """One flat setting per grid point: the fixed parameters plus one value per grid entry.

    With a prior (`dense=False`) `latent_dim` is unused, so settings differing only in it merge.
    """
    fixed = {k: v for k, v in params.items() if k != "grid"}
    grid = params["grid"]
    settings, seen = [], set()
    for combo in itertools.product(*(grid[k] for k in GRID_KEYS)):
        setting = dict(fixed, **dict(zip(GRID_KEYS, combo)))
        if not dense:
            setting["latent_dim"] = None
        key = json.dumps(setting, sort_keys=True)
        if key not in seen:
            seen.add(key)
            settings.append(setting)
    return settings


def as_setting(params: dict, dense: bool = True) -> dict:
    """A flat setting from full params with one value per grid entry, or from a flat setting."""
    if "grid" not in params:
        merged = default_params()
        grid = merged.pop("grid")
        for k in GRID_KEYS:
            merged[k] = grid[k][0]
        unknown = set(params) - set(merged)
        if unknown:
            raise ValueError(f"unknown parameters: {sorted(unknown)}")
        merged.update(params)
        if not dense:
            merged["latent_dim"] = None
        return merged
    settings = expand_grid(params, dense)
    if len(settings) != 1:
        raise ValueError(f"params describe {len(settings)} grid settings; give one value per grid entry")
    return settings[0]


def grid_label(setting: dict) -> str:
    """Short, stable text of a setting's grid values (a cv_results column)."""
    return json.dumps({k: setting[k] for k in GRID_KEYS if setting.get(k) is not None}, sort_keys=True)


# -- seeds and splits ---------------------------------------------------------------------------

def derive_seed(seed: int, *path: int) -> int:
    """A child seed for (setting, fold, ...) that does not collide across paths."""
    return int(np.random.SeedSequence([int(seed), *[int(p) for p in path]]).generate_state(1)[0])


def cv_splits(y: np.ndarray, n_folds: int, seed: int, stratify: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold (stratified for classes) positions into y, shuffled with `seed`."""
    if stratify:
        counts = np.unique(y, return_counts=True)[1]
        if counts.min() >= n_folds:
            kf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed % 2**32)
            return [(tr, te) for tr, te in kf.split(np.zeros(len(y)), y)]
    kf = KFold(n_splits=n_folds, shuffle=True, random_state=seed % 2**32)
    return [(tr, te) for tr, te in kf.split(np.zeros(len(y)))]


def inner_split(y: np.ndarray, val_fraction: float, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Positions (train, validation) of the rows used for fitting and for early stopping."""
    n = len(y)
    n_val = int(round(n * val_fraction))
    if n_val < 2 or n - n_val < 2:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and n_val >= len(classes) and n - n_val >= len(classes):
            ss = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed % 2**32)
            tr, va = next(ss.split(np.zeros(n), y))
            return np.sort(tr), np.sort(va)
    ss = ShuffleSplit(n_splits=1, test_size=n_val, random_state=seed % 2**32)
    tr, va = next(ss.split(np.zeros(n)))
    return np.sort(tr), np.sort(va)


# -- the fit loop -------------------------------------------------------------------------------

@dataclass
class Batch:
    """Some rows: inputs per modality (preprocessed on demand), presence (rows x K), targets."""

    xs: list[InputBlock]
    present: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.present.shape[0])

    def rows(self, idx: Tensor | np.ndarray) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Batch([x[idx] for x in self.xs], self.present[idx], self.y[idx])


class Adam:
    """Adam (Kingma & Ba 2015) with L2 weight decay: the update of `torch.optim.Adam` (betas,
    eps, bias correction, decay added to the gradient). Written out because constructing any
    `torch.optim` optimizer imports torch._dynamo, 5-20 s per process, more than most fits here."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        b1, b2 = self.betas
        correction1 = 1 - b1**self.step_count
        correction2 = 1 - b2**self.step_count
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            grad = p.grad if self.weight_decay == 0 else p.grad.add(p, alpha=self.weight_decay)
            m.lerp_(grad, 1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(correction2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / correction1)


def task_loss_fn(task: str, class_weight: np.ndarray | None = None) -> nn.Module:
    if task == "regression":
        return nn.MSELoss()
    weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight)


def _task_output(logits: Tensor, task: str) -> Tensor:
    return logits[:, 0] if task == "regression" else logits


def hide_modalities(present: Tensor, rate: float, generator: torch.Generator) -> Tensor:
    """Modality dropout: for each row with two or more modalities, with probability `rate` hide
    one of them (uniformly), so the head also learns from imputed blocks."""
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


def evaluate_loss(net: DeepGAMINetwork, data: Batch, task: str, loss_fn: nn.Module, lam: float, aux_target: str,
                  batch_size: int = 1024) -> tuple[float, float]:
    """(task loss, auxiliary loss) of `data` in eval mode, averaged over rows."""
    net.eval()
    task_total, aux_total, n = 0.0, 0.0, 0
    batch_size = chunk_rows(data.xs, batch_size)
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            part = data.rows(np.arange(start, min(start + batch_size, len(data))))
            out = net(materialize(part.xs), part.present)
            task_total += float(loss_fn(_task_output(out.logits, task), part.y)) * len(part)
            aux_total += float(net.auxiliary_loss(out.latent, part.present, aux_target)) * len(part)
            n += len(part)
    return task_total / max(n, 1), aux_total / max(n, 1)


def train_network(
    net: DeepGAMINetwork,
    train: Batch,
    val: Batch | None,
    setting: dict,
    task: str,
    seed: int,
    class_weight: np.ndarray | None = None,
    on_epoch: Callable[[int, float, float | None], None] | None = None,
    started: Sequence[int] = (),
) -> tuple[pd.DataFrame, int]:
    """Adam on task loss + lambda * auxiliary MSE; early stopping on the validation task loss.

    Encoders listed in `started` (those that start at the prior's regression) train at
    `encoder_lr_scale` times the learning rate (0 holds them at their start).

    The weights of the best validation epoch are restored (the last epoch without validation
    rows). Batch order comes from a seeded permutation. Returns the per-epoch history and the
    best epoch (1-based).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    loss_fn = task_loss_fn(task, class_weight)
    lam = float(setting["lambda"])
    group_lasso = float(setting["group_lasso"])
    monitor = setting["early_stopping_on"]
    lr, decay = float(setting["learning_rate"]), float(setting["weight_decay"])
    slow = {id(p) for k in started for p in net.encoders[k].parameters()}
    encoder_lr = lr * float(setting["encoder_lr_scale"])
    optimizers = [Adam([p for p in net.parameters() if id(p) not in slow], lr=lr, weight_decay=decay)]
    if slow and encoder_lr > 0:
        optimizers.append(Adam([p for p in net.parameters() if id(p) in slow], lr=encoder_lr, weight_decay=decay))
    batch_size = int(setting["batch_size"])
    aux_target = setting["aux_target"]
    has_val = val is not None and len(val) > 0
    rows: list[dict] = []
    best_loss, best_epoch, best_state, stale = math.inf, 0, None, 0
    for epoch in range(1, int(setting["max_epochs"]) + 1):
        net.train()
        order = rng.permutation(len(train))
        # A lone last sample makes a noisy step; fold it into the previous batch.
        starts = list(range(0, len(train), batch_size))
        if len(starts) > 1 and len(train) - starts[-1] < 2:
            starts.pop()
        sums = np.zeros(3)
        for b, start in enumerate(starts):
            stop = starts[b + 1] if b + 1 < len(starts) else len(train)
            part = train.rows(order[start:stop])
            head_present = hide_modalities(part.present, float(setting["modality_dropout"]), gen)
            out = net(materialize(part.xs), part.present, head_present=head_present)
            task_loss = loss_fn(_task_output(out.logits, task), part.y)
            aux_loss = net.auxiliary_loss(out.latent, part.present, aux_target)
            loss = task_loss + lam * aux_loss
            if group_lasso > 0:
                loss = loss + group_lasso * net.head_group_norm()
            net.zero_grad(set_to_none=True)
            loss.backward()
            for opt in optimizers:
                opt.step()
            sums += np.array([task_loss.item(), aux_loss.item(), 1.0]) * len(part)
        train_task, train_aux = sums[0] / sums[2], sums[1] / sums[2]
        record = {"epoch": epoch, "train_loss": train_task + lam * train_aux, "train_task_loss": train_task,
                  "train_aux_loss": train_aux}
        if has_val:
            val_task, val_aux = evaluate_loss(net, val, task, loss_fn, lam, aux_target)
            record.update(val_loss=val_task + lam * val_aux, val_task_loss=val_task, val_aux_loss=val_aux)
            monitored = val_task if monitor == "task" else val_task + lam * val_aux
        else:
            monitored = train_task if monitor == "task" else train_task + lam * train_aux
        rows.append(record)
        if on_epoch is not None:
            on_epoch(epoch, train_task, record.get("val_task_loss"))
        if not has_val:
            best_epoch = epoch
            continue
        if monitored < best_loss - 1e-6:
            best_loss, best_epoch, stale = monitored, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= int(setting["patience"]):
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    history = pd.DataFrame(rows)
    history["best"] = history["epoch"] == best_epoch
    return history, best_epoch


# Latent genes with more prior sources than this start from marginal (per-edge) regressions
# instead of a joint ridge fit: a d x d solve per gene is cheap for eQTL/GRN fan-ins of a few to a
# few hundred, not for thousands.
RIDGE_MAX_FAN_IN = 512
# The joint fits read one float32 (features x rows) copy of the modality; above this many values
# (1 GiB) the start is the marginal regression per edge, streamed a chunk of rows at a time.
JOINT_INIT_MAX_VALUES = 2**28


@torch.no_grad()
def init_encoders_from_targets(net: DeepGAMINetwork, xs: Sequence[InputBlock], present: Tensor, targets: np.ndarray,
                               ridge: float = 0.01, min_rows: int = 5) -> dict[str, int]:
    """Start each sparse encoder at a ridge regression of its latent genes' measured values on their
    prior sources: node g of modality k gets the weights that best predict `targets[:, g]` (the
    standardized measurement of gene g; NaN where not measured or not a variable of the cohort) from
    g's sources in modality k, over rows having both. This is the eQTL / GRN regression of the
    prior itself (PrediXcan-style predicted expression); it uses no labels.

    `ridge` is the penalty per row on standardized inputs (lambda = ridge * n). Nodes without a
    measured target, or with too few rows, keep their random start. A modality too large for one
    float32 copy (JOINT_INIT_MAX_VALUES) gets marginal regressions instead (`_marginal_init`).
    Returns, per modality index, how many nodes were initialized.
    """
    from deepgami.layers import SparseMaskedLinear

    target_ok = ~np.isnan(targets)
    measured = target_ok.any(axis=0)
    out: dict[str, int] = {}
    for k, enc in enumerate(net.encoders):
        if not isinstance(enc, SparseMaskedLinear) or enc.n_edges == 0:
            continue
        have_k = present[:, k].numpy()
        if xs[k].shape[0] * xs[k].shape[1] > JOINT_INIT_MAX_VALUES:
            out[str(k)] = _marginal_init(enc, xs[k], have_k, targets, ridge, min_rows)
            continue
        src, dst = enc.src.numpy(), enc.dst.numpy()
        weight = enc.weight.detach().double().numpy().copy()
        bias = enc.bias.detach().double().numpy().copy() if enc.bias is not None else None
        by_dst = np.argsort(dst, kind="stable")
        ptr = np.zeros(enc.out_features + 1, dtype=np.int64)
        np.cumsum(np.bincount(dst, minlength=enc.out_features), out=ptr[1:])
        # (features, rows), C-contiguous: a gene's sources are whole rows of it, cheap to gather.
        xt = materialize([xs[k]])[0].numpy().T
        done = 0
        for g in np.flatnonzero(measured & (np.diff(ptr) > 0)):
            rows = np.flatnonzero(have_k & target_ok[:, g])
            n = len(rows)
            if n < min_rows:
                continue
            edges = by_dst[ptr[g]:ptr[g + 1]]
            X = xt[src[edges]][:, rows].T.astype(np.float64)
            y = targets[rows, g].astype(np.float64)
            xm, ym = X.mean(axis=0), y.mean()
            Xc, yc = X - xm, y - ym
            lam = ridge * n
            if len(edges) <= RIDGE_MAX_FAN_IN:
                gram = Xc.T @ Xc + lam * np.eye(len(edges))
                w = np.linalg.solve(gram, Xc.T @ yc)
            else:
                w = (Xc.T @ yc) / ((Xc * Xc).sum(axis=0) + lam)
            if not np.all(np.isfinite(w)) or not np.any(w):
                continue
            weight[edges] = w
            if bias is not None:
                bias[g] = ym - xm @ w
            done += 1
        enc.weight.copy_(torch.from_numpy(weight).to(enc.weight.dtype))
        if bias is not None:
            enc.bias.copy_(torch.from_numpy(bias).to(enc.bias.dtype))
        out[str(k)] = done
    return out


def _marginal_init(enc: nn.Module, x: InputBlock, have: np.ndarray, targets: np.ndarray, ridge: float,
                   min_rows: int) -> int:
    """Per edge s -> g: the ridge slope of target g on source s alone, sum(x_s y_g) / (sum(x_s^2) +
    ridge n), accumulated over chunks of rows with the layer's own edge kernel (inputs are
    standardized by the fold's scaler, targets by `latent_targets`, so no centering is needed)."""
    y_ok = ~np.isnan(targets) & have[:, None]
    n_g = y_ok.sum(axis=0)
    xy = torch.zeros(enc.n_edges, dtype=torch.float64)
    xx = torch.zeros(enc.in_features, dtype=torch.float64)
    step = chunk_rows([x])
    for s in range(0, x.shape[0], step):
        xc = materialize([x[s : s + step]])[0]
        yc = torch.from_numpy(np.where(y_ok[s : s + step], targets[s : s + step], 0.0).astype(np.float32))
        xy += enc.edge_products(xc, yc).double()
        xx += (xc.double() ** 2 * torch.from_numpy(have[s : s + step, None])).sum(dim=0)
    node_ok = torch.from_numpy(n_g >= min_rows) & (torch.bincount(enc.dst, minlength=enc.out_features) > 0)
    slope = xy / (xx[enc.src] + ridge * torch.from_numpy(n_g).double()[enc.dst]).clamp(min=1e-12)
    enc.weight.copy_(torch.where(node_ok[enc.dst], slope, enc.weight.detach().double()).to(enc.weight.dtype))
    if enc.bias is not None:
        enc.bias.copy_(torch.where(node_ok, torch.zeros_like(enc.bias), enc.bias))
    return int(node_ok.sum())


@torch.no_grad()
def calibrate_imputers(net: DeepGAMINetwork, data: Batch, min_rows: int = 5) -> dict[str, tuple[float, float]]:
    """Refit each affine imputer (scalar or per-node alpha, beta) by least squares on `data`.

    The auxiliary loss fits the maps on the rows the encoders were trained on, where the encoders
    have co-adapted to predict each other, so the maps overstate how much one block tells about
    another; on new samples such a map imputes worse than the mean. Refit on the inner validation
    rows (never used for gradient steps), alpha shrinks to what holds out-of-sample, down to 0
    (the training mean) when the modalities share nothing. Returns {pair: (mean alpha, mean beta)}.
    """
    latent = encode_in_chunks(net, data.xs)
    out = {}
    for i in range(net.n_modalities):
        for j in range(net.n_modalities):
            imp = net.imputers[net.pair_key(i, j)] if i != j else None
            if not isinstance(imp, AffineImputer):
                continue
            rows = data.present[:, i] & data.present[:, j]
            if int(rows.sum()) < min_rows:
                continue
            x, y = latent[i][rows].double(), latent[j][rows].double()
            if imp.alpha.numel() == 1:
                x, y = x.reshape(-1, 1), y.reshape(-1, 1)
            xc, yc = x - x.mean(dim=0), y - y.mean(dim=0)
            var = (xc * xc).mean(dim=0)
            alpha = torch.where(var > 1e-12, (xc * yc).mean(dim=0) / var.clamp(min=1e-12), torch.zeros_like(var))
            beta = y.mean(dim=0) - alpha * x.mean(dim=0)
            imp.alpha.copy_(alpha.float().reshape(imp.alpha.shape))
            imp.beta.copy_(beta.float().reshape(imp.beta.shape))
            out[net.pair_key(i, j)] = (float(alpha.mean()), float(beta.mean()))
    return out


@torch.no_grad()
def encode_in_chunks(net: DeepGAMINetwork, xs: Sequence[InputBlock]) -> list[Tensor]:
    """Latent blocks (eval mode) of every row, materializing a memory-bounded chunk at a time."""
    net.eval()
    n, step = int(xs[0].shape[0]), chunk_rows(xs)
    parts = [net.encode(materialize([x[s : s + step] for x in xs])) for s in range(0, n, step)]
    if not parts:
        return [torch.zeros(0, net.n_latent) for _ in range(net.n_modalities)]
    return [torch.cat([p[k] for p in parts]) for k in range(net.n_modalities)]


@torch.no_grad()
def set_latent_means(net: DeepGAMINetwork, data: Batch) -> None:
    """Store each block's mean over the rows that have the modality (the mean-fill baseline)."""
    latent = encode_in_chunks(net, data.xs)
    for k, block in enumerate(latent):
        rows = data.present[:, k]
        mean = block[rows].double().mean(dim=0) if bool(rows.any()) else torch.zeros(net.n_latent, dtype=torch.float64)
        net.latent_mean[k].copy_(mean.float())


# -- grid search --------------------------------------------------------------------------------

FoldFn = Callable[[int, dict, int, np.ndarray, np.ndarray, int], dict]


def grid_search(
    settings: Sequence[dict],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    fit_fold: FoldFn,
    score: Callable[[dict], float],
    seed: int,
) -> tuple[pd.DataFrame, int]:
    """Run `fit_fold(setting_index, setting, fold, train_pos, test_pos, seed)` for every setting
    and fold; it returns a flat dict of held-out metrics. The best setting has the highest mean
    `score(row)` over folds (ties: the earlier setting). Returns all rows and the best index."""
    rows = []
    for s, setting in enumerate(settings):
        for f, (tr, te) in enumerate(splits):
            row = {"setting": s, "fold": f, "grid": grid_label(setting), "n_train": len(tr), "n_test": len(te)}
            row.update(fit_fold(s, setting, f, tr, te, derive_seed(seed, s, f)))
            row["score"] = score(row)
            rows.append(row)
    table = pd.DataFrame(rows)
    means = table.groupby("setting")["score"].mean()
    best = int(means.index[int(np.argmax(means.to_numpy()))])
    return table, best


def summarize_cv(table: pd.DataFrame, best: int) -> pd.DataFrame:
    """Mean and standard deviation of every numeric column per setting; `selected` marks the best."""
    numeric = [c for c in table.columns if c not in ("setting", "fold", "grid") and pd.api.types.is_numeric_dtype(table[c])]
    grouped = table.groupby("setting")
    summary = grouped[numeric].mean().add_suffix("_mean").join(grouped[numeric].std(ddof=0).add_suffix("_std"))
    summary.insert(0, "grid", grouped["grid"].first())
    summary.insert(1, "selected", summary.index == best)
    return summary.reset_index()
