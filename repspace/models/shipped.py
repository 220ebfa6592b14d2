"""Trained weights that ship with the package, so that the offline default's first run need not train.

``repspace/models/shipped/<name>.npz`` holds the encoder and decoder weights of an ensemble trained by
:func:`repspace.models.train_ensemble`, rounded to float16 (half the size; the posteriors move by about
1e-3 of their scale, far below what the channel structure can tell), with each model's training record:
the recipe (the parts of the config that change its weights), its final losses and its loss curve.
:func:`repspace.models.train_model` writes a model from them, in the zoo's layout, where the recipe it is
asked for is a shipped one (``TrainConfig.shipped``, on by default); any other recipe trains. Its results
say so (``"shipped"``: the file). ``python -m repspace.models.shipped pack ENSEMBLE_DIR NAME`` packs a
trained ensemble.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SHIPPED_DIR", "shipped_model", "pack"]

SHIPPED_DIR = Path(__file__).parent / "shipped"


@functools.lru_cache(maxsize=None)
def _index() -> dict[str, tuple[Path, str, dict[str, Any]]]:
    """Each shipped model's recipe (JSON, keys sorted) -> (its file, its prefix in the file, its record)."""
    out: dict[str, tuple[Path, str, dict[str, Any]]] = {}
    for path in sorted(SHIPPED_DIR.glob("*.npz")):
        with np.load(path) as f:
            records = json.loads(str(f["records"]))
        for prefix, record in records.items():
            out.setdefault(json.dumps(record["model"], sort_keys=True), (path, prefix, record))
    return out


def shipped_model(recipe: dict[str, Any]) -> dict[str, Any] | None:
    """The shipped model trained with ``recipe`` (the trainer's ``_model_config``): its encoder and decoder
    weights (lists of float32 arrays in Keras order), its training record and its file; None when none is."""
    found = _index().get(json.dumps(json.loads(json.dumps(recipe)), sort_keys=True))
    if found is None:
        return None
    path, prefix, record = found
    with np.load(path) as f:
        weights = {part: [f[f"{prefix}/{part}/{k}"].astype(np.float32) for k in range(record[f"n_{part}"])]
                   for part in ("encoder", "decoder")}
    return {**weights, "record": copy.deepcopy(record), "file": f"repspace/models/shipped/{path.name}"}


def pack(ensemble_dir: str | Path, out: str | Path) -> Path:
    """Pack every trained model of ``ensemble_dir`` (as :func:`train_ensemble` writes them) into ``out``."""
    from .._quiet import import_tensorflow
    from .architectures import build_decoder, build_encoder
    from .train_config import TrainConfig

    tf = import_tensorflow()
    arrays: dict[str, np.ndarray] = {}
    records: dict[str, Any] = {}
    for model_dir in sorted(Path(ensemble_dir).iterdir(), key=lambda p: (len(p.name), p.name)):
        res = model_dir / "model" / "results"
        if not (res / "json" / "train_results.json").is_file():
            continue
        run = json.loads((res / "json" / "train_config.json").read_text())
        config = TrainConfig(**{**run["config"], "hyperparameters": run["config"]["hyperparameters"]})
        shape = tuple(run["image_shape"])
        encoder, decoder = build_encoder(config, shape), build_decoder(config, shape)
        tf.train.Checkpoint(encoder=encoder, decoder=decoder).read(
            str(model_dir / "model" / "tfhub" / "variables" / "variables")).expect_partial()
        prefix = model_dir.name
        for part, net in (("encoder", encoder), ("decoder", decoder)):
            for k, w in enumerate(net.get_weights()):
                arrays[f"{prefix}/{part}/{k}"] = w.astype(np.float16)
        records[prefix] = {"model": run["model"], "info": run["info"], "image_shape": run["image_shape"],
                           "config": run["config"], "tensorflow": run["tensorflow"], "created": run["created"],
                           "results": json.loads((res / "json" / "train_results.json").read_text()),
                           "curve": (res / "loss_curve.csv").read_text(),
                           "n_encoder": len(encoder.get_weights()), "n_decoder": len(decoder.get_weights())}
    if not records:
        raise FileNotFoundError(f"no trained model in {ensemble_dir}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, records=np.array(json.dumps(records)), **arrays)
    _index.cache_clear()
    return out


if __name__ == "__main__":  # python -m repspace.models.shipped pack ENSEMBLE_DIR NAME
    if len(sys.argv) != 4 or sys.argv[1] != "pack":
        sys.exit("usage: python -m repspace.models.shipped pack ENSEMBLE_DIR NAME")
    print(pack(sys.argv[2], SHIPPED_DIR / f"{sys.argv[3]}.npz"))
