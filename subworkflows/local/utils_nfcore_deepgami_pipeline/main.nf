//
// Subworkflows with functionality specific to the deepgami/deepgami pipeline: what the nf-core
// template's PIPELINE_INITIALISATION / PIPELINE_COMPLETION do (version, parameter validation,
// samplesheet channel, completion summary), written locally (no nf-core/modules dependency).
//

/*
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    IMPORT FUNCTIONS / MODULES / SUBWORKFLOWS
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
*/

include { validateParameters } from 'plugin/nf-schema'
include { paramsSummaryLog   } from 'plugin/nf-schema'
include { samplesheetToList  } from 'plugin/nf-schema'
include { SAMPLESHEET_CHECK  } from '../../../modules/local/samplesheet_check/main'

/*
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    SUBWORKFLOW TO INITIALISE PIPELINE
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
*/

workflow PIPELINE_INITIALISATION {

    take:
    version           // boolean: display version and exit
    validate_params   // boolean: validate parameters against nextflow_schema.json
    monochrome_logs   // boolean: do not use coloured log outputs
    nextflow_cli_args //   array: positional nextflow CLI args
    outdir            //  string: the output directory
    input             //  string: path to the samplesheet

    main:

    ch_versions = channel.empty()

    //
    // Print the version and exit (--version)
    //
    if (flag(version)) {
        log.info("${workflow.manifest.name} ${workflowVersionString()}")
        System.exit(0)
    }

    //
    // Validate parameters (--help is handled by nf-schema: validation.help in nextflow.config)
    // and print the parameter summary
    //
    if (flag(validate_params)) {
        validateParameters()
    }
    log.info(paramsSummaryLog(workflow))

    //
    // Check the config and the command line the pipeline was given
    //
    checkConfigProvided()
    checkProfileProvided(nextflow_cli_args)
    dumpParametersToJSON(outdir)

    //
    // The samplesheet's rules (schema_input.json, unique ids, the reserved modality 'all', the
    // single-cell columns, the prediction sets) live in Python: SAMPLESHEET_CHECK writes one line
    // per row with its names and paths as written. Here the paths become files, resolved against
    // the samplesheet's own folder (remote ones as they are).
    //
    def sheet_file = file(input, checkIfExists: true)
    def sheet_dir = sheet_file.parent
    def schema = "${projectDir}/assets/schema_input.json"
    // nf-schema applies the one schema at launch, before any task (its rows are not used: the
    // channel comes from SAMPLESHEET_CHECK's table)
    samplesheetToList(sheet_file, schema)
    SAMPLESHEET_CHECK (
        channel.of([ [ id: 'samplesheet' ], sheet_file, file(schema, checkIfExists: true) ])
    )
    ch_versions = ch_versions.mix(SAMPLESHEET_CHECK.out.versions)

    ch_samplesheet = SAMPLESHEET_CHECK.out.tsv
        .map { _meta, tsv -> tsv }
        .splitCsv(header: true, sep: '\t')
        .map { row -> sheetRow(row, sheet_dir) }

    emit:
    samplesheet = ch_samplesheet // channel: [ meta, labels, [ modality files ], [ prior files ], params_yaml or [] ]
    versions    = ch_versions
}

/*
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    SUBWORKFLOW FOR PIPELINE COMPLETION
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
*/

workflow PIPELINE_COMPLETION {

    take:
    outdir          //    path: the output directory
    monochrome_logs // boolean: disable ANSI colour codes in log output

    main:
    workflow.onComplete {
        completionSummary(outdir, flag(monochrome_logs))
    }

    workflow.onError {
        log.error("Pipeline failed. See docs/usage.md (troubleshooting) and https://nf-co.re/docs/running/troubleshooting")
    }
}

/*
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    FUNCTIONS
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
*/

//
// A boolean parameter as a boolean: `--skip_prioritize false` arrives as the string 'false' on
// Nextflow >= 26.04 (and from some params files), which Groovy would take as true.
//
def flag(value) {
    if (value instanceof Boolean) {
        return value
    }
    return value != null && value.toString().trim().toLowerCase() in ['true', 'yes', '1']
}

//
// One line of SAMPLESHEET_CHECK's table -> [ meta, labels, [ modality files ], [ prior files ],
// params_yaml or [] ]. meta carries the names the files are staged without (modality_names and
// prior_specs, in file order), the prediction sets, and for single-cell rows the pseudobulk
// modality, its index and its obs keys, and the target columns (several targets, survival).
//
def sheetRow(row, sheet_dir) {
    def meta = [
        id              : row.id,
        cell_type       : row.cell_type,
        modality_names  : row.modality_names,
        prior_specs     : row.prior_specs,
        prediction_sets : row.prediction_sets,
        pseudobulk      : row.pseudobulk,
        pseudobulk_index: row.pseudobulk_index,
        donor_key       : row.donor_key,
        cell_type_key   : row.cell_type_key,
        label_columns   : row.label_columns,
        survival_columns: row.survival_columns
    ]
    return [
        meta,
        sheetPath(row.labels, sheet_dir, row.id, 'labels'),
        row.modality_files.tokenize(';').collect { f -> sheetPath(f, sheet_dir, row.id, 'modalities') },
        row.prior_files.tokenize(';').collect { f -> sheetPath(f, sheet_dir, row.id, 'priors') },
        row.params ? sheetPath(row.params, sheet_dir, row.id, 'params') : []
    ]
}

//
// A samplesheet path as a file to stage: absolute and remote (scheme://) paths as they are,
// relative ones against the samplesheet's folder (as `deepgami run` reads them).
//
def sheetPath(value, sheet_dir, row_id, column) {
    def is_remote = value ==~ /^[A-Za-z][A-Za-z0-9+.-]*:\/\/.*/
    def resolved = (is_remote || value.startsWith('/')) ? file(value) : sheet_dir.resolve(value)
    if (!resolved.exists()) {
        error("Samplesheet row '${row_id}', column ${column}: file not found: ${resolved}")
    }
    return resolved
}

//
// The pipeline version, with the commit when run from a git checkout
//
def workflowVersionString() {
    def version_string = ""
    if (workflow.manifest.version) {
        def prefix_v = workflow.manifest.version[0] != 'v' ? 'v' : ''
        version_string += "${prefix_v}${workflow.manifest.version}"
    }
    if (workflow.commitId) {
        def git_shortsha = workflow.commitId.substring(0, 7)
        version_string += "-g${git_shortsha}"
    }
    return version_string
}

//
// Warn when neither a -profile nor a -c config was given: the run would use no container engine
//
def checkConfigProvided() {
    def valid_config = true
    if (workflow.profile == 'standard' && workflow.configFiles.size() <= 1) {
        log.warn(
            "[${workflow.manifest.name}] You are attempting to run the pipeline without any custom configuration!\n\n" +
            "This will be dependent on your local compute environment but can be achieved via one or more of the following:\n" +
            "   (1) Using an existing pipeline profile e.g. `-profile docker` or `-profile singularity`\n" +
            "   (2) Using an existing nf-core/configs for your institution e.g. `-profile crick` or `-profile uppmax`\n" +
            "   (3) Using your own local custom config e.g. `-c /path/to/your/custom.config`\n\n" +
            "Please refer to docs/usage.md for more details.\n"
        )
        valid_config = false
    }
    return valid_config
}

//
// Refuse a -profile ending in a comma, and warn about positional arguments (a mistyped option)
//
def checkProfileProvided(nextflow_cli_args) {
    if (workflow.profile.endsWith(',')) {
        error(
            "The `-profile` option cannot end with a trailing comma, please remove it and re-run the pipeline!\n" +
            "HINT: A common mistake is to provide multiple values separated by spaces e.g. `-profile test, docker`.\n"
        )
    }
    if (nextflow_cli_args[0]) {
        log.warn(
            "nf-core pipelines do not accept positional arguments. The positional argument `${nextflow_cli_args[0]}` has been detected.\n" +
            "HINT: A common mistake is to provide multiple values separated by spaces e.g. `-profile test, docker`.\n"
        )
    }
}

//
// <outdir>/pipeline_info/params_<timestamp>.json: the parameters of this run
//
def dumpParametersToJSON(outdir) {
    if (outdir == null) {
        return
    }
    def info_dir = file("${outdir}/pipeline_info")
    info_dir.mkdirs()
    def json = groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(params))
    file("${outdir}/pipeline_info/params_${params.trace_report_suffix}.json").text = json + "\n"
}

//
// The one-line verdict at the end of a run, and where the results are
//
def completionSummary(outdir, monochrome_logs) {
    def green = monochrome_logs ? '' : "\033[0;32m"
    def yellow = monochrome_logs ? '' : "\033[0;33m"
    def red = monochrome_logs ? '' : "\033[0;31m"
    def reset = monochrome_logs ? '' : "\033[0m"
    def name = workflow.manifest.name
    if (workflow.success) {
        if (workflow.stats.ignoredCount == 0) {
            log.info("-${green}[${name}]${reset}- ${green}Pipeline completed successfully${reset}: ${outdir}/summary.tsv, ${outdir}/<id>/")
        }
        else {
            log.info("-${yellow}[${name}]${reset}- ${yellow}Pipeline completed successfully, but with errored process(es)${reset}")
        }
    }
    else {
        log.info("-${red}[${name}]${reset}- ${red}Pipeline completed with errors${reset}")
    }
}
