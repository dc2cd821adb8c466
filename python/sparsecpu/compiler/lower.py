"""Lowering: a fused IR graph and a format per linear layer -> a C++ Plan."""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from .._native import core
from ..ir import Attention, Embeddings, Graph, LayerNorm, Linear, QuantizedRows, dense_weight, value_widths
from ..patterns import weight_layout
from .formats import LayerFormat


# What attention's two matrix products may compute in, per model dtype. int8 and bf16 models
# already round their activations to 8 significant bits, so they allow bf16 products (Q, K, the
# softmax weights and V rounded to bf16, fp32 sums): twice the fp32 rate where the CPU has
# AVX512-BF16; an fp32 kernel runs elsewhere. fp32 models keep fp32 attention.
ATTENTION_PRODUCTS = {"fp32": "fp32", "int8": "bf16", "bf16": "bf16"}


def fused_widths(graph: Graph) -> Dict[str, int]:
    """value_widths of a graph whose every node has a kernel (Add and Activation fused away)."""
    for node in graph.nodes:
        if not isinstance(node, (Embeddings, Linear, Attention, LayerNorm)):
            raise ValueError(f"{graph.source}: node '{node.name}' ({type(node).__name__}) has no kernel; "
                             "it should have been fused by the compiler passes")
    return value_widths(graph.nodes)


def make_linear(linear: Linear, fmt: LayerFormat, dtype: str):
    impl = {"fp32": core.LinearF32, "int8": core.LinearS8, "bf16": core.LinearBF16}[dtype]
    bias = None if linear.bias is None else np.ascontiguousarray(linear.bias, np.float32)
    if isinstance(linear.weight, QuantizedRows) and dtype == "int8":  # as saved: no re-quantization
        return core.LinearS8.from_quantized(linear.weight.values, linear.weight.scale, bias,
                                            weight_layout(fmt.pattern), fmt.pattern.rows, fmt.pattern.cols,
                                            linear.activation or "none", "")
    return impl(np.ascontiguousarray(dense_weight(linear.weight)), bias, weight_layout(fmt.pattern),
                fmt.pattern.rows, fmt.pattern.cols, linear.activation or "none", "")


def lower(graph: Graph, formats: Dict[str, LayerFormat], dtype: str) -> Tuple["core.Plan", List[dict]]:
    """Returns the Plan and, per linear layer, what it runs (for summaries)."""
    widths = fused_widths(graph)
    last_use: Dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for value in node.inputs:
            last_use[value] = i
    plan = core.Plan()
    buffer_of: Dict[str, int] = {}
    free: List[Tuple[int, int]] = []  # (width, buffer)
    output_buffer = plan.add_buffer(widths[graph.output])

    def allocate(value: str) -> int:
        if value == graph.output:
            return output_buffer
        for entry in free:
            if entry[0] == widths[value]:
                free.remove(entry)
                return entry[1]
        return plan.add_buffer(widths[value])

    layers: List[dict] = []
    for i, node in enumerate(graph.nodes):
        out = allocate(node.output)
        buffer_of[node.output] = out
        if isinstance(node, Embeddings):
            plan.set_embedding(node.word, node.position, node.token_type, node.position_ids, node.padding_idx, out)
        elif isinstance(node, Linear):
            fmt = formats[node.name]
            impl = make_linear(node, fmt, dtype)
            residual = buffer_of[node.residual] if node.residual is not None else -1
            plan.add_linear(node.name, impl, buffer_of[node.input], out, residual)
            layers.append({"name": node.name, "sources": node.sources, "shape": tuple(node.weight.shape),
                           "pattern": fmt.pattern.name, "density": fmt.density, "stored": fmt.stored,
                           "dtype": dtype, "kernel": impl.kernel, "packed_bytes": int(impl.packed_bytes),
                           "dense_bytes": int(node.weight.size * 4)})
        elif isinstance(node, Attention):
            qkv = {node.q[0], node.k[0], node.v[0]}
            if len(qkv) != 1:
                raise ValueError(f"{graph.source}: attention '{node.name}' reads Q, K and V from separate values; "
                                 "the runtime needs them packed in one")
            plan.add_attention(node.name, buffer_of[node.q[0]], node.q[1], node.k[1], node.v[1], node.heads,
                               node.head_dim, float(node.scale), out, node.all_masked,
                               ATTENTION_PRODUCTS[dtype])
        elif isinstance(node, LayerNorm):
            plan.add_layernorm(node.name, buffer_of[node.input], out, node.gamma, node.beta, float(node.eps))
        for value in dict.fromkeys(node.inputs):
            if last_use.get(value) == i and value != graph.output:
                free.append((widths[value], buffer_of[value]))
    plan.set_output(output_buffer)
    return plan, layers
