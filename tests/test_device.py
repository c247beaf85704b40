"""`--device auto|cpu|cuda`: train, predict, prioritize and evaluate; the CUDA path on a CUDA machine.

The CPU tests run everywhere. Tests marked `gpu` need a CUDA device and skip (with the reason)
without one: `pytest -m gpu tests/test_device.py` on a machine with a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deepgami.cli import main
from deepgami.errors import InputError
from deepgami.utils import resolve_device

REPO = Path(__file__).resolve().parents[1]
COHORT_A = REPO / "assets" / "test" / "cohort_a"
PARAMS = REPO / "assets" / "test" / "params.yaml"
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not CUDA, reason="no CUDA device (torch.cuda.is_available() is False)"
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("device") / "cohort.h5mu"
    assert (
        main(
            [
                "build",
                "--modality",
                f"snp={COHORT_A / 'genotype.csv'}",
                "--modality",
                f"expr={COHORT_A / 'expression.csv'}",
                "--labels",
                str(COHORT_A / "labels.csv"),
                "--prior",
                f"snp:eqtl={COHORT_A / 'eqtl.tsv'}",
                "--prior",
                f"expr:grn={COHORT_A / 'grn.tsv'}",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out


def _train(cohort: Path, out: Path, device: str) -> Path:
    assert (
        main(
            [
                "train",
                str(cohort),
                "--out",
                str(out),
                "--params",
                str(PARAMS),
                "--seed",
                "0",
                "--quiet",
                "--device",
                device,
            ]
        )
        == 0
    )
    return out


def _predict(model: Path, cohort: Path, out: Path, device: str) -> pd.DataFrame:
    assert (
        main(
            [
                "predict",
                str(model),
                str(cohort),
                "--out",
                str(out),
                "--split",
                "test",
                "--device",
                device,
            ]
        )
        == 0
    )
    return pd.read_csv(out, sep="\t")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device(None).type == ("cuda" if CUDA else "cpu")
    with pytest.raises(InputError, match="choose auto, cpu or cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(CUDA, reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_one_line_input_error(cohort: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepgami",
            "train",
            str(cohort),
            "--out",
            str(tmp_path / "m"),
            "--device",
            "cuda",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines() == [result.stderr.strip()]
        and "--device cuda" in result.stderr
    )
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", ["train", "predict", "prioritize", "evaluate"])
def test_help_shows_device(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--device auto|cpu|cuda" in capsys.readouterr().out


def test_train_and_predict_on_cpu_equal_the_default(cohort: Path, tmp_path: Path) -> None:
    """`--device cpu` is the CPU path byte for byte: the same files as training without the flag on a
    CPU machine (and as --device auto there)."""
    cpu = _train(cohort, tmp_path / "cpu", "cpu")
    config = json.loads((cpu / "config.json").read_text())
    assert config
    table = _predict(cpu, cohort, tmp_path / "cpu.tsv", "cpu")
    assert len(table) > 0 and {"sample", "predicted"} <= set(table.columns)
    assert (
        main(
            [
                "train",
                str(cohort),
                "--out",
                str(tmp_path / "default"),
                "--params",
                str(PARAMS),
                "--seed",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    default_table = tmp_path / "default.tsv"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "default"),
                str(cohort),
                "--out",
                str(default_table),
                "--split",
                "test",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    if not CUDA:  # auto = cpu here: every output, model directory and predictions, byte for byte
        assert _file_bytes(cpu) == _file_bytes(tmp_path / "default")
        for suffix in (".tsv", ".metrics.json"):
            ours, theirs = tmp_path / f"cpu{suffix}", tmp_path / f"default{suffix}"
            assert ours.read_bytes() == theirs.read_bytes(), suffix


def _file_bytes(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, by relative path."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    assert files
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}


def test_prioritize_and_evaluate_accept_device_cpu(cohort: Path, tmp_path: Path) -> None:
    model = _train(cohort, tmp_path / "m", "cpu")
    assert (
        main(
            [
                "prioritize",
                str(model),
                str(cohort),
                "--out",
                str(tmp_path / "p"),
                "--split",
                "test",
                "--no-figures",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (tmp_path / "p" / "links.tsv").is_file()


# -- on a CUDA machine -----------------------------------------------------------------------------


@pytest.mark.gpu
@needs_cuda
def test_train_and_predict_on_cuda(cohort: Path, tmp_path: Path) -> None:
    """Training and prediction on the GPU give a working model, close to the CPU one."""
    gpu = _train(cohort, tmp_path / "gpu", "cuda")
    cpu = _train(cohort, tmp_path / "cpu", "cpu")
    on_gpu = _predict(gpu, cohort, tmp_path / "gpu.tsv", "cuda")
    gpu_model_on_cpu = _predict(gpu, cohort, tmp_path / "gpu_cpu.tsv", "cpu")
    on_cpu = _predict(cpu, cohort, tmp_path / "cpu.tsv", "cpu")
    probs = [c for c in on_gpu.columns if c.startswith("prob_")]
    # The saved weights are device-independent: the GPU model predicts the same on either device.
    np.testing.assert_allclose(
        on_gpu[probs].to_numpy(), gpu_model_on_cpu[probs].to_numpy(), atol=1e-5
    )
    # Float reductions differ between devices, so training differs slightly; the result must not.
    assert np.abs(on_gpu[probs].to_numpy() - on_cpu[probs].to_numpy()).mean() < 0.1


@pytest.mark.gpu
@needs_cuda
def test_sparse_layer_forward_and_backward_on_cuda() -> None:
    from deepgami.nn.layers import SparseMaskedLinear

    torch.manual_seed(0)
    src = np.array([0, 1, 2, 2, 4])
    dst = np.array([0, 0, 1, 2, 2])
    layer = SparseMaskedLinear(5, 3, src, dst)
    x = torch.randn(8, 5)
    y_cpu = layer(x)
    y_cpu.sum().backward()
    grad_cpu = layer.weight.grad.clone()
    layer.weight.grad = None
    layer.to("cuda")
    y_gpu = layer(x.cuda())
    y_gpu.sum().backward()
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.weight.grad.cpu(), grad_cpu, atol=1e-5, rtol=1e-5)
