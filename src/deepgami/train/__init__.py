"""Training: typed settings and the grid, seeds and CV splits, the fit loop, encoder start, the grid search."""

from deepgami.train.encoder_init import (
    calibrate_imputers,
    encode_in_chunks,
    init_encoders_from_targets,
    set_latent_means,
)
from deepgami.train.loop import (
    Adam,
    Batch,
    current_device,
    device_scope,
    evaluate_loss,
    hide_modalities,
    task_loss_fn,
    to_device,
    train_network,
)
from deepgami.train.params import (
    BALANCES,
    ENCODER_INITS,
    GRID_KEYS,
    MISSING,
    MONITORS,
    SEARCH_KEYS,
    SEARCHES,
    SPACE_KEYS,
    ArchitectureSettings,
    Dimension,
    PreprocessingSettings,
    SearchSpace,
    Setting,
    Settings,
    TrainingSettings,
    as_setting,
    as_settings,
    default_params,
    expand_grid,
    grid_label,
    load_params,
    merge_params,
    read_params_file,
    validate_params,
)
from deepgami.train.tuning import (
    cv_splits,
    derive_seed,
    grid_search,
    inner_split,
    summarize_cv,
    tpe_search,
)
