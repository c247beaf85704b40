"""The samplesheet: assets/schema_input.json (shared with nf-schema) and deepgami.pipeline.samplesheet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from deepgami.errors import InputError
from deepgami.pipeline.samplesheet import (
    CohortRow,
    PriorSpec,
    load_schema,
    read_samplesheet,
    schema_path,
)

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
TEST_SHEET = ASSETS / "samplesheet_test.csv"
HEADER = "id,cell_type,labels,modalities,priors,params"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A copy of one bundled test cohort in tmp_path/data, plus a params YAML."""
    shutil.copytree(ASSETS / "test" / "cohort_a", tmp_path / "data")
    (tmp_path / "data" / "params.yaml").write_text("max_epochs: 2\n")
    return tmp_path / "data"


def write_sheet(directory: Path, *rows: str, header: str = HEADER, name: str = "sheet.csv") -> Path:
    path = directory / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


GOOD = "c1,,data/labels.csv,snp=data/genotype.csv;expr=data/expression.csv,snp:eqtl=data/eqtl.tsv,"


def test_schema_is_the_asset_and_is_draft_2020_12_nf_schema_dialect() -> None:
    assert schema_path() == ASSETS / "schema_input.json"
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "array" and schema["uniqueEntries"] == ["id"]
    props = schema["items"]["properties"]
    assert props["id"]["meta"] == ["id"] and props["cell_type"]["meta"] == ["cell_type"]
    assert set(schema["items"]["required"]) == {"id", "labels", "modalities"}
    assert set(props) == {
        "id",
        "cell_type",
        "labels",
        "label_columns",
        "survival_columns",
        "modalities",
        "priors",
        "params",
        "pseudobulk",
        "donor_key",
        "cell_type_key",
    }


def test_assets_dir_follows_DEEPGAMI_ASSETS(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPGAMI_ASSETS", str(tmp_path))
    assert schema_path() == tmp_path / "schema_input.json"
    with pytest.raises(InputError, match="DEEPGAMI_ASSETS"):
        load_schema()


def test_bundled_test_samplesheet_validates_and_resolves_paths() -> None:
    rows = read_samplesheet(TEST_SHEET)
    assert [r.id for r in rows] == ["cohort_a", "cohort_b"]
    a, b = rows
    assert a.cell_type == "bulk" and b.cell_type is None
    assert a.modality_names == ["snp", "expr"]
    assert a.modalities["snp"] == ASSETS / "test" / "cohort_a" / "genotype.csv"
    assert a.priors == [
        PriorSpec("snp", "eqtl", ASSETS / "test" / "cohort_a" / "eqtl.tsv"),
        PriorSpec("expr", "grn", ASSETS / "test" / "cohort_a" / "grn.tsv"),
    ]
    for row in rows:
        assert row.labels.is_file() and all(p.is_file() for p in row.modalities.values())
        assert row.params is None or row.params.is_file()


def test_relative_paths_resolve_against_the_samplesheet_not_the_cwd(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sheet = write_sheet(tmp_path, GOOD + "data/params.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (row,) = read_samplesheet(sheet)
    assert row == CohortRow(
        id="c1",
        labels=data / "labels.csv",
        modalities={"snp": data / "genotype.csv", "expr": data / "expression.csv"},
        priors=[PriorSpec("snp", "eqtl", data / "eqtl.tsv")],
        params=data / "params.yaml",
        cell_type=None,
    )


def test_absolute_paths_and_tsv_samplesheets(data: Path, tmp_path: Path) -> None:
    row = "\t".join(["c1", str(data / "labels.csv"), f"snp={data / 'genotype.csv'}"])
    sheet = write_sheet(tmp_path, row, header="id\tlabels\tmodalities", name="sheet.tsv")
    (parsed,) = read_samplesheet(sheet)
    assert parsed.modalities == {"snp": data / "genotype.csv"} and parsed.priors == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["c 1" + GOOD[2:]], r"row 1: id: id must be given and may contain only letters"),
        ([GOOD, GOOD.replace("c1", "c2", 1), GOOD], r"row 3: id 'c1' is not unique \(also row 1\)"),
        (
            [",,data/labels.csv,snp=data/genotype.csv,,"],
            r"row 1: required column 'id' is missing or empty",
        ),
        (["c1,,data/labels.csv,,,"], r"row 1: required column 'modalities' is missing or empty"),
        (
            ["c1,,data/labels.csv,snp:data/genotype.csv,,"],
            r"row 1: modalities: modalities must be NAME=PATH pairs",
        ),
        (
            ["c1,,data/labels.csv,snp=data/genotype.csv,eqtl=data/eqtl.tsv,"],
            r"row 1: priors: priors must be MODALITY:NAME=PATH",
        ),
        (
            ["c1,,data/labels.csv,snp=data/genotype.csv,expr:eqtl=data/eqtl.tsv,"],
            r"row 1: priors: 'expr:eqtl' names modality 'expr', which is not one of: snp",
        ),
        (
            ["c1,,data/labels.csv,snp=data/genotype.csv;snp=data/expression.csv,,"],
            r"row 1: modalities: name 'snp' is given twice",
        ),
        (["c1,,data/labels.csv,all=data/genotype.csv,,"], r"row 1: modalities: 'all' is reserved"),
        (
            ["c1,,data/missing.csv,snp=data/genotype.csv,,"],
            r"row 1: labels: file not found: .*data/missing.csv",
        ),
        (["c1,,data/labels.csv,snp=data/nope.csv,,"], r"row 1: modality 'snp': file not found"),
        (
            ["c1,,data/labels.csv,snp=data/genotype.csv,,data/params.txt"],
            r"row 1: params: params must be the path of a YAML",
        ),
        (
            ["c1,,data/labels.csv,snp=s3://bucket/g.csv,,"],
            r"row 1: modality 'snp': remote path .* only supported by the Nextflow",
        ),
        (
            ["c1,,data/labels.csv,snp=data/genotype.csv,,,extra"],
            r"row 1: more fields than header columns",
        ),
        ([], r"has a header but no rows"),
    ],
)
def test_bad_rows_raise_one_line_input_errors(
    data: Path, tmp_path: Path, rows: list[str], message: str
) -> None:
    sheet = write_sheet(tmp_path, *rows)
    with pytest.raises(InputError, match=message) as info:
        read_samplesheet(sheet)
    assert info.value.path == str(sheet)
    assert "\n" not in str(info.value)


def test_unknown_and_duplicate_columns_are_rejected(data: Path, tmp_path: Path) -> None:
    sheet = write_sheet(
        tmp_path, "c1,data/labels.csv,snp=data/genotype.csv,x", header="id,labels,modalities,prior"
    )
    with pytest.raises(InputError, match=r"row 1: unknown column\(s\): 'prior'"):
        read_samplesheet(sheet)
    sheet = write_sheet(
        tmp_path, "c1,c1,data/labels.csv,snp=data/genotype.csv", header="id,id,labels,modalities"
    )
    with pytest.raises(InputError, match="duplicate column"):
        read_samplesheet(sheet)


def test_missing_or_empty_samplesheet(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="samplesheet not found"):
        read_samplesheet(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="is empty"):
        read_samplesheet(tmp_path / "empty.csv")


def test_schema_patterns_match_what_build_accepts() -> None:
    """The modality and prior name patterns of the schema are the ones `deepgami build` parses."""
    from deepgami.commands.build import MODALITY_RE, PRIOR_RE

    schema = json.loads((ASSETS / "schema_input.json").read_text())["items"]["properties"]
    validator = jsonschema.Draft202012Validator(schema["modalities"])
    for ok in ["snp=a.csv", "expr.v2=x/y.tsv;snp=z.bed"]:
        assert validator.is_valid(ok)
        assert all(MODALITY_RE.match(item) for item in ok.split(";"))
    for bad in ["1snp=a.csv", "snp=", "snp=a b.csv", "snp=a.csv;"]:
        assert not validator.is_valid(bad)
    prior = jsonschema.Draft202012Validator(schema["priors"])
    assert prior.is_valid("snp:eqtl=e.tsv;expr:grn=g.tsv")
    assert all(PRIOR_RE.match(item) for item in "snp:eqtl=e.tsv;expr:grn=g.tsv".split(";"))


# -- single-cell rows: pseudobulk, donor_key, cell_type_key ---------------------------------------

SC_HEADER = "id,labels,modalities,pseudobulk,donor_key,cell_type_key"


def write_cells(path: Path) -> Path:
    """A tiny cell-level .h5ad whose cell types need sanitizing ('L2/3 IT')."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    obs = pd.DataFrame(
        {
            "donor": ["S000", "S001", "S000", "S001"],
            "subclass": ["L2/3 IT", "Micro", "Micro", None],
        },
        index=[f"c{i}" for i in range(4)],
    )
    ad.AnnData(X=np.ones((4, 2), dtype=np.int32), obs=obs).write_h5ad(path)
    return path


def test_a_single_cell_row_fans_out_into_one_cohort_per_cell_type(
    data: Path, tmp_path: Path
) -> None:
    from deepgami.pipeline.samplesheet import fan_out

    write_cells(data / "cells.h5ad")
    sheet = write_sheet(
        tmp_path,
        "brain,data/labels.csv,snp=data/genotype.csv;rna=data/cells.h5ad,rna,donor,subclass",
        header=SC_HEADER,
    )
    (row,) = read_samplesheet(sheet)
    assert (row.pseudobulk, row.donor_key, row.cell_type_key) == ("rna", "donor", "subclass")
    cohorts = fan_out(row, tmp_path / "pb")
    assert [c.id for c in cohorts] == ["brain.L2_3_IT", "brain.Micro"]
    assert [c.cell_type for c in cohorts] == ["L2/3 IT", "Micro"]
    for cohort, name in zip(cohorts, ["L2_3_IT", "Micro"]):
        assert cohort.modalities == {
            "snp": data / "genotype.csv",
            "rna": tmp_path / "pb" / f"{name}.h5ad",
        }
        assert (
            cohort.labels == data / "labels.csv"
            and cohort.parent == "brain"
            and cohort.pseudobulk is None
        )
    # Any other row passes through unchanged.
    plain = read_samplesheet(write_sheet(tmp_path, GOOD, name="plain.csv"))[0]
    assert fan_out(plain, tmp_path / "pb") == [plain]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "b,data/labels.csv,snp=data/genotype.csv;rna=data/cells.h5ad,expr,donor,subclass",
            r"row 1: pseudobulk: 'expr' is not one of the row's modalities \(snp, rna\)",
        ),
        (
            "b,data/labels.csv,snp=data/genotype.csv;rna=data/cells.h5ad,snp,donor,subclass",
            r"row 1: pseudobulk: modality 'snp' must be a cell-level .h5ad",
        ),
        (
            "b,data/labels.csv,snp=data/genotype.csv;rna=data/cells.h5ad,rna,,subclass",
            r"row 1: .*donor_key",
        ),
        (
            "b,data/labels.csv,snp=data/genotype.csv;rna=data/cells.h5ad,,donor,subclass",
            r"row 1: cell_type_key and donor_key need\(s\) a pseudobulk column",
        ),
    ],
)
def test_bad_single_cell_rows(data: Path, tmp_path: Path, row: str, message: str) -> None:
    write_cells(data / "cells.h5ad")
    with pytest.raises(InputError, match=message):
        read_samplesheet(write_sheet(tmp_path, row, header=SC_HEADER))
    sheet = write_sheet(
        tmp_path,
        "b,micro,data/labels.csv,snp=data/genotype.csv;rna=data/cells.h5ad,rna,donor,subclass",
        header="id,cell_type,labels,modalities,pseudobulk,donor_key,cell_type_key",
        name="ct.csv",
    )
    with pytest.raises(InputError, match="row 1: cell_type: leave it empty on a pseudobulk row"):
        read_samplesheet(sheet)
