"""tinyfit: a small autograd engine on NumPy / CuPy for training FitNets."""
from . import backend, functional, random
from .autograd import Tensor, Function, no_grad, is_grad_enabled
from .backend import DeviceError
from .gradcheck import gradcheck, GradcheckError
from .random import manual_seed
from .checkpoint import save_model, load_model, CheckpointError
from . import nn, optim, data, models, fitnets, training, profiler

__version__ = "0.1.0"


def export_onnx(model, path, input_shape=None, softmax_temperature=None):
    """Write a Sequential to ONNX (see tinyfit.onnx_export; needs the extra ``onnx``)."""
    from .onnx_export import export_onnx as _export
    return _export(model, path, input_shape, softmax_temperature)
