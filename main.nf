#!/usr/bin/env nextflow
/*
 * deepgami: biologically guided multimodal phenotype prediction (DeepGAMI) per cohort, with
 * prioritization of SNP->gene and TF->gene links.
 *
 *   nextflow run . -profile test,docker --outdir results
 *   nextflow run . -profile docker --input samplesheet.csv --outdir results
 *
 * The embedded equivalent, without Nextflow: deepgami run --samplesheet samplesheet.csv --outdir results
 */

include { validateParameters; paramsSummaryLog; samplesheetToList } from 'plugin/nf-schema'
include { DEEPGAMI } from './workflows/deepgami'

workflow {

    main:
    validateParameters()
    log.info paramsSummaryLog(workflow)

    //
    // Rows validated against assets/schema_input.json (the schema `deepgami run` uses as well);
    // relative paths inside the samplesheet are resolved against its own directory.
    //
    def samplesheet = file(params.input, checkIfExists: true)
    ch_samplesheet = Channel.fromList(
        samplesheetToList(samplesheet, "${projectDir}/assets/schema_input.json")
    )

    DEEPGAMI (
        ch_samplesheet,
        samplesheet.parent
    )
}
