"""The documentation's Markdown, read for the tests: README.md and every page under docs/.

The tests run the code the pages show (tests/test_docs.py runs every page's Python and its
``gpuconv`` command lines; a few tests run one section's code and check what it says).  A code
block that must not run carries a marker on the line right above its opening fence::

    <!-- docs-test: skip (why: the reason, in a few words) -->

Use it sparingly: a block that is not run can go wrong unseen.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

#: The one marker the pages may put above a code fence.
SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")
#: Any docs-test marker, well formed or not (tests/test_docs.py refuses the malformed ones).
MARKER = re.compile(r"<!--\s*docs-test\b")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<language>[\w+-]*)")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")

PYTHON = ("python", "py")
SHELL = ("sh", "bash", "shell", "console")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int          # the page's line (1-based) of the block's first line of code
    language: str
    code: str          # dedented to the fence's indentation
    skip: Optional[str]  # the skip marker's reason, or None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def pages() -> List[Path]:
    """README.md and the site's pages (docs/**/*.md), in a fixed order."""
    return [REPO / "README.md"] + sorted(DOCS.rglob("*.md"))


def page_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def blocks(page: Path, languages: Optional[Sequence[str]] = None, text: Optional[str] = None,
           first_line: int = 1) -> List[Block]:
    """The fenced code blocks of a page (or of ``text``, a part of it starting at ``first_line``),
    of the given languages (all without)."""
    lines = (page.read_text(encoding="utf-8") if text is None else text).splitlines()
    found: List[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, language = opening["indent"], opening["fence"], opening["language"].lower()
        j = i + 1
        closing = re.compile(re.escape(fence[0]) + "{%d,}" % len(fence))
        while j < len(lines) and not closing.fullmatch(lines[j].strip()):
            j += 1
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:j]]
        above = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        skip = SKIP.match(above)
        if languages is None or language in languages:
            found.append(Block(page, first_line + i + 1, language, "\n".join(body) + "\n",
                               skip["reason"].strip() if skip else None))
        i = j + 1
    return found


def section(heading: str) -> Tuple[Path, str, int]:
    """The section whose heading starts with ``heading`` (any level, in README.md or a page under docs/):
    its page, its text up to the next heading of the same or a higher level, and its first line."""
    for page in pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        in_fence = False
        for i, line in enumerate(lines):
            if FENCE.match(line):
                in_fence = not in_fence
            match = None if in_fence else HEADING.match(line)
            if match and match["title"].startswith(heading):
                level = len(match["hashes"])
                end = len(lines)
                fenced = False
                for j in range(i + 1, len(lines)):
                    if FENCE.match(lines[j]):
                        fenced = not fenced
                    following = None if fenced else HEADING.match(lines[j])
                    if following and len(following["hashes"]) <= level:
                        end = j
                        break
                return page, "\n".join(lines[i:end]) + "\n", i + 1
    raise AssertionError(f"no heading starting with {heading!r} in README.md or docs/ (the tests run that "
                         f"section's code: keep the heading, or change the test with it)")


def command_lines(block: Block) -> List[Tuple[int, List[str]]]:
    """A shell block's commands as argument lists, with their page lines: continuation lines
    (ending in a backslash) joined, comments and blank lines dropped."""
    commands: List[Tuple[int, List[str]]] = []
    pending, start = "", block.line
    for offset, line in enumerate(block.code.splitlines()):
        if not pending:
            start = block.line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text.startswith("$ "):
            text = text[2:]
        argv = shlex.split(text, comments=True)
        if argv:
            commands.append((start, argv))
    return commands
