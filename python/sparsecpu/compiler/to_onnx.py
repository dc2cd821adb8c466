"""The compiled graph as a standard ONNX model (opset 17), so onnxruntime can
run exactly the weights we run: pruned zeros kept; for int8 models the weights
dequantized from their int8 values, for bf16 models the bf16-rounded weights
(activations are not quantized or rounded in the file).

Inputs input_ids, attention_mask (and token_type_ids when the model has token
types), int64 (batch, sequence), dynamic in both; one output (batch, sequence,
hidden). Attention masks are applied as BERT exports do: (1 - mask) x the
lowest float added to the scores.
"""

from __future__ import annotations

import os

import numpy as np

from ..ir import Attention, Embeddings, Graph, LayerNorm, Linear, QuantizedRows, dense_weight
from .lower import fused_widths

OPSET = 17


def dequantized_int8(weight) -> np.ndarray:
    """The weight our int8 kernels multiply by: symmetric per output channel, round half to even."""
    if not isinstance(weight, QuantizedRows):
        weight = QuantizedRows.quantize(dense_weight(weight))
    return np.asarray(weight)


def rounded_bf16(weight: np.ndarray) -> np.ndarray:
    """The weight our bf16 kernels multiply by: rounded to bf16, nearest even."""
    bits = np.ascontiguousarray(weight, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(weight), weight, out).astype(np.float32)


class _Builder:
    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []
        self.constant_names = set()
        self.count = 0

    def const(self, name: str, value) -> str:
        """An initializer; a name asked for again is the same constant."""
        if name not in self.constant_names:
            self.constant_names.add(name)
            self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs, name_hint: str, **attrs) -> str:
        self.count += 1
        out = f"{name_hint}/{op_type}_{self.count}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def build_onnx(graph: Graph, dtype: str):
    import onnx
    from onnx import TensorProto, helper

    b = _Builder()
    embeddings = next(n for n in graph.nodes if isinstance(n, Embeddings))
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])]
    if embeddings.token_type is not None:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"]))
    # Additive masks (batch, 1, 1, sequence), one per fill the attentions need.
    keep = b.op("Unsqueeze", [b.op("Cast", ["attention_mask"], "mask", to=TensorProto.BOOL),
                              b.const("mask_axes", np.array([1, 2], np.int64))], "mask")
    masks = {}

    def mask_bias(all_masked: str) -> str:
        if all_masked not in masks:
            fill = b.const(f"mask_fill_{all_masked}", np.float32(_MASK_FILLS[all_masked]))
            masks[all_masked] = b.op("Where", [keep, b.const("zero_f", np.float32(0)), fill], "mask")
        return masks[all_masked]

    # A fused Q/K/V projection is written as the exporters write it, one MatMul per
    # projection (the same products), so the file reads back as a BERT export.
    projections = {}
    for node in graph.nodes:
        if isinstance(node, Attention):
            for value, first in (node.q, node.k, node.v):
                projections.setdefault(value, {})[first] = node.heads * node.head_dim

    widths = fused_widths(graph)
    values = {}
    for node in graph.nodes:
        if isinstance(node, Embeddings):
            values[node.output] = _embeddings(b, node)
        elif isinstance(node, Linear):
            w = dequantized_int8(node.weight) if dtype == "int8" else dense_weight(node.weight)
            if dtype == "bf16":
                w = rounded_bf16(w)
            split = projections.get(node.output)
            if split and len(split) > 1 and node.activation is None and node.residual is None:
                for first, width in split.items():
                    part = f"{node.name}.{first}"
                    values[(node.output, first)] = _matmul_add(b, part, values[node.input], w[first:first + width],
                                                               None if node.bias is None else node.bias[first:first + width])
                continue
            y = _matmul_add(b, node.name, values[node.input], w, node.bias)
            if node.activation == "gelu":
                scaled = b.op("Div", [y, b.const(node.name + ".sqrt2", np.float32(np.sqrt(2.0)))], node.name)
                erf1 = b.op("Add", [b.op("Erf", [scaled], node.name), b.const(node.name + ".one", np.float32(1))],
                            node.name)
                y = b.op("Mul", [b.op("Mul", [y, erf1], node.name), b.const(node.name + ".half", np.float32(0.5))],
                         node.name)
            elif node.activation == "relu":
                y = b.op("Relu", [y], node.name)
            if node.residual is not None:
                y = b.op("Add", [y, values[node.residual]], node.name)
            values[node.output] = y
        elif isinstance(node, Attention):
            values[node.output] = _attention(b, node, values, widths, mask_bias(node.all_masked))
        elif isinstance(node, LayerNorm):
            values[node.output] = b.op("LayerNormalization", [values[node.input],
                                                              b.const(node.name + ".gamma", node.gamma),
                                                              b.const(node.name + ".beta", node.beta)],
                                       node.name, axis=-1, epsilon=float(node.eps))
    b.nodes.append(helper.make_node("Identity", [values[graph.output]], [graph.output_name], name="output"))
    width = int(graph.config.get("hidden_size", 0)) or None
    output = helper.make_tensor_value_info(graph.output_name, TensorProto.FLOAT, ["batch", "sequence", width])
    g = helper.make_graph(b.nodes, "sparsecpu_compiled", inputs, [output], b.initializers)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sparsecpu")
    model.ir_version = 8
    if model.ByteSize() < 2_000_000_000:  # the checker takes protos below protobuf's limit only
        onnx.checker.check_model(model)
    return model


def _matmul_add(b: _Builder, name: str, x: str, w: np.ndarray, bias) -> str:
    y = b.op("MatMul", [x, b.const(name + ".weight_t", np.ascontiguousarray(w.T))], name)
    if bias is not None:
        y = b.op("Add", [y, b.const(name + ".bias", bias.astype(np.float32))], name)
    return y


def _embeddings(b: _Builder, node: Embeddings) -> str:
    from onnx import TensorProto

    name = node.name
    y = b.op("Gather", [b.const(name + ".word", node.word), "input_ids"], name)
    if node.position_ids == "absolute":
        shape = b.op("Shape", ["input_ids"], name)
        seq = b.op("Gather", [shape, b.const(name + ".one_i", np.int64(1))], name, axis=0)
        positions = b.op("Range", [b.const(name + ".zero_i", np.int64(0)), seq, b.const(name + ".step", np.int64(1))],
                         name)
    else:  # padding_idx + running count of non-padding tokens; padding itself keeps padding_idx
        is_token = b.op("Cast", [b.op("Not", [b.op("Equal", ["input_ids", b.const(name + ".pad", np.int64(
            node.padding_idx))], name)], name)], name, to=TensorProto.INT64)
        counted = b.op("Mul", [b.op("CumSum", [is_token, b.const(name + ".axis", np.int64(1))], name), is_token],
                       name)
        positions = b.op("Add", [counted, name + ".pad"], name)
    y = b.op("Add", [y, b.op("Gather", [b.const(name + ".position", node.position), positions], name)], name)
    if node.token_type is not None:
        y = b.op("Add", [y, b.op("Gather", [b.const(name + ".token_type", node.token_type), "token_type_ids"],
                                 name)], name)
    return y


# The additive fill for masked keys that gives each AllMasked behaviour (csrc/kernels/attention/attention.h).
_MASK_FILLS = {"average": np.finfo(np.float32).min, "all_keys": -10000.0, "zeros": -np.inf}


def _attention(b: _Builder, node: Attention, values, widths, mask_bias: str) -> str:
    name, heads, d = node.name, node.heads, node.head_dim
    width = heads * d
    split_shape = b.const(name + ".split_shape", np.array([0, 0, heads, d], np.int64))

    def head_view(source, perm):
        value, first = source
        part = values.get(source)  # its own projection
        if part is None:
            part = values[value]
            if first != 0 or widths[value] != width:
                part = b.op("Slice", [part, b.const(f"{name}.{first}.start", np.array([first], np.int64)),
                                      b.const(f"{name}.{first}.end", np.array([first + width], np.int64)),
                                      b.const(f"{name}.{first}.axis", np.array([2], np.int64))], name)
        return b.op("Transpose", [b.op("Reshape", [part, split_shape], name)], name, perm=perm)

    q = head_view(node.q, [0, 2, 1, 3])
    k = head_view(node.k, [0, 2, 3, 1])
    v = head_view(node.v, [0, 2, 1, 3])
    scores = b.op("Mul", [b.op("MatMul", [q, k], name), b.const(name + ".scale", np.float32(node.scale))], name)
    weights = b.op("Softmax", [b.op("Add", [scores, mask_bias], name)], name, axis=-1)
    if node.all_masked == "zeros":  # a -inf fill leaves NaN rows where every key is masked: made 0
        weights = b.op("Where", [b.op("IsNaN", [weights], name), b.const("zero_f", np.float32(0)), weights], name)
    context = b.op("Transpose", [b.op("MatMul", [weights, v], name)], name, perm=[0, 2, 1, 3])
    return b.op("Reshape", [context, b.const(name + ".merge_shape", np.array([0, 0, width], np.int64))], name)


def write_onnx(graph: Graph, dtype: str, path) -> None:
    """Writes through a temporary file in the target folder and renames it, so a failure leaves
    nothing half-written; weights past 2 GB go to `<name>.data` beside the file."""
    from ..pruning.onnx_pruner import save_model

    save_model(build_onnx(graph, dtype), os.fspath(path))
