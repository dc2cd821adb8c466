"""ONNX graphs of BERT-family encoders (torch.onnx exports of BERT, RoBERTa, DistilBERT,
MiniLM, files pruned by `sparsecpu prune`) -> the encoder IR.

The graph is read backwards from its output. Each tensor the encoder computes is
recognised by what produces it:

    LayerNormalization (or its ReduceMean/Sub/Pow/Sqrt/Div decomposition)  -> LayerNorm
    MatMul(x, constant W) [+ constant bias]                                 -> Linear
    Add of two computed tensors                                             -> Add (a residual)
    the Erf form of GELU, Gelu, Relu                                        -> Activation
    Reshape(Transpose(MatMul(Softmax(Q Kᵀ · scale + mask), V)))            -> Attention
    Add of Gathers from constant tables                                     -> Embeddings

Shape arithmetic, masks and position ids are not translated: the runtime computes
them (key padding from the attention mask; positions 0..S-1 or, when the position
ids come from a CumSum over non-padding tokens, RoBERTa's). Anything else on the
path to the output raises an error naming the operator, its domain and the node.
compile() then runs the graph with onnxruntime (when installed) and the mapped
model on a small padded batch and refuses the graph if they disagree.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..ir import Activation, Add, Attention, Embeddings, Graph, LayerNorm, Linear, value_widths


class OnnxGraphError(ValueError):
    """A graph we cannot map; the message names the node, its operator and domain."""


def is_onnx_path(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(".onnx")


def load_onnx_model(model):
    """An onnx.ModelProto from a path (external data loaded) or a ModelProto."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model, "<onnx.ModelProto>"
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        proto = onnx.load(path)
    except Exception as exc:  # protobuf DecodeError, missing external data, ...
        raise OnnxGraphError(f"{path}: not a readable ONNX model ({str(exc)[:200]})") from None
    if not proto.graph.node:
        raise OnnxGraphError(f"{path}: not a readable ONNX model (no graph nodes)")
    return proto, path


def load_onnx_graph(model, source: Optional[str] = None) -> Graph:
    """model: a path or an onnx.ModelProto; source names a ModelProto in messages."""
    proto, loaded_from = load_onnx_model(model)
    source = source or loaded_from
    try:
        return _with_deep_recursion(_Mapper(proto, source).graph, len(proto.graph.node))
    except (OnnxGraphError, FileNotFoundError):
        raise
    except RecursionError:
        raise OnnxGraphError(f"{source}: the graph is too deep to read (or has a cycle)") from None
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # A malformed graph (missing inputs, wrong attribute types, ...) that got past the checks above.
        raise OnnxGraphError(f"{source}: malformed graph ({type(exc).__name__}: {str(exc)[:200]})") from None


_DEEP_RECURSION = threading.Lock()


def _with_deep_recursion(fn, nodes: int):
    """fn() in a thread whose stack and recursion limit fit a walk back through `nodes` nodes: the
    graph is read recursively from its output, a few frames per node, and encoders of 48 layers and
    more hold thousands of nodes."""
    result, failure = [], []

    def run():
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    needed = 4 * nodes + 1000
    with _DEEP_RECURSION:  # the recursion limit is the process's: raised and restored by one reader at a time
        limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
        try:
            sys.setrecursionlimit(max(limit, needed))
            try:  # a few KiB of C stack per frame is plenty (Python 3.11+ uses none for Python calls)
                threading.stack_size(max(old_stack, min(256 << 20, 4096 * needed)))
                worker = threading.Thread(target=run, name="sparsecpu-onnx-reader")
                worker.start()
            except (RuntimeError, ValueError):  # no thread that large here: read in this one
                worker = None
            finally:
                threading.stack_size(old_stack)
            if worker is None:
                run()
            else:
                worker.join()
        finally:
            sys.setrecursionlimit(limit)
    if failure:
        raise failure[0]
    return result[0]


class _Mapper:
    def __init__(self, proto, source: str):
        from onnx import numpy_helper

        self.source = source
        g = proto.graph
        self.consts: Dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.producer = {}
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = _constant_value(node)
                if value is not None:
                    self.consts[node.output[0]] = value
                    continue
            for out in node.output:
                self.producer[out] = node
        # Identity of a constant is that constant (exporters alias shared biases so).
        for node in g.node:
            if node.op_type == "Identity" and node.input[0] in self.consts:
                self.consts[node.output[0]] = self.consts[node.input[0]]
        self.inputs = [i.name for i in g.input if i.name not in self.consts]
        # name -> (element type, dims); a dim is an int when the export fixed it, else None
        self.input_types = {i.name: (i.type.tensor_type.elem_type,
                                     [d.dim_value if d.HasField("dim_value") else None
                                      for d in i.type.tensor_type.shape.dim])
                            for i in g.input if i.name not in self.consts}
        self.proto_nodes = list(g.node)
        self.opsets = list(proto.opset_import)
        self.ir_version = proto.ir_version
        self.outputs = [o.name for o in g.output]
        self.values: Dict[str, str] = {}   # onnx tensor -> IR value
        self.nodes: List = []
        self.roles: Dict[str, Optional[str]] = {"input_ids": None, "attention_mask": None, "token_type_ids": None}
        self.count = 0
        self.taken_names = {"embeddings"}
        self.masks: Dict[str, Tuple] = {}        # mask tensor -> (the Add using it, its graph input)
        self.attention_masks: List[Tuple] = []    # (Attention, its mask tensor)
        self.hidden_widths: Dict[str, int] = {}  # onnx tensor -> width, for the hidden states mapped

    # ---- helpers ----------------------------------------------------------------
    def fail(self, node, what: str):
        domain = node.domain or "ai.onnx"
        raise OnnxGraphError(f"{self.source}: node '{node.name or node.output[0]}' ({node.op_type}, domain "
                             f"'{domain}'): {what}")

    def node_of(self, tensor: str):
        node = self.producer.get(tensor)
        if node is None:
            raise OnnxGraphError(f"{self.source}: tensor '{tensor}' is a graph input where the encoder computes a "
                                 "hidden state")
        return node

    def const(self, tensor: str) -> Optional[np.ndarray]:
        return self.consts.get(tensor)

    def scalar(self, tensor: str) -> Optional[float]:
        c = self.const(tensor)
        return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

    def attr(self, node, name, default=None):
        from onnx import helper

        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}#{self.count}"

    def unique(self, name: str) -> str:
        """Node names need not be unique in ONNX; layer names must be (formats and reports key on them)."""
        unique, suffix = name, 2
        while unique in self.taken_names:
            unique, suffix = f"{name}.{suffix}", suffix + 1
        self.taken_names.add(unique)
        return unique

    def emit(self, node):
        self.nodes.append(node)
        return node.output

    # ---- the graph ------------------------------------------------------------------
    def graph(self) -> Graph:
        if len(self.outputs) != 1:
            raise OnnxGraphError(f"{self.source}: the graph has {len(self.outputs)} outputs "
                                 f"({', '.join(self.outputs)}); sparsecpu compiles encoders with one output, the "
                                 "last hidden state")
        out = self.value(self.outputs[0])
        embeddings = [n for n in self.nodes if isinstance(n, Embeddings)]
        if len(embeddings) != 1:
            raise OnnxGraphError(f"{self.source}: found {len(embeddings)} embedding blocks; expected one")
        hidden = int(embeddings[0].word.shape[1])
        attentions = [n for n in self.nodes if isinstance(n, Attention)]
        if not attentions:
            raise OnnxGraphError(f"{self.source}: no self-attention found on the path to the output")
        self.check_inputs()
        self.hidden_widths = self.widths_of_hidden_states()
        positions = int(embeddings[0].position.shape[0])
        fills = {mask: self.check_key_padding_mask(node, mask, source, positions)
                 for mask, (node, source) in self.masks.items()}
        for attention, mask in self.attention_masks:
            attention.all_masked = _all_masked_behaviour(*fills[mask])
        graph = Graph(self.nodes, output=out, output_name=self.outputs[0], source=self.source,
                      config={"family": "onnx", "hidden_size": hidden, "layers": len(attentions),
                              "heads": attentions[0].heads, "vocab_size": int(embeddings[0].word.shape[0]),
                              "max_positions": positions,
                              "input_names": dict(self.roles), "sample_shape": self.probe_shape(positions - 2)})
        graph.check()
        return graph

    def widths_of_hidden_states(self) -> Dict[str, int]:
        width = value_widths(self.nodes)
        return {tensor: width[value] for tensor, value in self.values.items() if width.get(value)}

    def check_inputs(self):
        known = {v for v in self.roles.values() if v}
        for name in self.inputs:
            if name in known:
                continue
            if self.roles["attention_mask"] is None and "mask" in name.lower():
                self.roles["attention_mask"] = name
            elif "mask" in name.lower() or "token_type" in name.lower() or "segment" in name.lower():
                raise OnnxGraphError(f"{self.source}: graph input '{name}' is not used the way sparsecpu "
                                     "understands (a key padding mask or token types)")
            else:
                raise OnnxGraphError(f"{self.source}: graph input '{name}' is not supported; sparsecpu takes "
                                     "input_ids, attention_mask and token_type_ids")

    def value(self, tensor: str) -> str:
        """The IR value computing `tensor` (a float (batch, seq, width) hidden state)."""
        if tensor in self.values:
            return self.values[tensor]
        if tensor in self.consts:
            raise OnnxGraphError(f"{self.source}: tensor '{tensor}' is a constant where the encoder computes a "
                                 "hidden state")
        node = self.node_of(tensor)
        handler = getattr(self, "_" + node.op_type, None)
        if handler is None or node.domain not in ("", "ai.onnx", "com.microsoft"):
            self.fail(node, "this operator is not part of the BERT-family encoders sparsecpu compiles")
        result = handler(node)
        self.values[tensor] = result
        return result

    # ---- handlers (one per operator producing a hidden state) -------------------
    def _Identity(self, node):
        return self.value(node.input[0])

    def _LayerNormalization(self, node):
        axis = self.attr(node, "axis", -1)
        if axis not in (-1, 2):
            self.fail(node, f"normalizes over axis {axis}; only the last axis is supported")
        gamma, beta = self.const(node.input[1]), self.const(node.input[2]) if len(node.input) > 2 else None
        if gamma is None:
            self.fail(node, "its scale is computed, not a constant")
        if beta is None:
            beta = np.zeros_like(gamma)
        x = self.value(node.input[0])
        out = self.name(node.name or "layernorm")
        self.emit(LayerNorm(self.unique(node.name or out), x, out, gamma.astype(np.float32), beta.astype(np.float32),
                            float(self.attr(node, "epsilon", 1e-5))))
        return out

    def _MatMul(self, node):
        w = self.const(node.input[1])
        if w is None or w.ndim != 2:
            self.fail(node, "a MatMul of two computed tensors outside the attention pattern")
        return self.linear(node, node.input[0], w, None)

    def _Gemm(self, node):
        w = self.const(node.input[1])
        if w is None or self.attr(node, "transA", 0) or self.attr(node, "alpha", 1.0) != 1.0 or \
                (len(node.input) > 2 and node.input[2] and self.attr(node, "beta", 1.0) != 1.0):
            self.fail(node, "only Gemm(x, constant W, constant bias) with alpha = beta = 1 is supported")
        if self.attr(node, "transB", 0):  # B is (out, in)
            w = w.T
        bias = self.const(node.input[2]) if len(node.input) > 2 else None
        return self.linear(node, node.input[0], w, bias)

    def linear(self, node, x_tensor: str, w_kn: np.ndarray, bias) -> str:
        x = self.value(x_tensor)
        out = self.name(node.name or "linear")
        name = self.unique(_layer_name(node, self.source))
        weight = np.ascontiguousarray(np.asarray(w_kn, np.float32).T)
        self.emit(Linear(name, x, out, weight, None if bias is None else np.asarray(bias, np.float32).reshape(-1),
                         sources=(name,), source_rows=(weight.shape[0],)))
        return out

    def _Add(self, node):
        a, b = node.input[0], node.input[1]
        for bias_t, other in ((a, b), (b, a)):
            bias = self.const(bias_t)
            if bias is None:
                continue
            producer = self.producer.get(other)
            if producer is not None and producer.op_type == "MatMul" and self.const(producer.input[1]) is not None \
                    and bias.ndim == 1 and producer.output[0] not in self.values:
                w = self.const(producer.input[1])
                if w.ndim == 2 and bias.shape[0] == w.shape[1]:
                    return self.linear(producer, producer.input[0], w, bias)
            self.fail(node, "adds a constant to something other than a linear layer's output")
        embeddings = self.embeddings(node)
        if embeddings is not None:
            return embeddings
        x, y = self.value(a), self.value(b)
        out = self.name(node.name or "add")
        self.emit(Add(self.unique(node.name or out), x, y, out))
        return out

    def _Relu(self, node):
        return self.activation(node, node.input[0], "relu")

    def _Gelu(self, node):
        approximate = self.attr(node, "approximate", b"none")
        if approximate not in (b"none", "none"):
            self.fail(node, f"GELU approximation '{approximate}' is not supported; sparsecpu runs the erf form")
        return self.activation(node, node.input[0], "gelu")

    def activation(self, node, x_tensor, kind):
        x = self.value(x_tensor)
        out = self.name(node.name or kind)
        self.emit(Activation(self.unique(node.name or out), x, out, kind))
        return out

    def _Mul(self, node):
        x = self.match_gelu(node)
        if x is None:
            self.fail(node, "a Mul that is not part of the erf form of GELU (0.5 x (1 + erf(x / sqrt 2)))")
        return self.activation(node, x, "gelu")

    def match_gelu(self, node) -> Optional[str]:
        """x for 0.5 * x * (1 + erf(x / sqrt(2))) in the groupings exporters write, else None."""
        factors = self.mul_factors(node.output[0])
        if factors is None:
            return None
        consts = [f for f in factors if f in self.consts]
        others = [f for f in factors if f not in self.consts]
        scale = float(np.prod([self.scalar(c) for c in consts])) if consts else 1.0
        if abs(scale - 0.5) > 1e-6 or len(others) != 2:
            return None
        for x, erf_term in ((others[0], others[1]), (others[1], others[0])):
            add = self.producer.get(erf_term)
            if add is None or add.op_type != "Add":
                continue
            one = [i for i in add.input if self.scalar(i) == 1.0]
            erf_t = [i for i in add.input if i not in one]
            if len(one) != 1 or len(erf_t) != 1:
                continue
            erf = self.producer.get(erf_t[0])
            if erf is None or erf.op_type != "Erf":
                continue
            inner = self.producer.get(erf.input[0])
            if inner is None:
                continue
            if inner.op_type == "Div" and inner.input[0] == x and abs((self.scalar(inner.input[1]) or 0) -
                                                                       np.sqrt(2.0)) < 1e-5:
                return x
            if inner.op_type == "Mul":
                c = [self.scalar(i) for i in inner.input if i != x]
                if x in inner.input and len(c) == 1 and c[0] is not None and abs(c[0] - 1 / np.sqrt(2.0)) < 1e-5:
                    return x
        return None

    def mul_factors(self, tensor: str) -> Optional[List[str]]:
        node = self.producer.get(tensor)
        if node is None or node.op_type != "Mul":
            return [tensor]
        out: List[str] = []
        for i in node.input:
            sub = self.producer.get(i)
            if sub is not None and sub.op_type == "Mul" and i not in self.consts:
                out += self.mul_factors(i)
            else:
                out.append(i)
        return out

    # ---- attention ----------------------------------------------------------------------
    def _Reshape(self, node):
        transpose = self.producer.get(node.input[0])
        if transpose is None or transpose.op_type != "Transpose" or list(self.attr(transpose, "perm", [])) != [0, 2, 1, 3]:
            self.fail(node, "a Reshape outside the attention pattern (heads merged back after Transpose(0, 2, 1, 3))")
        context = self.producer.get(transpose.input[0])
        while context is not None and context.op_type == "Reshape":  # exporters restate (batch, heads, seq, dim)
            context = self.producer.get(context.input[0])
        if context is None or context.op_type != "MatMul":
            self.fail(node, "heads merged from something other than attention weights x values")
        probs, scale_p = self.skip_nan_guard(context.input[0]), 1.0
        softmax = self.producer.get(probs)
        if softmax is None or softmax.op_type != "Softmax" or self.attr(softmax, "axis", -1) not in (-1, 3):
            self.fail(context, "attention weights that are not a Softmax over the keys")
        unmasked, mask = self.strip_mask(softmax.input[0], softmax)
        scores, scale_s = self.strip_scale(unmasked)
        qk = self.producer.get(scores)
        if qk is None or qk.op_type != "MatMul":
            self.fail(softmax, "attention scores that are not a MatMul of queries and keys")
        q_heads, scale_q = self.strip_scale(qk.input[0])
        k_heads, scale_k = self.strip_scale(qk.input[1])
        q, q_dim = self.head_source(q_heads, [0, 2, 1, 3], softmax)
        k, k_dim = self.head_source(k_heads, [0, 2, 3, 1], softmax)
        v, v_dim = self.head_source(context.input[1], [0, 2, 1, 3], softmax)
        if not (q_dim == k_dim == v_dim):
            self.fail(softmax, f"queries, keys and values have head sizes {q_dim}, {k_dim}, {v_dim}")
        qv, kv, vv = self.value(q), self.value(k), self.value(v)
        width = self.width(qv)
        if width % q_dim:
            self.fail(softmax, f"width {width} is not a multiple of the head size {q_dim}")
        name = self.unique(_attention_name(softmax, self.source))
        out = self.name(name)
        attention = Attention(name, (qv, 0), (kv, 0), (vv, 0), out, width // q_dim, q_dim,
                              float(scale_p * scale_s * scale_q * scale_k))
        self.attention_masks.append((attention, mask))
        self.emit(attention)
        return out

    def width(self, value: str) -> int:
        for n in self.nodes:
            if n.output == value:
                if isinstance(n, Linear):
                    return int(n.weight.shape[0])
        raise OnnxGraphError(f"{self.source}: attention projections must be linear layers")

    def skip_nan_guard(self, tensor: str) -> str:
        """Where(IsNaN(p), 0, p) -> p (exporters guard fully masked rows so)."""
        node = self.producer.get(tensor)
        if node is not None and node.op_type == "Where":
            cond = self.producer.get(node.input[0])
            if cond is not None and cond.op_type == "IsNaN" and cond.input[0] == node.input[2]:
                if self.scalar(node.input[1]) != 0.0:
                    self.fail(node, "replaces NaN attention weights by something other than 0")
                return node.input[2]
        return tensor

    def strip_mask(self, tensor: str, softmax) -> Tuple[str, str]:
        """scores + mask -> (scores, mask). The mask, whatever its subgraph, must be built from one graph input
        (the attention mask) and shapes, and must be a key padding mask: evaluated on sample masks, it
        adds 0 to the scores of attended keys and -10000 or less to those of masked keys, the same for
        every query and head."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "Add":
            self.fail(softmax, "attention scores without an attention mask added; sparsecpu runs encoders "
                               "that take an attention mask")
        for scores, mask in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
            if not self.is_scores(scores):
                continue
            sources = self.graph_inputs_of(mask)
            if len(sources) != 1:
                self.fail(node, "attention scores plus something that is not built from one attention-mask input "
                                f"(it reads {', '.join(sorted(sources)) or 'no graph input'})")
            source = next(iter(sources))
            if self.roles["attention_mask"] not in (None, source):
                self.fail(node, f"attention masks from two inputs ({self.roles['attention_mask']}, {source})")
            self.masks.setdefault(mask, (node, source))  # checked once the hidden states are known
            self.roles["attention_mask"] = source
            return scores, mask
        self.fail(node, "adds an attention mask to something that is not the attention scores (Q Kᵀ)")
        return tensor, tensor

    def is_scores(self, tensor: str) -> bool:
        """Q Kᵀ, scaled or not: a MatMul of two computed tensors."""
        qk = self.producer.get(self.strip_scale(tensor)[0])
        return qk is not None and qk.op_type == "MatMul" and not any(i in self.consts for i in qk.input)

    def check_key_padding_mask(self, node, mask: str, source: str, positions: int) -> Tuple[float, bool]:
        """The fill added to masked keys (the least negative, -inf when all are), and whether it
        swallows the scores in the mask's own precision."""
        batch, seq = self.probe_shape(positions - 2)
        sample = np.ones((batch, seq), np.int64)
        for b in range(batch):
            if b % 2 == 1 or batch == 1:
                sample[b, [min(1, seq - 1), seq - 1] if seq > 2 else [seq - 1]] = 0
        added = self.evaluate(mask, {source: sample}, outputs=_FLOAT_TYPES)
        if added is None:
            self.fail(node, f"the attention mask built from '{source}' could not be evaluated on a sample mask")
        try:
            added = np.broadcast_to(added, np.broadcast_shapes(added.shape, (batch, 1, seq, seq)))
        except ValueError:
            added = None
        if added is None or added.ndim != 4 or added.shape[0] != batch or added.shape[2:] != (seq, seq):
            self.fail(node, f"the attention mask built from '{source}' does not broadcast over the attention "
                            f"scores (batch, heads, queries, keys) as a key padding mask")
        attended = np.broadcast_to(sample[:, None, None, :] != 0, added.shape)
        kept, dropped = added[attended], added[~attended]
        if kept.size and not (kept == 0).all():
            self.fail(node, f"the attention mask built from '{source}' adds {float(kept[kept != 0][0]):g} to keys "
                            "the mask keeps; sparsecpu runs key padding masks (0 for kept keys)")
        if dropped.size and not (dropped <= _MASKED_AT_MOST).all():
            self.fail(node, f"the attention mask built from '{source}' adds {float(dropped.max()):g} to masked "
                            f"keys; sparsecpu excludes masked keys, which needs {_MASKED_AT_MOST:g} or less")
        if not dropped.size:
            return -np.inf, True
        fill = dropped.max()
        return float(fill), bool(fill + fill.dtype.type(8) == fill)  # a score of 8 lost beside it

    def probe_shape(self, positions: Optional[int] = None) -> Tuple[int, int]:
        """(batch, seq) for sample inputs: the export's own when it fixed them, else small ones
        (at most `positions` long, so a tiny position table is not overrun)."""
        batch, seq = 2, 7 if positions is None else max(2, min(7, positions))
        for _, dims in self.input_types.values():
            if len(dims) == 2:
                batch = dims[0] or batch
                seq = dims[1] or seq
                break
        return batch, seq

    def strip_scale(self, tensor: str) -> Tuple[str, float]:
        scale = 1.0
        while True:
            node = self.producer.get(tensor)
            if node is None or node.op_type not in ("Mul", "Div"):
                return tensor, scale
            c = self.scalar(node.input[1])
            if c is None and node.op_type == "Mul":
                c0 = self.scalar(node.input[0])
                if c0 is None:
                    return tensor, scale
                scale *= c0
                tensor = node.input[1]
                continue
            if c is None:
                return tensor, scale
            scale = scale * c if node.op_type == "Mul" else scale / c
            tensor = node.input[0]

    def head_source(self, tensor: str, perm: List[int], near) -> Tuple[str, int]:
        """The (batch, seq, width) tensor split into heads by Reshape + Transpose(perm); and the head size.
        Keys (perm (0, 2, 3, 1)) may also be split by Transpose(0, 2, 1, 3) and then transposed on their
        own, with Reshapes around (the dynamo exporter flattens to 3-D to transpose)."""
        node = self.skip_reshapes(tensor)
        if perm == [0, 2, 3, 1] and node is not None and node.op_type == "Transpose" and \
                list(self.attr(node, "perm", [])) in ([0, 1, 3, 2], [0, 2, 1]):
            node = self.skip_reshapes(node.input[0])
            perm = [0, 2, 1, 3]
        if node is None or node.op_type != "Transpose" or list(self.attr(node, "perm", [])) != perm:
            self.fail(near, f"attention inputs not split into heads by Reshape + Transpose{tuple(perm)}")
        reshape = self.producer.get(node.input[0])
        if reshape is None or reshape.op_type != "Reshape":
            self.fail(near, "attention heads not made by a Reshape")
        return reshape.input[0], self.head_size(reshape, near)

    def skip_reshapes(self, tensor: str):
        node = self.producer.get(tensor)
        while node is not None and node.op_type == "Reshape":
            node = self.producer.get(node.input[0])
        return node

    def head_size(self, reshape, near) -> int:
        shape = self.const(reshape.input[1])
        if shape is not None and shape.size == 4 and shape[-1] > 0:
            return int(shape[-1])
        concat = self.producer.get(reshape.input[1])
        if concat is not None and concat.op_type == "Concat":
            last = self.const(concat.input[-1])
            if last is not None and last.size == 1 and int(last.reshape(-1)[0]) > 0:
                return int(last.reshape(-1)[0])
        self.fail(near, "the head size of the attention Reshape is not a constant")
        return 0

    def graph_inputs_of(self, tensor: str) -> set:
        """Graph inputs the tensor's values depend on (a Shape depends on no values)."""
        found, seen, stack = set(), set(), [tensor]
        while stack:
            t = stack.pop()
            if t in seen or t in self.consts or not t:
                continue
            seen.add(t)
            if t in self.inputs:
                found.add(t)
                continue
            node = self.producer.get(t)
            if node is not None and node.op_type != "Shape":
                stack += list(node.input)
        return found

    # ---- embeddings ---------------------------------------------------------------------
    def embeddings(self, node) -> Optional[str]:
        gathers = self.gather_leaves(node.output[0])
        if gathers is None:
            return None
        tables = []
        for g in gathers:
            table = self.const(g.input[0])
            if table is None or table.ndim != 2 or self.attr(g, "axis", 0) != 0:
                return None
            tables.append((g, table))
        word = token_type = position = None
        indexed = sorted(((g, t, self.strip_cast(g.input[1])) for g, t in tables if self.strip_cast(g.input[1])
                          in self.inputs), key=lambda e: -e[1].shape[0])
        if not indexed:
            return None
        word = indexed[0]
        if len(indexed) > 2:
            self.fail(indexed[2][0], "a third embedding table indexed by a graph input")
        if len(indexed) == 2:
            token_type = indexed[1]
        # Computed indices (position ids, a buffer of zero token types): what they are is read off
        # their values for sample input ids, computed by onnx's reference evaluator.
        for g, table in [(g, t) for g, t in tables if all(g is not e[0] for e in indexed)]:
            kind, padding_idx = self.index_kind(g, word[2], int(word[1].shape[0]))
            if kind == "zeros" and token_type is None:
                token_type = (g, table, None)
            elif kind in ("absolute", "after_padding") and position is None:
                position = (g, table, kind, padding_idx)
            else:
                self.fail(g, "an embedding table sparsecpu cannot place (its indices are neither position ids "
                             "nor zeros)")
        if position is None:
            self.fail(node, "embeddings without a position table")
        self.roles["input_ids"] = word[2]
        types_table = None
        if token_type is not None:
            types_table = token_type[1].astype(np.float32)
            if token_type[2] is not None:
                self.roles["token_type_ids"] = token_type[2]
            else:  # the type index is computed (zeros): only row 0 can be read
                types_table = types_table[:1]
        out = self.name("embeddings")
        self.emit(Embeddings("embeddings", out, word[1].astype(np.float32), position[1].astype(np.float32),
                             types_table, position[2], position[3]))
        return out

    def gather_leaves(self, tensor: str):
        node = self.producer.get(tensor)
        if node is None:
            return None
        if node.op_type == "Gather":
            return [node]
        if node.op_type != "Add":
            return None
        out = []
        for i in node.input:
            leaves = self.gather_leaves(i)
            if leaves is None:
                return None
            out += leaves
        return out

    def strip_cast(self, tensor: str) -> str:
        node = self.producer.get(tensor)
        while node is not None and node.op_type == "Cast":
            tensor = node.input[0]
            node = self.producer.get(tensor)
        return tensor

    def index_kind(self, gather, ids_input: str, vocab: int) -> Tuple[str, int]:
        """("absolute", 0) for positions 0..S-1, ("after_padding", p) for RoBERTa's p + running count of
        non-padding tokens, ("zeros", 0) for all zeros, else ("other", 0). Sample ids come from the top
        half of the (word) vocabulary, then the bottom: one of the two holds no padding id."""
        rows = int(self.const(gather.input[0]).shape[0])
        batch, seq = self.probe_shape(rows - 2)  # RoBERTa's positions start after its padding index
        rng = np.random.default_rng(0)
        vocab = max(4, vocab)
        kind = ("other", 0)
        for low, high in ((vocab // 2, vocab), (2, vocab // 2)):
            kind = self.index_kind_for(gather, ids_input, rng.integers(low, high, (batch, seq)))
            if kind[0] != "other":
                break
        return kind

    def index_kind_for(self, gather, ids_input: str, plain: np.ndarray) -> Tuple[str, int]:
        batch, seq = plain.shape
        index = self.evaluate(gather.input[1], {ids_input: plain})
        if index is None or index.shape[-1] != seq:
            return "other", 0
        index = np.broadcast_to(index, (batch, seq))
        if not index.any():
            return "zeros", 0
        offset = index - np.arange(seq)
        if not (offset == offset[0, 0]).all() or offset[0, 0] < 0:
            return "other", 0
        if offset[0, 0] == 0:
            return "absolute", 0
        padding_idx = int(offset[0, 0]) - 1
        padded = plain.copy()
        padded[-1, seq // 2 + 1:] = padding_idx
        check = self.evaluate(gather.input[1], {ids_input: padded})
        if check is None:
            return "other", 0
        expected = np.where(padded == padding_idx, padding_idx, padding_idx + np.cumsum(padded != padding_idx, 1))
        return ("after_padding", padding_idx) if np.array_equal(np.broadcast_to(check, (batch, seq)), expected) \
            else ("other", 0)

    def evaluate(self, tensor: str, feeds: Dict[str, np.ndarray], outputs=None) -> Optional[np.ndarray]:
        """The values of `tensor` for the given graph inputs, computed over the nodes it depends on
        (shape, index and mask arithmetic only: small and fast) by onnxruntime when installed, else by
        onnx's reference evaluator; None if neither can. Inputs not fed are ones shaped as the first
        feed; `outputs` are the element types to try for the result (default: integer)."""
        from onnx import TensorProto, helper, numpy_helper

        if tensor in self.consts:  # static exports hold their position ids as a constant
            return np.asarray(self.consts[tensor])
        needed, stack, seen, shaped = [], [tensor], set(), set()
        while stack:
            t = stack.pop()
            if t in seen or t in self.consts or t in self.inputs or not t:
                continue
            seen.add(t)
            node = self.producer.get(t)
            if node is None:
                return None
            needed.append(node)
            if node.op_type == "Shape" and node.input[0] in self.hidden_widths:
                shaped.add(node.input[0])  # only its shape is read: fed as zeros, not computed
                continue
            stack += list(node.input)
        shaped -= seen
        order = {id(n): i for i, n in enumerate(self.proto_nodes)}
        needed = sorted({id(n): n for n in needed}.values(), key=lambda n: order[id(n)])
        used = {i for n in needed for i in n.input}
        initializers = [numpy_helper.from_array(np.asarray(self.consts[c]), c) for c in used if c in self.consts]
        fed = [name for name in self.inputs if name in used]
        inputs = [helper.make_tensor_value_info(name, self.input_types[name][0], None) for name in fed]
        first = next(iter(feeds.values()))
        values = {name: np.asarray(feeds.get(name, np.ones_like(first)),
                                   helper.tensor_dtype_to_np_dtype(self.input_types[name][0]))
                  for name in fed}
        for name in shaped:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            values[name] = np.zeros(first.shape[:2] + (self.hidden_widths[name],), np.float32)
        for elem in outputs or (TensorProto.INT64, TensorProto.INT32):
            graph = helper.make_graph(needed, "index", inputs, [helper.make_tensor_value_info(tensor, elem, None)],
                                      initializers)
            model = helper.make_model(graph, opset_imports=self.opsets)
            model.ir_version = self.ir_version
            result = _run_small_model(model, values)
            if result is not None:
                return result
        return None


def _all_masked_behaviour(fill: float, swallows_scores: bool) -> str:
    """What a sequence with every key masked gets from softmax(scores + fill): -inf gives NaN, which the
    exporters that use it replace by 0 (left NaN, we give 0 too); a fill so large that scores vanish
    beside it (in the mask's precision), equal weights; a moderate one (-10000 in fp32) shifts every
    score alike: softmax over all keys."""
    if np.isneginf(fill):
        return "zeros"
    return "average" if swallows_scores else "all_keys"


_FLOAT_TYPES = (1, 10, 11)   # TensorProto FLOAT, FLOAT16, DOUBLE
_MASKED_AT_MOST = -1e4       # the least negative fill of BERT-family masks: exp(score - 10000) is 0 in fp32


def _run_small_model(model, values) -> Optional[np.ndarray]:
    """onnxruntime when installed, else onnx's reference evaluator; None if neither runs it."""
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
    except Exception:  # not installed, or installed but broken: the reference evaluator instead
        ort = None
    if ort is not None:
        try:
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            return np.asarray(session.run(None, values)[0])
        except Exception:
            return None
    try:
        from onnx.reference import ReferenceEvaluator

        return np.asarray(ReferenceEvaluator(model, new_ops=[_gather_elements_op()]).run(None, values)[0])
    except Exception:
        return None


def _gather_elements_op():
    """GatherElements for onnx's reference evaluator, whose own (onnx 1.23) fails on every input;
    exporters gather BERT's buffered token types with it."""
    from onnx.reference.op_run import OpRun

    class GatherElements(OpRun):
        def _run(self, data, indices, axis=None):
            axis = 0 if axis is None else int(axis)
            indices = np.where(indices < 0, indices + data.shape[axis], indices)
            return (np.take_along_axis(data, indices, axis=axis),)

    return GatherElements


def _constant_value(node) -> Optional[np.ndarray]:
    from onnx import helper, numpy_helper

    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name in ("value_float", "value_int"):
            return np.array(helper.get_attribute_value(a))
        if a.name in ("value_floats", "value_ints"):
            return np.array(list(helper.get_attribute_value(a)))
    return None


def _layer_name(node, source: str) -> str:
    """'/encoder/layer.0/attention/self/query/MatMul' -> 'encoder.layer.0.attention.self.query'."""
    name = node.name or node.output[0]
    parts = [p for p in name.strip("/").split("/") if p]
    if parts and parts[-1].startswith(("MatMul", "Gemm")):
        parts = parts[:-1]
    return ".".join(parts) or name


def _attention_name(softmax, source: str) -> str:
    name = softmax.name or softmax.output[0]
    parts = [p for p in name.strip("/").split("/") if p]
    if parts and parts[-1].startswith("Softmax"):
        parts = parts[:-1]
    return ".".join(parts) or name
