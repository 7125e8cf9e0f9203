"""``gpuconv``'s entry point: parse, run the command, and turn every error into one line and an exit code."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Optional, Sequence

from ..runtimes import GLUnavailableError
from ..target import NotOnTargetError
from .common import EXIT_INTERNAL, EXIT_NO_GL, EXIT_OK, EXIT_USAGE, fail
from .parser import build_parser


def _error(message: object, code: int, debug: bool) -> int:
    """Report an error in one line (after its traceback with --debug) and return its exit code."""
    if debug:
        traceback.print_exc(file=sys.stderr)
    fail(message)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``gpuconv`` command line ``argv`` (default: ``sys.argv[1:]``) and return its exit
    code: 0 ok, 1 a result outside the tolerance, 2 bad arguments, 3 no usable GPU runtime,
    4 an unexpected error (each error reported in one line on stderr; ``--debug`` adds its
    traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # before parsing: a parse error gets its traceback too
    try:
        args = build_parser().parse_args(argv)
        debug = bool(getattr(args, "debug", debug))
        return int(args.func(args))
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except GLUnavailableError as exc:
        return _error(exc, EXIT_NO_GL, debug)
    except NotOnTargetError as exc:  # the Python API's advice, then the command line's
        return _error(f"{exc}; on the command line: leave out --target {exc.target} / --backend {exc.target}",
                      EXIT_USAGE, debug)
    except (ValueError, TypeError) as exc:  # UsageError and gpuconv's argument checks
        return _error(exc, EXIT_USAGE, debug)
    except KeyboardInterrupt:
        print("gpuconv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gpuconv ... | head` closed the pipe: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's exit flush does not fail again
        return EXIT_OK
    except Exception as exc:
        suffix = "" if debug else " (run again with --debug for the traceback)"
        return _error(f"{type(exc).__name__}: {exc}{suffix}", EXIT_INTERNAL, debug)
