"""Pruning of weights, ONNX models and torch modules into the patterns our kernels run."""

from .onnx_pruner import PruneError, prune
from .report import PruneReport
from .torch_pruner import prune_torch
from .weights import prune_weight

__all__ = ["prune_weight", "prune", "prune_torch", "PruneReport", "PruneError"]
