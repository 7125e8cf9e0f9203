"""What every command shares: exit codes, the one-line usage error, tolerances, .npy files and output."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterable, Optional

import numpy as np

from .. import checks, registry

#: The default tolerance of run --check, selftest, random and export's page with --storage float16:
#: float16 keeps 11 significant bits, and a sum of many rounded products drifts further.
FLOAT16_TOLERANCE = 1e-2

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_GL, EXIT_INTERNAL = 0, 1, 2, 3, 4
DEFAULT_TOLERANCE = checks.DEFAULT_TOLERANCE

Args = argparse.Namespace
#: A command's function: its parsed arguments -> its exit code.
Command = Callable[[Args], int]
#: ``add(name, help, description, example, func)``: a new subcommand's parser (built by
#: :func:`gpuconv.cli.parser.build_parser`, which each command module's ``add_*_command`` is given).
AddCommand = Callable[[str, str, str, str, Command], argparse.ArgumentParser]


class UsageError(ValueError):
    """A bad command line; reported in one line with exit code 2."""


def joined(names: Iterable[str]) -> str:
    return ", ".join(names)


def ops_with(flag: str) -> str:
    """The ops whose registry entry has ``flag`` set, for a message or a help text."""
    return joined(registry.ops_with(flag))


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def tolerance_for(args: Args, given: Optional[float]) -> float:
    """--tolerance, or its default for --storage (float16's is looser)."""
    if given is not None:
        return given
    return FLOAT16_TOLERANCE if getattr(args, "storage", None) == "float16" else DEFAULT_TOLERANCE


_NPY_MAGIC = b"\x93NUMPY"


def load_optional_npy(path: Optional[str], option: str) -> Optional[np.ndarray]:
    """The array in the .npy file ``path``, or ``None`` for no path."""
    return None if path is None else load_npy(path, option)


def load_npy(path: str, option: str) -> np.ndarray:
    """The array in the .npy file ``path``; a UsageError naming ``option`` if it cannot be read."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
            if magic != _NPY_MAGIC:
                what = ("it is a .npz archive (numpy.savez); save the one array with numpy.save"
                        if magic.startswith(b"PK\x03\x04") else "it does not start with the .npy header")
                raise UsageError(f"{option}: {path} is not a .npy file (a single array saved with "
                                 f"numpy.save): {what}")
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except UsageError:
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option}: cannot read {path!r} as a .npy array: {exc}") from exc


def save_npy(path: str, array: np.ndarray) -> None:
    """``array`` in the .npy file ``path``, under exactly that name (a directory is refused)."""
    try:
        with open(path, "wb") as f:
            np.save(f, array)
    except OSError as exc:
        raise UsageError(f"--output: cannot write {path!r}: {exc}") from exc


def emit(text: str, output: Optional[str]) -> None:
    """``text`` on stdout, or in the file --output names (and a line on stderr that says so)."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"--output: cannot write {output!r}: {exc}") from exc
    print(f"gpuconv: wrote {output}", file=sys.stderr)


def fail(message: object) -> None:
    """An error in one ``gpuconv: error: ...`` line on stderr."""
    print(f"gpuconv: error: {' '.join(str(message).split())}", file=sys.stderr)
