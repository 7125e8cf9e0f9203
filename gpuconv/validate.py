"""Check generated programs against the GLSL ES 3.00 specification with glslangValidator.

A GL driver compiles what it is given, often more leniently than the spec allows
(Mesa accepts some desktop-GLSL habits; WebGL2's ANGLE does not), so the reference
compiler from Khronos, ``glslangValidator`` (Debian's ``glslang-tools``), is the
judge here: every source must start with ``#version 300 es`` on its first line (else glslang
would check it as desktop GLSL, or as ES 1.00 without a ``#version``) and must compile
as an ES 3.00 shader of its stage::

    from gpuconv import validate
    validate.validate_glsl(gpuconv.shader_source("conv2d", (1, 7, 7, 6), (3, 3, 6, 4)))
    validate.validate_plan(gpuconv.plan_shapes("separable_conv2d", ...))  # every program of a plan

The WebGPU target's WGSL has its own judge, naga (wgpu's WGSL front end), reached through
wgpu-py: :func:`validate_wgsl` (``pip install 'gpuconv[webgpu]'`` and a Vulkan driver).

:func:`validate_sources` checks many sources in one run of the validator (glslang
checks each file it is given on its own) and reports every invalid one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import codegen

if TYPE_CHECKING:  # pragma: no cover
    from .plan import Plan
    from .programs import Program

#: The validator's executable and the Debian package that has it.
VALIDATOR = "glslangValidator"
PACKAGE = "glslang-tools"
#: The stages GLSL ES 3.00 has, as glslangValidator's ``-S`` names them.
STAGES = ("vert", "frag")
#: Files per run of the validator (keeps the command line short on any system).
BATCH_SIZE = 200
TIMEOUT_S = 300.0

# glslangValidator's exit statuses (StandAlone.cpp's TFailCode): 0 success, 2 a compile error.
_EXIT_COMPILE_FAILED = 2

_VERSION = re.compile(r"#[ \t]*version\b[^\n]*")
_ES300_ANYWHERE = re.compile(r"^[ \t]*#[ \t]*version[ \t]+300[ \t]+es\b", re.MULTILINE)
_ES300 = re.compile(r"#[ \t]*version[ \t]+300[ \t]+es[ \t]*(?://.*|/\*.*)?\Z")


class GLSLValidationError(ValueError):
    """A source that is not valid GLSL ES 3.00; ``messages`` holds the validator's."""

    def __init__(self, message: str, messages: str = "", description: str = "") -> None:
        super().__init__(message)
        self.messages = messages
        self.description = description


class GLSLValidatorUnavailableError(RuntimeError):
    """glslangValidator is not installed (or does not run)."""


@dataclass(frozen=True)
class Failure:
    """One invalid source of a :func:`validate_sources` batch."""

    index: int          # its position in the batch
    description: str    # its first comment line (gpuconv's programs describe themselves there)
    messages: str       # the validator's errors (or why it was refused before the validator)

    def __str__(self) -> str:
        return f"source {self.index} ({self.description}):\n{_indent(self.messages)}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())


def _executable() -> str:
    path = shutil.which(VALIDATOR)
    if path is None:
        raise GLSLValidatorUnavailableError(
            f"{VALIDATOR} was not found on PATH: install Debian's {PACKAGE} "
            f"(apt-get install {PACKAGE}) to check programs against the GLSL ES 3.00 spec"
        )
    return path


def _run(arguments: Sequence[str], cwd: str | None = None) -> tuple[int, str]:
    """Run the validator; its exit status and its output (stdout and stderr together)."""
    try:
        done = subprocess.run([_executable(), *arguments], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=TIMEOUT_S, check=False)
    except OSError as exc:
        raise GLSLValidatorUnavailableError(
            f"{VALIDATOR} does not run ({exc}): reinstall Debian's {PACKAGE} (apt-get install {PACKAGE})"
        ) from exc
    return done.returncode, done.stdout.decode("utf-8", "replace")


def validator_version() -> str:
    """glslangValidator's version, e.g. ``"11:12.0.0"`` (its ``Glslang Version`` line)."""
    status, output = _run(["--version"])
    lines = output.strip().splitlines()
    for line in lines:
        if line.startswith("Glslang Version:"):
            return line.split(":", 1)[1].strip()
    if status != 0 or not lines:
        raise GLSLValidatorUnavailableError(f"{VALIDATOR} --version failed (exit {status}): {output.strip()}")
    return lines[0].strip()


def describe_source(source: str) -> str:
    """A source's first comment line (a gpuconv program's description), else its first line."""
    first = ""
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("//"):
            return line[2:].strip()
        first = first or line
    return first or "an empty source"


def version_problem(source: str) -> str | None:
    """Why ``source`` is not declared GLSL ES 3.00, or ``None`` if its first line is ``#version 300 es``
    (ES allows nothing before the directive, not even a comment)."""
    line = source.split("\n", 1)[0].rstrip("\r").strip()
    if _ES300.match(line):
        return None
    if _VERSION.match(line):
        return (f"it declares {line!r}, not '#version 300 es': gpuconv's programs are GLSL ES 3.00 "
                f"(WebGL2), and glslang would check any other version by that version's rules")
    if _ES300_ANYWHERE.search(source):
        return ("'#version 300 es' must be its first line: GLSL ES 3.00 allows nothing before it, "
                "not even a blank line or a comment")
    return "it does not start with '#version 300 es' (without it a shader is GLSL ES 1.00)"


def _check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(map(repr, STAGES))} (GLSL ES 3.00's stages), "
                         f"got {stage!r}")


def _split_output(output: str, names: Sequence[str]) -> dict[str, str]:
    """The validator's messages per file: it prints each file's name, then that file's messages."""
    known = set(names)
    per_file: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        name = os.path.basename(line.strip())
        if name in known:
            current = per_file.setdefault(name, [])
        elif current is not None and line.strip():
            current.append(line.rstrip())
    return {name: "\n".join(lines) for name, lines in per_file.items()}


def _errors(messages: str) -> bool:
    return any(line.lstrip().startswith("ERROR") for line in messages.splitlines())


def find_errors(sources: Sequence[str], stage: str = "frag") -> list[Failure]:
    """The invalid ones of ``sources`` (each checked on its own as a GLSL ES 3.00 ``stage``
    shader), in a few runs of the validator; an empty list when all are valid."""
    _check_stage(stage)
    failures: list[Failure] = []
    checked: list[int] = []
    for index, source in enumerate(sources):
        problem = version_problem(source)
        if problem is None:
            checked.append(index)
        else:
            failures.append(Failure(index, describe_source(source), problem))
    if checked:
        _executable()  # say what to install before writing any file
    with tempfile.TemporaryDirectory(prefix="gpuconv-glsl-") as directory:
        for start in range(0, len(checked), BATCH_SIZE):
            failures += _check_batch(sources, checked[start:start + BATCH_SIZE], stage, directory)
    return sorted(failures, key=lambda failure: failure.index)


def _check_batch(sources: Sequence[str], indices: Sequence[int], stage: str, directory: str) -> list[Failure]:
    names = []
    for index in indices:
        name = f"program{index:05d}.{stage}"
        with open(os.path.join(directory, name), "w", encoding="utf-8") as file:
            file.write(sources[index])
        names.append(name)
    status, output = _run(["-S", stage, *names], cwd=directory)
    if status == 0:
        return []
    if status != _EXIT_COMPILE_FAILED:
        raise GLSLValidatorUnavailableError(f"{VALIDATOR} failed (exit {status}) on {len(names)} file(s): "
                                            f"{output.strip()[:2000]}")
    per_file = _split_output(output, names)
    failures = [Failure(index, describe_source(sources[index]), per_file[name])
                for index, name in zip(indices, names) if _errors(per_file.get(name, ""))]
    if failures or len(names) == 1:
        return failures or [Failure(indices[0], describe_source(sources[indices[0]]), output.strip())]
    # Output in a form this parser does not know: check the files one by one.
    return [failure for index, name in zip(indices, names)
            for failure in _check_batch(sources, [index], stage, directory)]


def _raise(failures: Sequence[Failure], stage: str, count: int) -> None:
    if not failures:
        return
    what = "fragment" if stage == "frag" else "vertex"
    if count == 1:
        failure = failures[0]
        raise GLSLValidationError(
            f"not a valid GLSL ES 3.00 {what} shader ({failure.description}):\n{_indent(failure.messages)}",
            failure.messages, failure.description)
    raise GLSLValidationError(
        f"{len(failures)} of {count} sources are not valid GLSL ES 3.00 {what} shaders:\n"
        + "\n".join(str(failure) for failure in failures),
        "\n\n".join(failure.messages for failure in failures),
        "; ".join(failure.description for failure in failures))


def validate_glsl(source: str, stage: str = "frag") -> None:
    """Raise :class:`GLSLValidationError` unless ``source`` is a valid GLSL ES 3.00 shader of
    ``stage`` (``"frag"`` or ``"vert"``); :class:`GLSLValidatorUnavailableError` without
    glslangValidator."""
    _raise(find_errors([source], stage), stage, 1)


def validate_sources(sources: Sequence[str], stage: str = "frag") -> None:
    """:func:`validate_glsl` for many sources at once; the error lists every invalid one."""
    _raise(find_errors(sources, stage), stage, len(sources))


def validate_program(spec: Program) -> None:
    """Validate the fragment program generated for ``spec``."""
    validate_glsl(codegen.fragment_source(spec), "frag")


def validate_vertex() -> None:
    """Validate the vertex shader every program is drawn with."""
    validate_glsl(codegen.vertex_source(), "vert")


def validate_plan(plan: Plan) -> None:
    """Validate every fragment program of ``plan`` (and the vertex shader they share)."""
    validate_sources(plan.sources(), "frag")
    validate_vertex()


# ---------------------------------------------------------------------------
# WGSL (the WebGPU target): naga, the WGSL front end of wgpu, through wgpu-py

#: What to install for :func:`validate_wgsl` (wgpu-py, and a Vulkan driver for its adapter).
WGSL_PACKAGES = "pip install 'gpuconv[webgpu]'"


class WGSLValidationError(ValueError):
    """A source that is not valid WGSL (or that WebGPU's guaranteed limits refuse); ``messages``
    holds naga's (wgpu's) message."""

    def __init__(self, message: str, messages: str = "", description: str = "") -> None:
        super().__init__(message)
        self.messages = messages
        self.description = description


class WGSLValidatorUnavailableError(RuntimeError):
    """wgpu-py is not installed, or no WebGPU adapter (Vulkan driver) answers."""


_wgsl_lock = threading.Lock()
_wgsl_device: list[Any] = []  # the one validation device of this process, once made


def wgsl_device() -> Any:
    """The process's validation device (made once: an adapter request costs most of a second),
    asked for WebGPU's guaranteed compute limits, not the adapter's, so that a compute pipeline
    whose workgroup is larger than every device allows is refused here too."""
    with _wgsl_lock:
        if _wgsl_device:
            return _wgsl_device[0]
        try:
            import wgpu
        except ImportError as exc:
            raise WGSLValidatorUnavailableError(
                f"validating WGSL needs wgpu-py (naga is its WGSL front end): {WGSL_PACKAGES}") from exc
        from .webgpu.limits import LIMIT_NAMES, WebGPULimits

        try:
            adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        except Exception as exc:  # wgpu-native raises RuntimeError when no adapter answers
            adapter, reason = None, f" ({exc})"
        else:
            reason = ""
        if adapter is None:
            from .runtimes.webgpu import VULKAN_PACKAGES

            raise WGSLValidatorUnavailableError(
                f"no WebGPU adapter for wgpu-py to validate WGSL with{reason}: install a Vulkan driver "
                f"(on Debian/Ubuntu: apt-get install {VULKAN_PACKAGES}); wgpu-py itself: {WGSL_PACKAGES}")
        defaults = WebGPULimits()
        limits = {key: min(getattr(defaults, name), int(adapter.limits.get(key, getattr(defaults, name))))
                  for name, key in LIMIT_NAMES.items()}
        _wgsl_device.append(adapter.request_device_sync(required_limits=limits, label="gpuconv-validate"))
        return _wgsl_device[0]


def validate_wgsl(source: str, *, pipeline: bool = False, entry_point: str = "main") -> None:
    """Raise :class:`WGSLValidationError`, with naga's message, unless ``source`` is a valid WGSL
    module (``device.create_shader_module``: parsing, types, uniformity); with ``pipeline``,
    also make its compute pipeline at ``entry_point``, which checks that the entry point exists and
    its workgroup size against WebGPU's guaranteed limits (wgpu does not check the workgroup memory
    there: :meth:`~gpuconv.webgpu.programs.ComputeProgramSpec.check` does, for gpuconv's programs).
    :class:`WGSLValidatorUnavailableError` without wgpu-py or a WebGPU adapter."""
    device = wgsl_device()
    import wgpu

    description = describe_source(source)
    try:
        module = device.create_shader_module(code=source, label="gpuconv")
        if pipeline:
            device.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": entry_point},
                                           label="gpuconv")
    except wgpu.GPUValidationError as exc:
        messages = str(getattr(exc, "message", exc)).strip()
        raise WGSLValidationError(f"not valid WGSL ({description}):\n{_indent(messages)}",
                                  messages, description) from None


def validate_wgsl_plan(plan: Plan, *, pipeline: bool = False) -> None:
    """:func:`validate_wgsl` for every program of a WebGPU ``plan``."""
    for source in plan.sources():
        validate_wgsl(source, pipeline=pipeline)
