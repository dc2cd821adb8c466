"""What a benchmark must report about the machine it ran on."""

from __future__ import annotations

import contextlib
import os
import platform


def numpy_blas() -> dict:
    """The BLAS numpy calls, as threadpoolctl reports it (empty if not installed)."""
    try:
        import numpy  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            return {"library": info.get("internal_api"), "version": info.get("version"),
                    "kernel": info.get("architecture"), "threads": info.get("num_threads")}
    return {}


@contextlib.contextmanager
def numpy_threads(n: int):
    """Limits numpy's BLAS to n threads when threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield True


def describe_machine() -> dict:
    from .. import cpu_info, __version__

    info = cpu_info()
    return {
        "sparsecpu": __version__,
        "cpu": info["model"] or info["vendor"],
        "isa": info["isa"],
        "isa_available": info["isa_available"],
        "physical_cores": info["physical_cores"],
        "python": platform.python_version(),
        "numpy_blas": numpy_blas(),
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
    }
