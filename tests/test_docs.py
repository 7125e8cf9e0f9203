"""The documentation says what is true: README.md and every page under docs/.

* Each page's Python blocks (```python or ```py) run as written, in order, in one namespace, in a
  fresh interpreter in an empty directory: a page reads as one session, so a block may use what an
  earlier block of the same page made.
* Each page's ``gpuconv`` command lines (```sh blocks) run in order in an empty directory, through
  ``gpuconv.cli.main`` as the installed command would: ``shader`` and ``export`` (no GPU needed),
  ``run`` and ``warmup`` (small shapes), with the ``python -c`` lines that make their ``.npy`` files.
  The others (``selftest``, ``random``, ``conformance``, ``precision``, ``demo``, ``info``) take
  minutes or print what the machine has; tests/test_cli*.py and tests/test_conformance.py run them.
* Every name of ``gpuconv.__all__`` has its entry in the API reference (docs/reference/).

A block that must not run says so above its fence (``<!-- docs-test: skip (reason) -->``, see
tests/docs_pages.py).  A page whose code makes a browser or WebGPU runtime runs where there is one
(it skips without, and fails on CI, as the runtimes' own tests do).  ``mkdocs build --strict`` (in
.ci/run) checks the site itself: links, anchors, the reference's objects.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import docs_pages
import pytest
from docs_pages import REPO, Block

import gpuconv
from gpuconv import GLUnavailableError, cli

#: Subcommands whose documented lines run here (the rest are run by their own tests, see above).
RUN_SUBCOMMANDS = ("shader", "export", "run", "warmup")
#: Subcommands that need a GPU runtime.
GPU_SUBCOMMANDS = ("run", "warmup")

RUNNER = """
import sys
namespace = {"__name__": "__main__"}
exec(compile(open(sys.argv[1], encoding="utf-8").read(), sys.argv[2], "exec"), namespace)
"""


def python_blocks(page: Path) -> List[Block]:
    return [block for block in docs_pages.blocks(page, docs_pages.PYTHON) if block.skip is None]


def commands(page: Path) -> List[Tuple[str, List[str]]]:
    """The page's command lines that run here, in order, each with where it is."""
    found = []
    for block in docs_pages.blocks(page, docs_pages.SHELL):
        if block.skip is not None:
            continue
        for line, argv in docs_pages.command_lines(block):
            where = f"{docs_pages.page_id(page)}:{line}"
            if argv[0] == "gpuconv" and len(argv) > 1 and argv[1] in RUN_SUBCOMMANDS:
                found.append((where, argv))
            elif argv[0] in ("python", "python3") and argv[1:2] == ["-c"]:
                found.append((where, argv))
    return found


def runtimes_needed(request, text: str) -> None:
    """Skip (or, on CI, fail) where the code's runtimes are missing, as the runtimes' own tests do."""
    request.getfixturevalue("runtime")  # a GL context: every page that runs code draws
    if re.search(r"""BrowserRuntime\((?=[^)]*api\s*=\s*["']webgpu)|--api webgpu""", text):
        request.getfixturevalue("browser_webgpu")
    if re.search(r"BrowserRuntime\(|--backend browser|GPUCONV_BACKEND=browser", text):
        request.getfixturevalue("browser")
    if re.search(r"WebGPURuntime\(|--backend webgpu|GPUCONV_BACKEND=webgpu", text):
        request.getfixturevalue("webgpu")


PYTHON_PAGES = [page for page in docs_pages.pages() if python_blocks(page)]
COMMAND_PAGES = [page for page in docs_pages.pages() if commands(page)]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=docs_pages.page_id)
def test_python_blocks_run(page, request, tmp_path):
    """The page's Python runs as written: its blocks, in order, in one fresh interpreter.  A failure
    names the page's own line (the blocks keep their line numbers)."""
    blocks = python_blocks(page)
    runtimes_needed(request, "".join(block.code for block in blocks))
    lines = [""] * len(page.read_text(encoding="utf-8").splitlines())
    for block in blocks:
        code = block.code.splitlines()
        lines[block.line - 1:block.line - 1 + len(code)] = code
    script = tmp_path / "blocks.py"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([sys.executable, "-c", RUNNER, str(script), str(page)], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (f"{docs_pages.page_id(page)}'s Python failed "
                                    f"(blocks at lines {[b.line for b in blocks]}):\n{result.stderr[-4000:]}")


@pytest.fixture
def default_context_current_again():
    """The commands make (and release) runtimes of their own; make the default one's context current
    again for the tests after these."""
    yield
    try:
        gpuconv.get_runtime().finish()
    except GLUnavailableError:
        pass


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=docs_pages.page_id)
def test_commands_run(page, request, tmp_path, monkeypatch, capsys, default_context_current_again):
    """The page's ``gpuconv shader|export|run|warmup`` lines work (exit 0), in order, and write the
    files their ``--output`` names."""
    lines = commands(page)
    if any(argv[0] == "gpuconv" and argv[1] in GPU_SUBCOMMANDS for _, argv in lines):
        runtimes_needed(request, " ".join(" ".join(argv) for _, argv in lines))
    monkeypatch.chdir(tmp_path)
    for where, argv in lines:
        if argv[0] != "gpuconv":
            result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, (where, argv, result.stderr[-2000:])
            continue
        code = cli.main(argv[1:])
        assert code == 0, (where, argv, capsys.readouterr().err[-2000:])
        if "--output" in argv:
            written = tmp_path / argv[argv.index("--output") + 1]
            assert written.is_file() and written.stat().st_size > 0, (where, argv)
            if argv[1] == "shader" and written.suffix == ".glsl":
                assert written.read_text(encoding="utf-8").startswith("#version 300 es\n"), (where, argv)


# -- the API reference covers the public API ------------------------------------------------------------

def reference_directives() -> Dict[str, str]:
    """Each ``::: identifier`` of docs/reference/*.md, with the options block under it."""
    directives: Dict[str, str] = {}
    for page in sorted((docs_pages.DOCS / "reference").glob("*.md")):
        for match in re.finditer(r"^::: (\S+)\n((?:[ \t]+\S.*\n)*)", page.read_text(encoding="utf-8"), re.M):
            directives[match[1]] = match[2]
    return directives


def test_every_public_name_is_in_the_reference():
    """Each name of ``gpuconv.__all__`` has an entry (``::: gpuconv.NAME``, or the path of the module that
    defines it where the package's loader would take that module's name for it), and the modules the
    reference documents whole are rendered with every public member (no ``members:`` list)."""
    directives = reference_directives()
    missing = []
    for name in gpuconv.__all__:
        value = getattr(gpuconv, name)
        paths = {f"gpuconv.{name}"}
        if hasattr(value, "__module__") and hasattr(value, "__qualname__"):
            paths.add(f"{value.__module__}.{value.__qualname__}")
        if not paths & set(directives):
            missing.append(name)
    assert not missing, f"not in docs/reference/ (add a '::: gpuconv.NAME' line to a page): {missing}"
    for module in ("gpuconv.oracle", "gpuconv.torch", "gpuconv.caffe", "gpuconv.conformance", "gpuconv.precision"):
        assert module in directives, f"{module} is not in docs/reference/"
        assert "members:" not in directives[module], f"{module}'s entry leaves members out"


def test_skip_markers_are_well_formed_and_sit_on_a_fence():
    """A misspelt marker would leave a block running (or a marker away from its fence would skip nothing)."""
    for page in docs_pages.pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if not docs_pages.MARKER.search(line):
                continue
            where = f"{docs_pages.page_id(page)}:{i + 1}"
            assert docs_pages.SKIP.match(line), f"{where}: write <!-- docs-test: skip (reason) -->"
            following = next((text for text in lines[i + 1:] if text.strip()), "")
            assert docs_pages.FENCE.match(following), f"{where}: the marker must sit right above a code fence"


def test_readme_links_resolve():
    """README is not a page of the site, so mkdocs does not check its links: each relative link names
    a file of the repository, and each #anchor a heading of the file it points into."""
    def anchors(path: Path) -> set:
        text = path.read_text(encoding="utf-8")
        titles = [m["title"] for m in map(docs_pages.HEADING.match, text.splitlines()) if m]
        return {re.sub(r"[^\w\- ]", "", title.lower()).strip().replace(" ", "-") for title in titles}

    readme = REPO / "README.md"
    links = re.findall(r"\]\(([^)\s]+)\)", readme.read_text(encoding="utf-8"))
    assert links
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = (REPO / target) if target else readme
        assert path.exists(), f"README links to {link}: no such file"
        if anchor:
            assert anchor in anchors(path), f"README links to {link}: no such heading"
