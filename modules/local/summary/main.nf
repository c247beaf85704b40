process SUMMARY {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container ?
        'docker://ghcr.io/deepgami/deepgami:0.1.0' :
        'ghcr.io/deepgami/deepgami:0.1.0' }"

    input:
    // meta.cohorts and meta.cell_types: comma-separated, one entry per file of metrics_files, same order;
    // each file is a PREDICT <prediction_set>.metrics.json
    tuple val(meta), path(metrics_files, stageAs: 'metrics*/*')

    output:
    tuple val(meta), path("summary.tsv") , emit: tsv
    tuple val(meta), path("summary.html"), emit: html
    path "versions.yml"                  , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    deepgami_summary.py \\
        --cohorts ${meta.cohorts} \\
        --cell-types=${meta.cell_types} \\
        --metrics ${metrics_files} \\
        --out summary.tsv \\
        --html summary.html \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
        python: \$(python -c "import platform; print(platform.python_version())")
        pandas: \$(python -c "import importlib.metadata as m; print(m.version('pandas'))")
    END_VERSIONS
    """

    stub:
    """
    touch summary.tsv summary.html

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
    END_VERSIONS
    """
}
