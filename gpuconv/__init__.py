"""gpuconv: TensorFlow.js-style WebGL convolution shaders, generated, inspected and run from Python."""

from . import oracle
from .ops import conv1d, conv2d, depthwise_conv2d, separable_conv2d, shader_source, shader_sources
from .runtime import GLUnavailableError, Runtime, get_runtime, use_context

__version__ = "0.1.0"

__all__ = [
    "conv2d",
    "depthwise_conv2d",
    "separable_conv2d",
    "conv1d",
    "shader_source",
    "shader_sources",
    "oracle",
    "Runtime",
    "get_runtime",
    "use_context",
    "GLUnavailableError",
    "__version__",
]
