"""Sparsity pattern names, in (out_features, in_features) weight terms.

"RxC" is a block of R consecutive output rows by C consecutive input columns
(R, C in 1, 2, 4, 8, 16); "N:M" keeps at most N nonzeros in every group of M
consecutive inputs of a row; "dense" is no pattern; "unstructured" is 1x1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BLOCK_SIDES = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Pattern:
    kind: str  # "block", "nm" or "dense"
    rows: int = 1  # block: R
    cols: int = 1  # block: C
    n: int = 0  # N:M
    m: int = 0

    @property
    def name(self) -> str:
        if self.kind == "dense":
            return "dense"
        if self.kind == "nm":
            return f"{self.n}:{self.m}"
        return f"{self.rows}x{self.cols}"

    def __str__(self) -> str:
        return self.name


def parse_pattern(text) -> Pattern:
    """Parses a pattern name; raises ValueError naming the bad text."""
    if isinstance(text, Pattern):
        return text
    if not isinstance(text, str):
        raise TypeError(f"pattern must be a string such as '4x1', '2:4' or 'dense', got {type(text).__name__}")
    name = text.strip().lower()
    if name == "dense":
        return Pattern("dense")
    if name == "unstructured":
        return Pattern("block", 1, 1)
    block = re.fullmatch(r"(\d+)x(\d+)", name)
    if block:
        rows, cols = int(block.group(1)), int(block.group(2))
        if rows not in BLOCK_SIDES or cols not in BLOCK_SIDES:
            raise ValueError(f"pattern '{text}': block sides must each be one of {BLOCK_SIDES}")
        return Pattern("block", rows, cols)
    nm = re.fullmatch(r"(\d+):(\d+)", name)
    if nm:
        n, m = int(nm.group(1)), int(nm.group(2))
        if not (0 < n < m <= 64):
            raise ValueError(f"pattern '{text}': N:M needs 0 < N < M <= 64")
        return Pattern("nm", n=n, m=m)
    raise ValueError(f"pattern '{text}': expected 'RxC' (e.g. '4x1', '16x1'), 'N:M' (e.g. '2:4'), "
                     "'unstructured' or 'dense'")


def weight_layout(pattern: Pattern) -> str:
    """How the C++ layers pack a weight of this pattern: "blocks", "dense" or "2:4"."""
    if pattern.kind == "dense":
        return "dense"
    if pattern.kind == "block":
        return "blocks"
    if (pattern.n, pattern.m) == (2, 4):
        return "2:4"
    raise ValueError(f"pattern '{pattern.name}': the N:M kernels run 2:4 only; prune to '2:4' "
                     "or use a block pattern such as '4x1'")
