/*
 * DEEPGAMI: per samplesheet row (a cohort, or a cohort x cell type), in parallel across rows:
 *   BUILD_COHORT -> TRAIN -> PREDICT (all modalities, and each modality alone) -> PRIORITIZE, EVALUATE
 * and one SUMMARY across rows. The same stages as the embedded runner `deepgami run`.
 */

include { BUILD_COHORT } from '../modules/local/build_cohort/main'
include { TRAIN        } from '../modules/local/train/main'
include { PREDICT      } from '../modules/local/predict/main'
include { PRIORITIZE   } from '../modules/local/prioritize/main'
include { EVALUATE     } from '../modules/local/evaluate/main'
include { SUMMARY      } from '../modules/local/summary/main'

/*
 * A samplesheet path: absolute and remote (scheme://) paths are taken as they are; relative paths
 * are resolved against the directory of the samplesheet (the rule `deepgami run` follows too).
 */
def resolveSheetPath(String value, sheet_dir, String row_id, String column) {
    def is_remote = value ==~ /^[A-Za-z][A-Za-z0-9+.-]*:\/\/.*/
    def resolved = (is_remote || value.startsWith('/')) ? file(value) : sheet_dir.resolve(value)
    if (!resolved.exists()) {
        error("Samplesheet row '${row_id}', column ${column}: file not found: ${resolved}")
    }
    return resolved
}

/*
 * 'a=x;b=y' -> [['a', 'x'], ['b', 'y']] (the schema has already checked the form).
 */
def splitPairs(String value) {
    return value.tokenize(';').collect { item ->
        def at = item.indexOf('=')
        [item.substring(0, at), item.substring(at + 1)]
    }
}

/*
 * 'all' (every modality) and, when a cohort has several, each modality alone.
 */
def predictionSets(meta) {
    def names = meta.modality_names.tokenize(',')
    return ['all'] + (names.size() > 1 ? names : [])
}

workflow DEEPGAMI {

    take:
    ch_samplesheet // channel: [ meta, labels, modalities, priors, params_yaml ] from nf-schema samplesheetToList
    sheet_dir      // path: the samplesheet's directory

    main:
    ch_versions = Channel.empty()

    //
    // One row -> [ meta, labels, [modality files], [prior files], params_yaml or [] ]
    //
    ch_rows = ch_samplesheet.map { meta, labels, modalities, priors, params_yaml ->
        def mods = splitPairs(modalities)
        def prior_pairs = priors ? splitPairs(priors) : []
        if (mods.any { it[0] == 'all' }) {
            error("Samplesheet row '${meta.id}': 'all' is reserved for predictions from every modality; rename that modality")
        }
        def row_meta = meta + [
            cell_type     : meta.cell_type ?: '',
            modality_names: mods.collect { it[0] }.join(','),
            prior_specs   : prior_pairs.collect { it[0] }.join(',')
        ]
        [
            row_meta,
            resolveSheetPath(labels, sheet_dir, meta.id, 'labels'),
            mods.collect { resolveSheetPath(it[1], sheet_dir, meta.id, "modalities (${it[0]})") },
            prior_pairs.collect { resolveSheetPath(it[1], sheet_dir, meta.id, "priors (${it[0]})") },
            params_yaml ? resolveSheetPath(params_yaml, sheet_dir, meta.id, 'params') : []
        ]
    }

    ch_params_yaml = ch_rows.map { meta, labels, mods, prior_files, params_yaml -> [ meta, params_yaml ] }

    //
    // MODULE: build one cohort .h5mu per row
    //
    BUILD_COHORT (
        ch_rows.map { meta, labels, mods, prior_files, params_yaml -> [ meta, labels, mods, prior_files ] }
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
            predictionSets(meta).collect { prediction_set -> [ meta, model, cohort, prediction_set ] }
        }
    )
    ch_versions = ch_versions.mix(PREDICT.out.versions.first())

    //
    // MODULE: prioritize input features, latent nodes and prior links
    //
    ch_prioritize = ch_model_cohort.map { meta, model, cohort -> [ meta, [] ] }
    if (!params.skip_prioritize) {
        PRIORITIZE (
            ch_model_cohort
        )
        ch_versions = ch_versions.mix(PRIORITIZE.out.versions.first())
        ch_prioritize = PRIORITIZE.out.results
    }

    //
    // MODULE: DeepGAMI against its ablations and the baselines; the report shows the trained
    // model's curves and the prioritization (as `deepgami run` does)
    //
    if (!params.skip_evaluate) {
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
                cohorts   : rows.collect { it[0] }.join(','),
                cell_types: rows.collect { it[1] }.join(',')
            ]
            [ summary_meta, rows.collect { it[3] } ]
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
