"""offlinepack: offline Kaggle kernels that work first time."""

__version__ = "0.1.0"
__all__ = ["__version__"]
