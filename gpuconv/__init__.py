"""gpuconv: TensorFlow.js-style GPU convolution programs (WebGL2's GLSL and WebGPU's WGSL), generated,
inspected and run from Python."""

from typing import TYPE_CHECKING, Any

from . import oracle
from .device import memory, synchronize, to_gpu
from .export import export
from .limits import Limits
from .ops import (
    conv1d,
    conv2d,
    conv2d_backprop_filter,
    conv2d_backprop_input,
    conv2d_transpose,
    conv3d,
    conv3d_backprop_filter,
    conv3d_backprop_input,
    conv3d_transpose,
    depthwise_conv2d,
    depthwise_conv2d_backprop_filter,
    depthwise_conv2d_backprop_input,
    separable_conv2d,
)
from .precompile import precompile, precompile_all
from .profiler import profile
from .registry import shader_source, shader_sources
from .runtimes import (
    BaseRuntime,
    GLUnavailableError,
    NativeRuntime,
    Runtime,
    WebGPUError,
    WebGPURuntime,
    WorkerRuntime,
    get_runtime,
    set_runtime,
    use_context,
)
from .tensor import Tensor
from .tuning import autotune
from .version import __version__

if TYPE_CHECKING:  # imported on first use (__getattr__ below); named here for type checkers and the API reference
    from .runtimes.browser import BrowserRuntime

__all__ = [
    "conv2d",
    "depthwise_conv2d",
    "separable_conv2d",
    "conv1d",
    "conv2d_transpose",
    "conv3d",
    "conv3d_transpose",
    "conv3d_backprop_input",
    "conv3d_backprop_filter",
    "conv2d_backprop_input",
    "conv2d_backprop_filter",
    "depthwise_conv2d_backprop_input",
    "depthwise_conv2d_backprop_filter",
    "shader_source",
    "shader_sources",
    "export",
    "profile",
    "precompile",
    "precompile_all",
    "autotune",
    "oracle",
    "BaseRuntime",
    "NativeRuntime",
    "Runtime",
    "WorkerRuntime",
    "BrowserRuntime",
    "WebGPURuntime",
    "WebGPUError",
    "Limits",
    "get_runtime",
    "set_runtime",
    "use_context",
    "GLUnavailableError",
    "Tensor",
    "to_gpu",
    "synchronize",
    "memory",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The browser runtime imports Playwright only when it is asked for.
    if name == "BrowserRuntime":
        from .runtimes.browser import BrowserRuntime

        return BrowserRuntime
    raise AttributeError(f"module 'gpuconv' has no attribute {name!r}")
