"""A native runtime in a worker process, for processes where GL cannot run in-process.

TensorFlow (and JAX's jaxlib) bundle their own LLVM; once loaded, its symbols take
the place of those Mesa's llvmpipe needs, and the first draw crashes the process
(a segmentation fault in ``swrast_dri.so``).  :class:`WorkerRuntime` runs a
:class:`~gpuconv.runtimes.native.NativeRuntime` in a fresh Python process that
never imports them, and forwards every call over a pipe (pickled, NumPy arrays as
they are), so results are bit-for-bit those of the native runtime on the same driver.
:func:`gpuconv.get_runtime` switches to it by itself, with a one-line warning.

The worker is a plain interpreter running :func:`main`, not a
``multiprocessing`` child, so the user's main module (which imported TensorFlow)
is never imported again there.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import Any, BinaryIO, Dict, Iterable, List, Mapping, Optional, cast

import numpy as np

from ..layout import InputLayout, Layout
from ..limits import Limits
from ..plan import Plan
from ..programs import Drawable
from ..storage import check_storage
from .base import BaseRuntime, GLUnavailableError

_HEADER = struct.Struct("<Q")

#: Mesa drivers a worker can open instead of the default (llvmpipe, or the GPU's own), and the
#: environment that selects each; it must be set before the process opens EGL, so only a worker
#: process (started with it) can choose.  softpipe: Mesa's reference software rasteriser (GL 3.3);
#: zink: GL 4.6 over Vulkan (on lavapipe without a GPU).
DRIVERS: Dict[str, Dict[str, str]] = {
    "llvmpipe": {"LIBGL_ALWAYS_SOFTWARE": "1", "GALLIUM_DRIVER": "llvmpipe"},
    "softpipe": {"LIBGL_ALWAYS_SOFTWARE": "1", "GALLIUM_DRIVER": "softpipe"},
    "zink": {"LIBGL_ALWAYS_SOFTWARE": "1", "GALLIUM_DRIVER": "zink"},
}


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the stream closed")
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


class WorkerRuntime(BaseRuntime):
    """The native runtime, run in a separate process; the same calls, the same results.

    ``backend``, ``max_texture_size``, ``max_draw_buffers`` and ``storage`` are passed to the
    worker's :class:`~gpuconv.runtimes.native.NativeRuntime`.  ``driver`` picks another Mesa
    driver for the worker (:data:`DRIVERS`: ``"softpipe"``, ``"zink"``, ``"llvmpipe"``), set in
    its environment before it opens EGL.  Texture handles are the worker's ids.  Use it from
    the thread that created it.
    """

    kind = "native"

    def __init__(self, backend: Optional[str] = None, *, max_texture_size: Optional[int] = None,
                 max_draw_buffers: Optional[int] = None, storage: str = "float32", driver: Optional[str] = None):
        if driver is not None and driver not in DRIVERS:
            raise ValueError(f"driver must be one of {', '.join(map(repr, DRIVERS))}, got {driver!r}")
        self.driver = driver
        self.storage = check_storage(storage)
        self._renderable = {self.storage}  # storages the worker's device renders to (it checked them)
        self.thread_id = threading.get_ident()
        self._lock = threading.Lock()
        env = dict(os.environ)
        # The worker must import this very gpuconv, installed or not.
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        if driver is not None:
            env.update(DRIVERS[driver])
        self._process: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, "-c", "import sys; from gpuconv.runtimes.worker import main; sys.exit(main())"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._released = False
        options = dict(backend=backend, max_texture_size=max_texture_size, max_draw_buffers=max_draw_buffers,
                       storage=storage)
        facts: Dict[str, Any] = self._call("start", options)
        self._info = facts
        self.backend = str(facts.get("backend"))
        self.limits = Limits(int(facts["layout_texture_size"]), int(facts["program_draw_buffers"]))
        loops = facts.get("max_loop_iterations")
        self.max_loop_iterations = None if loops is None else int(loops)

    def _call(self, method: str, *args: Any) -> Any:
        if self._released or self._process is None:
            raise RuntimeError("this gpuconv runtime has been released; create a new one")
        if threading.get_ident() != self.thread_id:
            raise RuntimeError("this gpuconv WorkerRuntime belongs to the thread that created it")
        process = self._process
        requests, replies = cast(BinaryIO, process.stdin), cast(BinaryIO, process.stdout)
        with self._lock:
            try:
                _send(requests, (method, args))
                ok, value = _receive(replies)
            except (EOFError, OSError, BrokenPipeError) as exc:
                code = process.poll()
                self._released = True
                raise RuntimeError(f"gpuconv's GL worker process ended (exit code {code}); "
                                   f"create a new runtime") from exc
        if not ok:
            raise value
        return value

    def info(self) -> Dict[str, object]:
        facts = dict(self._call("info"))
        facts["process"] = f"worker (pid {self._process.pid if self._process else '-'})"
        if self.driver is not None:
            facts["driver"] = self.driver
        return facts

    def upload(self, array: np.ndarray, layout: InputLayout, storage: str = "float32") -> Any:
        texture = self._call("upload", np.asarray(array), layout, storage)
        self._count_made([texture], [layout], storage)
        return texture

    def draw(self, program: Drawable, inputs: Mapping[str, Any], storage: str = "float32") -> List[Any]:
        outputs = self._call("draw", program, dict(inputs), storage)
        self._count_made(outputs, program.output_layouts, storage)
        return outputs

    def require_storage(self, storage: str) -> str:
        check_storage(storage)
        if storage != "float32" and storage not in self._renderable:  # asked of the worker once
            self._renderable.add(self._call("require_storage", storage))
        return storage

    def read(self, texture: Any, layout: Layout) -> np.ndarray:
        return self._call("read", texture, layout)

    def free(self, textures: Iterable[Any]) -> None:
        textures = list(textures)
        self._call("free", textures)
        self._count_freed(textures)

    def finish(self) -> None:
        self._call("finish")

    def compile(self, programs: Iterable[Drawable]) -> int:
        compiled = int(self._call("compile", list(programs)))
        self.compiled_programs += compiled
        return compiled

    def run(self, plan: Plan) -> np.ndarray:
        return self._call("run", plan)  # one round trip for the whole plan

    def release(self) -> None:
        if self._released or self._process is None:
            return
        try:
            self._call("release")
        except Exception:  # the worker is gone already
            pass
        self._released = True
        process, self._process = self._process, None
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass


def _serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """The worker's loop: one NativeRuntime, calls by name, textures by id."""
    from .native import NativeRuntime

    runtime: Optional[NativeRuntime] = None
    textures: Dict[int, Any] = {}
    ids = iter(range(1, 1 << 62))

    def keep(texture: Any) -> int:
        key = next(ids)
        textures[key] = texture
        return key

    while True:
        try:
            method, args = _receive(requests)
        except EOFError:
            break
        try:
            if method == "start":
                runtime = NativeRuntime(**args[0])
                value: Any = runtime.info()
            elif runtime is None:
                raise RuntimeError("the worker has no runtime")
            elif method == "info":
                value = runtime.info()
            elif method == "upload":
                value = keep(runtime.upload(*args))
            elif method == "draw":
                program, inputs, storage = args
                value = [keep(t) for t in runtime.draw(program, {k: textures[v] for k, v in inputs.items()},
                                                       storage)]
            elif method == "require_storage":
                value = runtime.require_storage(args[0])
            elif method == "read":
                value = runtime.read(textures[args[0]], args[1])
            elif method == "free":
                runtime.free(textures.pop(key) for key in args[0])
                value = None
            elif method == "finish":
                value = runtime.finish()
            elif method == "compile":
                value = runtime.compile(args[0])
            elif method == "run":
                value = runtime.run(args[0])
            elif method == "release":
                runtime.free(textures.values())
                textures.clear()
                runtime.release()
                value = None
            else:
                raise ValueError(f"unknown worker call {method!r}")
            _send(replies, (True, value))
        except Exception as exc:  # sent back and raised in the caller
            try:
                _send(replies, (False, exc))
            except Exception:
                _send(replies, (False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        if method == "release":
            break


def main() -> int:
    # Keep stdout for replies: anything the driver prints goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        _serve(sys.stdin.buffer, replies)
    except GLUnavailableError:
        return 3
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
