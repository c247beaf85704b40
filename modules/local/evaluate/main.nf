process EVALUATE {
    tag "${meta.id}"
    label 'process_high'
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container ?
        'docker://ghcr.io/deepgami/deepgami:0.1.0' :
        'ghcr.io/deepgami/deepgami:0.1.0' }"

    input:
    // model and prioritize (folders of TRAIN and PRIORITIZE, or []) feed the report's training curves
    // and prioritization sections
    tuple val(meta), path(cohort), path(params_yaml), path(model), path(prioritize)

    output:
    tuple val(meta), path("evaluate/metrics.tsv"), emit: metrics
    tuple val(meta), path("evaluate/report.html"), emit: report
    tuple val(meta), path("evaluate")            , emit: results
    path "versions.yml"                          , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def params_arg = params_yaml ? "--params ${params_yaml}" : ''
    def model_arg = model ? "--model-dir ${model}" : ''
    def prioritize_arg = prioritize ? "--prioritize-dir ${prioritize}" : ''
    def device = task.ext.use_gpu ? 'cuda' : 'cpu'
    """
    export OMP_NUM_THREADS=${task.cpus}
    deepgami_evaluate.py \\
        ${cohort} \\
        --out evaluate \\
        ${params_arg} \\
        ${model_arg} \\
        ${prioritize_arg} \\
        --device ${device} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
        python: \$(python -c "import platform; print(platform.python_version())")
        scikit-learn: \$(python -c "import importlib.metadata as m; print(m.version('scikit-learn'))")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p evaluate
    touch evaluate/metrics.tsv evaluate/report.html

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
    END_VERSIONS
    """
}
