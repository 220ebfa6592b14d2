"""The distributed pipeline: stages that read the run store, run Dask tasks, write back.

A stage (:mod:`repspace.pipeline.stage`) declares the groups it needs and writes, its blocks,
its task and its finalize step; one driver (:mod:`repspace.pipeline.driver`) runs any list of
them. The stages live in :mod:`repspace.pipeline.stages`, one module each.
"""

from ..models import ModelEntry, find_models
from .config import RunConfig, load_config
from .stages import STAGE_NAMES, SWEEP_STAGES
from .stages.fusion import FusionOptions
from .stages.latents import LatentsOptions
from .stages.measures import ComparisonOptions
from .stages.models import ModelsConfig
from .stages.so2 import SO2Options
from .driver import RunReport, StageReport, TaskFailed, run_stages
from .stage import Block, Plan, Stage, StageContext
from .stages import STAGES, select
from .stages.encode import FailedModelsWarning
from .sweep import LATENTS_STAGES, run
from .sync import SyncClient

__all__ = [
    "STAGES",
    "STAGE_NAMES",
    "SWEEP_STAGES",
    "LATENTS_STAGES",
    "Block",
    "FailedModelsWarning",
    "LatentsOptions",
    "ComparisonOptions",
    "SO2Options",
    "FusionOptions",
    "ModelEntry",
    "ModelsConfig",
    "Plan",
    "RunConfig",
    "RunReport",
    "Stage",
    "StageContext",
    "StageReport",
    "SyncClient",
    "TaskFailed",
    "find_models",
    "load_config",
    "run",
    "run_stages",
    "select",
]
