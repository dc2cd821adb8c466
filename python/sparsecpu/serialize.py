"""The compiled-model file: `m.save(path)`, `sparsecpu.load(path)`, and pickle on top.

Layout (little endian):

    16 bytes  magic  b"SPARSECPU-MODEL\\0"
     4 bytes  format version (uint32)
     8 bytes  header length H (uint64)
     H bytes  header: UTF-8 JSON (the graph after passes and pruning, each layer's format,
              dtype, threads, and per tensor: offset, dtype, shape, SHA-256)
    32 bytes  SHA-256 of the header
     ...      tensor data, each at its offset from the end of the header checksum

Linear weights are stored sparse (row pointers, column indices, values) when that is
smaller, dense otherwise; int8 and bf16 models store the float weights and re-quantize
on load, which is deterministic, so a loaded model gives the same answers. Everything is
checked before use: a truncated, corrupt or foreign file raises ValueError naming the
file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Dict, List

import numpy as np

from ._files import write_beside

MAGIC = b"SPARSECPU-MODEL\0"
VERSION = 1
_ALLOWED_DTYPES = {"float32", "int64", "int32", "int8"}


class ModelFileError(ValueError):
    """A file that is not a sparsecpu model, or a damaged one; the message says which and why."""


# ---- writing ---------------------------------------------------------------------------

class _Blobs:
    def __init__(self):
        self.parts: List[bytes] = []
        self.size = 0

    def add(self, array: np.ndarray) -> dict:
        array = np.ascontiguousarray(array)
        data = array.tobytes()
        entry = {"offset": self.size, "dtype": str(array.dtype), "shape": list(array.shape),
                 "sha256": hashlib.sha256(data).hexdigest()}
        self.parts.append(data)
        self.size += len(data)
        return entry


def _weight_entry(blobs: _Blobs, weight) -> dict:
    from .ir import QuantizedRows, SparseRows, dense_weight

    if isinstance(weight, QuantizedRows):
        return {"quantized": True, "values": blobs.add(weight.values), "scale": blobs.add(weight.scale)}
    if not isinstance(weight, SparseRows):
        weight = dense_weight(weight)
        if not SparseRows.worth_it(weight):
            return {"sparse": False, "dense": blobs.add(weight)}
        weight = SparseRows(weight)
    return {"sparse": True, "shape": list(weight.shape), "indptr": blobs.add(weight.indptr),
            "indices": blobs.add(weight.indices), "values": blobs.add(weight.values)}


def dumps(model) -> bytes:
    from .ir import Activation, Add, Attention, Embeddings, LayerNorm, Linear

    graph = model._graph
    blobs = _Blobs()
    nodes = []
    for node in graph.nodes:
        if isinstance(node, Embeddings):
            nodes.append({"type": "Embeddings", "name": node.name, "output": node.output,
                          "word": blobs.add(node.word), "position": blobs.add(node.position),
                          "token_type": None if node.token_type is None else blobs.add(node.token_type),
                          "position_ids": node.position_ids, "padding_idx": int(node.padding_idx)})
        elif isinstance(node, Linear):
            nodes.append({"type": "Linear", "name": node.name, "input": node.input, "output": node.output,
                          "weight": _weight_entry(blobs, node.weight),
                          "bias": None if node.bias is None else blobs.add(node.bias.astype(np.float32)),
                          "activation": node.activation, "residual": node.residual, "sources": list(node.sources),
                          "source_rows": [int(r) for r in node.source_rows]})
        elif isinstance(node, Attention):
            nodes.append({"type": "Attention", "name": node.name, "q": list(node.q), "k": list(node.k),
                          "v": list(node.v), "output": node.output, "heads": node.heads, "head_dim": node.head_dim,
                          "scale": node.scale, "all_masked": node.all_masked})
        elif isinstance(node, LayerNorm):
            nodes.append({"type": "LayerNorm", "name": node.name, "input": node.input, "output": node.output,
                          "gamma": blobs.add(node.gamma), "beta": blobs.add(node.beta), "eps": node.eps})
        elif isinstance(node, (Add, Activation)):
            raise ModelFileError(f"node '{node.name}' was not fused; only compiled models can be saved")
    header = {"version": VERSION, "dtype": model.dtype, "num_threads": model.num_threads,
              "output": graph.output, "output_name": graph.output_name, "source": graph.source,
              "config": graph.config, "nodes": nodes,
              "formats": {layer["name"]: layer["pattern"] for layer in model._layers},
              # of the weights as compiled (an int8 model keeps quantized ones, where small weights are 0)
              "shares": {layer["name"]: [layer["density"], layer["stored"]] for layer in model._layers},
              "prune_report": None if model.prune_report is None else vars(model.prune_report),
              "data_size": blobs.size}
    text = json.dumps(header, default=_json_default).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<IQ", VERSION, len(text)), text, hashlib.sha256(text).digest()]
                    + blobs.parts)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"cannot store {type(value).__name__} in the model header")


def save(model, path) -> None:
    """Writes through a temporary file in the target folder and renames it. An existing file that is
    not a sparsecpu model (the ONNX file the model came from, say) is never replaced."""
    path = os.fspath(path)
    if os.path.isfile(path) and os.path.getsize(path):
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise FileExistsError(f"{path}: exists and is not a sparsecpu model file; not overwritten "
                                      "(remove it or choose another path)")
    data = dumps(model)

    def write(staged: str) -> None:
        with open(staged, "wb") as f:
            f.write(data)

    write_beside(path, write)


# ---- reading ---------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes, where: str):
        self.where = where
        if len(data) < len(MAGIC) + 12 or data[:len(MAGIC)] != MAGIC:
            raise ModelFileError(f"{where}: not a sparsecpu model file (no SPARSECPU-MODEL header)")
        version, header_len = struct.unpack_from("<IQ", data, len(MAGIC))
        if version != VERSION:
            raise ModelFileError(f"{where}: model file format version {version}; this sparsecpu reads version "
                                 f"{VERSION}" + (" (the file is newer: upgrade sparsecpu)" if version > VERSION else ""))
        start = len(MAGIC) + 12
        if header_len > len(data) - start - 32:
            raise ModelFileError(f"{where}: truncated (the header needs {header_len} bytes)")
        text = data[start:start + header_len]
        if hashlib.sha256(text).digest() != data[start + header_len:start + header_len + 32]:
            raise ModelFileError(f"{where}: corrupt (header checksum mismatch)")
        try:
            self.header = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ModelFileError(f"{where}: corrupt header ({exc})") from None
        if not isinstance(self.header, dict):
            raise ModelFileError(f"{where}: corrupt header (a JSON {type(self.header).__name__}, not an object)")
        self.data = memoryview(data)[start + header_len + 32:]
        if len(self.data) != self.header.get("data_size", -1):
            raise ModelFileError(f"{where}: truncated or padded (tensor data is {len(self.data)} bytes, the header "
                                 f"says {self.header.get('data_size')})")

    def tensor(self, entry, what: str) -> np.ndarray:
        try:
            dtype, shape, offset = entry["dtype"], [int(d) for d in entry["shape"]], int(entry["offset"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"{self.where}: corrupt header (tensor '{what}')") from None
        if dtype not in _ALLOWED_DTYPES or any(d < 0 for d in shape):
            raise ModelFileError(f"{self.where}: corrupt header (tensor '{what}' has dtype {dtype}, shape {shape})")
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if offset < 0 or offset + size > len(self.data):
            raise ModelFileError(f"{self.where}: truncated (tensor '{what}' lies past the end of the file)")
        raw = bytes(self.data[offset:offset + size])
        if hashlib.sha256(raw).hexdigest() != entry.get("sha256"):
            raise ModelFileError(f"{self.where}: corrupt (tensor '{what}' checksum mismatch)")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def weight(self, entry, what: str):
        from .ir import QuantizedRows, SparseRows

        if entry.get("quantized"):
            values = self.tensor(entry["values"], what + " (int8 values)")
            scale = self.tensor(entry["scale"], what + " (scales)")
            if values.dtype != np.int8 or values.ndim != 2 or scale.dtype != np.float32 \
                    or scale.shape != (values.shape[0],) or not np.all(np.isfinite(scale) & (scale > 0)):
                raise ModelFileError(f"{self.where}: corrupt (tensor '{what}' has inconsistent int8 values or scales)")
            return QuantizedRows(values, scale)
        if not entry.get("sparse"):
            return self.tensor(entry["dense"], what)
        shape = [int(d) for d in entry["shape"]]
        indptr = self.tensor(entry["indptr"], what + " (row pointers)")
        indices = self.tensor(entry["indices"], what + " (columns)")
        values = self.tensor(entry["values"], what + " (values)")
        if len(shape) != 2 or indptr.shape != (shape[0] + 1,) or indptr[0] != 0 or indptr[-1] != values.size \
                or indices.size != values.size or np.any(np.diff(indptr) < 0) or \
                (indices.size and (indices.min() < 0 or indices.max() >= shape[1])):
            raise ModelFileError(f"{self.where}: corrupt (tensor '{what}' has inconsistent sparse indices)")
        return SparseRows.from_parts(tuple(shape), indptr, indices, values)


# The header fields whose type the runtime relies on (values are checked where they are used).
_HEADER_TYPES = {"dtype": str, "output": str, "output_name": str, "source": str, "config": dict, "nodes": list,
                 "formats": dict, "shares": dict}
_NODE_TYPES = {"type": str, "name": str, "input": str, "output": str, "position_ids": str, "activation": (str, type(None)),
               "residual": (str, type(None)), "sources": list, "source_rows": list, "q": list, "k": list, "v": list,
               "all_masked": str}


def _check_header_types(h: dict, where: str) -> None:
    def check(mapping, types, what):
        for key, expected in types.items():
            if key in mapping and not isinstance(mapping[key], expected):
                raise ModelFileError(f"{where}: corrupt header ({what}'{key}' is {type(mapping[key]).__name__})")

    check(h, _HEADER_TYPES, "")
    names = h.get("config", {}).get("input_names")
    if names is not None and not (isinstance(names, dict) and isinstance(names.get("input_ids"), str) and
                                  all(isinstance(v, (str, type(None))) for v in names.values())):
        raise ModelFileError(f"{where}: corrupt header (config input_names {str(names)[:100]})")
    for i, node in enumerate(h.get("nodes", [])):
        if not isinstance(node, dict):
            raise ModelFileError(f"{where}: corrupt header (node {i} is {type(node).__name__}, not an object)")
        check(node, _NODE_TYPES, f"node {i}: ")


def loads(data: bytes, where: str = "<bytes>"):
    from .compiler.formats import LayerFormat, stored_share
    from .compiler.lower import lower
    from .ir import Attention, Embeddings, Graph, LayerNorm, Linear, dense_weight
    from .model import CompiledModel, checked_num_threads
    from .patterns import parse_pattern
    from .pruning.report import PruneReport

    r = _Reader(data, where)
    h = r.header
    _check_header_types(h, where)
    nodes = []
    try:
        for n in h["nodes"]:
            kind = n["type"]
            if kind == "Embeddings":
                nodes.append(Embeddings(n["name"], n["output"], r.tensor(n["word"], "word embeddings"),
                                        r.tensor(n["position"], "position embeddings"),
                                        None if n["token_type"] is None else r.tensor(n["token_type"], "token types"),
                                        n["position_ids"], int(n["padding_idx"])))
            elif kind == "Linear":
                nodes.append(Linear(n["name"], n["input"], n["output"], r.weight(n["weight"], n["name"]),
                                    None if n["bias"] is None else r.tensor(n["bias"], n["name"] + " bias"),
                                    n["activation"], n["residual"], tuple(n["sources"]), tuple(n["source_rows"])))
            elif kind == "Attention":
                nodes.append(Attention(n["name"], tuple(n["q"]), tuple(n["k"]), tuple(n["v"]), n["output"],
                                       int(n["heads"]), int(n["head_dim"]), float(n["scale"]),
                                       str(n.get("all_masked", "average"))))
            elif kind == "LayerNorm":
                nodes.append(LayerNorm(n["name"], n["input"], n["output"], r.tensor(n["gamma"], n["name"]),
                                       r.tensor(n["beta"], n["name"]), float(n["eps"])))
            else:
                raise ModelFileError(f"{where}: corrupt header (unknown node type '{kind}')")
        graph = Graph(nodes, output=h["output"], output_name=h["output_name"], source=h.get("source", where),
                      config=h["config"])
        from .compiler import _compress_weights
        graph.check()
        formats = {}
        for linear in graph.linears():
            pattern = parse_pattern(h["formats"][linear.name])
            nonzero = dense_weight(linear.weight) != 0
            stored = {"dense": 1.0, "nm": pattern.n / max(1, pattern.m)}.get(
                pattern.kind) or stored_share(nonzero, pattern.rows, pattern.cols)
            density, stored = h.get("shares", {}).get(linear.name, (float(nonzero.mean()), stored))
            formats[linear.name] = LayerFormat(pattern, float(density), float(stored), 0.0)
        plan, layers = lower(graph, formats, h["dtype"])
        _compress_weights(graph, h["dtype"])
        report = None if h.get("prune_report") is None else PruneReport(**h["prune_report"])
        return CompiledModel(plan, graph, layers, h["dtype"], checked_num_threads(h["num_threads"]), report)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ModelFileError(f"{where}: corrupt header ({type(exc).__name__}: {str(exc)[:200]})") from None


def load(path):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    return loads(data, path)
