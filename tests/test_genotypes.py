"""Genotype importers: PLINK 1/2, VCF/BCF and CSV give the same dosages, ids and errors."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import cyvcf2
import numpy as np
import pandas as pd
import pgenlib
import pytest
from bed_reader import to_bed

from deepgami.data import genotypes
from deepgami.errors import InputError
from deepgami.data.genotypes import is_genotype_path, read_genotypes

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "test_genotypes"
MISSING = -127
N_SAMPLES, N_SNPS = 12, 30


# --- writers (also used to make assets/test_genotypes) -------------------------------------


def make_genotypes(seed: int = 0, missing: int = 0) -> dict:
    """A random 12 x 30 genotype set: calls (int8, -127 missing), dosages and variant metadata."""
    rng = np.random.default_rng(seed)
    calls = rng.integers(0, 3, (N_SAMPLES, N_SNPS)).astype(np.int8)
    # Dosages on a 1/4 grid are exact in text, float32 and pgen's 1/16384 encoding.
    dosage = np.clip(calls + rng.choice([-0.25, 0.0, 0.25], calls.shape), 0, 2).astype(np.float32)
    if missing:
        cells = rng.choice(calls.size, missing, replace=False)
        calls.flat[cells] = MISSING
        dosage.flat[cells] = np.nan
    bases = np.array(list("ACGT"))
    ref = rng.integers(0, 4, N_SNPS)
    alt = (ref + rng.integers(1, 4, N_SNPS)) % 4
    ids = [f"rs{100 + j}" for j in range(N_SNPS)]
    ids[5] = "."  # no id: becomes chrom:pos:ref:alt
    return {
        "calls": calls,
        "dosage": dosage,
        "samples": [f"S{i:02d}" for i in range(N_SAMPLES)],
        "fid": [f"F{i // 2}" for i in range(N_SAMPLES)],
        "ids": ids,
        "chrom": ["1"] * 20 + ["2"] * 10,
        "pos": [1000 + 17 * j for j in range(N_SNPS)],
        "ref": bases[ref].tolist(),
        "alt": bases[alt].tolist(),
    }


def var_names(g: dict) -> list[str]:
    return [
        i if i != "." else f"{c}:{p}:{r}:{a}"
        for i, c, p, r, a in zip(g["ids"], g["chrom"], g["pos"], g["ref"], g["alt"])
    ]


def write_bed(prefix: Path, g: dict) -> Path:
    path = Path(f"{prefix}.bed")
    properties = {
        "fid": g["fid"],
        "iid": g["samples"],
        "sid": g["ids"],
        "chromosome": g["chrom"],
        "bp_position": g["pos"],
        "allele_1": g["alt"],
        "allele_2": g["ref"],  # A1 = ALT, as plink2 writes
    }
    to_bed(path, g["calls"], properties=properties, count_A1=True, num_threads=1)
    return path


def write_pgen(prefix: Path, g: dict, dosages: bool = False, fid: bool = True) -> Path:
    path = Path(f"{prefix}.pgen")
    writer = pgenlib.PgenWriter(
        bytes(path), N_SAMPLES, N_SNPS, nonref_flags=False, dosage_present=dosages
    )
    for j in range(N_SNPS):
        if dosages:
            writer.append_dosages(np.ascontiguousarray(np.nan_to_num(g["dosage"][:, j], nan=-9)))
        else:
            col = g["calls"][:, j].copy()
            col[col == MISSING] = -9
            writer.append_biallelic(np.ascontiguousarray(col))
    writer.close()
    pvar = pd.DataFrame(
        {"#CHROM": g["chrom"], "POS": g["pos"], "ID": g["ids"], "REF": g["ref"], "ALT": g["alt"]}
    )
    with open(f"{prefix}.pvar", "w") as handle:
        handle.write("##fileformat=PVARv1.0\n")
        pvar.to_csv(handle, sep="\t", index=False)
    psam = (
        pd.DataFrame({"#FID": g["fid"], "IID": g["samples"], "SEX": "NA"})
        if fid
        else pd.DataFrame({"#IID": g["samples"]})
    )
    psam.to_csv(f"{prefix}.psam", sep="\t", index=False)
    return path


def vcf_text(g: dict, ds: bool = False, samples: list[str] | None = None) -> str:
    """Plain-text VCF; calls vary phasing and allele order so the GT parser is exercised."""
    gt = {0: ["0/0", "0|0"], 1: ["0/1", "1|0"], 2: ["1/1", "1|1"], MISSING: ["./.", ".|."]}
    lines = [
        "##fileformat=VCFv4.2",
        *[f"##contig=<ID={c}>" for c in dict.fromkeys(g["chrom"])],
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    ]
    if ds:
        lines.append('##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage">')
    lines.append(
        "\t".join(
            [
                "#CHROM",
                "POS",
                "ID",
                "REF",
                "ALT",
                "QUAL",
                "FILTER",
                "INFO",
                "FORMAT",
                *(samples or g["samples"]),
            ]
        )
    )
    for j in range(N_SNPS):
        cells = []
        for i in range(N_SAMPLES):
            cell = gt[int(g["calls"][i, j])][(i + j) % 2]
            if ds:
                d = g["dosage"][i, j]
                cell += ":" + ("." if np.isnan(d) else f"{d:g}")
            cells.append(cell)
        fixed = [
            g["chrom"][j],
            str(g["pos"][j]),
            g["ids"][j],
            g["ref"][j],
            g["alt"][j],
            ".",
            "PASS",
            ".",
        ]
        lines.append("\t".join(fixed + ["GT:DS" if ds else "GT"] + cells))
    return "\n".join(lines) + "\n"


def write_vcf(path: Path, g: dict, ds: bool = False) -> Path:
    Path(path).write_text(vcf_text(g, ds))
    return Path(path)


def recompress(vcf: Path, out: Path) -> Path:
    """bgzipped VCF (.vcf.gz) or BCF, written by htslib through cyvcf2."""
    source = cyvcf2.VCF(str(vcf))
    writer = cyvcf2.Writer(str(out), source, mode="wb" if out.suffix == ".bcf" else "wz")
    for record in source:
        writer.write_record(record)
    writer.close()
    source.close()
    return out


def write_csv(path: Path, g: dict) -> Path:
    frame = pd.DataFrame(g["calls"], index=g["samples"], columns=var_names(g)).replace(
        MISSING, np.nan
    )
    frame.rename_axis("sample").to_csv(path)
    return path


def write_fixture_set(directory: str | Path, seed: int = 7) -> dict[str, Path]:
    """The assets/test_genotypes set: one genotype matrix as .bed, .pgen, .vcf and .csv."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    g = make_genotypes(seed)
    return {
        "bed": write_bed(directory / "toy", g),
        "pgen": write_pgen(directory / "toy", g),
        "vcf": write_vcf(directory / "toy.vcf", g),
        "csv": write_csv(directory / "toy.csv", g),
    }


def all_formats(tmp_path: Path, g: dict) -> dict[str, Path]:
    vcf = write_vcf(tmp_path / "g.vcf", g)
    return {
        "bed": write_bed(tmp_path / "g", g),
        "pgen": write_pgen(tmp_path / "g", g),
        "vcf": vcf,
        "vcf.gz": recompress(vcf, tmp_path / "g.vcf.gz"),
        "bcf": recompress(vcf, tmp_path / "g.bcf"),
    }


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 3 SNPs, so every read crosses block boundaries."""
    monkeypatch.setattr(genotypes, "_CHUNK_BYTES", 3 * N_SAMPLES * 4)


# --- formats agree --------------------------------------------------------------------------


def test_all_formats_import_the_same(tmp_path, small_blocks):
    g = make_genotypes()
    paths = all_formats(tmp_path, g)
    csv = pd.read_csv(write_csv(tmp_path / "g.csv", g), index_col=0)
    for name, path in paths.items():
        adata = read_genotypes(path)
        assert adata.X.dtype == np.int8, name
        np.testing.assert_array_equal(adata.X, g["calls"], err_msg=name)
        np.testing.assert_array_equal(adata.X, csv.to_numpy(), err_msg=name)
        assert list(adata.obs_names) == g["samples"] == list(csv.index), name
        assert list(adata.var_names) == var_names(g) == list(csv.columns), name
        assert adata.var["chrom"].astype(str).tolist() == g["chrom"], name
        assert adata.var["pos"].tolist() == g["pos"], name
        assert adata.var["ref"].tolist() == g["ref"] and adata.var["alt"].tolist() == g["alt"], name
        assert adata.uns["genotypes"]["counted_allele"] == "alt"
        adata.write_h5ad(tmp_path / f"{name}.h5ad")  # everything read is storable
        np.testing.assert_array_equal(ad.read_h5ad(tmp_path / f"{name}.h5ad").X, g["calls"])
    assert read_genotypes(paths["bed"]).obs["fid"].tolist() == g["fid"]
    assert var_names(g)[5] == f"1:{g['pos'][5]}:{g['ref'][5]}:{g['alt'][5]}"


def test_float32_dosages_agree(tmp_path, small_blocks):
    g = make_genotypes(seed=3)
    vcf = read_genotypes(write_vcf(tmp_path / "d.vcf", g, ds=True), dtype="float32")
    pgen = read_genotypes(write_pgen(tmp_path / "d", g, dosages=True), dtype="float32")
    for adata in (vcf, pgen):
        assert adata.X.dtype == np.float32
        np.testing.assert_array_equal(adata.X, g["dosage"])
    assert vcf.uns["genotypes"]["values"] == "DS"
    # Hard calls read as float32 are the same numbers as the int8 import.
    for path in all_formats(tmp_path, g).values():
        np.testing.assert_array_equal(
            read_genotypes(path, dtype="float32").X, g["calls"].astype(np.float32)
        )


def test_psam_without_fid_and_headerless_pvar(tmp_path):
    g = make_genotypes()
    path = write_pgen(tmp_path / "p", g, fid=False)
    # A .pvar without header line is read in .bim column order.
    bim = pd.DataFrame(
        {"c": g["chrom"], "i": g["ids"], "cm": 0, "p": g["pos"], "a1": g["alt"], "a2": g["ref"]}
    )
    bim.to_csv(tmp_path / "p.pvar", sep="\t", header=False, index=False)
    adata = read_genotypes(path)
    assert "fid" not in adata.obs and list(adata.obs_names) == g["samples"]
    assert list(adata.var_names) == var_names(g)
    np.testing.assert_array_equal(adata.X, g["calls"])


def test_gt_edge_cases(tmp_path):
    text = (
        "##fileformat=VCFv4.2\n##contig=<ID=X>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\td\n"
        "X\t10\tv1\tA\tG\t.\t.\t.\tGT\t1\t0\t0/.\t1|1\n"  # haploid counts 0/2; half-missing is missing
        "X\t20\tv2\tA\t.\t.\t.\t.\tGT\t0/0\t0\t.\t0|0\n"  # monomorphic site, ALT '.'
    )
    path = tmp_path / "x.vcf"
    path.write_text(text)
    adata = read_genotypes(path, missing="mean")
    np.testing.assert_array_equal(
        adata.X, [[2, 0], [0, 0], [1, 0], [2, 0]]
    )  # mean of 2,0,2 = 4/3 -> 1
    assert adata.var["alt"].tolist() == ["G", "."]
    assert adata.uns["genotypes"]["missing_values"] == 2


# --- keep_snps ------------------------------------------------------------------------------


def test_keep_snps_in_file_order(tmp_path, small_blocks):
    g = make_genotypes()
    names = var_names(g)
    wanted = [names[25], names[5], "rs_not_here", names[0], names[13], names[14]]
    order = sorted(names.index(w) for w in wanted if w in names)
    for name, path in all_formats(tmp_path, g).items():
        adata = read_genotypes(path, keep_snps=wanted)
        assert list(adata.var_names) == [names[j] for j in order], name
        np.testing.assert_array_equal(adata.X, g["calls"][:, order], err_msg=name)
        assert adata.uns["genotypes"]["n_snps_in_file"] == N_SNPS


def test_keep_snps_reads_only_kept_columns(tmp_path, monkeypatch):
    from bed_reader import open_bed

    seen = []
    original = open_bed.read

    def spy(self, index=None, **kwargs):
        seen.append(index)
        return original(self, index=index, **kwargs)

    monkeypatch.setattr(open_bed, "read", spy)
    path = write_bed(tmp_path / "g", make_genotypes())
    read_genotypes(path, keep_snps=["rs101", "rs120", "rs121"])
    cols = np.concatenate(
        [np.arange(c.start, c.stop) if isinstance(c, slice) else c for _, c in seen]
    )
    assert cols.tolist() == [1, 20, 21]


def test_keep_snps_matching_nothing(tmp_path):
    g = make_genotypes()
    for path in all_formats(tmp_path, g).values():
        with pytest.raises(InputError) as err:
            read_genotypes(path, keep_snps={"rsA", "rsB"})
        assert err.value.message == "none of the 2 prior sources are SNPs in this file"
        assert err.value.path == str(path)


# --- missing calls --------------------------------------------------------------------------


def test_missing_error_names_the_count(tmp_path):
    g = make_genotypes(missing=7)
    n_snps = int((g["calls"] == MISSING).any(axis=0).sum())
    for path in all_formats(tmp_path, g).values():
        with pytest.raises(InputError) as err:
            read_genotypes(path)
        assert err.value.message == (
            f"7 missing genotype calls in {n_snps} SNPs; choose a policy with --missing mean or --missing drop-feature"
        )


def test_missing_mean_and_drop(tmp_path, small_blocks):
    g = make_genotypes(missing=9)
    calls = g["calls"]
    is_missing = calls == MISSING
    observed = np.where(is_missing, 0, calls).sum(axis=0) / (~is_missing).sum(axis=0)
    expected_i8 = np.where(is_missing, np.rint(observed), calls).astype(np.int8)
    expected_f32 = np.where(is_missing, observed, calls).astype(np.float32)
    keep = ~is_missing.any(axis=0)
    for name, path in all_formats(tmp_path, g).items():
        mean = read_genotypes(path, missing="mean")
        np.testing.assert_array_equal(mean.X, expected_i8, err_msg=name)
        assert mean.uns["genotypes"]["missing_values"] == 9
        np.testing.assert_array_equal(
            read_genotypes(path, missing="mean", dtype="float32").X, expected_f32, err_msg=name
        )
        dropped = read_genotypes(path, missing="drop-feature")
        np.testing.assert_array_equal(dropped.X, calls[:, keep], err_msg=name)
        assert list(dropped.var_names) == [v for v, k in zip(var_names(g), keep) if k]
        assert dropped.uns["genotypes"]["dropped_features"] == [
            v for v, k in zip(var_names(g), keep) if not k
        ]
    # The record of what was done is writable to .h5ad.
    dropped.write_h5ad(tmp_path / "g.h5ad")
    assert ad.read_h5ad(tmp_path / "g.h5ad").uns["genotypes"]["missing_values"] == 9


def test_mean_of_a_snp_without_calls_is_zero(tmp_path):
    g = make_genotypes()
    g["calls"][:, 3] = MISSING
    adata = read_genotypes(write_bed(tmp_path / "g", g), missing="mean")
    assert (adata.X[:, 3] == 0).all()


def test_drop_everything_is_an_error(tmp_path):
    g = make_genotypes()
    g["calls"][0, :] = MISSING
    with pytest.raises(InputError, match="every SNP has missing calls"):
        read_genotypes(write_bed(tmp_path / "g", g), missing="drop-feature")


# --- errors ---------------------------------------------------------------------------------


def test_missing_companion_files(tmp_path):
    g = make_genotypes()
    bed = write_bed(tmp_path / "g", g)
    pgen = write_pgen(tmp_path / "g", g)
    (tmp_path / "g.fam").unlink()
    with pytest.raises(InputError) as err:
        read_genotypes(bed)
    assert (
        err.value.message
        == "companion file g.fam not found; a PLINK .bed needs .bim and .fam files with the same prefix"
    )
    (tmp_path / "g.bim").unlink()
    with pytest.raises(InputError, match="companion file g.bim not found"):
        read_genotypes(bed)
    (tmp_path / "g.pvar").unlink()
    with pytest.raises(InputError) as err:
        read_genotypes(pgen)
    assert (
        err.value.message
        == "companion file g.pvar not found; a PLINK 2 .pgen needs .pvar and .psam files with the same prefix"
    )
    with pytest.raises(InputError) as err:
        read_genotypes(tmp_path / "absent.vcf")
    assert err.value.message == "file not found"


def test_malformed_vcf(tmp_path, capfd):
    path = tmp_path / "bad.vcf"
    lines = vcf_text(make_genotypes()).splitlines()
    lines[7] = lines[7].rsplit("\t", 1)[0]  # the third record loses a sample column
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        read_genotypes(path)
    assert err.value.message == (
        "malformed VCF record 3, line 8: Number of columns at 1:1034 does not match the number of samples (11 vs 12)"
    )
    assert "[E::" not in capfd.readouterr().err  # htslib's own message went into the one line
    path.write_text("sample,rs1\nS1,0\n")
    with pytest.raises(InputError, match=r"^.*bad\.vcf: not a valid VCF/BCF file"):
        read_genotypes(path)


def test_duplicate_sample_ids(tmp_path):
    g = make_genotypes()
    g["samples"][4] = g["samples"][1]
    with pytest.raises(InputError) as err:
        read_genotypes(write_bed(tmp_path / "g", g))
    assert err.value.path == str(tmp_path / "g.fam")
    assert (
        err.value.message
        == "duplicate sample ids: S01; IIDs must be unique across families (the FID is not part of the sample id)"
    )
    with pytest.raises(InputError) as err:
        read_genotypes(write_vcf(tmp_path / "g.vcf", g))
    assert err.value.message == "duplicate sample ids: S01; sample names must be unique"


def test_duplicate_snp_ids(tmp_path):
    g = make_genotypes()
    g["ids"][9] = g["ids"][2]
    with pytest.raises(InputError) as err:
        read_genotypes(write_bed(tmp_path / "g", g))
    assert err.value.message == (
        "duplicate SNP ids: rs102; give every variant a unique id (plink2 --set-all-var-ids '@:#:$r:$a') "
        "or remove duplicates (plink2 --rm-dup)"
    )
    with pytest.raises(InputError) as err:
        read_genotypes(write_vcf(tmp_path / "g.vcf", g))
    assert err.value.message == (
        "duplicate SNP ids: rs102; give every variant a unique id (bcftools annotate --set-id '%CHROM:%POS:%REF:%ALT') "
        "or remove duplicates (bcftools norm -d exact)"
    )
    # A duplicate outside keep_snps does not matter.
    assert read_genotypes(tmp_path / "g.bed", keep_snps=["rs101"]).n_vars == 1


def test_multiallelic_and_fieldless_vcf(tmp_path):
    g = make_genotypes()
    g["alt"][4] = "T,G" if g["ref"][4] != "T" else "A,G"
    path = write_vcf(tmp_path / "m.vcf", g)
    with pytest.raises(
        InputError,
        match=r"multiallelic variant rs104 at 1:1068; split it into biallelic records first",
    ):
        read_genotypes(path)
    assert read_genotypes(path, keep_snps=["rs103"]).n_vars == 1
    no_gt = tmp_path / "ds.vcf"
    text = vcf_text(make_genotypes(), ds=True).replace(
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n', ""
    )
    no_gt.write_text(text)
    with pytest.raises(InputError) as err:
        read_genotypes(no_gt)
    assert err.value.message == "has no GT FORMAT field; read its DS dosages with dtype='float32'"


def test_multiallelic_pgen_readable_around_it(tmp_path):
    g = make_genotypes()
    writer = pgenlib.PgenWriter(
        bytes(tmp_path / "m.pgen"), N_SAMPLES, N_SNPS, nonref_flags=False, allele_ct_limit=3
    )
    for j in range(N_SNPS):
        if j == 4:  # one triallelic variant: pgenlib then needs allele offsets for every read
            alleles = np.zeros(2 * N_SAMPLES, dtype=np.int32)
            alleles[1] = 2
            writer.append_alleles(alleles)
        else:
            writer.append_biallelic(np.ascontiguousarray(g["calls"][:, j]))
    writer.close()
    alt = [a + ",N" if j == 4 else a for j, a in enumerate(g["alt"])]
    pvar = pd.DataFrame(
        {"#CHROM": g["chrom"], "POS": g["pos"], "ID": g["ids"], "REF": g["ref"], "ALT": alt}
    )
    pvar.to_csv(tmp_path / "m.pvar", sep="\t", index=False)
    pd.DataFrame({"#IID": g["samples"]}).to_csv(tmp_path / "m.psam", sep="\t", index=False)
    with pytest.raises(
        InputError, match="multiallelic variant rs104; split it into biallelic variants first"
    ):
        read_genotypes(tmp_path / "m.pgen")
    others = [v for v in var_names(g) if v != "rs104"]
    adata = read_genotypes(tmp_path / "m.pgen", keep_snps=others)
    assert list(adata.var_names) == others
    np.testing.assert_array_equal(adata.X, np.delete(g["calls"], 4, axis=1))


def test_bed_size_mismatch(tmp_path):
    g = make_genotypes()
    bed = write_bed(tmp_path / "g", g)
    fam = (tmp_path / "g.fam").read_text().splitlines()
    (tmp_path / "g.fam").write_text("\n".join(fam[:-4]) + "\n")
    with pytest.raises(
        InputError,
        match=r"size 93 bytes does not match 30 SNPs in g.bim and 8 samples in g.fam \(expected 63\)",
    ):
        read_genotypes(bed)


def test_arguments_and_suffixes(tmp_path):
    assert all(is_genotype_path(f"x{s}") for s in (".bed", ".pgen", ".vcf", ".VCF.GZ", ".bcf"))
    assert not any(is_genotype_path(p) for p in ("x.csv", "x.bim", "x.gz", "vcf"))
    with pytest.raises(ValueError, match="dtype"):
        read_genotypes(tmp_path / "x.bed", dtype="float64")
    with pytest.raises(ValueError, match="missing"):
        read_genotypes(tmp_path / "x.bed", missing="zero")


# --- assets ---------------------------------------------------------------------------------


def test_assets_agree():
    """assets/test_genotypes: one matrix as .bed, .pgen, .vcf and .csv (made by write_fixture_set)."""
    csv = pd.read_csv(ASSETS / "toy.csv", index_col=0)
    for suffix in ("bed", "pgen", "vcf"):
        adata = read_genotypes(ASSETS / f"toy.{suffix}")
        np.testing.assert_array_equal(adata.X, csv.to_numpy())
        assert list(adata.obs_names) == list(csv.index)
        assert list(adata.var_names) == list(csv.columns)
