"""What a pruning run did, layer by layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class PruneReport:
    pattern: str
    method: str
    layers: List[dict] = field(default_factory=list)    # name, initializer, shape (out, in), pattern, sparsity
    skipped: List[dict] = field(default_factory=list)   # name, initializer, shape, reason
    fidelity: Optional[float] = None  # mean cosine of the outputs, dense vs pruned, on the calibration inputs
    fidelity_min: Optional[float] = None

    @property
    def sparsity(self) -> float:
        """Share of zeros over all pruned layers."""
        total = sum(r["shape"][0] * r["shape"][1] for r in self.layers)
        zeros = sum(r["sparsity"] * r["shape"][0] * r["shape"][1] for r in self.layers)
        return zeros / total if total else 0.0

    def __str__(self) -> str:
        width = max([len(r["name"]) for r in self.layers + self.skipped] + [5])
        lines = [f"{'layer':<{width}}  {'shape (out, in)':>15}  {'pattern':>12}  {'sparsity':>8}"]
        for r in self.layers:
            shape = f"{r['shape'][0]} x {r['shape'][1]}"
            lines.append(f"{r['name']:<{width}}  {shape:>15}  {r['pattern']:>12}  {r['sparsity']:>8.1%}")
        for r in self.skipped:
            shape = f"{r['shape'][0]} x {r['shape'][1]}"
            lines.append(f"{r['name']:<{width}}  {shape:>15}  {'dense':>12}  {'':>8}  ({r['reason']})")
        lines.append(f"{len(self.layers)} layer(s) pruned with {self.pattern} ({self.method}); "
                     f"{self.sparsity:.1%} of their weights are zero")
        if self.fidelity is not None:
            lines.append(f"fidelity: output cosine vs the dense model {self.fidelity:.4f} mean, "
                         f"{self.fidelity_min:.4f} worst token")
        return "\n".join(lines)
