"""Checks of a model directory before anything is built from it: config.json against the weights'
names, shapes and dtypes, the preprocessing against the network's inputs, the classes against the
head, and finite weights. A mismatch is one InputError naming the file and the field."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from deepgami.errors import InputError

MEMBER_PREFIX = "members."
_INDEX = (torch.int64, torch.int32)


def validate_model(
    config: dict, state: dict[str, torch.Tensor], config_path: Path, weights_path: Path
) -> None:
    """Check that `config` (config.json) and `state` (the weights) describe the same model.

    Parameters
    ----------
    config
        The parsed config.json.
    state
        The flat ``{name: tensor}`` of the weights file.
    config_path, weights_path
        The files, named in errors.

    Raises
    ------
    InputError
        Naming config.json for a config that contradicts itself, or the weights file for a tensor
        that is missing, unexpected, of the wrong shape or dtype, or not finite.
    """
    n_inputs, n_latent = _check_config(config, config_path)
    n_members = _int(config["network"].get("n_members", 1), "network.n_members", config_path)
    sparse = config["network"].get("sparse") or [False] * len(n_inputs)
    try:
        _check_members(state, n_inputs, n_latent, sparse, n_members, config, weights_path)
    except InputError as err:
        raise InputError(
            weights_path, f"weights do not match config.json ({err.message})"
        ) from None
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InputError(weights_path, f"tensor '{name}' holds NaN or infinite values")


def _check_members(
    state: dict[str, torch.Tensor],
    n_inputs: list[int],
    n_latent: int,
    sparse: list,
    n_members: int,
    config: dict,
    path: Path,
) -> None:
    """Every member network's encoders and head, and no tensor outside them."""
    expected = set()
    for i in range(n_members):
        prefix = f"{MEMBER_PREFIX}{i}." if i else ""
        own = {k[len(prefix) :]: v for k, v in state.items() if _belongs(k, prefix)}
        expected |= {prefix + k for k in own}
        for k, n_in in enumerate(n_inputs):
            _check_encoder(own, k, n_in, n_latent, bool(sparse[k]), prefix, path)
        _check_head(own, config, prefix, path)
    extra = sorted(set(state) - expected)
    if extra:
        raise InputError(
            path,
            f"tensor '{extra[0]}' is not part of the {n_members} network(s) config.json describes",
        )


def _belongs(key: str, prefix: str) -> bool:
    return key.startswith(prefix) if prefix else not key.startswith(MEMBER_PREFIX)


def _int(value: object, field: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(path, f"'{field}' must be a non-negative integer, got {value!r}")
    return value


def _check_config(config: dict, path: Path) -> tuple[list[int], int]:
    """(inputs per modality, latent nodes) after checking config.json against itself."""
    net, modalities = config["network"], config.get("modalities")
    if not isinstance(modalities, list) or not modalities:
        raise InputError(path, "'modalities' must be a non-empty list")
    n_inputs = net.get("n_inputs")
    if not isinstance(n_inputs, list) or len(n_inputs) != len(modalities):
        raise InputError(
            path, f"'network.n_inputs' must list one input count per modality ({len(modalities)})"
        )
    n_inputs = [_int(n, f"network.n_inputs[{k}]", path) for k, n in enumerate(n_inputs)]
    n_latent = _int(net.get("n_latent"), "network.n_latent", path)
    latent = config.get("latent_nodes")
    if latent is not None and len(latent) != n_latent:
        raise InputError(
            path, f"'latent_nodes' lists {len(latent)} nodes but network.n_latent is {n_latent}"
        )
    prep = config.get("preprocessing")
    for k, m in enumerate(modalities):
        entry = prep.get(m) if isinstance(prep, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("features"), list):
            raise InputError(path, f"'preprocessing.{m}.features' is missing")
        n = len(entry["features"])
        if n != n_inputs[k]:
            raise InputError(
                path,
                f"'preprocessing.{m}.features' lists {n} features but network.n_inputs[{k}] "
                f"(the '{m}' encoder) is {n_inputs[k]}",
            )
        for field in ("fill", "center", "scale"):
            if field in entry and len(entry[field]) != n:
                raise InputError(
                    path, f"'preprocessing.{m}.{field}' has {len(entry[field])} values, not {n}"
                )
    if config.get("task", "classification") == "classification":
        classes = config.get("classes")
        if not isinstance(classes, list) or len(classes) != net.get("n_outputs"):
            raise InputError(
                path,
                f"'classes' lists {len(classes) if isinstance(classes, list) else 'no'} classes "
                f"but network.n_outputs is {net.get('n_outputs')}",
            )
    return n_inputs, n_latent


def _tensor(own: dict, name: str, prefix: str, path: Path, index: bool = False) -> torch.Tensor:
    if name not in own:
        raise InputError(path, f"tensor '{prefix}{name}' that config.json needs is missing")
    tensor = own[name]
    if index and tensor.dtype not in _INDEX:
        raise InputError(path, f"tensor '{prefix}{name}' must hold integers, not {tensor.dtype}")
    if not index and not tensor.is_floating_point():
        raise InputError(path, f"tensor '{prefix}{name}' must hold floats, not {tensor.dtype}")
    return tensor


def _shape_error(path: Path, name: str, got: torch.Tensor, want: tuple, why: str) -> InputError:
    return InputError(
        path,
        f"tensor '{name}' has shape {tuple(got.shape)}, config.json expects {want} ({why})",
    )


def _check_encoder(
    own: dict, k: int, n_in: int, n_latent: int, sparse: bool, prefix: str, path: Path
) -> None:
    """Encoder `k`: dense weight (latent x inputs) or sparse edge weights with in-range edges."""
    name = f"encoders.{k}"
    weight = _tensor(own, f"{name}.weight", prefix, path)
    bias = _tensor(own, f"{name}.bias", prefix, path)
    if tuple(bias.shape) != (n_latent,):
        raise _shape_error(path, prefix + name + ".bias", bias, (n_latent,), "network.n_latent")
    if not sparse:
        if tuple(weight.shape) != (n_latent, n_in):
            raise _shape_error(
                path, prefix + name + ".weight", weight, (n_latent, n_in), f"network.n_inputs[{k}]"
            )
        return
    src = _tensor(own, f"{name}.src", prefix, path, index=True)
    dst = _tensor(own, f"{name}.dst", prefix, path, index=True)
    if not (weight.ndim == src.ndim == dst.ndim == 1 and len(weight) == len(src) == len(dst)):
        raise InputError(path, f"tensors '{prefix}{name}.weight/src/dst' differ in length")
    if len(src) and (int(src.min()) < 0 or int(src.max()) >= n_in):
        raise InputError(
            path, f"tensor '{prefix}{name}.src' points outside network.n_inputs[{k}] = {n_in}"
        )
    if len(dst) and (int(dst.min()) < 0 or int(dst.max()) >= n_latent):
        raise InputError(
            path, f"tensor '{prefix}{name}.dst' points outside network.n_latent = {n_latent}"
        )


def _check_head(own: dict, config: dict, prefix: str, path: Path) -> None:
    """The head's last layer has one output per class (network.n_outputs)."""
    layers = sorted(
        int(m.group(1)) for k in own if (m := re.fullmatch(r"head\.(\d+)\.weight", k)) is not None
    )
    if not layers:
        raise InputError(path, f"tensor '{prefix}head.*.weight' that config.json needs is missing")
    name = f"head.{layers[-1]}.weight"
    weight = _tensor(own, name, prefix, path)
    n_out = config["network"].get("n_outputs")
    if weight.ndim != 2 or weight.shape[0] != n_out:
        raise _shape_error(path, prefix + name, weight, (n_out, "..."), "network.n_outputs")


# -- the Python API's arguments ------------------------------------------------------------------


def check_mudata(value: object, name: str = "mdata", also: tuple[type, ...] = ()) -> None:
    """Refuse anything but a MuData (or one of `also`) for argument `name`.

    Parameters
    ----------
    value
        The argument.
    name
        Its name, for the message.
    also
        Other accepted types (e.g. the arrays a cohort is read into).

    Raises
    ------
    TypeError
        ``mdata must be a MuData, got AnnData`` (an AnnData is one modality: wrap it with
        ``mudata.MuData({"name": adata})``).
    """
    import mudata as md

    if isinstance(value, (md.MuData, *also)):
        return
    got = type(value).__name__
    hint = " (one modality; wrap it: mudata.MuData({'name': adata}))" if got == "AnnData" else ""
    raise TypeError(f"{name} must be a MuData, got {got}{hint}")


def check_modalities(value: object, name: str = "modalities") -> list[str] | None:
    """Modality names as a list: None stays None, a single string is one name.

    Parameters
    ----------
    value
        None, one modality name, or a sequence of names.
    name
        The argument's name, for the message.

    Returns
    -------
    list of str or None
        The names (``"snp"`` gives ``["snp"]``, never ``["s", "n", "p"]``).

    Raises
    ------
    TypeError
        When `value` is not a string or a sequence of strings.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        names = list(value)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(
            f"{name} must be a modality name or a sequence of them, got {type(value).__name__}"
        ) from None
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name} must hold modality names (str), got {type(bad[0]).__name__}")
    return names
