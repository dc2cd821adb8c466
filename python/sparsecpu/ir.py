"""The encoder IR: what frontends produce and the compiler lowers to a Plan.

A Graph is a list of nodes in execution order over named values. Every value
is a float32 matrix with one row per token (batch x sequence rows) and a fixed
width; the graph's integer inputs (input_ids, token_type_ids, attention_mask)
are read by the Embeddings and Attention nodes only. Frontends emit the plain
ops (Linear, Add, Activation, ...); compiler passes fuse them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np


class _FloatMatrix:
    """What the compiler reads of a weight held in another form: a 2-D float32 matrix of `shape`."""

    shape: tuple

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def dtype(self):
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 2


class SparseRows(_FloatMatrix):
    """A mostly-zero weight kept as compressed rows (row pointers, column indices, float32 values):
    pruned weights take nnz x 8 bytes instead of a dense copy. np.asarray(w) gives the dense matrix."""

    def __init__(self, dense: np.ndarray):
        dense = np.asarray(dense, np.float32)
        self.shape = tuple(dense.shape)
        rows, cols = np.nonzero(dense)
        self.indptr = np.zeros(self.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=self.shape[0]), out=self.indptr[1:])
        self.indices = cols.astype(np.int32)
        self.values = dense[rows, cols]

    @classmethod
    def from_parts(cls, shape, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> "SparseRows":
        """From checked compressed rows (a saved model's)."""
        rows = cls.__new__(cls)
        rows.shape, rows.indptr, rows.indices, rows.values = tuple(shape), indptr, indices, values
        return rows

    def __array__(self, dtype=None, copy=None):
        dense = np.zeros(self.shape, np.float32)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        dense[rows, self.indices] = self.values
        return dense if dtype is None else dense.astype(dtype)

    @staticmethod
    def worth_it(dense: np.ndarray) -> bool:
        """True when compressed rows are smaller than the dense matrix (under half nonzero)."""
        return np.count_nonzero(dense) * 8 < dense.size * 4


class QuantizedRows(_FloatMatrix):
    """A weight as our int8 kernels hold it: int8 values and one scale per output row (symmetric,
    W ~ scale[n] * values[n]); a quarter of the float32 matrix. np.asarray(w) gives the dequantized
    matrix, which is what the int8 layer multiplies by."""

    def __init__(self, values: np.ndarray, scale: np.ndarray):
        self.values = np.ascontiguousarray(values, np.int8)
        self.scale = np.ascontiguousarray(scale, np.float32)
        self.shape = tuple(self.values.shape)

    @classmethod
    def quantize(cls, dense: np.ndarray) -> "QuantizedRows":
        """The per-channel quantization of the C++ int8 layers, bit for bit: scale = max|w| / 127
        (1 for an all-zero row), values = round half to even of w / scale, within [-127, 127]."""
        w = np.asarray(dense, np.float32)
        peak = np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0], np.float32)
        scale = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
        return cls(np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8), scale)

    def __array__(self, dtype=None, copy=None):
        dense = self.values.astype(np.float32) * self.scale[:, None]
        return dense if dtype is None else dense.astype(dtype)


def dense_weight(weight) -> np.ndarray:
    """The dense float32 matrix of a weight (an array, SparseRows or QuantizedRows)."""
    return np.asarray(weight, np.float32)


@dataclass
class Embeddings:
    name: str
    output: str
    word: np.ndarray              # (vocab, width)
    position: np.ndarray          # (positions, width)
    token_type: Optional[np.ndarray]  # (types, width) or None
    position_ids: str = "absolute"    # or "after_padding" (RoBERTa: padding_idx + count of non-padding tokens)
    padding_idx: int = 0

    @property
    def inputs(self) -> Tuple[str, ...]:
        return ()


@dataclass
class Linear:
    name: str
    input: str
    output: str
    weight: "np.ndarray | SparseRows | QuantizedRows"  # (out_features, in_features)
    bias: Optional[np.ndarray]
    activation: Optional[str] = None  # None | "gelu" | "relu", applied before the residual
    residual: Optional[str] = None    # value added after the activation
    sources: Tuple[str, ...] = ()     # names of the frontend's layers fused into this one
    source_rows: Tuple[int, ...] = () # out_features of each source, in order

    @property
    def inputs(self) -> Tuple[str, ...]:
        return (self.input,) if self.residual is None else (self.input, self.residual)


@dataclass
class Attention:
    """Multi-head self-attention; q, k, v are (value, first column) of each projection."""
    name: str
    q: Tuple[str, int]
    k: Tuple[str, int]
    v: Tuple[str, int]
    output: str
    heads: int
    head_dim: int
    scale: float
    # The context of a sequence whose keys are all masked, as the source model computes it:
    # "average" (equal weights), "all_keys" (softmax over all keys) or "zeros".
    all_masked: str = "average"

    @property
    def inputs(self) -> Tuple[str, ...]:
        return tuple(dict.fromkeys((self.q[0], self.k[0], self.v[0])))


@dataclass
class LayerNorm:
    name: str
    input: str
    output: str
    gamma: np.ndarray
    beta: np.ndarray
    eps: float

    @property
    def inputs(self) -> Tuple[str, ...]:
        return (self.input,)


@dataclass
class Add:
    name: str
    a: str
    b: str
    output: str

    @property
    def inputs(self) -> Tuple[str, ...]:
        return (self.a, self.b)


@dataclass
class Activation:
    name: str
    input: str
    output: str
    kind: str  # "gelu" | "relu"

    @property
    def inputs(self) -> Tuple[str, ...]:
        return (self.input,)


Node = Union[Embeddings, Linear, Attention, LayerNorm, Add, Activation]


def value_widths(nodes: List[Node]) -> Dict[str, int]:
    """The width of every value the nodes write (each node after those it reads)."""
    widths: Dict[str, int] = {}
    for node in nodes:
        if isinstance(node, Embeddings):
            widths[node.output] = int(node.word.shape[1])
        elif isinstance(node, Linear):
            widths[node.output] = int(node.weight.shape[0])
        elif isinstance(node, Attention):
            widths[node.output] = node.heads * node.head_dim
        else:  # LayerNorm, Add, Activation keep their input's width
            widths[node.output] = widths[node.inputs[0]]
    return widths


@dataclass
class Graph:
    nodes: List[Node]
    output: str                   # the value returned as the model's output
    output_name: str = "last_hidden_state"
    widths: Dict[str, int] = field(default_factory=dict)
    source: str = ""              # where the model came from, for messages
    config: Dict[str, object] = field(default_factory=dict)  # family, hidden size, layers, heads, ...

    def producer(self, value: str) -> Optional[Node]:
        for node in self.nodes:
            if node.output == value:
                return node
        return None

    def consumers(self, value: str) -> List[Node]:
        return [n for n in self.nodes if value in n.inputs]

    def linears(self) -> List[Linear]:
        return [n for n in self.nodes if isinstance(n, Linear)]

    def check(self) -> None:
        """Raises ValueError if a node reads a value no earlier node wrote, a value is written twice,
        or two nodes share a name (layers are found by name)."""
        defined, names = set(), set()
        for node in self.nodes:
            if node.name in names:
                raise ValueError(f"{self.source}: two nodes are named '{node.name}'")
            names.add(node.name)
            for value in node.inputs:
                if value not in defined:
                    raise ValueError(f"{self.source}: node '{node.name}' reads '{value}' before any node writes it")
            if node.output in defined:
                raise ValueError(f"{self.source}: value '{node.output}' is written twice")
            defined.add(node.output)
        if self.output not in defined:
            raise ValueError(f"{self.source}: the output '{self.output}' is never written")
