process SAMPLESHEET_CHECK {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container ?
        'docker://ghcr.io/deepgami/deepgami:0.1.0' :
        'ghcr.io/deepgami/deepgami:0.1.0' }"

    input:
    // schema: assets/schema_input.json, staged so that every executor (and conda) reads the same one
    tuple val(meta), path(samplesheet), path(schema)

    output:
    tuple val(meta), path("samplesheet.valid.tsv"), emit: tsv
    path "versions.yml"                           , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    deepgami_samplesheet.py \\
        ${samplesheet} \\
        --schema ${schema} \\
        --out samplesheet.valid.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
        python: \$(python -c "import platform; print(platform.python_version())")
        jsonschema: \$(python -c "import importlib.metadata as m; print(m.version('jsonschema'))")
    END_VERSIONS
    """

    stub:
    """
    deepgami_samplesheet.py ${samplesheet} --schema ${schema} --out samplesheet.valid.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
    END_VERSIONS
    """
}
