"""gpuconv's version, in a room of its own so that any module may read it without importing
the package's ``__init__`` (which imports nearly every room)."""

__version__ = "0.1.0"
"""The package's version (the one ``pyproject.toml`` gives it)."""
