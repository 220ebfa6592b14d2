"""One loader for every encoder source: images -> (mean, logvar) of a diagonal Gaussian.

Sources
-------
- TF1 Hub-format modules as the disentanglement_lib zoo ships them (a SavedModel with a
  ``tfhub_module.pb``, MetaGraphs tagged ``{}`` and ``{"train"}``), loaded with
  ``tf.saved_model.load(path, tags=[])``; signature ``gaussian_encoder`` (input ``images``,
  outputs ``mean`` and ``logvar``) and, when present, ``decoder`` (input
  ``latent_vectors``, output image logits).
- TF2 SavedModels with the same signatures (e.g. the models :mod:`repspace.models.training`
  exports).
- Keras models (``.keras`` or ``.h5`` files) whose outputs are ``[mean, logvar]`` or a dict
  with those keys.
- ONNX models (``<name>.onnx``, or a folder holding ``encoder.onnx``), run with onnxruntime,
  read as :class:`~repspace.models.onnx_encoders.EncoderOptions` says (outputs, scale,
  layout, value range, decoder, a fixed variance): see :mod:`repspace.models.onnx_encoders`.

The :class:`Encoder` guards TensorFlow against input it mishandles: a 3-D image batch (which
aborts the process inside TF) gets its channel axis, float64 or integer input is cast to
float32, and an image size or channel count the model was not built for raises ValueError
naming the model and what it refused.

A SavedModel is a program: load models only from places the user named.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from repspace.models.onnx_encoders import EncoderOptions, encoder_options, load_onnx
from repspace.models.sidecar import read_sidecar
from repspace.models.zoo import ModelInfo, read_model_info

__all__ = ["Encoder", "load_encoder"]

EncodeFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
DecodeFn = Callable[[np.ndarray], np.ndarray]


class Encoder:
    """A probabilistic encoder: images (n, H, W[, C]) -> (mean, logvar), each (n, latent).

    Built by :func:`load_encoder`; not meant to be constructed directly.

    Attributes
    ----------
    path : Path
        Where the model was loaded from.
    input_shape : tuple of (int or None)
        (H, W, C) the model takes; None where the model does not fix a size.
    n_latents : int
    info : ModelInfo or None
        What the model is (from its train.gin or the zoo index), when known.
    kind : str
        ``"hub"`` (TF1 Hub-format module), ``"saved_model"``, ``"keras"`` or ``"onnx"``.
    batch_size : int
        Images per call into the model.
    fixed_logvar : float64 array (n_latents,) or None
        The constant log-variance of an encoder that gives means only (None: the model gives it).
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        encode_fn: EncodeFn,
        input_shape: tuple[int | None, int | None, int | None],
        n_latents: int,
        *,
        decode_fn: DecodeFn | None = None,
        info: ModelInfo | None = None,
        batch_size: int = 256,
        signatures: tuple[str, ...] = (),
        fixed_logvar: np.ndarray | None = None,
        decoder_logits: bool = True,
        no_decoder: str | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.path = path
        self.kind = kind
        self._encode = encode_fn
        self._decode = decode_fn
        self.input_shape = input_shape
        self.n_latents = int(n_latents)
        self.info = info
        self.batch_size = int(batch_size)
        self.signatures = signatures
        self.fixed_logvar = fixed_logvar
        self._decoder_logits = decoder_logits
        self.no_decoder = no_decoder or (f"model {path} has no 'decoder' signature (it has: "
                                         f"{', '.join(signatures) or 'none'}); it can encode but not decode")

    def __repr__(self) -> str:
        return (f"Encoder({str(self.path)!r}, kind={self.kind!r}, input_shape={self.input_shape}, "
                f"n_latents={self.n_latents})")

    @property
    def has_decoder(self) -> bool:
        return self._decode is not None

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """``images`` as float32 (n, H, W, C), or ValueError saying what the model refuses."""
        arr = np.asarray(images)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"model {self.path} refused images of dtype {arr.dtype}: expected numbers in [0, 1]")
        if arr.ndim == 3:
            arr = arr[..., np.newaxis]
        if arr.ndim != 4:
            raise ValueError(
                f"model {self.path} refused images of shape {arr.shape}: expected (n, H, W) or (n, H, W, C)"
            )
        want = self.input_shape
        got = arr.shape[1:]
        if any(w is not None and w != g for w, g in zip(want, got)):
            show = "x".join("?" if w is None else str(w) for w in want)
            raise ValueError(
                f"model {self.path} takes images of {show} (H x W x C), refused images of "
                f"{'x'.join(map(str, got))}"
            )
        return np.ascontiguousarray(arr, dtype=np.float32)

    def __call__(self, images: np.ndarray, *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior parameters of ``images``.

        Parameters
        ----------
        images : array (n, H, W) or (n, H, W, C), values in [0, 1]
        batch_size : int, optional
            Overrides :attr:`batch_size`.

        Returns
        -------
        mean, logvar : float32 arrays (n, n_latents)
        """
        x = self.check_images(images)
        bs = int(batch_size or self.batch_size)
        mean = np.empty((len(x), self.n_latents), np.float32)
        logvar = np.empty((len(x), self.n_latents), np.float32)
        for start in range(0, len(x), bs):
            m, lv = self._encode(x[start:start + bs])
            mean[start:start + bs] = m
            logvar[start:start + bs] = lv
        return mean, logvar

    def decode(self, latents: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Images decoded from ``latents`` (n, n_latents): float32 (n, H, W, C) in [0, 1].

        The sigmoid of the decoder's logits (or its images, for a decoder that gives them). Raises
        ValueError, saying why (:attr:`no_decoder`), when the model has no decoder.
        """
        if self._decode is None:
            raise ValueError(self.no_decoder)
        z = np.asarray(latents, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.n_latents:
            raise ValueError(f"model {self.path} decodes (n, {self.n_latents}) latents, refused shape {z.shape}")
        bs = int(batch_size or self.batch_size)
        out = [self._decode(np.ascontiguousarray(z[s:s + bs])) for s in range(0, len(z), bs)]
        if not out:
            return np.empty((0, *[d or 0 for d in self.input_shape]), np.float32)
        logits = np.concatenate(out).astype(np.float32)
        if not self._decoder_logits:
            return logits
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _resolve(path: Path) -> tuple[Path, Path | None]:
    """(the model file or SavedModel dir, the <n>/ dir holding model/ or None)."""
    if (path / "model" / "tfhub").is_dir():
        return path / "model" / "tfhub", path
    if path.name == "tfhub" and path.parent.name == "model":
        return path, path.parent.parent
    return path, None


def _shape3(shape) -> tuple[int | None, int | None, int | None]:
    dims = [None if d is None else int(d) for d in list(shape)[1:]]
    if len(dims) != 3:
        raise ValueError(f"expected an image input of rank 4, got shape {tuple(shape)}")
    return tuple(dims)  # type: ignore[return-value]


def _load_saved_model(path: Path, tf) -> tuple[object, str]:
    hub = (path / "tfhub_module.pb").exists()
    try:
        return tf.saved_model.load(str(path), tags=[] if hub else None), "hub" if hub else "saved_model"
    except (RuntimeError, ValueError):
        # A SavedModel whose only MetaGraph is tagged {} or a hub module without the marker.
        return tf.saved_model.load(str(path), tags=None if hub else []), "saved_model"


def _from_saved_model(path: Path, tf):
    try:
        obj, kind = _load_saved_model(path, tf)
    except Exception as err:  # a damaged or incomplete file: name the model's files, not only TensorFlow's words
        files = ", ".join(str(f) for f in sorted(path.rglob("*")) if f.is_file() and f.suffix != ".txt")
        raise ValueError(f"model {path} cannot be loaded ({type(err).__name__}: {err}); its files: {files}") from None
    sigs = dict(obj.signatures)
    names = tuple(sorted(sigs))
    if "gaussian_encoder" not in sigs:
        raise ValueError(f"model {path} has no 'gaussian_encoder' signature (it has: {', '.join(names) or 'none'})")
    enc = sigs["gaussian_encoder"]
    kwargs = enc.structured_input_signature[1]
    if set(kwargs) != {"images"}:
        raise ValueError(f"model {path}: gaussian_encoder takes {sorted(kwargs)}, expected 'images'")
    input_shape = _shape3(kwargs["images"].shape)
    outputs = enc.structured_outputs
    if not {"mean", "logvar"} <= set(outputs):
        raise ValueError(f"model {path}: gaussian_encoder returns {sorted(outputs)}, expected mean and logvar")
    n_latents = outputs["mean"].shape[-1]

    def encode(x: np.ndarray):
        out = enc(images=tf.constant(x))
        return out["mean"].numpy(), out["logvar"].numpy()

    if n_latents is None:
        probe = np.zeros((1, *[d or 64 for d in input_shape]), np.float32)
        n_latents = encode(probe)[0].shape[-1]

    decode = None
    dec = sigs.get("decoder")
    if dec is not None and len(dec.structured_input_signature[1]) == 1 and len(dec.structured_outputs) >= 1:
        (arg,) = dec.structured_input_signature[1]  # latent_vectors
        out_key = "images" if "images" in dec.structured_outputs else next(iter(dec.structured_outputs))

        def decode(z: np.ndarray):
            return dec(**{arg: tf.constant(z)})[out_key].numpy()

    # keep the loaded object alive with the functions that use it
    encode.module = obj  # type: ignore[attr-defined]
    return kind, encode, decode, input_shape, int(n_latents), names


def _to_numpy(t) -> np.ndarray:
    if hasattr(t, "numpy"):
        return np.asarray(t.numpy())
    import keras

    return np.asarray(keras.ops.convert_to_numpy(t))


def _from_keras(path: Path):
    import keras

    try:
        model = keras.models.load_model(str(path), compile=False)
    except Exception as err:  # a damaged or incomplete file: named
        raise ValueError(f"model {path} cannot be loaded ({type(err).__name__}: {err})") from None
    input_shape = _shape3(model.input_shape)
    out_names = list(getattr(model, "output_names", None) or [])
    outputs = model.outputs
    if isinstance(model.output, dict):
        keys = list(model.output)
    elif len(outputs) == 2:
        keys = None
    else:
        raise ValueError(f"model {path} has {len(outputs)} outputs, expected [mean, logvar]")
    n_latents = int(outputs[0].shape[-1])

    def encode(x: np.ndarray):
        out = model(x, training=False)
        if keys is not None:
            out = (out["mean"], out["logvar"])
        return _to_numpy(out[0]), _to_numpy(out[1])

    encode.module = model  # type: ignore[attr-defined]
    return "keras", encode, None, input_shape, n_latents, tuple(out_names)


def _is_onnx(path: Path) -> bool:
    return path.suffix == ".onnx" or (path.is_dir() and (path / "encoder.onnx").is_file())


def info_from_coordinates(coords: dict, source: str) -> ModelInfo | None:
    """A ModelInfo from sidecar or folder-layout coordinates (None when they give none)."""
    if not coords:
        return None
    return ModelInfo(number=None, dataset=coords.get("dataset", ""), family=coords.get("family", ""),
                     hyperparameter_name=coords.get("hyperparameter", ""),
                     hyperparameter_value=float(coords.get("hyperparameter_value", float("nan"))),
                     seed=int(coords.get("seed", -1)), source=coords.get("source", source))


def load_encoder(path: str | Path, *, batch_size: int = 256, info: ModelInfo | None = None,
                 options: EncoderOptions | dict | None = None) -> Encoder:
    """Load an encoder from a model directory, a SavedModel, a Keras file or an ONNX model.

    Parameters
    ----------
    path : path
        One of: a model directory ``<n>/`` holding ``model/tfhub`` (a zoo download or a model
        trained here), a SavedModel directory (TF1 Hub-format or TF2) with a
        ``gaussian_encoder`` signature, a ``.keras``/``.h5`` file, or an ONNX model (a
        ``.onnx`` file or a folder holding ``encoder.onnx``).
    batch_size : int
        Images per call into the model.
    info : ModelInfo, optional
        What the model is; by default read from ``<n>/model/results/gin/train.gin`` or the
        zoo index of ``n`` (see :func:`repspace.models.zoo.read_model_info`), or from an ONNX
        model's sidecar.
    options : EncoderOptions or mapping, optional
        How to read an ONNX model (the run's ``[models.encoder]`` table); the model's sidecar
        ``[encoder]`` table overrides it key by key.

    Returns
    -------
    Encoder
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    if _is_onnx(path):
        coords, own = read_sidecar(path)
        opts = encoder_options(options, own, where=f"model {path}")
        kind, encode, decode, input_shape, n_latents, names, fixed = load_onnx(path, opts)
        beside = "decoder.onnx beside encoder.onnx" if path.is_dir() else f"{path.stem}_decoder.onnx beside it"
        why = None if decode is not None else (
            f"model {path} has no decoder (give one as {beside}, or name it with decoder in [models.encoder] "
            "or its sidecar)")
        return Encoder(path, kind, encode, input_shape, n_latents, decode_fn=decode,
                       info=info or info_from_coordinates(coords, "onnx"), batch_size=batch_size, signatures=names,
                       fixed_logvar=fixed, decoder_logits=opts.decoder_output == "logits", no_decoder=why)
    target, model_dir = _resolve(path)
    from .._quiet import import_tensorflow

    tf = import_tensorflow()

    if target.is_dir():
        if not (target / "saved_model.pb").exists() and not (target / "saved_model.pbtxt").exists():
            raise ValueError(f"{path} is neither a model directory (<n>/model/tfhub) nor a SavedModel")
        kind, encode, decode, input_shape, n_latents, names = _from_saved_model(target, tf)
    elif target.suffix in (".keras", ".h5"):
        kind, encode, decode, input_shape, n_latents, names = _from_keras(target)
    else:
        raise ValueError(f"{path}: not a SavedModel directory, a .keras/.h5 file or an ONNX model")
    if info is None and model_dir is not None:
        info = read_model_info(model_dir)
    return Encoder(
        path, kind, encode, input_shape, n_latents, decode_fn=decode, info=info,
        batch_size=batch_size, signatures=names,
    )
