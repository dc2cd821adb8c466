"""IR passes: fuse what the kernels run in one call.

fuse_qkv:        three projections of one input feeding one Attention -> one Linear
                 (one read and, for int8, one quantization of the input instead of three)
fuse_activation: Linear -> Activation                -> Linear(activation=...)
fuse_residual:   Linear -> Add(·, r)                 -> Linear(residual=r)
"""

from __future__ import annotations

import numpy as np

from ..ir import Activation, Add, Attention, Graph, Linear, dense_weight


def run_passes(graph: Graph) -> Graph:
    fuse_qkv(graph)
    fuse_activation(graph)
    fuse_residual(graph)
    graph.check()
    return graph


def _only_consumer(graph: Graph, value: str, node) -> bool:
    return value != graph.output and graph.consumers(value) == [node]


def fuse_qkv(graph: Graph) -> None:
    for att in [n for n in graph.nodes if isinstance(n, Attention)]:
        projections = [graph.producer(att.q[0]), graph.producer(att.k[0]), graph.producer(att.v[0])]
        if not all(isinstance(p, Linear) for p in projections) or len({id(p) for p in projections}) != 3:
            continue
        q, k, v = projections
        if len({q.input, k.input, v.input}) != 1 or any(p.activation or p.residual for p in projections):
            continue
        if any(not _only_consumer(graph, p.output, att) for p in projections):
            continue
        if any(col != 0 for _, col in (att.q, att.k, att.v)):
            continue
        widths = [p.weight.shape[0] for p in projections]
        biases = [p.bias if p.bias is not None else np.zeros(w, np.float32) for p, w in zip(projections, widths)]
        fused = Linear(f"{att.name}.qkv", q.input, f"{att.name}.qkv", np.concatenate([dense_weight(p.weight) for p in projections]),
                       np.concatenate(biases), sources=q.sources + k.sources + v.sources,
                       source_rows=q.source_rows + k.source_rows + v.source_rows)
        position = min(graph.nodes.index(p) for p in projections)
        for p in projections:
            graph.nodes.remove(p)
        graph.nodes.insert(position, fused)
        att.q, att.k, att.v = (fused.output, 0), (fused.output, widths[0]), (fused.output, widths[0] + widths[1])


def fuse_activation(graph: Graph) -> None:
    for act in [n for n in graph.nodes if isinstance(n, Activation)]:
        linear = graph.producer(act.input)
        if isinstance(linear, Linear) and linear.activation is None and linear.residual is None \
                and _only_consumer(graph, linear.output, act):
            linear.activation = act.kind
            linear.output = act.output
            graph.nodes.remove(act)


def fuse_residual(graph: Graph) -> None:
    for add in [n for n in graph.nodes if isinstance(n, Add)]:
        for mine, other in ((add.a, add.b), (add.b, add.a)):
            linear = graph.producer(mine)
            if not isinstance(linear, Linear) or linear.residual is not None or mine == other:
                continue
            if not _only_consumer(graph, linear.output, add):
                continue
            other_producer = graph.producer(other)
            if other_producer is not None and graph.nodes.index(other_producer) > graph.nodes.index(linear):
                continue  # the residual must exist when the linear runs
            linear.residual = other
            linear.output = add.output
            graph.nodes.remove(add)
            break
