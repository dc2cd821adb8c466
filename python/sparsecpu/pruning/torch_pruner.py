"""Pruning torch nn.Linear weights in place (torch is optional and imported lazily)."""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from .policy import MIN_WIDTH
from .report import PruneReport
from .weights import prune_weight


def prune_torch(module, pattern: str, sparsity: Optional[float] = None, include: Optional[str] = None,
                exclude: Optional[str] = None) -> PruneReport:
    """Prunes every nn.Linear weight of `module` in place by block magnitude.

    Linear layers narrower than 64 stay dense, and so does one whose name matches
    `exclude` or, when `include` is given, does not match it. Returns the report.
    """
    try:
        import torch
    except ImportError:
        raise ImportError("sparsecpu.prune_torch needs torch (pip install torch)") from None
    include_re = re.compile(include) if include else None
    exclude_re = re.compile(exclude) if exclude else None
    report = PruneReport(pattern=pattern, method="magnitude")
    for name, layer in module.named_modules():
        if not isinstance(layer, torch.nn.Linear):
            continue
        shape = [int(layer.out_features), int(layer.in_features)]
        reason = None
        if include_re and not include_re.search(name):
            reason = "not matched by include"
        elif include_re is None and min(shape) < MIN_WIDTH:
            reason = f"narrower than {MIN_WIDTH}"
        if exclude_re and exclude_re.search(name):
            reason = "matched by exclude"
        if reason:
            report.skipped.append({"name": name, "initializer": name, "shape": shape, "reason": reason})
            continue
        with torch.no_grad():
            w = layer.weight.detach().cpu().float().numpy()
            pruned = prune_weight(w, pattern, sparsity)
            layer.weight.mul_(torch.from_numpy((pruned != 0).astype(np.float32)).to(layer.weight.device,
                                                                                   layer.weight.dtype))
        report.layers.append({"name": name, "initializer": name, "shape": shape, "pattern": pattern,
                              "sparsity": float(np.count_nonzero(pruned == 0) / pruned.size)})
    return report
