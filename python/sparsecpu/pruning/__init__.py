"""Pruning of weights into the patterns our kernels run."""

from .weights import prune_weight

__all__ = ["prune_weight"]
