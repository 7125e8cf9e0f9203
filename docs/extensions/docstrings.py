"""A griffe extension for the API reference: gpuconv's docstrings cross-reference with Sphinx's roles
(``:func:`measure```, ``:class:`~gpuconv.Tensor```, ``:mod:`.base```), which Markdown would print as
written.  Each role becomes its target's name in code, linked to the target's entry where the site
documents it (an optional cross-reference: an object the reference does not render stays plain
code, with no warning).  An attribute with no docstring takes the ``#:`` comment above its
assignment, as Sphinx reads it; a method or attribute with none takes the docstring of the one it
overrides.  A Google-style ``Example:`` section is read as ``Examples:`` (its ``>>>`` lines shown as
a Python session)."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`(?P<target>[^`]+)`")
EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)
TITLED = re.compile(r"(?P<title>.*?)\s*<(?P<target>[^>]+)>$")


def module_of(obj: griffe.Object) -> griffe.Object:
    while not obj.is_module:
        obj = obj.parent  # type: ignore[assignment]
    return obj


def resolve(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` as the docstring of ``obj`` means it."""
    if target.startswith("gpuconv"):
        return target
    module = module_of(obj)
    if target.startswith("."):
        package = module.path if module.is_package else module.path.rsplit(".", 1)[0]
        dots = len(target) - len(target.lstrip("."))
        for _ in range(dots - 1):
            package = package.rsplit(".", 1)[0]
        return f"{package}.{target.lstrip('.')}"
    head, _, rest = target.partition(".")
    for scope in (obj, obj.parent, module):
        if scope is None:
            continue
        try:
            path = scope.resolve(head)
        except Exception:  # griffe's NameResolutionError: not a name in this scope
            continue
        return f"{path}.{rest}" if rest else path
    return f"{module.path}.{target}"


def rewrite(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match) -> str:
        target = match["target"].strip()
        titled = TITLED.match(target)
        if titled:
            title, target = titled["title"], titled["target"]
        else:
            shown = target.lstrip("~")
            title = shown.rsplit(".", 1)[-1] if target.startswith("~") else shown
        identifier = resolve(obj, target.lstrip("~"))
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return ROLE.sub(link, text)


def comment_docstring(obj: griffe.Object) -> str:
    """The ``#:`` comment lines right above an attribute's assignment (Sphinx's attribute docstring)."""
    if obj.lineno is None:
        return ""
    lines = obj.lines_collection[obj.filepath]  # type: ignore[index]
    above = []
    for line in reversed(lines[: obj.lineno - 1]):
        stripped = line.strip()
        if not stripped.startswith("#:"):
            break
        above.append(stripped[2:].strip())
    return "\n".join(reversed(above))


def inherited_docstring(obj: griffe.Object) -> str:
    """The docstring of the member ``obj`` overrides in a base class (a runtime's ``upload``, say)."""
    parent = obj.parent
    if parent is None or not parent.is_class:
        return ""
    try:
        bases = parent.mro()  # type: ignore[attr-defined]
    except Exception:  # a base griffe cannot resolve (from outside the package)
        return ""
    for base in bases:
        member = base.members.get(obj.name)
        if member is not None and not member.is_alias and member.docstring is not None:
            return member.docstring.value
    return ""


class GpuconvDocstrings(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, loader: Any, **kwargs: Any) -> None:
        if obj.docstring is None and (obj.is_attribute or obj.is_function):
            text = (comment_docstring(obj) if obj.is_attribute else "") or inherited_docstring(obj)
            if text:
                obj.docstring = griffe.Docstring(text, parent=obj)
        if obj.docstring is not None and ":" in obj.docstring.value:
            # Google style's "Example:" is an admonition of Markdown, where ">>>" reads as nested quotes;
            # "Examples:" renders its ">>>" lines as Python sessions.
            value = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = rewrite(obj, value)
