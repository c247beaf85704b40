/*
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    DEEPGAMI
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    Per samplesheet row (a cohort, or a cohort x cell type), in parallel across rows:
      [PSEUDOBULK: a single-cell row -> one cohort per cell type, id <id>.<cell type>]
      BUILD_COHORT -> TRAIN -> PREDICT (all modalities, and each modality alone) -> PRIORITIZE, EVALUATE
    and one SUMMARY across rows. The same stages as the embedded runner `deepgami run`.
----------------------------------------------------------------------------------------
*/

include { PSEUDOBULK   } from '../modules/local/pseudobulk/main'
include { BUILD_COHORT } from '../modules/local/build_cohort/main'
include { TRAIN        } from '../modules/local/train/main'
include { PREDICT      } from '../modules/local/predict/main'
include { PRIORITIZE   } from '../modules/local/prioritize/main'
include { EVALUATE     } from '../modules/local/evaluate/main'
include { SUMMARY      } from '../modules/local/summary/main'

include { flag         } from '../subworkflows/local/utils_nfcore_deepgami_pipeline'

workflow DEEPGAMI {

    take:
    ch_samplesheet // channel: [ meta, labels, [ modality files ], [ prior files ], params_yaml or [] ]

    main:
    ch_versions = channel.empty()

    //
    // Single-cell rows (a `pseudobulk` modality) and bulk rows
    //
    ch_branched = ch_samplesheet.branch { row ->
        single_cell: row[0].pseudobulk
        bulk: true
    }

    //
    // MODULE: cell-level .h5ad -> one pseudobulk .h5ad per cell type; its cohorts.tsv (written by
    // deepgami.pipeline.samplesheet.fan_out_ids) lists the cohorts the row spreads into: id
    // <row id>.<cell type>, the cell type, and the file that replaces the cell-level modality
    //
    PSEUDOBULK (
        ch_branched.single_cell.map { meta, _labels, mod_files, _prior_files, _params_yaml ->
            [ meta, mod_files[meta.pseudobulk_index as Integer] ]
        }
    )
    ch_versions = ch_versions.mix(PSEUDOBULK.out.versions.first())

    ch_cell_types = ch_branched.single_cell
        .map { row -> [ row[0].id, row ] }
        .join(PSEUDOBULK.out.results.map { meta, pseudobulk_dir -> [ meta.id, pseudobulk_dir ] })
        .join(PSEUDOBULK.out.cohorts.map { meta, cohorts -> [ meta.id, cohorts ] })
        .splitCsv(header: true, sep: '\t', elem: 3)
        .map { _id, row, pseudobulk_dir, cohort ->
            def meta = row[0]
            def mod_files = row[2].collect { f -> f }
            mod_files[meta.pseudobulk_index as Integer] = pseudobulk_dir.resolve(cohort.file)
            [ meta + [ id: cohort.id, cell_type: cohort.cell_type ], row[1], mod_files, row[3], row[4] ]
        }

    ch_rows = ch_branched.bulk.mix(ch_cell_types)

    ch_params_yaml = ch_rows.map { meta, labels, mod_files, prior_files, params_yaml -> [ meta, params_yaml ] }

    //
    // MODULE: build one cohort .h5mu per row (per cell type for single-cell rows)
    //
    BUILD_COHORT (
        ch_rows.map { meta, labels, mod_files, prior_files, params_yaml -> [ meta, labels, mod_files, prior_files ] }
    )
    ch_versions = ch_versions.mix(BUILD_COHORT.out.versions.first())

    //
    // MODULE: train a DeepGAMI model per cohort
    //
    TRAIN (
        BUILD_COHORT.out.cohort.join(ch_params_yaml)
    )
    ch_versions = ch_versions.mix(TRAIN.out.versions.first())

    ch_model_cohort = TRAIN.out.model.join(BUILD_COHORT.out.cohort)

    //
    // MODULE: predict from all modalities and from each modality alone
    //
    PREDICT (
        ch_model_cohort.flatMap { meta, model, cohort ->
            meta.prediction_sets.tokenize(',').collect { prediction_set -> [ meta, model, cohort, prediction_set ] }
        }
    )
    ch_versions = ch_versions.mix(PREDICT.out.versions.first())

    //
    // MODULE: prioritize input features, latent nodes and prior links
    //
    ch_prioritize = ch_model_cohort.map { meta, _model, _cohort -> [ meta, [] ] }
    if (!flag(params.skip_prioritize)) {
        PRIORITIZE (
            ch_model_cohort
        )
        ch_versions = ch_versions.mix(PRIORITIZE.out.versions.first())
        ch_prioritize = PRIORITIZE.out.results
    }

    //
    // MODULE: DeepGAMI against its ablations and the baselines; the report shows the trained
    // model's curves and the prioritization (as `deepgami run` does). A cohort of several targets
    // (or a survival target) is evaluated per target (targets/<target>/ in its output).
    //
    if (!flag(params.skip_evaluate)) {
        EVALUATE (
            BUILD_COHORT.out.cohort
                .join(ch_params_yaml)
                .join(TRAIN.out.model)
                .join(ch_prioritize)
        )
        ch_versions = ch_versions.mix(EVALUATE.out.versions.first())
    }

    //
    // MODULE: one table over every cohort x prediction set
    //
    ch_summary_input = PREDICT.out.metrics
        .map { meta, prediction_set, metrics -> [ meta.id, meta.cell_type, prediction_set, metrics ] }
        .toSortedList { a, b -> a[0] <=> b[0] ?: a[2] <=> b[2] }
        .filter { rows -> !rows.isEmpty() }
        .map { rows ->
            def summary_meta = [
                id        : 'summary',
                cohorts   : rows.collect { row -> row[0] }.join(','),
                cell_types: rows.collect { row -> row[1] }.join(',')
            ]
            [ summary_meta, rows.collect { row -> row[3] } ]
        }
    SUMMARY (
        ch_summary_input
    )
    ch_versions = ch_versions.mix(SUMMARY.out.versions)

    //
    // Collate software versions
    //
    ch_collated_versions = ch_versions
        .unique()
        .collectFile(
            storeDir: "${params.outdir}/pipeline_info",
            name    : 'deepgami_software_versions.yml',
            sort    : true,
            newLine : true
        )

    emit:
    summary  = SUMMARY.out.tsv
    versions = ch_collated_versions
}
