"""The distributed pipeline: stages that read the run store, run Dask tasks, write back."""

from .config import ModelsConfig, SweepConfig, load_config
from .sweep import STAGES, FailedModelsWarning, ModelEntry, SweepResult, find_models, run_sweep

__all__ = [
    "STAGES",
    "FailedModelsWarning",
    "ModelEntry",
    "ModelsConfig",
    "SweepConfig",
    "SweepResult",
    "find_models",
    "load_config",
    "run_sweep",
]
