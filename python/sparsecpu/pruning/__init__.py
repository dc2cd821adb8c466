"""Pruning of weights, ONNX models and torch modules into the patterns our kernels run.

onnx (and torch, for prune_torch) load on first use, so importing sparsecpu stays fast.
"""

from .policy import PruneError
from .report import PruneReport
from .torch_pruner import prune_torch
from .weights import prune_weight


def prune(model_or_path, pattern, sparsity=None, method="magnitude", calibration=None, include=None, exclude=None,
          global_sparsity=False, progress=False):
    """Returns (pruned onnx.ModelProto, PruneReport); see sparsecpu.pruning.onnx_pruner.prune."""
    from .onnx_pruner import prune as prune_onnx

    return prune_onnx(model_or_path, pattern, sparsity, method=method, calibration=calibration, include=include,
                      exclude=exclude, global_sparsity=global_sparsity, progress=progress)


__all__ = ["prune_weight", "prune", "prune_torch", "PruneReport", "PruneError"]
