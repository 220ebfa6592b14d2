"""Train ensembles of VAEs of our own and export them in the zoo's layout.

An ensemble is a grid of families x hyperparameter values x seeds on one dataset of
:mod:`repspace.data`. Each model is one Dask task: it trains in a temporary directory and
renames it to ``dest/<n>`` when complete, so a killed task reruns from scratch and a
finished model is skipped on rerun. Each model directory looks like a zoo download::

    dest/<n>/model/tfhub/                  TF2 SavedModel: gaussian_encoder, decoder, reconstructions
    dest/<n>/model/results/gin/train.gin   the zoo's keys (dataset.name, model.model, vae.beta, ...)
    dest/<n>/model/results/json/train_config.json   the full TrainConfig, ModelInfo, run id
    dest/<n>/model/results/json/train_results.json  final losses, elapsed time, steps per second
    dest/<n>/model/results/loss_curve.csv, loss_curve.png

Losses, per image (``x`` the image, ``q(z|x) = N(mean, exp(logvar))``, ``p(x|z)`` Bernoulli
with logits from the decoder):

.. math::

    \\text{recon} = -\\log p(x|z) = \\sum_{\\text{pixels}} \\mathrm{BCE}(x, \\text{logits}),\\qquad
    \\text{KL} = \\tfrac12 \\sum_k (\\mu_k^2 + \\sigma_k^2 - \\log \\sigma_k^2 - 1)

- beta_vae: recon + beta KL
- beta_tc_vae: recon + KL + (beta - 1) TC, TC by minibatch-weighted sampling
- annealed_vae: recon + gamma |KL - C(t)|, C rising linearly from 0 to c_max
- dip_vae_i / dip_vae_ii: recon + KL + lambda_od sum_{k != l} Cov_kl^2
  + lambda_d sum_k (Cov_kk - 1)^2, over Cov[mean] (i) or Cov[mean] + E[diag sigma^2] (ii),
  lambda_d = 10 lambda_od (i) or lambda_od (ii)

:mod:`repspace.models.train_config` holds the config and the grid,
:mod:`repspace.models.trainer` trains one model (:func:`train_model`) and
:mod:`repspace.models.architectures` the networks and loss terms; this module runs the
grid (:func:`train_ensemble`) and re-exports their public names.

TensorFlow is imported only when a model is trained.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# also re-exported for callers that import them from here (tests, repspace.jobs)
from repspace.models.architectures import _regularizer, build_decoder, build_encoder  # noqa: F401
from repspace.models.train_config import (  # noqa: F401
    ARCHITECTURES,
    SOURCE,
    TRAINABLE_FAMILIES,
    ImageDataset,
    ModelSpec,
    TrainConfig,
    model_grid,
)
from repspace.models.trainer import TrainedModel, _check_existing, _log, is_trained, train_model  # noqa: F401

__all__ = [
    "ARCHITECTURES",
    "TRAINABLE_FAMILIES",
    "ModelSpec",
    "TrainConfig",
    "TrainedModel",
    "model_grid",
    "train_ensemble",
    "train_model",
]


def train_ensemble(
    config: TrainConfig,
    dest: str | Path,
    *,
    client: Any = None,
    dataset: ImageDataset | None = None,
    numbers: Sequence[int] | None = None,
) -> list[Path]:
    """Train the grid of ``config`` into ``dest/<n>``, one Dask task per model.

    Parameters
    ----------
    config : TrainConfig
    dest : path
        The ensemble's directory; finished models there are skipped.
    client : distributed.Client, optional
        Where to run; by default a LocalCluster of ``config.workers`` processes with
        one thread each, bound to 127.0.0.1, closed at the end.
    dataset : optional
        Overrides ``config.dataset`` (must pickle when workers are processes).
    numbers : sequence of int, optional
        Train only these models of the grid.

    Returns
    -------
    list of Path
        The model directories, in grid order.

    Raises
    ------
    RuntimeError
        When any model failed, naming each by number, after the others finished.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    specs = model_grid(config)
    if numbers is not None:
        wanted = set(int(n) for n in numbers)
        specs = [s for s in specs if s.number in wanted]
    todo = [s for s in specs if not is_trained(dest / str(s.number))]
    for s in specs:
        if s not in todo:
            _check_existing(dest / str(s.number), config, s)
    _log(f"ensemble in {dest}: {len(specs)} models, {len(specs) - len(todo)} already trained")
    if todo:
        own = client is None
        if own:
            from ..cluster import local_cluster

            client = local_cluster(min(config.workers, len(todo)), threads_per_worker=1)
        try:
            from distributed import as_completed

            futures = {
                client.submit(train_model, s, config, dest, dataset=dataset, pure=False, key=f"train-{s.number}-{uuid.uuid4().hex[:6]}"): s
                for s in todo
            }
            failed: dict[int, str] = {}
            start = time.perf_counter()
            for k, fut in enumerate(as_completed(futures), 1):
                spec = futures[fut]
                left = (time.perf_counter() - start) / k * (len(todo) - k)
                eta = f"; about {left / 60:.1f} min left" if k < len(todo) else ""
                if fut.status != "finished":
                    err = fut.exception()
                    failed[spec.number] = f"{type(err).__name__}: {err}"
                    _log(f"[{k}/{len(todo)}] {spec.label()}: FAILED {failed[spec.number]}{eta}")
                    continue
                r = fut.result().results
                how = "the shipped weights, trained to " if r.get("shipped") else ""
                _log(f"[{k}/{len(todo)}] {spec.label()}: {how}recon {r['reconstruction_loss']:.2f} "
                     f"kl {r['kl_loss']:.2f} ({r.get('elapsed_seconds', 0):.0f} s){eta}")
            if failed:
                lines = "; ".join(f"model {n}: {why}" for n, why in sorted(failed.items()))
                raise RuntimeError(f"{len(failed)} of {len(todo)} models failed to train ({lines})")
        finally:
            if own:
                cluster = client.cluster
                client.close()
                cluster.close()
    return [dest / str(s.number) for s in specs]
