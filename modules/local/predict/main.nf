process PREDICT {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container ?
        'docker://ghcr.io/deepgami/deepgami:0.1.0' :
        'ghcr.io/deepgami/deepgami:0.1.0' }"

    input:
    // prediction_set: 'all' (every modality) or the name of the one modality given to the model
    tuple val(meta), path(model), path(cohort), val(prediction_set)

    output:
    tuple val(meta), val(prediction_set), path("predictions/${prediction_set}.tsv")         , emit: predictions
    tuple val(meta), val(prediction_set), path("predictions/${prediction_set}.metrics.json"), emit: metrics
    // a survival target with known time and event: Kaplan-Meier curves by predicted risk group
    tuple val(meta), val(prediction_set), path("predictions/${prediction_set}.km.png"), optional: true, emit: km
    path "versions.yml"                                                                     , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def modality_arg = prediction_set == 'all' ? '' : "--modalities ${prediction_set}"
    def device = task.ext.use_gpu ? 'cuda' : 'cpu'
    """
    export OMP_NUM_THREADS=${task.cpus}
    mkdir -p predictions
    deepgami_predict.py \\
        ${model} \\
        ${cohort} \\
        --out predictions/${prediction_set}.tsv \\
        ${modality_arg} \\
        --device ${device} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
        python: \$(python -c "import platform; print(platform.python_version())")
        torch: \$(python -c "import importlib.metadata as m; print(m.version('torch'))")
    END_VERSIONS
    """

    stub:
    """
    mkdir -p predictions
    touch predictions/${prediction_set}.tsv predictions/${prediction_set}.metrics.json

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        deepgami: \$(python -c "import deepgami; print(deepgami.__version__)")
    END_VERSIONS
    """
}
