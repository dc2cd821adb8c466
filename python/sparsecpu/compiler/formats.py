"""Which packed format runs each linear layer.

A block format stores every block that holds a nonzero, so it is exact for any
weight; what differs is speed. The cost model below estimates a layer's time
relative to our dense kernel of the same dtype as

    stored share of the weight (blocks with a nonzero) x cost per stored weight

with the cost per stored weight measured by `sparsecpu bench gemm` on BERT shapes
(docs/BENCHMARKS.md: e.g. fp32 4x1 at 90% runs 6.6x our dense, so 0.1 x 1.5;
int8 4x1 at 90% 3.75x and at 50% 1.34x our dense). The dense kernel costs 1.
A weight that is 2:4 (at most two nonzeros in every group of four inputs) can
also run the 2:4 kernels, at the whole-layer cost measured for them.
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
# bf16 where bf16 products are used (AVX512-BF16 and the probe of kernels/peak/peak.h, or
# SPARSECPU_BF16_PRODUCTS=on): dense layers run vdpbf16ps, block-sparse ones the fp32 block
# kernels on bf16-rounded weights. How fast vdpbf16ps is depends on the core: on the Sapphire
# Rapids class machine of docs/BENCHMARKS.md our bf16 dense kernel runs 0.75x our fp32 dense one
# (the instruction issues at about half the FMA rate there; AMD Zen 4/5 issue it at the FMA rate).
# Elsewhere every bf16 layer runs fp32 kernels, costed as fp32.
_BF16_DENSE_SPEEDUP = 0.75
# Whole-layer cost of the 2:4 kernels relative to dense (geometric means over the goal shapes,
# docs/BENCHMARKS.md): fp32 and int8 both run about 1.15x our dense kernel.
_SEMI24_COST = {"fp32": 0.87, "int8": 0.87}
# Block shapes tried when the weights' zeros, not a pattern argument, decide.
CANDIDATE_BLOCKS = ((16, 1), (8, 1), (4, 1), (4, 4), (1, 4), (2, 1), (1, 1))


@dataclass(frozen=True)
class LayerFormat:
    pattern: Pattern          # the block shape the layer is packed with, 2:4, or dense
    density: float            # nonzero share of the weight
    stored: float             # share of the weight inside stored blocks (1.0 when dense)
    estimated_cost: float     # relative to our dense kernel

    @property
    def dense(self) -> bool:
        return self.pattern.kind == "dense"


def _costs(dtype: str) -> Dict[Tuple[int, int], float]:
    if dtype != "bf16":
        return _COST[dtype]
    from .._native import core

    runs_bf16_products = core.bf16_products()["use"] and any(
        usable and isa != "ref" for _, isa, usable in core.gemm_bf16_kernels())
    speedup = _BF16_DENSE_SPEEDUP if runs_bf16_products else 1.0
    return {block: cost * speedup for block, cost in _COST["fp32"].items()}


def fits_2_4(nonzero: np.ndarray) -> bool:
    """True when no group of four consecutive inputs of a row holds more than two nonzeros."""
    n, k = nonzero.shape
    groups = np.pad(nonzero, ((0, 0), (0, -k % 4))).reshape(n, -1, 4).sum(axis=-1)
    return bool((groups <= 2).all())


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
    costs: Dict[Tuple[int, int], float] = _costs(dtype)
    if (pattern is None or pattern.kind == "nm") and nonzero.size and fits_2_4(nonzero):
        # bf16: the fp32 kernel on rounded values, or the vdpbf16ps one where bf16 products are
        # used (measured 1.61x our dense bf16 there, close to the fp32 ratio), scaled as the blocks.
        cost = _SEMI24_COST["int8" if dtype == "int8" else "fp32"] * costs[(4, 1)] / _COST[
            "int8" if dtype == "int8" else "fp32"][(4, 1)]
        if cost < best.estimated_cost:
            best = LayerFormat(parse_pattern("2:4"), density, 0.5, cost)
    for rows, cols in blocks:
        share = stored_share(nonzero, rows, cols)
        cost = share * costs.get((rows, cols), max(costs.values()))
        if cost < best.estimated_cost:
            best = LayerFormat(Pattern("block", rows, cols), density, share, cost)
    return best
