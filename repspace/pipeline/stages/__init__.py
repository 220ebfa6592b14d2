"""The stages, one module each; a job is a list of them (see :func:`select`)."""

from __future__ import annotations

from collections.abc import Sequence

from .. import registry
from ..registry import register, stage_names, unregister
from ..stage import Stage
from .channels import STAGE as CHANNELS
from .encode import ENCODE, ENCODE_DATASET
from .figures import STAGE as FIGURES
from .fingerprint import STAGE as FINGERPRINT
from .fusion import STAGE as FUSION_STAGE
from .latents import STAGE as LATENTS
from .measures import STAGE as MEASURES_STAGE
from .models import STAGE as MODELS
from .pairs import STAGE as PAIRS
from .so2 import SO2_FUSION_STAGE as SO2_FUSION
from .so2 import SO2_LEARNERS_STAGE as SO2_LEARNERS
from .spaces import STAGE as SPACES
from .structure import STAGE as STRUCTURE
from .traversals import STAGE as TRAVERSALS

__all__ = ["STAGES", "STAGE_NAMES", "SWEEP_STAGES", "register", "unregister", "stage_names", "select"]

STAGES: dict[str, Stage] = registry.STAGES
STAGES.update({s.name: s for s in (FINGERPRINT, MODELS, ENCODE, CHANNELS, PAIRS, STRUCTURE, TRAVERSALS, FUSION_STAGE,
                                                ENCODE_DATASET, LATENTS, SPACES, MEASURES_STAGE, SO2_LEARNERS,
                                                SO2_FUSION, FIGURES)})
"""Every stage by name, in the order a run takes them."""
STAGE_NAMES = tuple(STAGES)
"""Every stage, in the order a run takes them."""
SWEEP_STAGES = ("fingerprint", "models", "encode", "channels", "pairs", "structure", "traversals", "figures")
"""The stages of the full sweep (add "encode_dataset" and "latents" for whole latent spaces)."""


def select(names: Sequence[str]) -> list[Stage]:
    """The stages named, in run order."""
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; stages are {list(STAGES)}")
    return [s for n, s in STAGES.items() if n in names]
