"""Loads the compiled core, turning environment mistakes into one clear ImportError."""

try:
    from . import _core  # noqa: F401
except RuntimeError as exc:  # raised by the core's import-time checks (SPARSECPU_ISA, SPARSECPU_NUM_THREADS)
    raise ImportError(f"sparsecpu: {exc}") from None
except ValueError as exc:
    raise ImportError(f"sparsecpu: {exc}") from None

core = _core
