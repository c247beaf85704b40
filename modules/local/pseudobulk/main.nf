process PSEUDOBULK {
    tag "${meta.id}"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container ?
        'docker://ghcr.io/deepgami/deepgami:0.1.0' :
        'ghcr.io/deepgami/deepgami:0.1.0' }"

    input:
    // cells: the row's cell-level .h5ad (the modality named in the samplesheet's pseudobulk column);
    // meta.donor_key / meta.cell_type_key: its obs columns
    tuple val(meta), path(cells)

    output:
    tuple val(meta), path("pseudobulk/*.h5ad"), emit: h5ad
    tuple val(meta), path("pseudobulk")       , emit: results
    tuple val(meta), path("cohorts.tsv")      , emit: cohorts
    path "versions.yml"                       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus}
    deepgami_pseudobulk.py \\
        ${cells} \\
        --donor-key ${meta.donor_key} \\
        --cell-type-key ${meta.cell_type_key} \\
        --out pseudobulk \\
        --cohorts cohorts.tsv \\
        --row-id ${meta.id} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
        python: \$(python -c "import platform; print(platform.python_version())")
        scanpy: \$(python -c "import importlib.metadata as m; print(m.version('scanpy'))")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p pseudobulk
    touch pseudobulk/stub_cell_type.h5ad
    printf 'id\\tcell_type\\tfile\\n${meta.id}.stub_cell_type\\tstub_cell_type\\tstub_cell_type.h5ad\\n' > cohorts.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
    END_VERSIONS
    """
}
