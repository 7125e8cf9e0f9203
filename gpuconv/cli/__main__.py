"""``python -m gpuconv.cli ...``: the ``gpuconv`` command (as ``python -m gpuconv``)."""

import sys

from .dispatch import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
