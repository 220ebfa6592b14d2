"""ONNX encoders and decoders built with the ``onnx`` package's helper API, and their numpy twins.

An MLP (Flatten, Gemm, Relu, two heads) or a small conv net (Conv 3x3 stride 2, Relu, Flatten,
two heads), on NCHW or NHWC input; the scale head holds the log-variance, log-sigma, sigma
(``Exp`` of the raw head) or a raw value whose softplus is sigma; outputs as two tensors, one
concatenated vector, or the mean only. Pixel values in [0, 1], [-1, 1] or [0, 255] are what
the model was "trained on": :func:`numpy_encode` maps repspace's [0, 1] images onto them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17


def weights(seed: int, h: int, w: int, c: int, k: int, *, conv: bool, hidden: int = 16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = {}
    if conv:
        p["kc"] = rng.normal(0, 0.3, (4, c, 3, 3)).astype(np.float32)  # 4 filters, OIHW
        p["bc"] = rng.normal(0, 0.1, 4).astype(np.float32)
        d = 4 * ((h + 1) // 2) * ((w + 1) // 2)
    else:
        d = h * w * c
    p["W1"] = rng.normal(0, 1 / np.sqrt(d), (d, hidden)).astype(np.float32)
    p["b1"] = rng.normal(0, 0.1, hidden).astype(np.float32)
    p["Wm"] = rng.normal(0, 0.5, (hidden, k)).astype(np.float32)
    p["bm"] = rng.normal(0, 0.1, k).astype(np.float32)
    p["Ws"] = rng.normal(0, 0.2, (hidden, k)).astype(np.float32)
    p["bs"] = rng.normal(-1, 0.1, k).astype(np.float32)
    return p


def _conv_nchw(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3x3 convolution, stride 2, padding 1, by its definition (cross-correlation), in float64."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ho, wo = (h + 1) // 2, (w + 1) // 2
    out = np.zeros((n, kernel.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]  # (n, c, 3, 3)
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, kernel)
    return out + bias[None, :, None, None]


def numpy_encode(p, images, *, layout="NCHW", scale="logvar", value_range=(0.0, 1.0), conv=False):
    """(mean, logvar) in float64 of images (n, H, W, C) in [0, 1]: the model's maths in numpy."""
    lo, hi = value_range
    x = lo + (hi - lo) * np.asarray(images, np.float64)
    x_nchw = np.transpose(x, (0, 3, 1, 2))
    if conv:
        feat = np.maximum(_conv_nchw(x_nchw, p["kc"].astype(np.float64), p["bc"]), 0).reshape(len(x), -1)
    else:
        feat = (x_nchw if layout == "NCHW" else x).reshape(len(x), -1)
    hidden = np.maximum(feat @ p["W1"] + p["b1"], 0)
    mean = hidden @ p["Wm"] + p["bm"]
    raw = hidden @ p["Ws"] + p["bs"]
    logvar = {"logvar": raw, "log_sigma": 2 * raw, "sigma": 2 * raw,
              "softplus": 2 * np.log(np.log1p(np.exp(raw)))}[scale]
    return mean, logvar


def build_encoder(path: str | Path, p, h: int, w: int, c: int, *, layout="NCHW", scale="logvar", outputs="two",
                  names=("mu", "logvar"), value_range=(0.0, 1.0), conv=False, batch: int | str = "batch",
                  input_name="x") -> Path:
    """Write the encoder of weights ``p`` as an ONNX file; returns its path.

    outputs : "two" (mean and scale, named ``names``), "one" (one output ``z`` = [mean, scale]),
        "mean" (the mean only, named ``names[0]``).
    """
    from onnx import TensorProto, helper, numpy_helper, save

    del value_range  # the model is the same function of its input; only the input's meaning changes
    shape = [batch, c, h, w] if layout == "NCHW" else [batch, h, w, c]
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    x = input_name
    if conv:
        if layout == "NHWC":
            nodes.append(helper.make_node("Transpose", [x], ["x_nchw"], perm=[0, 3, 1, 2]))
            x = "x_nchw"
        nodes.append(helper.make_node("Conv", [x, const("kc", p["kc"]), const("bc", p["bc"])], ["conv"],
                                      kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", ["conv"], ["conv_r"]))
        x = "conv_r"
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", const("W1", p["W1"]), const("b1", p["b1"])], ["h1"]))
    nodes.append(helper.make_node("Relu", ["h1"], ["h"]))
    nodes.append(helper.make_node("Gemm", ["h", const("Wm", p["Wm"]), const("bm", p["bm"])], ["mean_head"]))
    nodes.append(helper.make_node("Gemm", ["h", const("Ws", p["Ws"]), const("bs", p["bs"])], ["raw"]))
    scale_head = "raw"
    if scale == "sigma":
        nodes.append(helper.make_node("Exp", ["raw"], ["sigma"]))
        scale_head = "sigma"
    k = p["Wm"].shape[1]
    if outputs == "two":
        nodes.append(helper.make_node("Identity", ["mean_head"], [names[0]]))
        nodes.append(helper.make_node("Identity", [scale_head], [names[1]]))
        outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, k]) for n in names]
    elif outputs == "one":
        nodes.append(helper.make_node("Concat", ["mean_head", scale_head], ["z"], axis=1))
        outs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 2 * k])]
    else:
        nodes.append(helper.make_node("Identity", ["mean_head"], [names[0]]))
        outs = [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, [batch, k])]
    graph = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, shape)],
                              outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))
    return path


def build_decoder(path: str | Path, wd: np.ndarray, bd: np.ndarray, h: int, w: int, c: int, *,
                  layout="NCHW") -> Path:
    """A linear decoder latents (batch, K) -> logits [batch, C, H, W] (or NHWC): Gemm then Reshape."""
    from onnx import TensorProto, helper, numpy_helper, save

    out_shape = [-1, c, h, w] if layout == "NCHW" else [-1, h, w, c]
    inits = [numpy_helper.from_array(wd.astype(np.float32), "Wd"), numpy_helper.from_array(bd.astype(np.float32), "bd"),
             numpy_helper.from_array(np.array(out_shape, np.int64), "shape")]
    nodes = [helper.make_node("Gemm", ["z", "Wd", "bd"], ["flat"]),
             helper.make_node("Reshape", ["flat", "shape"], ["images"])]
    graph = helper.make_graph(nodes, "decoder", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", wd.shape[0]])],
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    save(model, str(path))
    return Path(path)
