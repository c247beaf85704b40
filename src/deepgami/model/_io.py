"""A model directory on disk: `model.safetensors` (the weights: the refit's state_dict keys as they
are, bagged network i's under ``members.<i>.``), `config.json` (the registry) and the training
report files. Nothing is pickled; an older `model.pt` state_dict is read with
``torch.load(weights_only=True)``. Any file that is not a valid DeepGAMI model is an InputError
naming it (never a traceback, never code run from the file).
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from deepgami.data.preprocessing import ModalityPreprocessor
from deepgami.errors import InputError, atomic_path, safetensors_env_error
from deepgami.model._base import BaseModel
from deepgami.model._fitting import CONFIG_FORMAT, build_network
from deepgami.model._validate import validate_model
from deepgami.nn.network import DeepGAMINetwork
from deepgami.utils import jsonable

WEIGHTS_FILE = "model.safetensors"
LEGACY_WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"
MEMBER_PREFIX = "members."
# Report files beside the weights: (file, model attribute).
TABLES = (
    ("training_history.tsv", "history"),
    ("cv_results.tsv", "cv_results"),
    ("cv_summary.tsv", "cv_summary"),
)
IMPUTATION_FILE = "imputation.json"


@dataclass
class ModelFiles:
    """What a model directory holds, read and checked.

    Parameters
    ----------
    config : dict
        The model's config (config.json).
    networks : list of DeepGAMINetwork
        The refit network, then any bagged ones.
    preprocessors : list of ModalityPreprocessor
        One fitted preprocessor per modality.
    report : dict, default {}
        The training report files present: tables by model attribute, and ``imputation``.
    """

    config: dict
    networks: list[DeepGAMINetwork]
    preprocessors: list[ModalityPreprocessor]
    report: dict = field(default_factory=dict)


def save_model(model: BaseModel, path: str | Path) -> None:
    """Write the weights, config.json and the training report files into directory `path`.

    The directory is replaced atomically: a failure leaves the previous directory, or nothing.

    Parameters
    ----------
    model : BaseModel
        The fitted model.
    path : str or pathlib.Path
        The model directory to write.

    Raises
    ------
    InputError
        When `path` exists and is not a directory.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, "exists and is not a directory")
    with atomic_path(path, suffix="") as tmp:
        tmp.mkdir()
        state = dict(model.module.state_dict())
        for i, net in enumerate(model.members[1:], start=1):
            state.update({f"{MEMBER_PREFIX}{i}.{k}": v for k, v in net.state_dict().items()})
        # safetensors refuses tensors that share storage; own copies make every entry independent.
        # One metadata key: safetensors writes the metadata map in an order that varies from call to
        # call, and the same seed must give the same bytes (the format version is in config.json).
        try:
            save_file(
                {k: v.detach().contiguous().clone() for k, v in state.items()},
                tmp / WEIGHTS_FILE,
                metadata={"format": f"deepgami {CONFIG_FORMAT}"},
            )
        except SafetensorError as err:  # wraps the OS error (e.g. no space left)
            raise safetensors_env_error(err, path / WEIGHTS_FILE) from None
        _write_json(model.config, tmp / CONFIG_FILE)
        # safetensors creates the file 0600; give it the mode (umask) of the other outputs.
        os.chmod(tmp / WEIGHTS_FILE, (tmp / CONFIG_FILE).stat().st_mode & 0o777)
        for name, attr in TABLES:
            table = getattr(model, attr)
            if table is not None:
                table.to_csv(
                    tmp / name, sep="\t", index=False, float_format="%.6f", lineterminator="\n"
                )
        if model.imputation is not None:
            _write_json(model.imputation, tmp / IMPUTATION_FILE)


def read_model(path: str | Path) -> ModelFiles:
    """Read and check a model directory.

    Parameters
    ----------
    path : str or pathlib.Path
        The model directory.

    Returns
    -------
    ModelFiles
        The model's config, networks, preprocessors and training report.

    Raises
    ------
    InputError
        Naming the file that is wrong (or the directory, when it is missing or not a model's).
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "model directory not found")
    config_path = path / CONFIG_FILE
    weights_path = (
        path / WEIGHTS_FILE if (path / WEIGHTS_FILE).is_file() else path / LEGACY_WEIGHTS_FILE
    )
    for p in (config_path, weights_path):
        if not p.is_file():
            raise InputError(path, f"not a DeepGAMI model directory (no {p.name})")
    config = _read_config(config_path)
    state = _read_weights(weights_path)
    validate_model(config, state, config_path, weights_path)
    try:
        networks = [
            _network(config["network"], state, i)
            for i in range(int(config["network"].get("n_members", 1)))
        ]
        preprocessors = [
            ModalityPreprocessor.from_dict(config["preprocessing"][m]) for m in config["modalities"]
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(
            config_path, f"not a valid DeepGAMI config (bad or missing {err})"
        ) from None
    except _WeightsMismatch as err:
        raise InputError(weights_path, f"weights do not match config.json ({err})") from None
    report = {
        attr: pd.read_csv(path / name, sep="\t") for name, attr in TABLES if (path / name).is_file()
    }
    if (path / IMPUTATION_FILE).is_file():
        report["imputation"] = json.loads((path / IMPUTATION_FILE).read_text())
    return ModelFiles(config, networks, preprocessors, report)


class _WeightsMismatch(Exception):
    pass


def _network(net: dict, state: dict[str, torch.Tensor], i: int) -> DeepGAMINetwork:
    """Member network i, built from the config and loaded with its weights."""
    prefix = f"{MEMBER_PREFIX}{i}." if i else ""
    own = {
        k[len(prefix) :]: v
        for k, v in state.items()
        if k.startswith(prefix) and (prefix or not k.startswith(MEMBER_PREFIX))
    }
    try:
        # Edges live in the state_dict buffers; pass them to the constructor so any structure the
        # layer derives from them at construction is rebuilt from the real edges.
        edges = [
            (own[f"encoders.{k}.src"], own[f"encoders.{k}.dst"]) if sparse else None
            for k, sparse in enumerate(net["sparse"])
        ]
        module = build_network(net, edges)
        module.load_state_dict(own)
    except (RuntimeError, KeyError, IndexError) as err:
        raise _WeightsMismatch(f"network {i}: {str(err).splitlines()[0]}") from None
    module.eval()
    return module


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise InputError(path, f"unreadable model config ({str(err).splitlines()[0]})") from None
    if not isinstance(config, dict) or not isinstance(config.get("network"), dict):
        raise InputError(path, "not a DeepGAMI model config (no 'network' section)")
    if config.get("format_version") != CONFIG_FORMAT:
        raise InputError(path, f"unsupported model format {config.get('format_version')!r}")
    return config


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} from model.safetensors, or from a legacy model.pt through the
    weights-only unpickler (which refuses anything but tensors and plain containers)."""
    if path.name == WEIGHTS_FILE:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise InputError(
                path, f"not a safetensors weights file ({str(err).splitlines()[0]})"
            ) from None
    else:
        try:
            with (
                warnings.catch_warnings()
            ):  # torch's notes on odd pickles would add lines to the one-line error
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except (
            pickle.UnpicklingError,
            RuntimeError,
            EOFError,
            OSError,
            ValueError,
            AttributeError,
            TypeError,
            ImportError,
            KeyError,
            IndexError,
        ) as err:
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise InputError(
                path, f"not a DeepGAMI weights file (refused: {first[:200]})"
            ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InputError(
            path, "not a DeepGAMI weights file (expected a state_dict of named tensors)"
        )
    return state


def _write_json(obj: object, path: Path) -> None:
    path.write_text(json.dumps(jsonable(obj), indent=1) + "\n")
