"""sparsecpu: sparse inference for transformer encoders on CPUs."""

from ._version import __version__
from ._native import core as _core
from .compiler import compile
from .linear import SparseLinear
from .model import CompiledModel
from .serialize import load
from .pruning import PruneReport, prune, prune_torch, prune_weight


def cpu_info() -> dict:
    """vendor, model, flags, isa (level in use), isa_available, physical_cores, num_threads."""
    return _core.cpu_info()


def set_num_threads(n: int) -> None:
    """Process-wide default thread count; 0 = every core in the affinity mask."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"number of threads must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    return _core.get_num_threads()


__all__ = ["__version__", "compile", "CompiledModel", "load", "SparseLinear", "prune_weight", "prune", "prune_torch", "PruneReport", "cpu_info", "set_num_threads", "get_num_threads"]
