"""The ``gpuconv`` argument parser: the top-level options and one subcommand per command module, each
adding its own options (the ops and their options come from :data:`gpuconv.registry.OPS`)."""

from __future__ import annotations

import argparse
import textwrap
from typing import NoReturn

from ..version import __version__
from .common import Command, UsageError
from .conformance import add_conformance_command
from .export import add_export_command
from .info import add_info_command
from .precision import add_precision_command
from .run import add_run_command
from .selftest import add_demo_command, add_random_command, add_selftest_command
from .shader import add_shader_command
from .warmup import add_warmup_command


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The ``gpuconv`` command's argparse parser: one subcommand per command module, the op
    options built from :data:`gpuconv.registry.OPS`."""
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="also print the traceback of an error (the exit code stays the same)")

    parser = _Parser(
        prog="gpuconv",
        description="Generate, inspect and run TensorFlow.js-style WebGL convolution shaders "
                    "headless, checked against a float64 NumPy oracle.",
        epilog="examples:\n"
               "  gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --padding same\n"
               "  gpuconv shader conv2d --input 1x7x7x6 --filter 3x3x6x4 --target webgpu --annotate\n"
               "  gpuconv selftest --quick\n"
               "  gpuconv selftest --quick --backend webgpu\n"
               "  gpuconv random --count 200 --seed 0\n\n"
               "exit codes: 0 ok, 1 result outside the tolerance, 2 bad arguments, "
               "3 no usable OpenGL, 4 unexpected error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"gpuconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help: str, description: str, example: str, func: Command) -> argparse.ArgumentParser:
        paragraphs = [textwrap.fill(text, 88) for text in description.split("\n")]
        p = sub.add_parser(name, help=help, description="\n".join(paragraphs) + f"\n\nexample:\n  {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
        p.set_defaults(func=func)
        return p

    # in the order `gpuconv --help` lists them
    for add_command in (add_shader_command, add_warmup_command, add_run_command, add_selftest_command,
                        add_conformance_command, add_random_command, add_info_command, add_demo_command,
                        add_export_command, add_precision_command):
        add_command(add)
    return parser

