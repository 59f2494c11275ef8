"""ONNX export of a Sequential built from tinyfit's layers, for inference outside Python.

    tinyfit.export_onnx(model, "student.onnx", input_shape=(28, 28, 1))

The file takes float32 images ``images`` (N, H, W, C), channels-last as everywhere in
tinyfit, and returns ``logits`` (N, classes), or ``probabilities`` when a softmax temperature
is given. Inside, the maps are NCHW (ONNX's Conv and MaxPool layout): one Transpose at the
input and one before Flatten, so flattening keeps tinyfit's (H, W, C) order. Maxout is a
Reshape to (N, C, pieces, H, W) and a ReduceMax; ceil-mode pooling is a Pad with -inf to the
extent tinyfit's size rule gives, then a plain MaxPool. Dropout layers are left out (eval mode).
Needs the optional extra ``onnx`` (``pip install 'tinyfit[onnx]'``): onnx writes the file;
onnxruntime runs it.
"""
from __future__ import annotations

import numpy as np

from .autograd import Tensor, no_grad
from .files import atomic_write
from .functional.window import conv_output_size, pool_output_size
from .nn import Conv2d, Dropout, Flatten, Linear, MaxoutConv2d, Sequential

__all__ = ["export_onnx", "OPSET"]

OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'tinyfit[onnx]'") from None
    return onnx, helper, numpy_helper


class _Graph:
    """Nodes and initializers under construction, with unique names."""
    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base, array):
        name = self.name(base)
        self.inits.append(self.nh.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, base=None, **attrs):
        out = self.name(base or op_type.lower())
        self.nodes.append(self.h.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _conv(g, x, conv, hw):
    """Conv2d (weights (kh, kw, C_in, C_out) -> ONNX (C_out, C_in, kh, kw)); returns (name, (H, W))."""
    W = np.ascontiguousarray(np.asarray(conv.W.data, np.float32).transpose(3, 2, 0, 1))
    kh, kw = W.shape[2:]
    inputs = [x, g.const("W", W)]
    if conv.b is not None:
        inputs.append(g.const("b", np.asarray(conv.b.data, np.float32)))
    p, s = conv.pad, conv.stride
    y = g.op("Conv", inputs, kernel_shape=[kh, kw], pads=[p, p, p, p], strides=[s, s])
    return y, (conv_output_size(hw[0], kh, s, p), conv_output_size(hw[1], kw, s, p))


def _maxout(g, x, channels, pieces, hw):
    """(N, C*pieces, H, W) -> (N, C, H, W): groups of ``pieces`` consecutive channels."""
    if pieces == 1:
        return x
    shape = g.const("shape", np.array([0, channels, pieces, hw[0], hw[1]], np.int64))
    return g.op("ReduceMax", [g.op("Reshape", [x, shape])], axes=[2], keepdims=0)


def _pool(g, x, k, s, ceil_mode, hw):
    """tinyfit's max pooling (no padding): pad with -inf to the extent its size rule covers
    (crop when the rule leaves rows out), then a plain MaxPool."""
    out = [pool_output_size(n, k, s, 0, ceil_mode) for n in hw]
    ext = [(o - 1) * s + k for o in out]
    if any(e < n for e, n in zip(ext, hw)):  # floor mode leaves the last rows out: crop them
        starts = g.const("starts", np.array([0, 0], np.int64))
        ends = g.const("ends", np.array(ext, np.int64))
        axes = g.const("axes", np.array([2, 3], np.int64))
        x = g.op("Slice", [x, starts, ends, axes])
    extra = [max(0, e - n) for e, n in zip(ext, hw)]
    if any(extra):
        pads = g.const("pads", np.array([0, 0, 0, 0, 0, 0, extra[0], extra[1]], np.int64))
        x = g.op("Pad", [x, pads, g.const("neg_inf", np.array(-np.inf, np.float32))], mode="constant")
    return g.op("MaxPool", [x], kernel_shape=[k, k], strides=[s, s]), tuple(out)


def _layer(g, name, layer, x, hw, flat):
    """Append one layer's nodes; returns (output name, (H, W), flattened yet)."""
    if isinstance(layer, Dropout):
        return x, hw, flat
    if flat and not isinstance(layer, Linear):
        raise ValueError(f"layer {name!r} ({type(layer).__name__}) after Flatten: only Linear layers can follow")
    if isinstance(layer, Conv2d):
        x, hw = _conv(g, x, layer, hw)
    elif isinstance(layer, MaxoutConv2d):
        x, hw = _conv(g, x, layer.conv, hw)
        pieces = layer.pieces or 1
        x = _maxout(g, x, layer.conv.W.shape[3] // pieces, pieces, hw)
        if layer.pool:
            if layer.pool_stride is None or np.ndim(layer.pool) or np.ndim(layer.pool_stride):
                raise ValueError(f"layer {name!r}: only square pooling windows are exported")
            x, hw = _pool(g, x, layer.pool, layer.pool_stride, layer.ceil_mode, hw)
    elif isinstance(layer, Flatten):
        return g.op("Flatten", [g.op("Transpose", [x], "nhwc", perm=[0, 2, 3, 1])], axis=1), hw, True
    elif isinstance(layer, Linear):
        if not flat:
            raise ValueError(f"layer {name!r}: a Linear layer needs a Flatten before it")
        inputs = [x, g.const("W", np.asarray(layer.W.data, np.float32))]
        if layer.b is not None:
            inputs.append(g.const("b", np.asarray(layer.b.data, np.float32)))
        x = g.op("Gemm", inputs)
    else:
        raise ValueError(f"layer {name!r}: {type(layer).__name__} has no ONNX export; supported: Conv2d, "
                         "MaxoutConv2d, Dropout, Flatten, Linear")
    return x, hw, flat


def export_onnx(model, path, input_shape=None, softmax_temperature=None, opset=OPSET):
    """Write ``model`` (a Sequential of Conv2d, MaxoutConv2d, Dropout, Flatten and
    Linear layers) to ``path`` as ONNX. input_shape: (H, W, C) of one image (default: the
    model's). softmax_temperature: None for logits, else T for softmax(logits / T).
    Returns the path; the file is checked with onnx.checker and written atomically."""
    onnx, helper, numpy_helper = _onnx()
    if not isinstance(model, Sequential):
        raise TypeError(f"export_onnx takes a Sequential model, got {type(model).__name__}")
    input_shape = tuple(input_shape or model.input_shape or ())
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C) of one image, got {input_shape!r}; pass input_shape=")
    if softmax_temperature is not None and not (np.isfinite(softmax_temperature) and softmax_temperature > 0):
        raise ValueError(f"softmax_temperature must be None or a finite number > 0, got {softmax_temperature!r}")
    g = _Graph(helper, numpy_helper)
    x = g.op("Transpose", ["images"], "nchw", perm=[0, 3, 1, 2])
    hw, flat = input_shape[:2], False
    for name in model.layer_names:
        x, hw, flat = _layer(g, name, model[name], x, hw, flat)
    out_name = "logits"
    if softmax_temperature is not None:
        t = g.const("temperature", np.array(softmax_temperature, np.float32))
        x = g.op("Softmax", [g.op("Div", [x, t])], axis=-1)
        out_name = "probabilities"
    g.nodes.append(helper.make_node("Identity", [x], [out_name], name=out_name))
    # the output's shape, from one forward pass of a dummy image
    with no_grad():
        was = model.training
        n_out = model.eval()(Tensor(np.zeros((1,) + input_shape, np.float32))).shape[1:]
        model.train(was)
    graph = helper.make_graph(
        g.nodes, "tinyfit", [helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, ["N", *n_out])], g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tinyfit")
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime releases of the last years
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, proto.SerializeToString())
    return path
