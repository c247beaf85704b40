process PRIORITIZE {
    tag "${meta.id}"
    label 'process_medium'
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container ?
        'docker://ghcr.io/deepgami/deepgami:0.1.0' :
        'ghcr.io/deepgami/deepgami:0.1.0' }"

    input:
    tuple val(meta), path(model), path(cohort)

    output:
    tuple val(meta), path("prioritize/features.tsv"), path("prioritize/latent.tsv"), path("prioritize/links.tsv"), emit: tables
    tuple val(meta), path("prioritize")                                                                          , emit: results
    path "versions.yml"                                                                                          , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def device = task.ext.use_gpu ? 'cuda' : 'cpu'
    """
    export OMP_NUM_THREADS=${task.cpus}
    deepgami_prioritize.py \\
        ${model} \\
        ${cohort} \\
        --out prioritize \\
        --device ${device} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
        python: \$(python -c "import platform; print(platform.python_version())")
        captum: \$(python -c "import importlib.metadata as m; print(m.version('captum'))")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p prioritize
    touch prioritize/features.tsv prioritize/latent.tsv prioritize/links.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
    END_VERSIONS
    """
}
