process BUILD_COHORT {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container ?
        'docker://ghcr.io/deepgami/deepgami:0.1.0' :
        'ghcr.io/deepgami/deepgami:0.1.0' }"

    input:
    // modality_files and prior_files are in the order of meta.modality_names / meta.prior_specs
    tuple val(meta), path(labels), path(modality_files, stageAs: 'modality*/*'), path(prior_files, stageAs: 'prior*/*')

    output:
    tuple val(meta), path("cohort.h5mu"), emit: cohort
    path "versions.yml"                 , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prior_args = prior_files ? "--prior-specs ${meta.prior_specs} --prior-files ${prior_files}" : ''
    def label_args = meta.label_columns ? "--label-column ${meta.label_columns}" : ''
    def survival_args = meta.survival_columns ? "--survival-columns ${meta.survival_columns}" : ''
    """
    deepgami_build.py \\
        --labels ${labels} \\
        --modality-names ${meta.modality_names} \\
        --modality-files ${modality_files} \\
        ${prior_args} \\
        ${label_args} ${survival_args} \\
        --out cohort.h5mu \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
        python: \$(python -c "import platform; print(platform.python_version())")
        mudata: \$(python -c "import importlib.metadata as m; print(m.version('mudata'))")
    END_VERSIONS
    """

    stub:
    """
    touch cohort.h5mu

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
    END_VERSIONS
    """
}
