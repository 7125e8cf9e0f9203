"""The calls on a runtime that default to this thread's (:func:`gpuconv.get_runtime`):
:func:`to_gpu` makes a :class:`~gpuconv.Tensor`, :func:`synchronize` waits for queued work,
:func:`memory` counts what gpuconv holds.

They live here, above :mod:`gpuconv.runtimes`, so that :mod:`gpuconv.tensor` (below the
runtimes, which make Tensors) never looks the default runtime up.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from .arguments import as_tensor
from .runtimes import BaseRuntime, get_runtime
from .tensor import Tensor, collect

__all__ = ["to_gpu", "synchronize", "memory"]


def _check_runtime(runtime: Optional[BaseRuntime]) -> BaseRuntime:
    if runtime is None:
        return get_runtime()
    if not isinstance(runtime, BaseRuntime):
        raise TypeError(f"runtime must be a gpuconv runtime (gpuconv.Runtime(), gpuconv.BrowserRuntime()), "
                        f"got {type(runtime).__name__}")
    return runtime


def to_gpu(array: Any, runtime: Optional[BaseRuntime] = None) -> Tensor:
    """Upload ``array`` once (float32, one R32F row-major texture, as TF.js stores tensors).

    ``runtime``: where it lives (default: this thread's :func:`gpuconv.get_runtime`).  Pass
    the Tensor to any op; it runs on this runtime and returns a Tensor.

    Example:
        >>> x = gpuconv.to_gpu(np.ones((1, 4, 4, 2), np.float32))
        >>> x.shape, x.dtype
        ((1, 4, 4, 2), dtype('float32'))
        >>> x.release()
    """
    if isinstance(array, Tensor):
        raise TypeError("to_gpu takes an array; this is a Tensor already (use it as it is)")
    values = as_tensor(array, "array", ranks=(0, 1, 2, 3, 4, 5))
    runtime = _check_runtime(runtime)
    collect(runtime)
    values = np.asarray(values, dtype=np.float32, order="C")  # (ascontiguousarray makes a scalar 1-D)
    shape = values.shape or (1,)
    layout = runtime.target.tensor_layout(shape, runtime.limits)
    texture = runtime.upload(values.reshape(shape), layout)
    return Tensor.from_upload(runtime, texture, layout, values.shape)


def synchronize(runtime: Optional[BaseRuntime] = None) -> None:
    """Wait until every draw and transfer queued on ``runtime`` (default: this thread's) is done."""
    runtime = _check_runtime(runtime)
    collect(runtime)
    runtime.finish()


def memory(runtime: Optional[BaseRuntime] = None) -> Dict[str, int]:
    """What gpuconv holds on ``runtime`` (default: this thread's) now: ``{"textures": live
    textures, "bytes": their bytes}`` (a browser runtime adds ``"page_textures"``, the
    page's own count).  Textures of collected Tensors are freed first."""
    runtime = _check_runtime(runtime)
    collect(runtime)
    return runtime.memory()
