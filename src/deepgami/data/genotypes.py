"""Genotype importers: PLINK 1 (.bed), PLINK 2 (.pgen) and VCF/BCF files as AnnData dosages.

Supported formats
    ``.bed`` (with ``.bim`` and ``.fam`` beside it, same prefix), ``.pgen`` (with ``.pvar`` and
    ``.psam``; a ``.pvar`` has a ``#CHROM`` header line, or none and then ``.bim`` column order; a
    ``.psam`` starts ``#IID`` or ``#FID IID``, or has none and then ``.fam`` columns), and
    ``.vcf``, ``.vcf.gz`` or ``.bcf`` (plain text, gzip or bgzip; no index needed). Compressed
    ``.pvar.zst`` and multiallelic records are not read: decompress the ``.pvar``
    (``zstd -d``) and split multiallelic sites (``bcftools norm -m -any``) first.

Samples and variants
    Samples (``obs_names``) are the VCF sample names or the PLINK IIDs. The PLINK family id is
    not part of the sample id: it is kept in ``obs["fid"]``, so IIDs must be unique across
    families. Variants (``var_names``) are the file's ids (``.bim``/``.pvar``/VCF ``ID``); an id
    of ``.`` becomes ``chrom:pos:ref:alt``. ``var`` holds ``chrom``, ``pos``, ``ref`` and ``alt``.

Allele counted
    ``X`` counts the ALT allele: the VCF ALT, the ``.pvar`` ALT, and for ``.bed`` the A1 allele
    (``.bim`` column 5, bed-reader's and PLINK's default ``count_A1``), which plink2 writes as
    ALT; ``var["alt"]`` is that allele and ``var["ref"]`` is A2 (column 6). The same genotypes
    therefore import identically from all formats. Files written by plink 1.9 without
    ``--keep-allele-order`` may have swapped A1 to the minor allele; the counted allele is
    whatever ``var["alt"]`` says. Haploid calls count as 0 or 2, as PLINK stores them.

Values
    ``dtype="int8"`` (default) gives hard calls 0/1/2 (VCF GT, ``.pgen`` hard calls; a ``.pgen``
    dosage too far from an integer is a missing hard call). ``dtype="float32"`` gives dosages:
    VCF ``DS`` where the header declares it (GT for records without DS), ``.pgen`` dosages
    (stored at 1/16384 resolution), and the hard calls of a ``.bed``.

Missing calls (``missing=``)
    ``"error"`` (default) refuses a file with missing calls and names their count. ``"mean"``
    fills each SNP's missing calls with its mean dosage over the called samples of this file
    (rounded to the nearest integer, halves to even, for int8; exact for float32; a SNP with
    no call at all becomes 0, as for other matrices). The mean uses no labels, but it pools all
    samples of the file, train and test alike, as any per-file imputation does; impute within
    the training split beforehand if that matters. ``"drop-feature"`` drops every SNP with a
    missing call. There is no "zero" policy: 0 is a genotype (homozygous REF), not a gap.
    ``uns["genotypes"]`` records the policy, the number of missing calls (``missing_values``)
    and the dropped SNPs (``dropped_features``), as the other matrix readers report them.

Memory
    Only ``X`` (samples x kept SNPs, int8 or float32) is held at full size: genotypes are read
    in blocks of SNPs (about 16 MiB each) and never as a float64 copy. With ``keep_snps`` (the
    SNPs that have at least one prior edge) only those SNPs are decoded, using the readers'
    own indexing (bed-reader column index, pgenlib variant lists, VCF records skipped while
    streaming), and only their ``.bim``/``.pvar`` rows are kept. A VCF's record count is unknown
    until its end, so its blocks are joined at the end: peak memory is about twice ``X``.
    ``drop-feature`` that drops SNPs from a ``.bed``/``.pgen`` also copies ``X`` once.
    VCF text parsing dominates VCF import time (about 1 ms per record at 2,000 samples on one
    core); for repeated builds convert once (``plink2 --vcf x.vcf.gz --make-pgen``).
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from deepgami.errors import InputError
from deepgami.utils import examples as _examples

GENOTYPE_SUFFIXES: tuple[str, ...] = (".bed", ".pgen", ".vcf", ".vcf.gz", ".bcf")
MISSING_POLICIES: tuple[str, ...] = ("error", "mean", "drop-feature")
DTYPES: tuple[str, ...] = ("int8", "float32")

_MISSING_I8 = -127  # bed-reader's int8 missing value; pgenlib's -9 is mapped onto it
_CHUNK_BYTES = 1 << 24  # genotype block size; tests lower it to exercise block boundaries
_TABLE_ROWS = 1 << 20  # .bim/.pvar rows parsed at a time


def is_genotype_path(path: str | os.PathLike) -> bool:
    """Tell whether `path` names a genotype file that :func:`read_genotypes` reads (by suffix).

    Parameters
    ----------
    path : str or os.PathLike
        A file name; only its suffix is looked at.

    Returns
    -------
    bool
        True for a ``.bed``, ``.pgen``, ``.vcf``, ``.vcf.gz`` or ``.bcf`` name (any case).
    """
    return Path(path).name.lower().endswith(GENOTYPE_SUFFIXES)


def read_genotypes(
    path: str | Path,
    keep_snps: Collection[str] | None = None,
    dtype: str = "int8",
    missing: str = "error",
) -> ad.AnnData:
    """Read a PLINK 1/2 or VCF/BCF genotype file as samples x SNPs ALT-allele dosages.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.bed``, ``.pgen``, ``.vcf``, ``.vcf.gz`` or ``.bcf`` file.
    keep_snps : collection of str or None, default None
        Read only these SNP ids (e.g. the sources of a prior), in file order.
    dtype : {"int8", "float32"}, default "int8"
        ``"int8"`` for hard calls 0/1/2, ``"float32"`` for dosages.
    missing : {"error", "mean", "drop-feature"}, default "error"
        ``"error"``, ``"mean"`` or ``"drop-feature"`` (see the module documentation).

    Returns
    -------
    anndata.AnnData
        ``X`` of `dtype`, ``var`` columns ``chrom``, ``pos``, ``ref``, ``alt``, and
        ``uns["genotypes"]`` describing the import.

    Raises
    ------
    ValueError
        When `dtype` or `missing` is not one of the values above.
    InputError
        When the file is not a genotype file, is missing or cannot be parsed, has duplicate
        sample or SNP ids, or has missing calls that `missing` refuses.
    """
    path = Path(path)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, not {missing!r}")
    if not is_genotype_path(path):
        raise InputError(path, f"not a genotype file (expected {', '.join(GENOTYPE_SUFFIXES)})")
    if not path.is_file():
        raise InputError(path, "file not found")
    keep = None if keep_snps is None else frozenset(str(s) for s in keep_snps)
    name = path.name.lower()
    if name.endswith(".bed"):
        return _read_plink1(path, keep, np.dtype(dtype), missing)
    if name.endswith(".pgen"):
        return _read_plink2(path, keep, np.dtype(dtype), missing)
    return _read_vcf(path, keep, np.dtype(dtype), missing)


# --- shared pieces -------------------------------------------------------------------------


def _check_unique_samples(path: Path, ids: pd.Index, hint: str) -> None:
    if ids.has_duplicates:
        dup = ids[ids.duplicated()].unique()
        raise InputError(path, f"duplicate sample ids: {_examples(dup)}; {hint}")


def _check_unique_snps(path: Path, ids: pd.Index, hint: str) -> None:
    if ids.has_duplicates:
        dup = ids[ids.duplicated()].unique()
        raise InputError(path, f"duplicate SNP ids: {_examples(dup)}; {hint}")


_PLINK_SNP_HINT = "give every variant a unique id (plink2 --set-all-var-ids '@:#:$r:$a') or remove duplicates (plink2 --rm-dup)"
_VCF_SNP_HINT = (
    "give every variant a unique id (bcftools annotate --set-id '%CHROM:%POS:%REF:%ALT') "
    "or remove duplicates (bcftools norm -d exact)"
)
_PLINK_SAMPLE_HINT = "IIDs must be unique across families (the FID is not part of the sample id)"


def _none_kept(path: Path, keep: frozenset[str]) -> InputError:
    return InputError(path, f"none of the {len(keep)} prior sources are SNPs in this file")


def _derive_ids(
    ids: pd.Series, chrom: pd.Series, pos: pd.Series, ref: pd.Series, alt: pd.Series
) -> pd.Series:
    """Replace '.' ids by chrom:pos:ref:alt, the id bcftools and plink2 would set."""
    unnamed = ids == "."
    if unnamed.any():
        ids = ids.copy()
        ids[unnamed] = (
            chrom[unnamed]
            + ":"
            + pos[unnamed].astype(str)
            + ":"
            + ref[unnamed]
            + ":"
            + alt[unnamed]
        )
    return ids


@dataclass
class _MissingStats:
    """What the missing-call policy did, summed over blocks."""

    policy: str
    calls: int = 0
    snps: int = 0
    dropped: list[str] = field(default_factory=list)

    def apply(self, block: np.ndarray, ids: list[str] | np.ndarray) -> np.ndarray | None:
        """Apply the policy to a samples x SNPs block in place; return the kept-column mask."""
        is_missing = np.isnan(block) if block.dtype.kind == "f" else block == _MISSING_I8
        per_snp = is_missing.sum(axis=0)
        hit = np.flatnonzero(per_snp)
        if hit.size == 0:
            return None
        self.calls += int(per_snp.sum())
        self.snps += int(hit.size)
        if self.policy == "drop-feature":
            self.dropped.extend(str(ids[j]) for j in hit)
            return per_snp == 0
        if self.policy == "mean":
            sub, sub_missing = block[:, hit], is_missing[:, hit]
            called = sub.shape[0] - per_snp[hit]
            # Sums of called values only: int64 for int8, float64 accumulators of one block.
            sums = np.where(sub_missing, 0, sub).sum(
                axis=0, dtype=np.float64 if block.dtype.kind == "f" else np.int64
            )
            means = np.divide(
                sums, called, out=np.zeros(hit.size, dtype=np.float64), where=called > 0
            )
            fill = np.rint(means) if block.dtype.kind == "i" else means
            rows, cols = np.nonzero(sub_missing)
            block[rows, hit[cols]] = fill[cols].astype(block.dtype)
        return None

    def check(self, path: Path) -> None:
        if self.policy == "error" and self.calls:
            raise InputError(
                path,
                f"{self.calls} missing genotype calls in {self.snps} SNPs; "
                "choose a policy with --missing mean or --missing drop-feature",
            )

    def uns(self) -> dict:
        return {
            "missing": self.policy,
            "missing_values": self.calls,
            "dropped_features": list(self.dropped),
        }


def _block_snps(n_samples: int, dtype: np.dtype) -> int:
    return max(1, _CHUNK_BYTES // max(1, n_samples * dtype.itemsize))


def _read_known(
    read_block: Callable[[np.ndarray], np.ndarray],
    file_index: np.ndarray,
    ids: np.ndarray,
    n_samples: int,
    dtype: np.dtype,
    stats: _MissingStats,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill samples x len(file_index) from `read_block(file rows)` in blocks of SNPs.

    Returns X and the boolean mask of the SNPs kept by the missing-call policy.
    """
    n_snps = len(file_index)
    x = np.empty((n_samples, n_snps), dtype=dtype)
    kept = np.ones(n_snps, dtype=bool)
    step = _block_snps(n_samples, dtype)
    filled = 0
    for start in range(0, n_snps, step):
        stop = min(start + step, n_snps)
        block = read_block(file_index[start:stop])
        mask = stats.apply(block, ids[start:stop])
        if mask is not None:
            kept[start:stop] = mask
            block = block[:, mask]
        x[:, filled : filled + block.shape[1]] = block
        filled += block.shape[1]
    if filled < n_snps:
        x = x[:, :filled].copy()  # drop-feature removed SNPs: one copy of the smaller matrix
    return x, kept


def _finish(
    path: Path,
    x: np.ndarray,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    stats: _MissingStats,
    info: dict,
) -> ad.AnnData:
    stats.check(path)
    if x.shape[1] == 0:
        raise InputError(
            path, "every SNP has missing calls; nothing left after --missing drop-feature"
        )
    var = var.copy()
    var["chrom"] = pd.Categorical(var["chrom"].astype(str))
    var["pos"] = var["pos"].astype(np.int64)
    # No index names: a name left over from a parsed column (e.g. 1) cannot be written to .h5ad.
    var.index = pd.Index(var.index.astype(str)).rename(None)
    obs.index = pd.Index(obs.index.astype(str)).rename(None)
    uns = {
        "genotypes": {
            "source": str(path),
            "counted_allele": "alt",
            "dtype": str(x.dtype),
            **info,
            **stats.uns(),
        }
    }
    return ad.AnnData(X=x, obs=obs, var=var[["chrom", "pos", "ref", "alt"]], uns=uns)


def _read_variant_table(
    path: Path,
    chunks: Iterator[pd.DataFrame],
    keep: frozenset[str] | None,
    first_line: int,
    allele_counts: list[np.ndarray] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Parse .bim/.pvar rows (columns chrom, id, pos, ref, alt) keeping only `keep` ids.

    Returns the kept rows, indexed by variant id, with a `file_index` column, and the file's
    variant count. Only kept rows are held, so memory follows `keep`.
    """
    kept, n_total = [], 0
    try:
        for chunk in chunks:
            n_total += len(chunk)
            pos = pd.to_numeric(chunk["pos"], errors="coerce")
            if pos.isna().any():
                row = int(np.flatnonzero(pos.isna().to_numpy())[0])
                line = first_line + chunk.index[row]
                raise InputError(
                    path, f"line {line}: position {chunk['pos'].iloc[row]!r} is not an integer"
                )
            chunk = chunk.assign(pos=pos.astype(np.int64))
            chunk["id"] = _derive_ids(
                chunk["id"], chunk["chrom"], chunk["pos"], chunk["ref"], chunk["alt"]
            )
            if allele_counts is not None:
                allele_counts.append(chunk["alt"].str.count(",").to_numpy(dtype=np.uint32) + 2)
            if keep is not None:
                chunk = chunk[chunk["id"].isin(keep)]
            kept.append(chunk.assign(file_index=chunk.index.to_numpy(dtype=np.int64)))
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot parse: {str(err).splitlines()[0]}") from None
    if n_total == 0:
        raise InputError(path, "has no variants")
    table = pd.concat(kept, ignore_index=True)  # one (maybe empty) frame per chunk, at least one
    return table.set_index("id"), n_total


def _whitespace_table(
    path: Path, names: dict[int, str], n_cols: int, what: str
) -> Iterator[pd.DataFrame]:
    """Chunks of a headerless whitespace table (.bim, headerless .pvar) with named columns."""
    try:
        reader = pd.read_csv(
            path, sep=r"\s+", header=None, dtype=str, na_filter=False, chunksize=_TABLE_ROWS
        )
        for chunk in reader:
            if chunk.shape[1] != n_cols:
                raise InputError(
                    path, f"expected {n_cols} columns ({what}), found {chunk.shape[1]}"
                )
            yield chunk.rename(columns=names)[list(names.values())]
    except pd.errors.EmptyDataError:
        return


_BIM_COLUMNS = {0: "chrom", 1: "id", 3: "pos", 4: "alt", 5: "ref"}
_BIM_WHAT = "chrom, id, cM, pos, A1, A2"


# --- PLINK 1 -------------------------------------------------------------------------------


def _companion(path: Path, suffix: str, needs: str) -> Path:
    other = path.with_suffix(suffix)
    if not other.is_file():
        raise InputError(path, f"companion file {other.name} not found; {needs}")
    return other


def _read_fam(fam: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(fam, sep=r"\s+", header=None, dtype=str, na_filter=False)
    except pd.errors.EmptyDataError:
        raise InputError(fam, "has no samples") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(fam, f"cannot parse: {str(err).splitlines()[0]}") from None
    if table.shape[1] != 6:
        raise InputError(
            fam,
            f"expected 6 columns (FID, IID, father, mother, sex, phenotype), found {table.shape[1]}",
        )
    return pd.DataFrame({"fid": table[0].to_numpy()}, index=pd.Index(table[1], name=None))


def _read_plink1(
    path: Path, keep: frozenset[str] | None, dtype: np.dtype, missing: str
) -> ad.AnnData:
    from bed_reader import open_bed

    needs = "a PLINK .bed needs .bim and .fam files with the same prefix"
    bim, fam = _companion(path, ".bim", needs), _companion(path, ".fam", needs)
    obs = _read_fam(fam)
    _check_unique_samples(fam, obs.index, _PLINK_SAMPLE_HINT)
    var, n_file = _read_variant_table(
        bim, _whitespace_table(bim, _BIM_COLUMNS, 6, _BIM_WHAT), keep, 1
    )
    if keep is not None and len(var) == 0:
        raise _none_kept(path, keep)
    _check_unique_snps(bim, var.index, _PLINK_SNP_HINT)
    n_samples = len(obs)
    # bed-reader cannot tell a .fam off by a few samples within the last byte; the size can.
    expected = 3 + n_file * ((n_samples + 3) // 4)
    size = path.stat().st_size
    if size != expected:
        raise InputError(
            path,
            f"size {size} bytes does not match {n_file} SNPs in {bim.name} and {n_samples} samples in {fam.name} "
            f"(expected {expected}); the three files are not one set",
        )

    def unreadable(err: ValueError) -> InputError:
        return InputError(path, f"not a readable SNP-major PLINK .bed file ({err})")

    try:
        bed = open_bed(path, iid_count=n_samples, sid_count=n_file, count_A1=True)
    except ValueError as err:
        raise unreadable(err) from None

    def read_block(rows: np.ndarray) -> np.ndarray:
        contiguous = rows[-1] - rows[0] + 1 == len(rows)
        index = slice(int(rows[0]), int(rows[-1]) + 1) if contiguous else rows
        try:  # order C: the block's rows copy straight into X's rows
            return bed.read(index=np.s_[:, index], dtype=dtype, order="C")
        except ValueError as err:
            raise unreadable(err) from None

    stats = _MissingStats(missing)
    with bed:
        x, kept = _read_known(
            read_block, var["file_index"].to_numpy(), var.index.to_numpy(), n_samples, dtype, stats
        )
    info = {"format": "plink1", "values": "hardcall", "n_snps_in_file": n_file}
    return _finish(path, x, obs, var[kept], stats, info)


# --- PLINK 2 -------------------------------------------------------------------------------


def _meta_lines(path: Path) -> tuple[int, str]:
    """Count leading '##' lines and return the first other line."""
    n = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.startswith("##"):
                return n, line
            n += 1
    return n, ""


def _read_psam(psam: Path) -> pd.DataFrame:
    n_meta, first = _meta_lines(psam)
    if not first.strip():
        raise InputError(psam, "has no samples")
    try:
        if first.startswith("#"):
            table = pd.read_csv(psam, sep=r"\s+", skiprows=n_meta, dtype=str, na_filter=False)
            table.columns = [
                c.lstrip("#").upper() if i == 0 else c.upper() for i, c in enumerate(table.columns)
            ]
        else:  # no header: .fam columns
            table = pd.read_csv(psam, sep=r"\s+", header=None, dtype=str, na_filter=False)
            table = table.rename(columns={0: "FID", 1: "IID"})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(psam, f"cannot parse: {str(err).splitlines()[0]}") from None
    if "IID" not in table.columns:
        raise InputError(psam, "header has no IID column (expected '#IID' or '#FID IID')")
    obs = pd.DataFrame(index=pd.Index(table["IID"], name=None))
    if "FID" in table.columns:
        obs["fid"] = table["FID"].to_numpy()
    return obs


def _pvar_chunks(pvar: Path) -> tuple[Iterator[pd.DataFrame], int]:
    """Chunks of a .pvar as chrom/id/pos/ref/alt, and the file line of the first variant."""
    n_meta, first = _meta_lines(pvar)
    if not first.startswith("#CHROM"):  # no header line: .bim column order
        return _whitespace_table(pvar, _BIM_COLUMNS, 6, _BIM_WHAT), n_meta + 1
    header = first.rstrip("\r\n").split("\t")
    need = {"#CHROM": "chrom", "POS": "pos", "ID": "id", "REF": "ref", "ALT": "alt"}
    absent = [c for c in need if c not in header]
    if absent:
        raise InputError(pvar, f"header line lacks column(s) {', '.join(absent)}")

    def chunks() -> Iterator[pd.DataFrame]:
        reader = pd.read_csv(
            pvar,
            sep="\t",
            skiprows=n_meta,
            header=0,
            usecols=list(need),
            dtype=str,
            na_filter=False,
            chunksize=_TABLE_ROWS,
        )
        for chunk in reader:
            yield chunk.rename(columns=need)[["chrom", "id", "pos", "ref", "alt"]]

    return chunks(), n_meta + 2


def _read_plink2(
    path: Path, keep: frozenset[str] | None, dtype: np.dtype, missing: str
) -> ad.AnnData:
    """Read a PLINK 2 ``.pgen`` (with its ``.pvar`` and ``.psam``): the kept variants only."""
    import pgenlib

    needs = "a PLINK 2 .pgen needs .pvar and .psam files with the same prefix"
    if not path.with_suffix(".pvar").is_file() and path.with_suffix(".pvar.zst").is_file():
        name = path.with_suffix(".pvar").name
        raise InputError(
            path, f"companion file {name} not found; decompress the .pvar.zst first (zstd -d)"
        )
    pvar, psam = _companion(path, ".pvar", needs), _companion(path, ".psam", needs)
    obs = _read_psam(psam)
    _check_unique_samples(psam, obs.index, _PLINK_SAMPLE_HINT)
    var, n_file, offsets = _pvar_variants(path, pvar, keep)
    n_samples = len(obs)
    try:
        reader = pgenlib.PgenReader(bytes(path), raw_sample_ct=None, allele_idx_offsets=offsets)
    except RuntimeError as err:
        raise InputError(path, f"not a readable .pgen file ({_pgen_message(err, path)})") from None
    try:
        if reader.get_raw_sample_ct() != n_samples:
            raise InputError(
                path,
                f"{reader.get_raw_sample_ct()} samples in the .pgen but {n_samples} in {psam.name}",
            )
        if reader.get_variant_ct() != n_file:
            raise InputError(
                path, f"{reader.get_variant_ct()} variants in the .pgen but {n_file} in {pvar.name}"
            )
        stats = _MissingStats(missing)
        x, kept = _read_known(
            _pgen_block_reader(reader, n_samples, dtype),
            var["file_index"].to_numpy(),
            var.index.to_numpy(),
            n_samples,
            dtype,
            stats,
        )
    except RuntimeError as err:
        raise InputError(path, f"cannot read genotypes ({_pgen_message(err, path)})") from None
    finally:
        reader.close()
    info = {
        "format": "plink2",
        "values": "dosage" if dtype.kind == "f" else "hardcall",
        "n_snps_in_file": n_file,
    }
    return _finish(path, x, obs, var[kept], stats, info)


def _pvar_variants(
    path: Path, pvar: Path, keep: frozenset[str] | None
) -> tuple[pd.DataFrame, int, np.ndarray | None]:
    """The kept (biallelic, unique) variants of a ``.pvar``, the file's variant count, and the
    allele offsets pgenlib needs when any variant of the file is multiallelic."""
    chunks, first_line = _pvar_chunks(pvar)
    allele_counts: list[np.ndarray] = []
    var, n_file = _read_variant_table(pvar, chunks, keep, first_line, allele_counts)
    if keep is not None and len(var) == 0:
        raise _none_kept(path, keep)
    _check_unique_snps(pvar, var.index, _PLINK_SNP_HINT)
    multi = var["alt"].str.contains(",", regex=False)
    if multi.any():
        vid = var.index[multi.to_numpy()][0]
        raise InputError(
            path,
            f"multiallelic variant {vid}; split it into biallelic variants first "
            "(bcftools norm -m -any on the source VCF) "
            "or remove such variants (plink2 --max-alleles 2)",
        )
    counts = np.concatenate(allele_counts)
    offsets = None
    # pgenlib needs allele offsets when any variant, kept or not, is multiallelic.
    if counts.max() > 2:
        offsets = np.zeros(n_file + 1, dtype=np.uintp)
        np.cumsum(counts, out=offsets[1:])
    return var, n_file, offsets


def _pgen_block_reader(
    reader: Any, n_samples: int, dtype: np.dtype
) -> Callable[[np.ndarray], np.ndarray]:
    """A function reading the given variant rows into a samples x variants block (one buffer)."""
    read_list = reader.read_dosages_list if dtype.kind == "f" else reader.read_list
    buffer = np.empty((_block_snps(n_samples, dtype), n_samples), dtype=dtype)

    def read_block(rows: np.ndarray) -> np.ndarray:
        # pgenlib fills variant-major rows; -9 marks a missing call or dosage.
        out = buffer[: len(rows)]
        read_list(np.ascontiguousarray(rows, dtype=np.uint32), out)
        block = out.T
        block[block == -9] = np.nan if dtype.kind == "f" else _MISSING_I8
        return block

    return read_block


def _pgen_message(err: Exception, path: Path) -> str:
    text = err.args[0] if err.args else str(err)
    if isinstance(text, bytes):  # pgenlib passes C error strings through as bytes
        text = text.decode(errors="replace")
    return str(text).replace(f"{path} ", "").strip().rstrip(".")


# --- VCF / BCF -----------------------------------------------------------------------------


@contextmanager
def _htslib_stderr(lines: list[str]) -> Iterator[None]:
    """Collect what htslib prints on stderr (fd 2), so its reason can go into one InputError.

    On success the collected text (e.g. warnings about undeclared contigs) is written back to
    stderr; on failure the caller folds the last htslib error into its message.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): no capture
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            lines.extend(text.splitlines())
            if text and not failed:
                sys.stderr.write(text)


def _htslib_reason(lines: list[str]) -> str | None:
    errors = [line for line in lines if line.startswith("[E::")]
    if not errors:
        return None
    return errors[-1].split("] ", 1)[-1].strip()


def _text_header_lines(path: Path) -> int | None:
    """Number of header lines of a text VCF (plain or gzip), to turn a record number into a line."""
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        n = 0
        with opener(path, "rb") as handle:
            for line in handle:
                if not line.startswith(b"#"):
                    break
                n += 1
        return n
    except (OSError, EOFError):
        return None


@dataclass
class _VcfProgress:
    records: int = 0  # data records read without error


def _read_vcf(path: Path, keep: frozenset[str] | None, dtype: np.dtype, missing: str) -> ad.AnnData:
    lines: list[str] = []
    progress = _VcfProgress()
    try:
        with _htslib_stderr(lines):
            return _stream_vcf(path, keep, dtype, missing, progress)
    except InputError:
        raise
    except Exception as err:
        # cyvcf2 reports htslib failures as OSError or bare Exception; anything else is a bug.
        if not isinstance(err, OSError) and type(err) is not Exception:
            raise
        raise InputError(path, _vcf_problem(path, err, lines, progress)) from None


def _vcf_problem(path: Path, err: Exception, lines: list[str], progress: _VcfProgress) -> str:
    reason = _htslib_reason(lines)
    if "Duplicated sample name" in (reason or ""):
        name = reason.split("'")[1] if reason.count("'") >= 2 else reason
        return f"duplicate sample ids: {name}; sample names must be unique"
    if "parsing variant" not in str(err):  # the header could not be read
        return f"not a valid VCF/BCF file ({reason or err})"
    where = f"record {progress.records + 1}"
    if not path.name.lower().endswith(".bcf"):
        header = _text_header_lines(path)
        if header is not None:
            where += f", line {header + progress.records + 1}"
    return f"malformed VCF {where}: {reason or err}"


def _gt_dosage(record, out: np.ndarray) -> None:
    """ALT-allele count from GT into `out`; a call with any missing allele is missing."""
    genotype = record.genotype
    if genotype is None:
        out[:] = np.nan if out.dtype.kind == "f" else _MISSING_I8
        return
    # Columns: allele codes (-1 missing, -2 padding of shorter calls), then the phase flag.
    # Column-wise tests: reductions over the short allele axis are slow in numpy.
    calls = genotype.array()
    if calls.shape[1] > 3 and (calls[:, 2:-1] != -2).any():
        raise _Polyploid(calls.shape[1] - 1)
    first = calls[:, 0]
    second = calls[:, 1] if calls.shape[1] > 2 else np.full_like(first, -2)
    haploid = second == -2
    # Haploid calls count as 0 or 2, as PLINK stores them.
    dosage = (first == 1) * (1 + haploid) + (second == 1)
    bad = (first < 0) | (first > 1) | (second == -1) | (second > 1)
    out[:] = dosage
    out[bad] = np.nan if out.dtype.kind == "f" else _MISSING_I8


class _Polyploid(Exception):
    def __init__(self, ploidy: int) -> None:
        self.ploidy = ploidy


def _stream_vcf(
    path: Path, keep: frozenset[str] | None, dtype: np.dtype, missing: str, progress: _VcfProgress
) -> ad.AnnData:
    """Read the kept records of a VCF/BCF block by block into a samples x SNPs AnnData."""
    import cyvcf2

    vcf = cyvcf2.VCF(str(path), lazy=True)
    try:
        samples, use_ds = _vcf_samples(vcf, path, dtype)
        acc = _VcfBlocks(len(samples), dtype, _MissingStats(missing))
        for record in vcf:
            progress.records += 1
            alts = record.ALT
            alt = ",".join(alts) if alts else "."
            vid = record.ID or f"{record.CHROM}:{record.POS}:{record.REF}:{alt}"
            if keep is not None and vid not in keep:
                continue
            if len(alts) > 1:
                raise InputError(
                    path,
                    f"multiallelic variant {vid} at {record.CHROM}:{record.POS}; "
                    "split it into biallelic records first (bcftools norm -m -any)",
                )
            acc.used.add(_vcf_row(record, acc.next_row(), vid, use_ds, path))
            acc.added((vid, record.CHROM, record.POS, record.REF, alt))
        acc.flush()
    finally:
        vcf.close()
    if progress.records == 0:
        raise InputError(path, "has no variant records")
    if keep is not None and not acc.meta and not acc.stats.dropped:
        raise _none_kept(path, keep)
    acc.stats.check(path)
    x = acc.matrix()
    var = pd.DataFrame(acc.meta, columns=["id", "chrom", "pos", "ref", "alt"]).set_index("id")
    _check_unique_snps(path, var.index, _VCF_SNP_HINT)
    values = "+".join(v for v in ("DS", "GT") if v in acc.used) or "GT"
    info = {"format": "vcf", "values": values, "n_snps_in_file": progress.records}
    return _finish(path, x, pd.DataFrame(index=samples), var, acc.stats, info)


def _vcf_samples(vcf: Any, path: Path, dtype: np.dtype) -> tuple[pd.Index, bool]:
    """The VCF's (unique) samples, and whether DS dosages are read (float dtype and a DS field)."""
    samples = pd.Index([str(s) for s in vcf.samples])
    if len(samples) == 0:
        raise InputError(
            path, "has no sample columns (a genotype VCF needs FORMAT and sample columns)"
        )
    _check_unique_samples(path, samples, "sample names must be unique")
    fmt = {h.info().get("ID") for h in vcf.header_iter() if h.type == "FORMAT"}
    use_ds = dtype.kind == "f" and "DS" in fmt
    if "GT" not in fmt and not use_ds:
        if "DS" in fmt:
            raise InputError(
                path, "has no GT FORMAT field; read its DS dosages with dtype='float32'"
            )
        raise InputError(path, "has no GT or DS FORMAT field")
    return samples, use_ds


def _vcf_row(record: Any, row: np.ndarray, vid: str, use_ds: bool, path: Path) -> str:
    """Fill `row` with the record's dosages (DS when read and present, else from GT); returns
    which field was used."""
    ds = record.format("DS") if use_ds else None
    if ds is not None:
        row[:] = ds[:, 0]
        return "DS"
    try:
        _gt_dosage(record, row)
    except _Polyploid as poly:
        message = (
            f"variant {vid} has ploidy {poly.ploidy}; only haploid and diploid calls are supported"
        )
        raise InputError(path, message) from None
    return "GT"


class _VcfBlocks:
    """SNP-major blocks of kept records, the missing-value policy applied per block."""

    def __init__(self, n_samples: int, dtype: np.dtype, stats: _MissingStats) -> None:
        self.n, self.dtype, self.stats = n_samples, dtype, stats
        self.step = _block_snps(n_samples, dtype)
        self.blocks: list[np.ndarray] = []
        self.meta: list[tuple[str, str, int, str, str]] = []
        self.block_meta: list[tuple[str, str, int, str, str]] = []
        self.buffer: np.ndarray | None = None  # SNP-major rows, one per kept record
        self.fill = 0
        self.used: set[str] = set()

    def next_row(self) -> np.ndarray:
        """The buffer row the next record fills."""
        if self.buffer is None:
            self.buffer = np.empty((self.step, self.n), dtype=self.dtype)
        return self.buffer[self.fill]

    def added(self, meta: tuple[str, str, int, str, str]) -> None:
        """Count the filled row; a full buffer becomes a block."""
        self.block_meta.append(meta)
        self.fill += 1
        if self.fill == self.step:
            self.flush()

    def flush(self) -> None:
        """Keep the filled rows as a block (after the missing-value policy)."""
        if not self.fill:
            return
        block = self.buffer[: self.fill]
        mask = self.stats.apply(block.T, [m[0] for m in self.block_meta])
        if mask is not None:
            block = block[mask]  # a copy
            self.block_meta[:] = [m for m, k in zip(self.block_meta, mask, strict=False) if k]
        elif self.fill < len(self.buffer):
            block = block.copy()  # the last, partial block: do not keep the whole buffer
        self.blocks.append(block)
        self.meta.extend(self.block_meta)
        self.block_meta.clear()
        self.buffer, self.fill = None, 0

    def matrix(self) -> np.ndarray:
        """Samples x SNPs; each block is freed once copied, so the peak stays near twice X."""
        x = np.empty((self.n, len(self.meta)), dtype=self.dtype)
        start = 0
        self.blocks.reverse()
        while self.blocks:
            block = self.blocks.pop()
            x[:, start : start + len(block)] = block.T
            start += len(block)
            del block
        return x
