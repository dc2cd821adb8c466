"""CompiledModel: what sparsecpu.compile returns."""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from ._native import core
from .ir import Graph

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def checked_num_threads(num_threads) -> Optional[int]:
    """None (the process default) or an int >= 0 (0 also means the default)."""
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                    or num_threads < 0):
        raise ValueError(f"num_threads must be None or an int >= 0, got {num_threads!r}")
    return num_threads


class CompiledModel:
    """A compiled encoder. ``m(input_ids=..., attention_mask=..., token_type_ids=...)``
    runs the whole model in C++ (the GIL released) and returns
    ``{"last_hidden_state": (batch, seq, hidden) float32}``.

    Calls from several threads are safe; they run one at a time on this model
    (its buffers are shared), each with all of the model's threads.
    """

    def __init__(self, plan, graph: Graph, layers: List[dict], dtype: str, num_threads: Optional[int], report):
        self._plan = plan
        self._graph = graph
        self._layers = layers
        self.dtype = dtype
        self.num_threads = num_threads
        self.prune_report = report
        self.output_name = graph.output_name
        # Which keyword each input takes: the canonical names, and an ONNX graph's own names.
        names = graph.config.get("input_names") or {role: role for role in _INPUTS}
        self._keywords = {}
        for role, name in names.items():
            if name:
                self._keywords[role] = role
                self._keywords[name] = role

    # ---- running -----------------------------------------------------------------
    def __call__(self, **inputs) -> Dict[str, np.ndarray]:
        roles: Dict[str, object] = {}
        for key, value in inputs.items():
            role = self._keywords.get(key)
            if role is None:
                raise TypeError(f"unexpected input '{key}'; the model takes {sorted(set(self._keywords))}")
            if role in roles and value is not None and roles[role] is not None:
                raise TypeError(f"input '{key}' given twice (as '{role}' too)")
            if value is not None:
                roles[role] = value
        input_ids = roles.get("input_ids")
        attention_mask = roles.get("attention_mask")
        token_type_ids = roles.get("token_type_ids")
        if input_ids is None:
            raise TypeError("input_ids is required")
        ids = _ids(input_ids, "input_ids")
        mask = None
        if attention_mask is not None:
            mask = _ids(attention_mask, "attention_mask", ids.shape)
            if mask.size and (mask.min() < 0 or mask.max() > 1):
                raise ValueError("attention_mask must hold 0 (padding) and 1 (token) only")
            mask = mask.astype(np.int32)
        types = None
        if token_type_ids is not None:
            types = _ids(token_type_ids, "token_type_ids", ids.shape)
        threads = self.num_threads if self.num_threads is not None else 0
        out = self._plan.run(ids, types, mask, threads)
        return {self.output_name: out}

    # ---- describing --------------------------------------------------------------
    @property
    def layers(self) -> List[dict]:
        """Per linear layer: name, sources, shape, pattern, density, dtype, kernel, packed and dense bytes."""
        return [dict(layer) for layer in self._layers]

    def summary(self) -> str:
        """Per layer: pattern, density, dtype, kernel and share of time over the calls so far;
        packed size vs the dense fp32 size."""
        ops = self._plan.ops()
        total = sum(op["seconds"] for op in ops)
        calls = max((op["calls"] for op in ops), default=0)
        by_name = {layer["name"]: layer for layer in self._layers}
        width = max(len(op["name"]) for op in ops)
        lines = [f"{'op':<{width}}  {'kind':<9}  {'pattern':>7}  {'density':>7}  {'dtype':>5}  "
                 f"{'kernel':<28}  {'time':>6}"]
        for op in ops:
            layer = by_name.get(op["name"])
            share = f"{op['seconds'] / total:6.1%}" if total > 0 else "     -"
            if layer:
                lines.append(f"{op['name']:<{width}}  {'linear':<9}  {layer['pattern']:>7}  {layer['density']:>7.3f}  "
                             f"{layer['dtype']:>5}  {layer['kernel']:<28}  {share}")
            else:
                lines.append(f"{op['name']:<{width}}  {op['kind']:<9}  {'':>7}  {'':>7}  {'fp32':>5}  "
                             f"{op['kernel']:<28}  {share}")
        packed = sum(layer["packed_bytes"] for layer in self._layers)
        dense = sum(layer["dense_bytes"] for layer in self._layers)
        nonzero = sum(layer["density"] * layer["shape"][0] * layer["shape"][1] for layer in self._layers)
        weights = sum(layer["shape"][0] * layer["shape"][1] for layer in self._layers)
        lines.append(f"linear weights: {nonzero / weights:.1%} nonzero; packed {packed / 1e6:.1f} MB vs "
                     f"{dense / 1e6:.1f} MB dense fp32 ({packed / dense:.2f}x)")
        lines.append(f"time shares over {calls} call(s)" if calls else
                     "time shares appear after the first call")
        return "\n".join(lines)

    def reset_statistics(self) -> None:
        self._plan.reset_statistics()

    def to_onnx(self, path) -> None:
        """Writes the compiled graph as a standard ONNX model (opset 17) with the
        weights we run (int8 models: the dequantized int8 weights), so onnxruntime
        can run exactly what we run; ``sparsecpu.compile`` reads the file back to the
        same model."""
        from .compiler.to_onnx import write_onnx

        write_onnx(self._graph, self.dtype, path)

    def save(self, path) -> None:
        """Writes the compiled model to our own checked file format; `sparsecpu.load(path)` reads it."""
        from .serialize import save

        save(self, path)

    def __reduce__(self):
        # Pickle (multiprocessing, Ray, Dask) carries the saved file's bytes.
        from .serialize import dumps, loads

        return (loads, (dumps(self),))

    def __repr__(self) -> str:
        c = self._graph.config
        return (f"CompiledModel({c.get('family', '?')}, layers={c.get('layers', '?')}, "
                f"hidden={c.get('hidden_size', '?')}, dtype='{self.dtype}')")


def _ids(value, what: str, shape=None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool and what == "attention_mask":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integers (int32 or int64), got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (batch, sequence), got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{what} must have the shape of input_ids {shape}, got {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what}: value {arr.max()} is out of range")
    return np.ascontiguousarray(arr, dtype=np.int64)
