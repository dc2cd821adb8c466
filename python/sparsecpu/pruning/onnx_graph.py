"""Which initializers of an ONNX graph are linear-layer weights we may prune.

A candidate is a constant 2-D float initializer that is the B input of a
MatMul (B is (in, out)) or of a Gemm (transB decides), possibly reached
through Identity or Transpose(perm=[1, 0]) nodes. Left dense by default, with
the reason recorded: weights under 64 wide, weights also read by a Gather
(tied embeddings), and classifier heads: a MatMul/Gemm whose output reaches a
graph output without passing another MatMul/Gemm or a normalization (the
normalization clause keeps an encoder's last projection, which reaches the
output through its residual LayerNorm, prunable).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import onnx
from onnx import numpy_helper

from .policy import MIN_WIDTH

_NORMALIZATIONS = {"LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
                   "BatchNormalization", "InstanceNormalization", "GroupNormalization"}
_PASS_THROUGH = {"Identity"}


@dataclass
class LinearWeight:
    initializer: str              # name of the initializer holding the weight
    stored_out_in: bool           # True: stored as (out, in); False: as (in, out)
    shape: Tuple[int, int]        # (out_features, in_features)
    nodes: List[str] = field(default_factory=list)   # consuming MatMul/Gemm nodes
    inputs: List[str] = field(default_factory=list)  # the activation tensor each of them multiplies
    skip_reason: Optional[str] = None


def _node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def find_linear_weights(model: onnx.ModelProto) -> List[LinearWeight]:
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producer: Dict[str, Tuple[int, onnx.NodeProto]] = {}
    consumers: Dict[str, List[Tuple[int, onnx.NodeProto]]] = defaultdict(list)
    for i, node in enumerate(graph.node):
        for out in node.output:
            producer[out] = (i, node)
        for inp in node.input:
            consumers[inp].append((i, node))
    graph_outputs = {o.name for o in graph.output}

    def resolve(tensor: str) -> Optional[Tuple[str, bool]]:
        """Follows Identity / Transpose([1, 0]) back to an initializer: (name, transposed)."""
        transposed = False
        seen = 0
        while tensor not in initializers:
            if tensor not in producer or seen > 8:
                return None
            _, node = producer[tensor]
            if node.op_type in _PASS_THROUGH:
                tensor = node.input[0]
            elif node.op_type == "Transpose" and list(_attr(node, "perm", [1, 0])) == [1, 0]:
                transposed = not transposed
                tensor = node.input[0]
            else:
                return None
            seen += 1
        return tensor, transposed

    def is_head(node_index: int) -> bool:
        """Does an output of this node reach a graph output without a MatMul/Gemm or normalization?"""
        queue = deque(graph.node[node_index].output)
        seen = set(queue)
        while queue:
            tensor = queue.popleft()
            if tensor in graph_outputs:
                return True
            for _, consumer in consumers.get(tensor, []):
                if consumer.op_type in ("MatMul", "Gemm") or consumer.op_type in _NORMALIZATIONS:
                    continue
                for out in consumer.output:
                    if out not in seen:
                        seen.add(out)
                        queue.append(out)
        return False

    weights: Dict[str, LinearWeight] = {}
    for i, node in enumerate(graph.node):
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        found = resolve(node.input[1])
        if found is None:
            continue
        name, transposed = found
        init = initializers[name]
        if len(init.dims) != 2 or init.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                                                          onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16):
            continue
        stored_in_out = not transposed  # MatMul's B is (in, out)
        if node.op_type == "Gemm" and _attr(node, "transB", 0):
            stored_in_out = not stored_in_out
        d0, d1 = int(init.dims[0]), int(init.dims[1])
        shape = (d1, d0) if stored_in_out else (d0, d1)
        w = weights.get(name)
        if w is None:
            w = weights[name] = LinearWeight(name, not stored_in_out, shape)
        elif w.shape != shape:
            w.skip_reason = "used with two different orientations"
        w.nodes.append(_node_name(node, i))
        w.inputs.append(node.input[0])
        if w.skip_reason is None and is_head(i):
            w.skip_reason = "classifier head (reaches a graph output through no other MatMul/Gemm)"

    gathered = {node.input[0] for node in graph.node if node.op_type == "Gather" and node.input}
    for w in weights.values():
        if w.skip_reason:
            continue
        if w.initializer in gathered:
            w.skip_reason = "also an embedding table (read by a Gather)"
        elif min(w.shape) < MIN_WIDTH:
            w.skip_reason = f"narrower than {MIN_WIDTH}"
    return list(weights.values())


def weight_matrix(model: onnx.ModelProto, w: LinearWeight, base_dir: Optional[str] = None):
    """The weight as an (out, in) numpy array (a copy)."""
    init = next(i for i in model.graph.initializer if i.name == w.initializer)
    array = numpy_helper.to_array(init, base_dir or "")
    return (array if w.stored_out_in else array.T).copy()
