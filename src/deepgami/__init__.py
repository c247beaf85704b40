"""DeepGAMI: biologically guided auxiliary learning for multimodal integration and imputation."""

__version__ = "0.1.0"
