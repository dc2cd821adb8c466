"""Which packed format runs each linear layer.

A block format stores every block that holds a nonzero, so it is exact for any
weight; what differs is speed. The cost model below estimates a layer's time
relative to our dense kernel of the same dtype as

    stored share of the weight (blocks with a nonzero) x cost per stored weight

with the cost per stored weight measured by `sparsecpu bench gemm` on BERT shapes
(docs/BENCHMARKS.md: e.g. fp32 4x1 at 90% runs 6.6x our dense, so 0.1 x 1.5;
int8 4x1 at 90% 3.75x and at 50% 1.34x our dense). The dense kernel costs 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from ..patterns import Pattern, parse_pattern

# Cost per stored weight relative to the dense kernel, by dtype and block (rows, cols).
_COST = {
    "fp32": {(16, 1): 1.45, (8, 1): 1.45, (4, 1): 1.5, (2, 1): 2.0, (1, 1): 2.8,
             (1, 4): 1.8, (4, 4): 1.5, (1, 16): 1.8, (16, 4): 1.45},
    "int8": {(16, 1): 2.2, (8, 1): 2.2, (4, 1): 2.3, (2, 1): 3.0, (1, 1): 4.5,
             (1, 4): 2.5, (4, 4): 2.3, (1, 16): 2.5, (16, 4): 2.2},
}
# Block shapes tried when the weights' zeros, not a pattern argument, decide.
CANDIDATE_BLOCKS = ((16, 1), (8, 1), (4, 1), (4, 4), (1, 4), (2, 1), (1, 1))


@dataclass(frozen=True)
class LayerFormat:
    pattern: Pattern          # the block shape the layer is packed with, or dense
    density: float            # nonzero share of the weight
    stored: float             # share of the weight inside stored blocks (1.0 when dense)
    estimated_cost: float     # relative to our dense kernel

    @property
    def dense(self) -> bool:
        return self.pattern.kind == "dense"


def stored_share(nonzero: np.ndarray, rows: int, cols: int) -> float:
    """Share of a (n, k) mask covered by the rows x cols blocks that hold a True."""
    n, k = nonzero.shape
    bn, bk = -(-n // rows), -(-k // cols)
    padded = np.zeros((bn * rows, bk * cols), dtype=bool)
    padded[:n, :k] = nonzero
    blocks = padded.reshape(bn, rows, bk, cols).any(axis=(1, 3))
    return float(blocks.mean()) if blocks.size else 0.0


def choose_format(weight: np.ndarray, dtype: str, pattern: Optional[Pattern] = None) -> LayerFormat:
    """The fastest format by the cost model: `pattern`'s blocks or dense when a
    pattern is given; else any candidate block shape or dense."""
    nonzero = weight != 0
    density = float(nonzero.mean()) if nonzero.size else 0.0
    best = LayerFormat(parse_pattern("dense"), density, 1.0, 1.0)
    if pattern is not None and pattern.kind == "block":
        blocks: Tuple[Tuple[int, int], ...] = ((pattern.rows, pattern.cols),)
    else:
        blocks = CANDIDATE_BLOCKS  # N:M and "keep the zeros": the zeros decide
    costs: Dict[Tuple[int, int], float] = _COST[dtype]
    for rows, cols in blocks:
        share = stored_share(nonzero, rows, cols)
        cost = share * costs.get((rows, cols), max(costs.values()))
        if cost < best.estimated_cost:
            best = LayerFormat(Pattern("block", rows, cols), density, share, cost)
    return best
