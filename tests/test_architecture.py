"""The package's import graph has no circle, counting every import (module level, inside functions,
under ``TYPE_CHECKING``): ``.ci/import_graph.py`` checks it; here it runs over ``gpuconv/`` and over
small packages written for the purpose, so that a circle of each kind is seen to be found."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "import_graph.py"


def _load_checker():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


import_graph = _load_checker()


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` under ``tmp_path`` with ``files`` (relative path -> source); every
    directory gets an ``__init__.py`` (empty unless given)."""
    root = tmp_path / "pkg"
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    return root


def _circles(root: Path) -> list[list[str]]:
    return import_graph.strongly_connected(import_graph.build(root))


def test_gpuconv_has_no_import_circle():
    result = subprocess.run([sys.executable, str(SCRIPT), str(ROOT / "gpuconv")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no import circles"), result.stdout


def test_layers_list_every_module_below_its_imports():
    graph = import_graph.build(ROOT / "gpuconv")
    level = import_graph.levels(graph)
    assert set(level) == set(graph.modules)
    for source, targets in graph.edges.items():
        for target in targets:
            assert level[target] < level[source], (source, target)


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from .b import B\n",
        "b.py": "B = 1\n\ndef late():\n    from .a import something\n    return something\n",
    })
    assert _circles(root) == [["pkg.a", "pkg.b"]]


def test_a_circle_under_type_checking_is_found_and_reported_with_lines(tmp_path, capsys):
    root = _package(tmp_path, {
        "a.py": "from .b import B\n",
        "b.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from pkg.a import A\nB = 1\n",
    })
    assert _circles(root) == [["pkg.a", "pkg.b"]]
    assert import_graph.main([str(root)]) == 1
    out = capsys.readouterr().out
    assert "pkg.a -> pkg.b  (pkg/a.py:1)" in out and "pkg.b -> pkg.a  (pkg/b.py:4)" in out


def test_a_name_from_the_package_init_is_an_edge_to_it(tmp_path):
    # `from . import helper`, helper a name __init__ defines (not a module): a's import needs __init__ run.
    root = _package(tmp_path, {
        "__init__.py": "from .a import run\n\nhelper = 1\n",
        "a.py": "def run():\n    from . import helper\n    return helper\n",
    })
    assert _circles(root) == [["pkg", "pkg.a"]]


def test_a_submodule_named_by_from_dot_import_is_an_edge_to_it_not_to_init(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from .a import run\n",
        "a.py": "from . import b\n\ndef run():\n    return b.VALUE\n",
        "b.py": "VALUE = 1\n",
    })
    graph = import_graph.build(root)
    assert set(graph.edges["pkg.a"]) == {"pkg.b"}
    assert _circles(root) == []


def test_importing_into_a_subpackage_runs_its_init(tmp_path):
    # pkg.x imports pkg.sub.leaf, which runs pkg/sub/__init__.py; that imports pkg.x back.
    root = _package(tmp_path, {
        "x.py": "from .sub.leaf import LEAF\nX = 1\n",
        "sub/__init__.py": "from ..x import X\n",
        "sub/leaf.py": "LEAF = 1\n",
    })
    graph = import_graph.build(root)
    assert set(graph.edges["pkg.x"]) == {"pkg.sub", "pkg.sub.leaf"}
    assert set(graph.edges["pkg.sub.leaf"]) == set()  # its own package's __init__ is already running
    assert _circles(root) == [["pkg.sub", "pkg.x"]]


def test_a_constant_string_import_module_is_an_edge(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from .b import B\n",
        "b.py": "import importlib\nB = 1\n\ndef late():\n    return importlib.import_module('pkg.a')\n",
    })
    assert _circles(root) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("layers", [False, True])
def test_an_acyclic_package_passes_and_its_layers_run_bottom_up(tmp_path, capsys, layers):
    root = _package(tmp_path, {
        "__init__.py": "from .top import run\n",
        "top.py": "from .middle import M\n\ndef run():\n    from .bottom import B\n    return B + M\n",
        "middle.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .bottom import B\nM = 1\n",
        "bottom.py": "import numpy\nB = 1\n",  # outside the package: no edge
    })
    assert import_graph.main([str(root)] + (["--layers"] if layers else [])) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("no import circles: 4 modules of pkg")
    if layers:
        assert out[:-1] == ["0: pkg.bottom", "1: pkg.middle", "2: pkg.top", "3: pkg.__init__"]
