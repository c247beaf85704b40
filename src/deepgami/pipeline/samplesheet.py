"""The pipeline samplesheet: one row per cohort (or cohort x cell type).

The same schema file, ``assets/schema_input.json``, is used by nf-schema in the Nextflow workflow
and here with :mod:`jsonschema`. Columns:

``id``          required, unique, ``^[A-Za-z0-9_.-]+$`` (names the output folder ``<outdir>/<id>/``)
``cell_type``   optional metadata
``labels``      required path of the label table
``label_columns`` optional phenotype columns ``a,b,c`` (several targets; default ``label``)
``survival_columns`` optional ``time,event`` (a survival target)
``modalities``  required ``NAME=PATH`` pairs separated by ``;``
``priors``      optional ``MODALITY:NAME=PATH`` entries separated by ``;``
``params``      optional path of a training/evaluation parameter YAML
``pseudobulk``  optional: the modality whose file is a cell-level ``.h5ad`` (single-cell rows)
``donor_key``   with ``pseudobulk``: the ``.obs`` column naming each cell's donor
``cell_type_key`` with ``pseudobulk``: the ``.obs`` column naming each cell's cell type

A single-cell row fans out (:func:`fan_out`) into one cohort per cell type, id
``<id>.<cell type>`` (the cell type made file-safe), whose pseudobulk modality is that cell type's
``deepgami pseudobulk`` output and whose other modalities, priors, labels (by donor) and params
are the row's.

Relative paths are resolved against the directory that holds the samplesheet (not the working
directory), in Python and in the Nextflow workflow alike.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from deepgami.errors import InputError

__all__ = [
    "CohortRow",
    "PriorSpec",
    "read_samplesheet",
    "fan_out",
    "fan_out_ids",
    "prediction_sets",
    "pipeline_table",
    "PIPELINE_COLUMNS",
    "schema_path",
    "assets_dir",
    "load_schema",
]

SCHEMA_NAME = "schema_input.json"
RESERVED_MODALITY = "all"  # the prediction set that uses every modality


@dataclass(frozen=True)
class PriorSpec:
    """One prior network of a row: which modality it guides, its name and its edge-list file.

    Parameters
    ----------
    modality : str
        The modality the prior guides.
    name : str
        The prior's name.
    path : Path
        Its edge-list file.
    """

    modality: str
    name: str
    path: Path


@dataclass(frozen=True)
class CohortRow:
    """One validated samplesheet row with all paths absolute.

    Parameters
    ----------
    id : str
        The cohort id (names ``<outdir>/<id>/``).
    labels : Path
        The label table.
    modalities : dict of str to Path
        Modality name to matrix file, in samplesheet order.
    priors : list of PriorSpec
        The row's prior networks.
    params : Path or None
        The training/evaluation parameter YAML.
    cell_type : str or None
        The cell type (fanned-out cohorts, or as given).
    pseudobulk : str or None
        Single-cell rows: the modality whose file is a cell-level ``.h5ad``.
    donor_key : str or None
        Single-cell rows: the ``.obs`` column naming each cell's donor.
    cell_type_key : str or None
        Single-cell rows: the ``.obs`` column naming each cell's cell type.
    parent : str or None
        A fanned-out cohort: the id of its samplesheet row.
    label_columns : str or None
        Several targets: the label table's phenotype columns, ``a,b,c`` (`build --label-column`).
    survival_columns : str or None
        A survival target: ``time,event`` (`build --survival-columns`).
    """

    id: str
    labels: Path
    modalities: dict[str, Path]
    priors: list[PriorSpec] = field(default_factory=list)
    params: Path | None = None
    cell_type: str | None = None
    pseudobulk: str | None = None  # single-cell rows: the modality whose file is a cell-level .h5ad
    donor_key: str | None = None
    cell_type_key: str | None = None
    parent: str | None = None  # a fanned-out cohort: the id of its samplesheet row
    label_columns: str | None = None
    survival_columns: str | None = None

    @property
    def modality_names(self) -> list[str]:
        """Modality names in samplesheet order."""
        return list(self.modalities)


def assets_dir() -> Path:
    """The pipeline's ``assets/`` folder.

    ``$DEEPGAMI_ASSETS`` when set (the container sets it), else the repository's ``assets/`` next to
    ``src/`` (editable installs and source checkouts).

    Returns
    -------
    Path
        The folder.
    """
    env = os.environ.get("DEEPGAMI_ASSETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "assets"


def schema_path() -> Path:
    """Path of the samplesheet schema shared with nf-schema.

    Returns
    -------
    Path
        ``<assets>/schema_input.json``.
    """
    return assets_dir() / SCHEMA_NAME


@lru_cache(maxsize=4)
def _load_schema(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_schema() -> dict[str, Any]:
    """The parsed samplesheet schema.

    Returns
    -------
    dict
        ``assets/schema_input.json``, parsed.

    Raises
    ------
    InputError
        The assets folder has no schema (set ``DEEPGAMI_ASSETS``).
    """
    path = schema_path()
    if not path.is_file():
        raise InputError(
            path,
            "samplesheet schema not found; set DEEPGAMI_ASSETS to the pipeline's assets/ folder",
        )
    return _load_schema(str(path))


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
            raw_rows = list(reader)
    except UnicodeDecodeError:
        raise InputError(path, "is not a UTF-8 text file") from None
    except csv.Error as err:
        raise InputError(path, f"cannot be read as CSV: {err}") from None
    if not header:
        raise InputError(
            path, "is empty (expected a header: id,labels,modalities[,cell_type,priors,params])"
        )
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InputError(path, f"duplicate column(s): {', '.join(dupes)}")
    rows = []
    for number, raw in enumerate(raw_rows, start=1):
        if None in raw:
            raise InputError(path, f"row {number}: more fields than header columns")
        # nf-schema drops empty cells; do the same so optional columns may be left blank.
        row = {
            k.strip(): v.strip()
            for k, v in raw.items()
            if k is not None and v is not None and v.strip()
        }
        rows.append(row)
    return header, rows


def _error_message(error: jsonschema.ValidationError) -> str:
    """The schema's `errorMessage` for the failing property when it has one, else jsonschema's."""
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"required column '{missing}' is missing or empty"
    if error.validator == "additionalProperties":
        return f"unknown column(s): {error.message.split('(')[-1].rstrip(')')}"
    return custom or error.message


def _resolve(
    base: Path, value: str, sheet: Path, where: str, row: int, check_files: bool = True
) -> Path:
    if not check_files:  # the Nextflow workflow resolves (and checks) paths, remote ones too
        return Path(value) if "://" in value else Path(os.path.normpath(base / value))
    if "://" in value:
        raise InputError(
            sheet,
            f"row {row}: {where}: remote path '{value}' is only supported by the Nextflow pipeline",
        )
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    path = Path(os.path.normpath(path))
    if not path.is_file():
        raise InputError(sheet, f"row {row}: {where}: file not found: {path}")
    return path


def _split_pairs(value: str) -> list[tuple[str, str]]:
    pairs = []
    for item in value.split(";"):
        key, _, path = item.partition("=")
        pairs.append((key, path))
    return pairs


def read_samplesheet(path: str | os.PathLike, check_files: bool = True) -> list[CohortRow]:
    """Read and validate a samplesheet (CSV, or TSV by extension) against ``assets/schema_input.json``.

    Checks the schema (types, patterns, required columns), unique ids, unique modality names per
    row, the reserved modality name ``all``, that each prior names one of the row's modalities,
    and that every file exists after resolving relative paths against the samplesheet's directory.

    Parameters
    ----------
    path
        The samplesheet.
    check_files
        Resolve and check every file (the default). ``False`` checks the text only and keeps remote
        paths: the Nextflow workflow stages the files itself (:func:`pipeline_table`).

    Returns
    -------
    list of CohortRow
        One validated row per cohort, paths resolved.

    Raises
    ------
    InputError
        A one-line ``row N: ...`` message (N counts data rows from 1).
    """
    sheet = Path(path)
    if not sheet.is_file():
        raise InputError(sheet, "samplesheet not found")
    schema = load_schema()
    _, rows = _read_rows(sheet)
    if not rows:
        raise InputError(sheet, "has a header but no rows")

    _check_schema(sheet, schema, rows)
    base = sheet.resolve().parent
    seen: dict[str, int] = {}
    result = []
    for number, row in enumerate(rows, start=1):
        cohort_id = row["id"]
        if cohort_id in seen:
            raise InputError(
                sheet, f"row {number}: id '{cohort_id}' is not unique (also row {seen[cohort_id]})"
            )
        seen[cohort_id] = number
        result.append(_cohort_row(sheet, base, number, row, check_files))
    return result


def _cohort_row(
    sheet: Path, base: Path, number: int, row: dict, check_files: bool = True
) -> CohortRow:
    """One checked row, its paths resolved against the samplesheet's directory."""
    modalities = _row_modalities(sheet, base, number, row, check_files)
    priors = _row_priors(sheet, base, number, row, modalities, check_files)
    single_cell = {
        key: row[key] for key in ("pseudobulk", "donor_key", "cell_type_key") if key in row
    }
    if single_cell:
        _check_single_cell(sheet, number, row, single_cell, modalities)
    return CohortRow(
        id=row["id"],
        labels=_resolve(base, row["labels"], sheet, "labels", number, check_files),
        modalities=modalities,
        priors=priors,
        params=_resolve(base, row["params"], sheet, "params", number, check_files)
        if "params" in row
        else None,
        cell_type=row.get("cell_type"),
        label_columns=row.get("label_columns"),
        survival_columns=row.get("survival_columns"),
        **single_cell,
    )


def _check_schema(sheet: Path, schema: dict, rows: list[dict]) -> None:
    """The first schema error (by row, then column), as a one-line ``row N: column: ...``."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(rows), key=lambda e: (list(e.absolute_path), e.validator))
    for error in errors:
        location = list(error.absolute_path)
        if location and isinstance(location[0], int):
            column = f"{location[1]}: " if len(location) > 1 else ""
            raise InputError(sheet, f"row {location[0] + 1}: {column}{_error_message(error)}")
        raise InputError(sheet, _error_message(error))


def _row_modalities(
    sheet: Path, base: Path, number: int, row: dict, check_files: bool = True
) -> dict[str, Path]:
    """A row's modalities (unique names, none reserved) and their resolved, existing files."""
    modalities: dict[str, Path] = {}
    for name, value in _split_pairs(row["modalities"]):
        if name in modalities:
            raise InputError(sheet, f"row {number}: modalities: name '{name}' is given twice")
        if name == RESERVED_MODALITY:
            raise InputError(
                sheet,
                f"row {number}: modalities: '{RESERVED_MODALITY}' is reserved for "
                "predictions from every modality; rename that modality",
            )
        modalities[name] = _resolve(base, value, sheet, f"modality '{name}'", number, check_files)
    return modalities


def _row_priors(
    sheet: Path,
    base: Path,
    number: int,
    row: dict,
    modalities: dict[str, Path],
    check_files: bool = True,
) -> list[PriorSpec]:
    """A row's priors: each names one of its modalities, names are unique, files exist."""
    priors = []
    seen_priors: set[str] = set()
    prior_items = _split_pairs(row["priors"]) if "priors" in row else []
    for key, value in prior_items:
        modality, _, name = key.partition(":")
        if modality not in modalities:
            raise InputError(
                sheet,
                f"row {number}: priors: '{key}' names modality '{modality}', "
                f"which is not one of: {', '.join(modalities)}",
            )
        if name in seen_priors:
            raise InputError(sheet, f"row {number}: priors: name '{name}' is given twice")
        seen_priors.add(name)
        priors.append(
            PriorSpec(
                modality,
                name,
                _resolve(base, value, sheet, f"prior '{key}'", number, check_files),
            )
        )
    return priors


def _check_single_cell(
    sheet: Path,
    number: int,
    row: dict[str, str],
    given: dict[str, str],
    modalities: dict[str, Path],
) -> None:
    if "pseudobulk" not in given:
        raise InputError(
            sheet,
            f"row {number}: {' and '.join(sorted(given))} need(s) a pseudobulk column "
            "naming the cell-level modality",
        )
    name = given["pseudobulk"]
    if name not in modalities:
        raise InputError(
            sheet,
            f"row {number}: pseudobulk: '{name}' is not one of the row's modalities "
            f"({', '.join(modalities)})",
        )
    if modalities[name].suffix.lower() != ".h5ad":
        raise InputError(
            sheet,
            f"row {number}: pseudobulk: modality '{name}' must be a cell-level .h5ad "
            f"(got {modalities[name].name})",
        )
    if "cell_type" in row:
        raise InputError(
            sheet,
            f"row {number}: cell_type: leave it empty on a pseudobulk row (each "
            "fanned-out cohort gets its own cell type)",
        )


def prediction_sets(names: list[str]) -> list[str]:
    """The prediction sets of a cohort with modalities `names`.

    ``all`` (every modality) and, when the cohort has several, each modality alone. The embedded
    runner plans its ``deepgami predict`` calls with it; the Nextflow workflow reads the same list
    from the ``prediction_sets`` column of :func:`pipeline_table`.

    Parameters
    ----------
    names
        The cohort's modality names, in samplesheet order.

    Returns
    -------
    list of str
        ``["all"]``, then each name when there are several.
    """
    return [RESERVED_MODALITY] + (list(names) if len(names) > 1 else [])


def fan_out_ids(row_id: str, cell_types: list[str]) -> list[tuple[str, str, str]]:
    """``(cohort id, cell type, file name)`` of each cohort a single-cell row fans out into.

    The id is ``<row id>.<safe cell type>`` and the file ``<safe cell type>.h5ad`` (what
    ``deepgami pseudobulk`` writes). Used by :func:`fan_out` and by ``bin/deepgami_pseudobulk.py``,
    whose ``cohorts.tsv`` the Nextflow workflow spreads into one cohort per line.

    Parameters
    ----------
    row_id
        The samplesheet row's id.
    cell_types
        The cell types, in the order the cohorts are wanted.

    Returns
    -------
    list of tuple of str
        One ``(id, cell type, file name)`` per cell type.
    """
    from deepgami.data.pseudobulk import safe_name

    return [(f"{row_id}.{safe_name(c)}", c, f"{safe_name(c)}.h5ad") for c in cell_types]


# Columns of pipeline_table, in order (bin/deepgami_samplesheet.py writes them as a TSV).
PIPELINE_COLUMNS = (
    "id",
    "cell_type",
    "labels",
    "modality_names",
    "modality_files",
    "prior_specs",
    "prior_files",
    "params",
    "pseudobulk",
    "pseudobulk_index",
    "donor_key",
    "cell_type_key",
    "prediction_sets",
    "label_columns",
    "survival_columns",
)


def pipeline_table(path: str | os.PathLike) -> list[dict[str, str]]:
    """The samplesheet as the Nextflow workflow consumes it: one flat record per row.

    Every rule of :func:`read_samplesheet` applies (schema, unique ids, reserved ``all``, priors
    naming modalities, single-cell columns) except the file checks. Paths stay as written (the
    workflow resolves them against the samplesheet's folder, remote ones included); lists are
    joined with ``,`` (names) or ``;`` (paths) in the same order.

    Parameters
    ----------
    path
        The samplesheet.

    Returns
    -------
    list of dict
        One dict per row with the keys of :data:`PIPELINE_COLUMNS`; absent values are ``""``.
    """
    sheet = Path(path)
    rows = read_samplesheet(sheet, check_files=False)
    _, raw_rows = _read_rows(sheet)
    table = []
    for row, raw in zip(rows, raw_rows, strict=True):
        modality_files = dict(_split_pairs(raw["modalities"]))
        prior_files = dict(_split_pairs(raw.get("priors", ""))) if "priors" in raw else {}
        names = row.modality_names
        table.append(
            {
                "id": row.id,
                "cell_type": row.cell_type or "",
                "labels": raw["labels"],
                "modality_names": ",".join(names),
                "modality_files": ";".join(modality_files[n] for n in names),
                "prior_specs": ",".join(f"{p.modality}:{p.name}" for p in row.priors),
                "prior_files": ";".join(prior_files[f"{p.modality}:{p.name}"] for p in row.priors),
                "params": raw.get("params", ""),
                "pseudobulk": row.pseudobulk or "",
                "pseudobulk_index": str(names.index(row.pseudobulk)) if row.pseudobulk else "",
                "donor_key": row.donor_key or "",
                "cell_type_key": row.cell_type_key or "",
                "prediction_sets": ",".join(prediction_sets(names)),
                "label_columns": row.label_columns or "",
                "survival_columns": row.survival_columns or "",
            }
        )
    return table


def fan_out(
    row: CohortRow, pseudobulk_dir: str | os.PathLike, cell_types: list[str] | None = None
) -> list[CohortRow]:
    """The per-cell-type cohorts of a single-cell row; any other row is returned as it is.

    Each cohort has id ``<row id>.<safe cell type>``, ``cell_type`` set, and its pseudobulk
    modality pointing at ``<pseudobulk_dir>/<safe cell type>.h5ad`` (what ``deepgami pseudobulk``
    writes there). `cell_types` default to those in the cell-level file (read from its obs only).

    Parameters
    ----------
    row
        A samplesheet row.
    pseudobulk_dir
        The folder that holds (or will hold) the row's ``<cell type>.h5ad`` files.
    cell_types
        The cell types; by default those of the row's cell-level ``.h5ad``.

    Returns
    -------
    list of CohortRow
        One cohort per cell type, or ``[row]`` for a row that is not single-cell.
    """
    from deepgami.data.pseudobulk import cell_types_in

    if row.pseudobulk is None:
        return [row]
    cells = row.modalities[row.pseudobulk]
    if cell_types is None:
        cell_types = cell_types_in(cells, row.cell_type_key or "")
    out = []
    for cohort_id, cell_type, file_name in fan_out_ids(row.id, cell_types):
        modalities = dict(row.modalities)
        modalities[row.pseudobulk] = Path(pseudobulk_dir) / file_name
        out.append(
            CohortRow(
                id=cohort_id,
                labels=row.labels,
                modalities=modalities,
                priors=list(row.priors),
                params=row.params,
                cell_type=cell_type,
                parent=row.id,
                label_columns=row.label_columns,
                survival_columns=row.survival_columns,
            )
        )
    return out
