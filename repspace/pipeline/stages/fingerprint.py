"""The fingerprint stage: N images drawn from the dataset with a seed, with their factors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...data import FingerprintConfig, build_fingerprint
from ...store import fingerprint as schema
from ..checks import ConfigurationRefused, stored_attrs
from ..stage import Plan, Stage, StageContext

if TYPE_CHECKING:
    from ..config import RunConfig


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    c = ctx.config
    build_fingerprint(FingerprintConfig(dataset=c.dataset, n=c.n_images, seed=c.seed, store=ctx.store_path,
                                        data_dir=c.data_dir, image_size=c.image_size))
    return f"{c.dataset}, {c.n_images} images, seed {c.seed}"


def check(config: RunConfig) -> None:
    """Before any work: a store's finished fingerprint set was drawn as this run would draw it (dataset, number
    of images, seed, image size); everything in the store was computed on its images."""
    attrs = stored_attrs(config.store, schema.GROUP)
    if attrs is None or attrs.get("complete") is not True:
        return
    asked = {"dataset": config.dataset, "n_images": config.n_images, "seed": config.seed,
             "image_size": config.image_size}
    stored = {"dataset": attrs.get("dataset"), "n_images": attrs.get("n"), "seed": attrs.get("seed"),
              "image_size": attrs.get("image_size")}
    differ = [f"{key} = {stored[key]!r} (this run: {value!r})" for key, value in asked.items()
              if value is not None and stored[key] != value]
    if differ:
        raise ConfigurationRefused(
            f"the store {config.store} holds a fingerprint set drawn with {', '.join(differ)}, and everything in "
            "it was computed on those images: run with the store's values, or give a new --run-dir for this set")


STAGE = Stage(name="fingerprint", writes=schema.GROUP, finalize=finalize, cluster=False, whole=True, check=check)
