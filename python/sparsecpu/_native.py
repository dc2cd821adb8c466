"""Loads the compiled core, turning environment mistakes into one clear ImportError."""

import os
import sys


def _fail(message: str):
    # The `sparsecpu` command reports errors as one line, like its other errors.
    if os.path.basename(sys.argv[0] if sys.argv else "") == "sparsecpu":
        sys.stderr.write(f"sparsecpu: error: environment: {message}\n")
        raise SystemExit(2)
    raise ImportError(f"sparsecpu: {message}")


try:
    from . import _core
except (ImportError, RuntimeError, ValueError) as exc:
    # The core's import-time checks name the variable; anything else (a missing
    # or broken build) propagates unchanged.
    if not str(exc).startswith(("SPARSECPU_ISA", "SPARSECPU_NUM_THREADS", "SPARSECPU_BF16_PRODUCTS")):
        raise
    _fail(str(exc))

core = _core
