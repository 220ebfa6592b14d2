"""ONNX encoders (from PyTorch, JAX, TensorFlow or anything that exports ONNX), run with onnxruntime.

An ONNX encoder takes one image input and returns its posterior as two outputs (mean and a
scale) or one output holding both halves ``[mean, scale]`` along its last axis. What varies
between real encoders is read from :class:`EncoderOptions`: the run's ``[models.encoder]``
table, overridden key by key by the model's sidecar (:mod:`repspace.models.sidecar`).

A model is a file ``<name>.onnx`` (decoder: ``<name>_decoder.onnx`` next to it) or a folder
holding ``encoder.onnx`` (decoder: ``decoder.onnx`` beside it). onnxruntime is an optional
dependency (``pip install -e ".[onnx]"``), imported only when an ONNX model is loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_types

__all__ = ["EncoderOptions", "SCALES", "LAYOUTS", "encoder_options", "load_onnx", "onnx_paths"]

SCALES = ("logvar", "log_sigma", "sigma", "softplus")
LAYOUTS = ("auto", "NCHW", "NHWC")
DECODER_OUTPUTS = ("logits", "image")
_MEAN_NAMES = ("mean", "mu", "z_mean", "loc")
_SCALE_NAMES = ("logvar", "log_var", "z_log_var", "log_sigma", "sigma", "scale", "std")
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


@dataclasses.dataclass(frozen=True)
class EncoderOptions:
    """How to read an encoder that is not a TensorFlow model (the ``[models.encoder]`` table; a model's
    sidecar ``[encoder]`` table overrides it key by key).

    Attributes
    ----------
    mean_output, scale_output : output names (None: the first and second output, or, for a model
        with one output, its first and second half along the last axis).
    scale : what the scale output holds: "logvar" (log sigma^2), "log_sigma", "sigma", or
        "softplus" (sigma = log(1 + exp(raw))); converted to the log-variance.
    layout : the image input's layout, "NCHW" (PyTorch's) or "NHWC"; "auto" tells them apart by
        the input's channel axis (1 or 3 channels).
    value_range : the pixel values the model was trained on, e.g. [0, 1], [-1, 1] or [0, 255];
        repspace's images in [0, 1] are mapped onto it.
    decoder : a decoder ONNX file (latents (n, K) -> images), relative to the encoder's folder
        (None: ``<name>_decoder.onnx`` or ``decoder.onnx`` beside the encoder, when present).
    decoder_output : "logits" (a sigmoid gives pixel values in [0, 1]) or "image" (pixel values in
        ``value_range``).
    fixed_logvar : a constant log-variance, one number or one per channel: the encoder's (single)
        output is then the mean, as an InfoGAN's Q network gives its continuous codes.
    """

    mean_output: str | None = None
    scale_output: str | None = None
    scale: str = "logvar"
    layout: str = "auto"
    value_range: tuple[float, float] = (0.0, 1.0)
    decoder: str | None = None
    decoder_output: str = "logits"
    fixed_logvar: float | tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_types(self, "")
        for name, allowed in (("scale", SCALES), ("layout", LAYOUTS), ("decoder_output", DECODER_OUTPUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        lo_hi = tuple(self.value_range)
        if len(lo_hi) != 2 or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in lo_hi) \
                or not lo_hi[0] < lo_hi[1]:
            raise ValueError(f"value_range must be [low, high] with low < high, got {self.value_range!r}")
        object.__setattr__(self, "value_range", (float(lo_hi[0]), float(lo_hi[1])))
        fixed = self.fixed_logvar
        if fixed is not None:
            values = np.atleast_1d(np.asarray(fixed, dtype=float)) if not isinstance(fixed, bool) else None
            if values is None or values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
                raise ValueError(f"fixed_logvar must be a finite number or a list of them, got {fixed!r}")
            object.__setattr__(self, "fixed_logvar",
                               float(values[0]) if np.ndim(fixed) == 0 else tuple(float(v) for v in values))


def encoder_options(*tables: Mapping[str, Any] | EncoderOptions | None, where: str = "") -> EncoderOptions:
    """EncoderOptions from tables applied in order (later keys win); errors name ``where``."""
    merged: dict[str, Any] = {}
    for t in tables:
        if t is None:
            continue
        merged.update(dataclasses.asdict(t) if isinstance(t, EncoderOptions) else dict(t))
    known = {f.name for f in dataclasses.fields(EncoderOptions)}
    unknown = sorted(set(merged) - known)
    try:
        if unknown:
            raise ValueError(f"unknown encoder options {unknown}; known: {sorted(known)}")
        return EncoderOptions(**merged)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}" if where else str(err)) from None


def onnx_paths(path: Path, opts: EncoderOptions) -> tuple[Path, Path | None]:
    """(the encoder file, the decoder file or None) of a model ``<name>.onnx`` or a folder with ``encoder.onnx``."""
    encoder = path / "encoder.onnx" if path.is_dir() else path
    if opts.decoder is not None:
        decoder = encoder.parent / opts.decoder
        if not decoder.is_file():
            raise FileNotFoundError(f"model {path}: the configured decoder {decoder} does not exist")
        return encoder, decoder
    default = encoder.parent / ("decoder.onnx" if path.is_dir() else f"{encoder.stem}_decoder.onnx")
    return encoder, default if default.is_file() else None


def to_logvar(raw: np.ndarray, scale: str) -> np.ndarray:
    """The log-variance from a scale output, computed in float64.

    >>> to_logvar(np.array([0.0, 1.0]), "sigma").round(3).tolist()
    [-inf, 0.0]
    """
    raw = np.asarray(raw, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "logvar":
            return raw
        if scale == "log_sigma":
            return 2.0 * raw
        if scale == "sigma":
            return 2.0 * np.log(raw)
        softplus = np.maximum(raw, 0.0) + np.log1p(np.exp(-np.abs(raw)))
        return 2.0 * np.log(softplus)


def _session(file: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: quiet output
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(file), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ValueError(f"{file} cannot be read as an ONNX model ({type(err).__name__}: {err})") from None


def _dim(d: Any) -> int | None:
    return int(d) if isinstance(d, int) and d > 0 else None


def _layout(path: Path, shape: list[Any], opts: EncoderOptions, name: str) -> str:
    if len(shape) == 3:
        return "NHW"
    if len(shape) != 4:
        raise ValueError(f"model {path}: input {name!r} has shape {shape}; expected images [batch, C, H, W] or "
                         "[batch, H, W, C]")
    if opts.layout != "auto":
        return opts.layout
    first, last = _dim(shape[1]) in (1, 3), _dim(shape[3]) in (1, 3)
    if first != last:
        return "NCHW" if first else "NHWC"
    raise ValueError(f"model {path}: cannot tell the layout of input {name!r} {shape}; set layout = \"NCHW\" or "
                     "\"NHWC\" (in [models.encoder] or the model's sidecar)")


def _pick(path: Path, names: list[str], given: str | None, position: int | None, usual: tuple[str, ...],
          what: str) -> str:
    if given is not None:
        if given not in names:
            raise ValueError(f"model {path} has no output {given!r} (its outputs: {', '.join(names)})")
        return given
    if position is not None:
        return names[position]
    found = [n for n in names if n.lower() in usual]
    if len(found) != 1:
        raise ValueError(f"model {path} has outputs {', '.join(names)}: set {what} (in [models.encoder] or the "
                         "model's sidecar) to the one that holds it")
    return found[0]


def _batched(run, x: np.ndarray, batch: int | None) -> list[np.ndarray]:
    """``run`` on ``x`` whole, or in batches of exactly ``batch`` (the last padded) for a fixed batch size."""
    if batch is None or len(x) == batch:
        return run(x)
    parts = []
    for s in range(0, len(x), batch):
        chunk = x[s:s + batch]
        pad = np.concatenate([chunk, np.zeros((batch - len(chunk), *x.shape[1:]), x.dtype)]) if len(chunk) < batch \
            else chunk
        parts.append([o[:len(chunk)] for o in run(pad)])
    return [np.concatenate(p) for p in zip(*parts)] if parts else run(x[:0])


def _decoder(path: Path, file: Path, layout: str, n_latents: int, opts: EncoderOptions):
    sess = _session(file)
    (inp,) = sess.get_inputs() if len(sess.get_inputs()) == 1 else (None,)
    if inp is None or len(inp.shape) != 2:
        raise ValueError(f"decoder {file} of model {path} must take one input [batch, {n_latents}]")
    out = sess.get_outputs()[0].name
    lo, hi = opts.value_range

    def decode(z: np.ndarray) -> np.ndarray:
        (y,) = _batched(lambda b: sess.run([out], {inp.name: b}), z.astype(np.float32), _dim(inp.shape[0]))
        y = np.asarray(y, np.float32)
        if layout == "NCHW" and y.ndim == 4:
            y = np.transpose(y, (0, 2, 3, 1))
        elif layout == "NHW" and y.ndim == 3:
            y = y[..., np.newaxis]
        if opts.decoder_output == "image":
            y = np.clip((y - lo) / (hi - lo), 0.0, 1.0)
        return y

    decode.session = sess  # type: ignore[attr-defined]
    return decode


def load_onnx(path: Path, opts: EncoderOptions):
    """(kind, encode, decode, input_shape, n_latents, names, fixed_logvar) of an ONNX model, as the loaders give."""
    file, decoder_file = onnx_paths(path, opts)
    if not file.is_file():
        raise FileNotFoundError(f"model {path} has no encoder.onnx")
    sess = _session(file)
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"model {path} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                         "an encoder takes one image input")
    inp = inputs[0]
    dtype = _DTYPES.get(inp.type)
    if dtype is None:
        raise ValueError(f"model {path}: input {inp.name!r} is {inp.type}; expected a float tensor")
    shape = list(inp.shape)
    layout = _layout(path, shape, opts, inp.name)
    hwc = {"NHW": (shape[1], shape[2], 1), "NHWC": tuple(shape[1:]), "NCHW": (shape[2], shape[3], shape[1])}[layout]
    input_shape = tuple(_dim(d) for d in hwc)
    names = [o.name for o in sess.get_outputs()]
    fixed = opts.fixed_logvar is not None
    single = len(names) == 1
    if fixed:
        mean_name, scale_name = _pick(path, names, opts.mean_output, 0 if single else None, _MEAN_NAMES,
                                      "mean_output"), None
    elif single and opts.mean_output is None and opts.scale_output is None:
        mean_name, scale_name = names[0], None  # one vector [mean, scale]
    else:
        two = len(names) == 2 and opts.mean_output is None and opts.scale_output is None
        mean_name = _pick(path, names, opts.mean_output, 0 if two else None, _MEAN_NAMES, "mean_output")
        scale_name = _pick(path, names, opts.scale_output, 1 if two else None, _SCALE_NAMES, "scale_output")
    wanted = [mean_name] if scale_name is None else [mean_name, scale_name]
    lo, hi = opts.value_range

    def raw(x: np.ndarray) -> list[np.ndarray]:
        x = lo + (hi - lo) * x.astype(np.float64) if (lo, hi) != (0.0, 1.0) else x
        if layout == "NCHW":
            x = np.transpose(x, (0, 3, 1, 2))
        elif layout == "NHW":
            x = x[..., 0]
        feed = np.ascontiguousarray(x, dtype=dtype)
        outs = _batched(lambda b: sess.run(wanted, {inp.name: b}), feed, _dim(shape[0]))
        return [np.asarray(o, np.float64).reshape(len(x), -1) for o in outs]

    def split(outs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        if fixed:
            return outs[0], None
        if scale_name is not None:
            return outs[0], outs[1]
        both = outs[0]
        if both.shape[1] % 2:
            raise ValueError(f"model {path}: its one output {mean_name!r} has {both.shape[1]} values per image; "
                             "expected [mean, scale] halves (or set fixed_logvar for a mean-only encoder)")
        k = both.shape[1] // 2
        return both[:, :k], both[:, k:]

    probe = np.zeros((1, *[d or 32 for d in input_shape]), np.float32)
    mean0, scale0 = split(raw(probe))
    n_latents = mean0.shape[1]
    if scale0 is not None and scale0.shape[1] != n_latents:
        raise ValueError(f"model {path}: mean output {mean_name!r} has {n_latents} channels, scale output "
                         f"{scale_name!r} {scale0.shape[1]}")
    fixed_logvar = None
    if fixed:
        fixed_logvar = np.broadcast_to(np.asarray(opts.fixed_logvar, np.float64), (n_latents,)).copy() \
            if np.ndim(opts.fixed_logvar) == 0 or len(opts.fixed_logvar) == n_latents else None
        if fixed_logvar is None:
            raise ValueError(f"model {path} has {n_latents} channels; fixed_logvar gives {len(opts.fixed_logvar)} "
                             "values (give one, or one per channel)")

    def encode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, scale = split(raw(x))
        logvar = np.broadcast_to(fixed_logvar, mean.shape) if scale is None else to_logvar(scale, opts.scale)
        return mean.astype(np.float32), np.asarray(logvar, np.float32)

    encode.session = sess  # type: ignore[attr-defined]
    decode = None if decoder_file is None else _decoder(path, decoder_file, layout, n_latents, opts)
    return "onnx", encode, decode, input_shape, n_latents, tuple(names), fixed_logvar
