"""`deepgami build`: the cohort it writes, and one exact error per kind of bad input."""

from __future__ import annotations

from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepgami.data import cohort
from deepgami.datasets import rosmap_dir
from deepgami.cli import main
from deepgami.errors import InputError
from deepgami.data.readers import read_matrix
from deepgami.testing import write_tiny_inputs

ROSMAP = rosmap_dir()


@pytest.fixture()
def tiny(tmp_path: Path) -> dict[str, Path]:
    return write_tiny_inputs(tmp_path / "in")


def build_args(paths: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "build",
        "--modality",
        f"snp={paths['snp']}",
        "--modality",
        f"expr={paths['expr']}",
        "--labels",
        str(paths["labels"]),
        "--prior",
        f"snp:eqtl={paths['eqtl']}",
        "--out",
        str(out),
        *extra,
    ]


def test_rosmap_builds_245_samples(tmp_path: Path) -> None:
    out = tmp_path / "r.h5mu"
    code = main(
        [
            "build",
            "--modality",
            f"mrna={ROSMAP / 'mrna.csv'}",
            "--modality",
            f"meth={ROSMAP / 'meth.csv'}",
            "--labels",
            str(ROSMAP / "labels.csv"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    mdata = md.read_h5mu(out)
    assert mdata.n_obs == 245
    assert list(mdata.mod) == ["mrna", "meth"]
    assert set(mdata.obs["label"].astype(str)) == {"NC", "AD"}
    assert (mdata.obs["label"] == "AD").sum() == 127


def test_tiny_cohort_layout(tiny: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "c.h5mu"
    assert main(build_args(tiny, out)) == 0
    printed = capsys.readouterr().out
    # rsX is not a SNP of the file: one edge dropped and counted.
    assert "5 of 6 edges kept (1 with an unknown source, 0 with an unknown target" in printed
    mdata = cohort.read_cohort(out)
    mask = mdata.varp["prior:eqtl"]
    assert sp.issparse(mask) and mask.dtype == bool and mask.nnz == 5
    assert mdata.uns["deepgami"]["priors"]["eqtl"]["modality"] == "snp"
    assert mdata.uns["deepgami"]["priors"]["eqtl"]["features_without_edges"] == 3
    assert mdata.mod["snp"].X.dtype == np.int8  # dosages kept compact
    assert cohort.latent_nodes(mdata) == ["G0", "G1", "G2", "G3"]
    name, src, dst = cohort.modality_edges(mdata, "snp")
    assert name == "eqtl"
    pairs = {(mdata.mod["snp"].var_names[s], f"G{d}") for s, d in zip(src, dst)}
    assert pairs == {("rs0", "G0"), ("rs1", "G0"), ("rs2", "G1"), ("rs3", "G2"), ("rs4", "G3")}
    assert cohort.modality_edges(mdata, "expr") is None
    assert set(mdata.obs["split"]) == {"train", "test"}


def test_sample_missing_a_modality_stays_with_explicit_presence(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    snp = pd.read_csv(tiny["snp"], index_col=0)
    snp.iloc[3:].to_csv(tiny["snp"])  # first three samples have no genotype
    out = tmp_path / "c.h5mu"
    assert main(build_args(tiny, out, "--quiet")) == 0
    mdata = cohort.read_cohort(out)
    assert mdata.n_obs == 30
    has = cohort.present(mdata, "snp")
    assert has.tolist() == [False] * 3 + [True] * 27
    x = cohort.modality_matrix(mdata, "snp")
    assert x.shape == (30, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(x[3:], snp.iloc[3:].to_numpy())


def test_unlabelled_samples_dropped_and_counted(
    tiny: dict[str, Path], tmp_path: Path, capsys
) -> None:
    labels = pd.read_csv(tiny["labels"])
    labels.iloc[2:].to_csv(tiny["labels"], index=False)
    assert main(build_args(tiny, tmp_path / "c.h5mu")) == 0
    assert "2 samples without a label dropped" in capsys.readouterr().out


def test_prefix_resolves_collisions(tiny: dict[str, Path], tmp_path: Path) -> None:
    expr = pd.read_csv(tiny["expr"], index_col=0).rename(columns={"TF0": "rs0"})
    expr.to_csv(tiny["expr"])
    out = tmp_path / "c.h5mu"
    assert main(build_args(tiny, out, "--prefix", "--quiet")) == 0
    mdata = cohort.read_cohort(out)
    assert "snp:rs0" in mdata.var_names and "expr:rs0" in mdata.var_names
    assert mdata.varp["prior:eqtl"].nnz == 5


@pytest.mark.parametrize("policy,expect", [("mean", (30, 7)), ("drop-feature", (30, 6))])
def test_missing_policies(
    tiny: dict[str, Path], tmp_path: Path, policy: str, expect, capsys
) -> None:
    expr = pd.read_csv(tiny["expr"], index_col=0)
    expr.iloc[0, 1] = np.nan
    expr.to_csv(tiny["expr"])
    out = tmp_path / "c.h5mu"
    assert main(build_args(tiny, out, "--missing", policy)) == 0
    assert f"1 missing values ({policy})" in capsys.readouterr().out
    mdata = cohort.read_cohort(out)
    assert mdata.mod["expr"].shape == expect
    if policy == "mean":
        assert np.isclose(mdata.mod["expr"].X[0, 1], expr.iloc[1:, 1].mean(), atol=1e-5)


def _corrupt(paths: dict[str, Path], tmp: Path, case: str) -> tuple[list[str], str, str]:
    """Apply one kind of bad input; return (extra args or replaced args, file named, message)."""
    snp, expr, labels, eqtl = paths["snp"], paths["expr"], paths["labels"], paths["eqtl"]
    args = None
    if case == "missing file":
        snp.unlink()
        return args, str(snp), "file not found"
    if case == "unknown format":
        new = snp.with_suffix(".xlsx")
        snp.rename(new)
        paths["snp"] = new
        return args, str(new), "unknown format '.xlsx'"
    if case == "empty file":
        expr.write_text("")
        return args, str(expr), "file is empty"
    if case == "duplicate sample ids":
        text = expr.read_text().splitlines()
        expr.write_text("\n".join(text + [text[1]]) + "\n")
        return args, str(expr), "duplicate sample ids: S000"
    if case == "duplicate feature names":
        text = expr.read_text().replace("G1,", "G0,", 1)
        expr.write_text(text)
        return args, str(expr), "duplicate feature names: G0"
    if case == "non-numeric cells":
        frame = pd.read_csv(expr, index_col=0).astype(object)
        frame.iloc[4, 2] = "high"
        frame.to_csv(expr)
        return args, str(expr), "non-numeric value 'high' in column 'G2' (sample 'S004')"
    if case == "nan":
        frame = pd.read_csv(expr, index_col=0)
        frame.iloc[0, 0] = np.nan
        frame.to_csv(expr)
        return (
            args,
            str(expr),
            "1 NaN/empty values in 1 features (e.g. G0); choose a policy with --missing mean",
        )
    if case == "inf":
        frame = pd.read_csv(expr, index_col=0)
        frame.iloc[0, 0] = np.inf
        frame.to_csv(expr)
        return args, str(expr), "1 inf values in 1 features (e.g. G0)"
    if case == "no shared sample":
        frame = pd.read_csv(labels)
        frame["sample"] = "X" + frame["sample"]
        frame.to_csv(labels, index=False)
        return args, str(snp), "no sample shared with the labels file"
    if case == "transposed matrix":
        pd.read_csv(snp, index_col=0).T.to_csv(snp)
        return args, str(snp), "its column names are sample ids: samples must be rows"
    if case == "single class":
        frame = pd.read_csv(labels)
        frame["label"] = "case"
        frame.to_csv(labels, index=False)
        return args, str(labels), "label column has a single class 'case'"
    if case == "prior unknown modality":
        return (
            ["--prior", f"geno:eqtl2={eqtl}"],
            str(eqtl),
            "prior 'eqtl2' names modality 'geno', which is not one of: snp, expr",
        )
    if case == "prior matches nothing":
        pd.DataFrame({"source": ["a", "b"], "target": ["G0", "G1"]}).to_csv(
            eqtl, sep="\t", index=False
        )
        return args, str(eqtl), "none of the 2 sources are features of modality 'snp'"
    if case == "feature collision":
        frame = pd.read_csv(expr, index_col=0).rename(columns={"TF0": "rs0"})
        frame.to_csv(expr)
        return (
            args,
            str(expr),
            "1 feature names also appear in modality 'snp' (e.g. rs0); rerun with --prefix",
        )
    raise AssertionError(case)


BAD_INPUTS = [
    "missing file",
    "unknown format",
    "empty file",
    "duplicate sample ids",
    "duplicate feature names",
    "non-numeric cells",
    "nan",
    "inf",
    "no shared sample",
    "transposed matrix",
    "single class",
    "prior unknown modality",
    "prior matches nothing",
    "feature collision",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_one_line_exit_2_no_output(
    case: str, tiny: dict[str, Path], tmp_path: Path, capsys
) -> None:
    extra, named, message = _corrupt(tiny, tmp_path, case)
    out = tmp_path / "out" / "c.h5mu"
    code = main(build_args(tiny, out, *(extra or [])))
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {named}: "), err
    assert message in err, err
    assert not out.exists()
    assert (
        not any(p.name.endswith(".h5mu") for p in out.parent.glob("*"))
        if out.parent.exists()
        else True
    )


def test_bad_input_exit_code_from_console_script(tiny: dict[str, Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    tiny["snp"].unlink()
    run = subprocess.run(
        [sys.executable, "-m", "deepgami", *build_args(tiny, tmp_path / "c.h5mu")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"error: {tiny['snp']}: file not found"
    assert "Traceback" not in run.stderr


def test_parquet_and_h5ad_read_like_csv(tiny: dict[str, Path], tmp_path: Path) -> None:
    frame = pd.read_csv(tiny["expr"], index_col=0)
    frame.reset_index().to_parquet(tmp_path / "e.parquet", index=False)
    csv, _ = read_matrix(tiny["expr"])
    pq, _ = read_matrix(tmp_path / "e.parquet")
    csv.write_h5ad(tmp_path / "e.h5ad")
    h5, _ = read_matrix(tmp_path / "e.h5ad")
    for other in (pq, h5):
        assert list(other.obs_names) == list(csv.obs_names)
        assert list(other.var_names) == list(csv.var_names)
        np.testing.assert_array_equal(other.X, csv.X)


def test_sample_column_named_like_a_feature(tmp_path: Path) -> None:
    """Found by the fuzz test: a header "0,0" named the sample column and the feature alike."""
    path = tmp_path / "m.csv"
    path.write_text("0,0\nS1,1\nS2,2\n")
    adata, _ = read_matrix(path)
    assert list(adata.obs_names) == ["S1", "S2"] and list(adata.var_names) == ["0"]
    np.testing.assert_array_equal(np.asarray(adata.X).ravel(), [1, 2])
    path.write_text("0,0\n,\n")
    with pytest.raises(InputError, match=str(path)):
        read_matrix(path)


CELL = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-5, 5).map(str),
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # same examples on every run
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(st.lists(CELL, min_size=0, max_size=5), min_size=0, max_size=6),
    sep=st.sampled_from([",", "\t", ";"]),
    suffix=st.sampled_from([".csv", ".tsv"]),
    raw=st.binary(max_size=40),
)
def test_fuzz_readers_never_leak_a_traceback(tmp_path: Path, rows, sep, suffix, raw) -> None:
    path = tmp_path / f"fuzz{suffix}"
    text = "\n".join(sep.join(r) for r in rows)
    for content in (text.encode("utf-8", "surrogatepass"), raw):
        path.write_bytes(content)
        try:
            adata, _ = read_matrix(path)
        except InputError as err:
            assert str(path) in str(err) and "\n" not in str(err)
        else:
            assert adata.n_obs >= 1 and adata.n_vars >= 1
            assert adata.X.dtype in (np.float32, np.int8)
            assert np.isfinite(np.asarray(adata.X, dtype=np.float32)).all()


def test_simulated_priors_keep_every_edge_with_both_ends(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(sim),
                "--n-samples",
                "80",
                "--n-snps",
                "120",
                "--n-tfs",
                "10",
                "--n-genes",
                "30",
            ]
        )
        == 0
    )
    out = tmp_path / "c.h5mu"
    assert (
        main(
            [
                "build",
                "--modality",
                f"snp={sim / 'genotype.csv'}",
                "--modality",
                f"expr={sim / 'expression.csv'}",
                "--labels",
                str(sim / "labels.csv"),
                "--prior",
                f"snp:eqtl={sim / 'eqtl.tsv'}",
                "--prior",
                f"expr:grn={sim / 'grn.tsv'}",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    mdata = cohort.read_cohort(out)
    variables = set(mdata.var_names)
    for name in ("eqtl", "grn"):
        edges = pd.read_csv(sim / f"{name}.tsv", sep="\t")[["source", "target"]].drop_duplicates()
        both = edges["source"].isin(variables) & edges["target"].isin(variables)
        assert mdata.varp[f"prior:{name}"].nnz == int(both.sum()) > 0


def test_build_help_lists_the_readers_missing_policies() -> None:
    from deepgami.commands import build
    from deepgami.data.readers import MISSING_POLICIES

    assert build.MISSING_POLICIES == MISSING_POLICIES


@pytest.mark.parametrize("genotype_file", ["toy.bed", "toy.vcf", "toy.pgen"])
def test_genotype_files_build_like_the_csv_route(genotype_file: str, tmp_path: Path) -> None:
    assets = Path(__file__).resolve().parents[1] / "assets" / "test_genotypes"
    samples = pd.read_csv(assets / "toy.csv", index_col=0).index
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"sample": samples, "label": ["a", "b"] * (len(samples) // 2)}).to_csv(
        labels, index=False
    )
    built = {}
    for name in ("toy.csv", genotype_file):
        out = tmp_path / f"{name}.h5mu"
        assert (
            main(
                [
                    "build",
                    "--modality",
                    f"snp={assets / name}",
                    "--labels",
                    str(labels),
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
        built[name] = cohort.read_cohort(out)
    csv_route, file_route = built["toy.csv"].mod["snp"], built[genotype_file].mod["snp"]
    assert list(file_route.obs_names) == list(csv_route.obs_names)
    assert list(file_route.var_names) == list(csv_route.var_names)
    np.testing.assert_array_equal(np.asarray(file_route.X), np.asarray(csv_route.X))


def _labels_without_split(tiny: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    labels = pd.read_csv(tiny["labels"])
    assert "split" in labels.columns
    labels.drop(columns="split").to_csv(tmp_path / "labels_nosplit.csv", index=False)
    return {**tiny, "labels": tmp_path / "labels_nosplit.csv"}


def test_labels_without_split_get_a_seeded_stratified_split(
    tiny: dict[str, Path], tmp_path: Path, capsys
) -> None:
    paths = _labels_without_split(tiny, tmp_path)
    a, b, c = tmp_path / "a.h5mu", tmp_path / "b.h5mu", tmp_path / "c.h5mu"
    assert main(build_args(paths, a)) == 0
    assert "split: generated (labels have none)" in capsys.readouterr().out
    assert main(build_args(paths, b, "--quiet")) == 0
    assert main(build_args(paths, c, "--quiet", "--split-seed", "1")) == 0
    first, again, other = (cohort.read_cohort(p) for p in (a, b, c))
    split = first.obs["split"].astype(str)
    assert set(split) == {"train", "test"}
    assert (split == "test").sum() == round(0.2 * first.n_obs)
    # stratified: each class is ~20% test
    for label in first.obs["label"].cat.categories:
        in_class = split[first.obs["label"] == label]
        assert abs((in_class == "test").mean() - 0.2) <= 1 / len(in_class) + 1e-9
    assert split.equals(again.obs["split"].astype(str)), "same seed, same split"
    assert not split.equals(other.obs["split"].astype(str)), "the seed is used"
    assert dict(first.uns["deepgami"]["split"]) == {
        "source": "generated",
        "test_fraction": 0.2,
        "seed": 0,
    }


def test_test_fraction_and_no_split(tiny: dict[str, Path], tmp_path: Path, capsys) -> None:
    paths = _labels_without_split(tiny, tmp_path)
    assert main(build_args(paths, tmp_path / "f.h5mu", "--quiet", "--test-fraction", "0.5")) == 0
    half = cohort.read_cohort(tmp_path / "f.h5mu")
    assert (half.obs["split"].astype(str) == "test").sum() == round(0.5 * half.n_obs)
    assert main(build_args(paths, tmp_path / "n.h5mu", "--quiet", "--no-split")) == 0
    none = cohort.read_cohort(tmp_path / "n.h5mu")
    assert set(none.obs["split"].astype(str)) == {"train"}
    assert none.uns["deepgami"]["split"]["source"] == "none"
    capsys.readouterr()
    assert main(build_args(paths, tmp_path / "bad.h5mu", "--test-fraction", "1.5")) == 2
    assert "--test-fraction must be in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "bad.h5mu").exists()


def test_a_split_column_in_the_labels_is_kept(tiny: dict[str, Path], tmp_path: Path) -> None:
    assert main(build_args(tiny, tmp_path / "c.h5mu", "--quiet", "--test-fraction", "0.5")) == 0
    mdata = cohort.read_cohort(tmp_path / "c.h5mu")
    given = pd.read_csv(tiny["labels"], index_col=0)["split"]
    assert mdata.obs["split"].astype(str).tolist() == given.loc[mdata.obs_names].tolist()
    assert mdata.uns["deepgami"]["split"]["source"] == "labels"


def test_api_build_cohort_leaves_the_split_to_the_caller(tmp_path: Path) -> None:
    """The library function keeps the labels as given unless asked (test_fraction=None)."""
    labels = pd.DataFrame({"label": ["a", "b"] * 10}, index=[f"s{i}" for i in range(20)])
    import anndata as ad

    x = ad.AnnData(
        np.ones((20, 3), dtype=np.float32),
        obs=pd.DataFrame(index=labels.index),
        var=pd.DataFrame(index=["f0", "f1", "f2"]),
    )
    mdata, _ = cohort.assemble_cohort({"m": x}, labels)
    assert "split" not in mdata.obs
    mdata, _ = cohort.assemble_cohort({"m": x.copy()}, labels, test_fraction=0.25, split_seed=3)
    assert (mdata.obs["split"] == "test").sum() == 5
