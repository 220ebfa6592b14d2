"""The fingerprint stage: N images drawn from the dataset with a seed, with their factors."""

from __future__ import annotations

from typing import Any

from ...data import FingerprintConfig, build_fingerprint
from ...store import fingerprint as schema
from ..stage import Plan, Stage, StageContext


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    c = ctx.config
    build_fingerprint(FingerprintConfig(dataset=c.dataset, n=c.n_images, seed=c.seed, store=ctx.store_path,
                                        data_dir=c.data_dir, image_size=c.image_size))
    return f"{c.dataset}, {c.n_images} images, seed {c.seed}"


STAGE = Stage(name="fingerprint", writes=schema.GROUP, finalize=finalize, cluster=False, whole=True)
