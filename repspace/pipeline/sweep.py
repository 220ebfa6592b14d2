"""Jobs as lists of stages: the full sweep, and the comparison of whole latent spaces.

Both run through one driver (:func:`repspace.pipeline.driver.run_stages`); they differ only
in their stages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .config import RunConfig
from .driver import RunReport, _log, run_stages
from .stages import select

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["run", "LATENTS_STAGES"]

LATENTS_STAGES = ("models", "encode_dataset", "latents", "figures")
"""The stages of ``python -m repspace.jobs.compare_latents``."""


def run(config: RunConfig, *, client: "Client | None" = None, log: Callable[[str], None] = _log) -> RunReport:
    """Run the stages of ``config`` (``config.stages``) and return what each did.

    Parameters
    ----------
    config : RunConfig
    client : distributed.Client, optional
        Use this client; otherwise one is made from the config (and closed at the end).
    """
    return run_stages(select(config.stages), config, client=client, log=log)
