"""Rendering of the GLSL templates in ``shaders/``.

The only place that knows about Jinja2.  A :class:`~gpuconv.programs.ProgramSpec`
says which template to render and with what; this module renders it (once per
distinct spec) and never builds GLSL out of Python strings.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Hashable

import jinja2

from . import erf
from .programs import Drawable


def _shader_dir() -> Path:
    """The templates: inside the installed package, or at the repository top in a checkout."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "shaders", package_dir.parent / "shaders"):
        if (candidate / "program.glsl").is_file():
            return candidate
    raise FileNotFoundError(
        f"gpuconv's GLSL templates are missing: looked in {package_dir / 'shaders'} and "
        f"{package_dir.parent / 'shaders'}; reinstall gpuconv"
    )


def glsl_float(value: float) -> str:
    """A GLSL float literal that reads back as the same float32."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value} as a GLSL constant")
    text = repr(value)
    return text if ("." in text or "e" in text) else text + ".0"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja2 environment (templates from shaders/, strict about undefined names)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_shader_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["glsl_float"] = glsl_float
    env.globals["erf"] = erf  # the coefficients of the programs' erf (activation "gelu")
    return env


def _tidy(source: str) -> str:
    """Collapse the blank lines that template control flow leaves behind."""
    lines: list = []
    blank = False
    for line in source.splitlines():
        line = line.rstrip()
        if not line:
            if blank or not lines:
                continue
            blank = True
        else:
            blank = False
        lines.append(line)
    return "\n".join(lines).rstrip() + "\n"


_SOURCE_CACHE_SIZE = 512
_sources: "OrderedDict[Hashable, str]" = OrderedDict()
_sources_lock = threading.Lock()  # every thread's runtime renders through this one cache


def program_source(spec: Drawable) -> str:
    """The complete program for ``spec``, in its target's language (a GLSL ES 3.00 fragment
    program, or a WGSL compute program: ``spec.template`` says which).

    Rendered once per ``spec.source_key()`` (the TF.js-style programs bake their
    shapes in; the packed programs share one source per family), in a bounded cache.
    """
    key = spec.source_key()
    with _sources_lock:
        source = _sources.get(key)
        if source is not None:
            _sources.move_to_end(key)
            return source
    # Rendered outside the lock (Jinja2 is thread-safe); two threads may render one source twice.
    source = _tidy(environment().get_template(spec.template).render(**spec.template_context()))
    with _sources_lock:
        _sources[key] = source
        if len(_sources) > _SOURCE_CACHE_SIZE:
            _sources.popitem(last=False)
    return source


#: The WebGL2 programs' name for :func:`program_source`.
fragment_source = program_source


@functools.lru_cache(maxsize=1)
def vertex_source() -> str:
    """The vertex program every fragment program is linked with (a quad over the viewport)."""
    return _tidy(environment().get_template("vertex.glsl").render())
