"""Hugging Face model directories of the BERT family (config.json + model.safetensors),
read with the safetensors numpy API: no torch.

Supported layouts: BERT (and all-MiniLM / sentence-transformers BERT encoders),
RoBERTa (and XLM-R-style), DistilBERT; weights with or without the model-type
prefix ("bert.", "roberta.", "distilbert.") that task heads add.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List

import numpy as np

from ..ir import Activation, Add, Attention, Embeddings, Graph, LayerNorm, Linear

WEIGHT_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SHARD_INDEX = "model.safetensors.index.json"

# Activation names of transformers' configs that mean the erf form of GELU.
_GELU_NAMES = ("gelu",)
_RELU_NAMES = ("relu",)


class ModelDirectoryError(ValueError):
    """A model directory we cannot read or do not support; the message names the file and the problem."""


def is_model_directory(path) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONFIG_FILE))


def load_hf_directory(path) -> Graph:
    path = os.fspath(path)
    config = _read_config(path)
    return graph_from_config(path, config, _read_weights(path))


def graph_from_config(path: str, config: dict, tensors: Dict[str, np.ndarray]) -> Graph:
    """The IR of a BERT-family model from its config and its tensors by state-dict name
    (a directory's files, or a torch module's config and state dict)."""
    family = config.get("model_type")
    if family in ("bert", "roberta", "xlm-roberta", "camembert"):
        graph = _bert_graph(path, config, tensors, roberta=family != "bert")
    elif family == "distilbert":
        graph = _distilbert_graph(path, config, tensors)
    else:
        raise ModelDirectoryError(f"{os.path.join(path, CONFIG_FILE)}: model_type '{family}' is not supported; "
                                  "sparsecpu compiles BERT, RoBERTa and DistilBERT encoders")
    # A sequence with every key masked: transformers' default attention (sdpa) gives it zero
    # context, its eager attention equal weights on every key.
    all_masked = "average" if config.get("_attn_implementation") == "eager" else "zeros"
    for node in graph.nodes:
        if isinstance(node, Attention):
            node.all_masked = all_masked
    return graph


def _read_config(path: str) -> dict:
    file = os.path.join(path, CONFIG_FILE)
    try:
        with open(file, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ModelDirectoryError(f"{path}: no {CONFIG_FILE}; expected a Hugging Face model directory") from None
    except (OSError, ValueError) as exc:
        raise ModelDirectoryError(f"{file}: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ModelDirectoryError(f"{file}: expected a JSON object")
    return config


def _weights_file(path: str) -> str:
    """model.safetensors, or the shard index of a checkpoint split over several files."""
    file = os.path.join(path, WEIGHT_FILE)
    index = os.path.join(path, SHARD_INDEX)
    return index if not os.path.isfile(file) and os.path.isfile(index) else file


def _read_weights(path: str) -> Dict[str, np.ndarray]:
    file = _weights_file(path)
    if file.endswith(SHARD_INDEX):
        return _read_shards(path)
    if not os.path.isfile(file):
        present = sorted(f for f in os.listdir(path) if f.endswith((".bin", ".safetensors", ".h5", ".msgpack")))
        hint = f" (found {', '.join(present)}; convert to safetensors)" if present else ""
        raise ModelDirectoryError(f"{path}: no {WEIGHT_FILE}{hint}")
    try:
        return read_safetensors(file)
    except ModelDirectoryError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelDirectoryError(f"{file}: not a readable safetensors file ({exc})") from None


def _read_shards(path: str) -> Dict[str, np.ndarray]:
    """A checkpoint split over several .safetensors files, as model.safetensors.index.json maps them."""
    index_file = os.path.join(path, SHARD_INDEX)
    try:
        with open(index_file, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ValueError("weight_map is not a mapping of tensor names to file names")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelDirectoryError(f"{index_file}: not a readable shard index ({exc})") from None
    tensors: Dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        shard_file = os.path.join(path, shard)
        if os.path.basename(shard) != shard or not os.path.isfile(shard_file):
            raise ModelDirectoryError(f"{index_file}: shard '{shard}' is not a file in {path}")
        try:
            tensors.update(read_safetensors(shard_file))
        except ModelDirectoryError:
            raise
        except (OSError, ValueError) as exc:
            raise ModelDirectoryError(f"{shard_file}: not a readable safetensors file ({exc})") from None
    missing = sorted(name for name in weight_map if name not in tensors)
    if missing:
        raise ModelDirectoryError(f"{index_file}: lists '{missing[0]}' in '{weight_map[missing[0]]}', which does not "
                                  "hold it")
    return tensors


_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
                       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
                       "BOOL": np.bool_}


def read_safetensors(file: str) -> Dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as a numpy array (BF16 widened to float32).

    The file is memory-mapped and each tensor copied out, then its pages are dropped, so the
    model is in memory once while it is read. The header is checked (JSON, offsets inside the
    file, sizes matching dtype x shape) before any tensor is touched."""
    import json
    import mmap

    size = os.path.getsize(file)
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelDirectoryError(f"{file}: not a readable safetensors file (shorter than its header)")
        header_len = int.from_bytes(head, "little")
        if header_len > min(size - 8, 100 << 20):
            raise ModelDirectoryError(f"{file}: not a readable safetensors file (header of {header_len} bytes)")
        try:
            header = json.loads(f.read(header_len))
        except ValueError:
            raise ModelDirectoryError(f"{file}: not a readable safetensors file (its header is not JSON)") from None
        if not isinstance(header, dict):
            raise ModelDirectoryError(f"{file}: not a readable safetensors file (its header is not a JSON object)")
        base = 8 + header_len
        entries = []
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]])
                shape = tuple(int(d) for d in info["shape"])
                start, end = (int(o) for o in info["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise ModelDirectoryError(f"{file}: tensor '{name}' has an unreadable header entry") from None
            count = int(np.prod(shape, dtype=np.int64))
            if min(shape, default=0) < 0 or start < 0 or end - start != count * dtype.itemsize or base + end > size:
                raise ModelDirectoryError(f"{file}: tensor '{name}' ({info['dtype']} {list(shape)}) does not fit "
                                          "the file")
            entries.append((name, info["dtype"], dtype, shape, base + start, count))
        if size == base:
            return {name: np.zeros(shape, dtype) for name, _, dtype, shape, _, _ in entries}
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            tensors = {}
            page = mmap.PAGESIZE
            for name, kind, dtype, shape, offset, count in entries:
                array = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
                if kind == "BF16":
                    array = (array.astype(np.uint32) << 16).view(np.float32)
                tensors[name] = array
                first = offset // page * page
                if hasattr(mapped, "madvise") and count:  # drop the pages just copied
                    mapped.madvise(mmap.MADV_DONTNEED, first, offset + count * dtype.itemsize - first)
            return tensors
        finally:
            mapped.close()


class _Weights:
    """Tensor lookup that strips a task-head prefix and names missing tensors."""

    def __init__(self, path: str, tensors: Dict[str, np.ndarray], prefixes: List[str]):
        self.file = _weights_file(path)
        self.tensors = tensors
        self.prefix = ""
        for prefix in prefixes:
            if any(k.startswith(prefix + "embeddings.") for k in tensors):
                self.prefix = prefix
                break

    def get(self, name: str, shape=None, *alternatives: str) -> np.ndarray:
        for candidate in (name,) + alternatives:
            value = self.tensors.get(self.prefix + candidate)
            if value is not None:
                break
        else:
            raise ModelDirectoryError(f"{self.file}: missing tensor '{self.prefix + name}'")
        if value.dtype.kind != "f":
            raise ModelDirectoryError(f"{self.file}: tensor '{self.prefix + name}' holds {value.dtype}, expected floats")
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ModelDirectoryError(f"{self.file}: tensor '{self.prefix + name}' has shape {tuple(value.shape)}, "
                                      f"expected {tuple(shape)}")
        return np.ascontiguousarray(value, dtype=np.float32)

    def has(self, name: str) -> bool:
        return self.prefix + name in self.tensors

    def check_layer_count(self, layer_prefix: str, layers: int, config_file: str, key: str) -> None:
        """Tensors of more layers than the config names would silently not run: refused."""
        start = self.prefix + layer_prefix
        found = {int(k[len(start):].split(".", 1)[0]) for k in self.tensors
                 if k.startswith(start) and k[len(start):].split(".", 1)[0].isdigit()}
        if found and max(found) >= layers:
            raise ModelDirectoryError(f"{config_file}: {key} is {layers} but {self.file} holds tensors of "
                                      f"{max(found) + 1} layers ('{start}{max(found)}.…')")


def _int(config: dict, key: str, file: str, *alternatives: str) -> int:
    for k in (key,) + alternatives:
        if k in config:
            value = config[k]
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
            raise ModelDirectoryError(f"{file}: '{k}' must be a positive integer, got {value!r}")
    raise ModelDirectoryError(f"{file}: missing '{key}'")


def _positive_float(config: dict, key: str, file: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ModelDirectoryError(f"{file}: '{key}' must be a positive number, got {value!r}")
    return float(value)


def _padding_id(config: dict, file: str, default: int) -> int:
    value = config.get("pad_token_id", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelDirectoryError(f"{file}: 'pad_token_id' must be a token id (an integer >= 0), got {value!r}")
    return value


def _activation(config: dict, key: str, file: str) -> str:
    name = config.get(key, "gelu")
    if name in _GELU_NAMES:
        return "gelu"
    if name in _RELU_NAMES:
        return "relu"
    raise ModelDirectoryError(f"{file}: {key} '{name}' is not supported; sparsecpu runs 'gelu' (erf form) "
                              "and 'relu'")


def _bert_graph(path: str, config: dict, tensors, roberta: bool) -> Graph:
    file = os.path.join(path, CONFIG_FILE)
    hidden = _int(config, "hidden_size", file)
    layers = _int(config, "num_hidden_layers", file)
    heads = _int(config, "num_attention_heads", file)
    inner = _int(config, "intermediate_size", file)
    if hidden % heads:
        raise ModelDirectoryError(f"{file}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ModelDirectoryError(f"{file}: position_embedding_type '{config['position_embedding_type']}' is not "
                                  "supported; sparsecpu runs absolute position embeddings")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise ModelDirectoryError(f"{file}: decoder models are not supported; sparsecpu runs encoders")
    act = _activation(config, "hidden_act", file)
    eps = _positive_float(config, "layer_norm_eps", file, 1e-12)
    family = config.get("model_type")
    w = _Weights(path, tensors, [family + ".", "bert.", "roberta.", ""])
    word = w.get("embeddings.word_embeddings.weight")
    if word.ndim != 2 or word.shape[1] != hidden:
        raise ModelDirectoryError(f"{w.file}: word embeddings have shape {word.shape}, expected (vocab, {hidden})")
    position = w.get("embeddings.position_embeddings.weight")
    token_type = w.get("embeddings.token_type_embeddings.weight") if w.has(
        "embeddings.token_type_embeddings.weight") else None
    padding_idx = _padding_id(config, file, 1 if roberta else 0)
    nodes: list = [Embeddings("embeddings", "embedded", word, position, token_type,
                              "after_padding" if roberta else "absolute", padding_idx)]
    nodes.append(_layernorm(w, "embeddings.LayerNorm", "embedded", "hidden.0", hidden, eps))
    head_dim = hidden // heads
    w.check_layer_count("encoder.layer.", layers, file, "num_hidden_layers")
    for i in range(layers):
        p = f"encoder.layer.{i}."
        x = f"hidden.{i}"
        nodes += _attention_block(w, i, x, hidden, heads, head_dim, eps, {
            "q": p + "attention.self.query", "k": p + "attention.self.key", "v": p + "attention.self.value",
            "o": p + "attention.output.dense", "ln": p + "attention.output.LayerNorm"})
        nodes += _ffn_block(w, i, hidden, inner, act, eps, p + "intermediate.dense", p + "output.dense",
                            p + "output.LayerNorm")
    return Graph(nodes, output=f"hidden.{layers}", source=path,
                 config={"family": family, "hidden_size": hidden, "layers": layers, "heads": heads,
                         "intermediate_size": inner, "vocab_size": word.shape[0],
                         "max_positions": position.shape[0], "pad_token_id": padding_idx})


def _distilbert_graph(path: str, config: dict, tensors) -> Graph:
    file = os.path.join(path, CONFIG_FILE)
    hidden = _int(config, "dim", file, "hidden_size")
    layers = _int(config, "n_layers", file, "num_hidden_layers")
    heads = _int(config, "n_heads", file, "num_attention_heads")
    inner = _int(config, "hidden_dim", file, "intermediate_size")
    if hidden % heads:
        raise ModelDirectoryError(f"{file}: dim {hidden} is not a multiple of n_heads {heads}")
    # sinusoidal_pos_embds: the sinusoid table is stored as the position embedding weight, so it runs as is.
    act = _activation(config, "activation", file)
    eps = 1e-12
    w = _Weights(path, tensors, ["distilbert.", ""])
    word = w.get("embeddings.word_embeddings.weight")
    position = w.get("embeddings.position_embeddings.weight")
    padding_idx = _padding_id(config, file, 0)
    nodes: list = [Embeddings("embeddings", "embedded", word, position, None, "absolute", padding_idx)]
    nodes.append(_layernorm(w, "embeddings.LayerNorm", "embedded", "hidden.0", hidden, eps))
    head_dim = hidden // heads
    w.check_layer_count("transformer.layer.", layers, file, "n_layers")
    for i in range(layers):
        p = f"transformer.layer.{i}."
        nodes += _attention_block(w, i, f"hidden.{i}", hidden, heads, head_dim, eps, {
            "q": p + "attention.q_lin", "k": p + "attention.k_lin", "v": p + "attention.v_lin",
            "o": p + "attention.out_lin", "ln": p + "sa_layer_norm"})
        nodes += _ffn_block(w, i, hidden, inner, act, eps, p + "ffn.lin1", p + "ffn.lin2", p + "output_layer_norm")
    return Graph(nodes, output=f"hidden.{layers}", source=path,
                 config={"family": "distilbert", "hidden_size": hidden, "layers": layers, "heads": heads,
                         "intermediate_size": inner, "vocab_size": word.shape[0],
                         "max_positions": position.shape[0], "pad_token_id": padding_idx})


def _linear(w: _Weights, prefix: str, x: str, out: str, n: int, k: int) -> Linear:
    return Linear(prefix, x, out, w.get(prefix + ".weight", (n, k)), w.get(prefix + ".bias", (n,)),
                  sources=(prefix,), source_rows=(n,))


def _layernorm(w: _Weights, prefix: str, x: str, out: str, width: int, eps: float) -> LayerNorm:
    gamma = w.get(prefix + ".weight", (width,), prefix + ".gamma")
    beta = w.get(prefix + ".bias", (width,), prefix + ".beta")
    return LayerNorm(prefix, x, out, gamma, beta, eps)


def _attention_block(w: _Weights, i: int, x: str, hidden: int, heads: int, head_dim: int, eps: float,
                     names: Dict[str, str]) -> list:
    v = f"layer{i}."
    attention = names["q"].rsplit(".", 1)[0]  # encoder.layer.{i}.attention.self / transformer.layer.{i}.attention
    return [
        _linear(w, names["q"], x, v + "q", hidden, hidden),
        _linear(w, names["k"], x, v + "k", hidden, hidden),
        _linear(w, names["v"], x, v + "v", hidden, hidden),
        Attention(attention, (v + "q", 0), (v + "k", 0), (v + "v", 0), v + "context", heads,
                  head_dim, 1.0 / math.sqrt(head_dim)),
        _linear(w, names["o"], v + "context", v + "attention_out", hidden, hidden),
        Add(f"layer{i}.attention_residual", v + "attention_out", x, v + "attention_sum"),
        _layernorm(w, names["ln"], v + "attention_sum", v + "attention_norm", hidden, eps),
    ]


def _ffn_block(w: _Weights, i: int, hidden: int, inner: int, act: str, eps: float, up: str, down: str,
               norm: str) -> list:
    v = f"layer{i}."
    return [
        _linear(w, up, v + "attention_norm", v + "up", inner, hidden),
        Activation(f"layer{i}.activation", v + "up", v + "up_act", act),
        _linear(w, down, v + "up_act", v + "down", hidden, inner),
        Add(f"layer{i}.ffn_residual", v + "down", v + "attention_norm", v + "ffn_sum"),
        _layernorm(w, norm, v + "ffn_sum", f"hidden.{i + 1}", hidden, eps),
    ]
