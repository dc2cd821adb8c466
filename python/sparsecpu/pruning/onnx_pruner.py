"""Pruning the linear-layer weights of an ONNX model into our kernels' patterns."""

from __future__ import annotations

import json
import os
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import onnx
from onnx import numpy_helper

from .._files import write_beside
from ..patterns import parse_pattern
from .onnx_graph import LinearWeight, find_linear_weights, weight_matrix
from .policy import PruneError
from .report import PruneReport
from .weights import block_scores, prune_weight

METHODS = ("magnitude", "activation")




def prune(model_or_path: Union[str, os.PathLike, onnx.ModelProto], pattern: str, sparsity: Optional[float] = None,
          method: str = "magnitude", calibration: Union[None, int, str, Dict[str, np.ndarray]] = None,
          include: Optional[str] = None, exclude: Optional[str] = None, global_sparsity: bool = False,
          progress: bool = False) -> Tuple[onnx.ModelProto, PruneReport]:
    """Returns a pruned copy of the model and a report.

    pattern: "RxC", "N:M" or "unstructured", in (out, in) weight terms. sparsity:
    share of weights zeroed per layer (or over all layers with global_sparsity);
    required for RxC and unstructured, omitted or 1 - N/M for N:M.
    method: "magnitude" (block norm) or "activation" (|W| scaled by the norm of
    the input feature it multiplies over calibration inputs; needs onnxruntime).
    calibration: number of random-token samples (default 8), a path to an .npz
    of model inputs, or a dict of them. include / exclude: regular expressions
    matched against the weight's initializer name and its nodes' names.
    The fidelity (output cosine, dense vs pruned, on the calibration inputs) is
    reported when onnxruntime is installed.
    """
    model, base_dir = _load(model_or_path)
    p = parse_pattern(pattern)
    if p.kind == "dense":
        raise PruneError("--pattern: 'dense' prunes nothing; choose RxC, N:M or unstructured", usage=True)
    if method not in METHODS:
        raise PruneError(f"--method: '{method}': expected one of {', '.join(METHODS)}", usage=True)
    if p.kind == "nm":
        implied = 1 - p.n / p.m
        if sparsity is not None and abs(float(sparsity) - implied) > 1e-9:
            raise PruneError(f"--sparsity: pattern '{p.name}' fixes the sparsity at {implied:g}; got {sparsity:g}",
                             usage=True)
        if global_sparsity:
            raise PruneError(f"--global: pattern '{p.name}' keeps N of every M weights in every layer; "
                             "there is nothing to distribute", usage=True)
        sparsity = implied
    else:
        if sparsity is None:
            raise PruneError(f"--sparsity: pattern '{p.name}' needs a sparsity in [0, 1)", usage=True)
        if not 0.0 <= float(sparsity) < 1.0:
            raise PruneError(f"--sparsity: {sparsity:g} is outside [0, 1)", usage=True)
        sparsity = float(sparsity)
    include_re = _regex("--include", include)
    exclude_re = _regex("--exclude", exclude)

    weights = find_linear_weights(model)
    chosen: List[LinearWeight] = []
    report = PruneReport(pattern=p.name, method=method)
    for w in weights:
        names = [w.initializer] + w.nodes
        reason = w.skip_reason
        if include_re and any(include_re.search(n) for n in names):
            reason = None  # an explicit include overrides the default exclusions
        elif include_re:
            reason = "not matched by --include"
        if exclude_re and any(exclude_re.search(n) for n in names):
            reason = "matched by --exclude"
        if reason:
            report.skipped.append({"name": _layer_name(w), "initializer": w.initializer, "shape": list(w.shape),
                                   "reason": reason})
        else:
            chosen.append(w)
    if not chosen:
        raise PruneError("no prunable weights: no constant 2-D MatMul/Gemm weight matched"
                         + ("" if not report.skipped else f" ({len(report.skipped)} left dense; see --include)"))

    have_runtime = _has_onnxruntime()
    inputs = _calibration_inputs(model, calibration) if have_runtime or method == "activation" else None
    scores: Dict[str, np.ndarray] = {}
    matrices = {w.initializer: weight_matrix(model, w, base_dir) for w in chosen}
    dense_output = None
    if method == "activation":
        norms, dense_output = _input_feature_norms(model, chosen, inputs)
        for w in chosen:
            scores[w.initializer] = np.abs(matrices[w.initializer]) * norms[w.initializer][None, :]

    pruned = _prune_matrices(chosen, matrices, scores, p, sparsity, global_sparsity, progress)

    result = onnx.ModelProto()
    result.CopyFrom(model)
    by_name = {w.initializer: w for w in chosen}
    for init in result.graph.initializer:
        if init.name in pruned:  # same name and dtype; stored as it was, (in, out) or (out, in)
            w = by_name[init.name]
            array = pruned[init.name] if w.stored_out_in else pruned[init.name].T
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), init.name))
    for w in chosen:
        m = pruned[w.initializer]
        report.layers.append({"name": _layer_name(w), "initializer": w.initializer, "shape": list(w.shape),
                              "pattern": p.name, "sparsity": float(np.count_nonzero(m == 0) / m.size)})
    meta = {"sparsecpu.pattern": p.name, "sparsecpu.sparsity": f"{report.sparsity:.6f}",
            "sparsecpu.layers": json.dumps(report.layers)}
    kept = [prop for prop in result.metadata_props if prop.key not in meta]
    del result.metadata_props[:]
    result.metadata_props.extend(kept)
    for key, value in meta.items():
        result.metadata_props.add(key=key, value=value)

    if have_runtime:
        report.fidelity, report.fidelity_min = _fidelity(model, result, inputs, dense_output)
    return result, report


def _layer_name(w: LinearWeight) -> str:
    """The consuming node's name (what the exporter named the layer), else the initializer's."""
    return w.nodes[0] if len(w.nodes) == 1 and w.nodes[0] else w.initializer


def _regex(flag: str, text: Optional[str]):
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise PruneError(f"{flag}: '{text}' is not a regular expression ({exc})", usage=True) from None


def _load(model_or_path) -> Tuple[onnx.ModelProto, Optional[str]]:
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path, None
    path = os.fspath(model_or_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        model = onnx.load(path)  # reads external data next to the file too
    except Exception as exc:  # protobuf decode errors have several types
        raise PruneError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not model.graph.node:
        raise PruneError(f"{path}: not an ONNX model (no graph nodes)")
    return model, os.path.dirname(os.path.abspath(path))


def _prune_matrices(chosen, matrices, scores, p, sparsity, global_sparsity, progress):
    iterator = _progress(chosen, "pruning", progress)
    if not global_sparsity:
        return {w.initializer: prune_weight(matrices[w.initializer], p.name, None if p.kind == "nm" else sparsity,
                                            score=scores.get(w.initializer))
                for w in iterator}
    # One threshold over the blocks of all layers: exactly round(sparsity * blocks) zeroed.
    rows, cols = p.rows, p.cols
    per_layer = [block_scores(np.abs(scores.get(w.initializer, matrices[w.initializer])), rows, cols)
                 for w in chosen]
    flat = np.concatenate([s.ravel() for s in per_layer])
    n_zero = int(round(sparsity * flat.size))
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[:n_zero]] = False
    out, offset = {}, 0
    for w, s in zip(iterator, per_layer):
        mask = np.repeat(np.repeat(keep[offset:offset + s.size].reshape(s.shape), rows, axis=0), cols, axis=1)
        m = matrices[w.initializer]
        out[w.initializer] = np.where(mask[: m.shape[0], : m.shape[1]], m, np.zeros((), m.dtype))
        offset += s.size
    return out


def _progress(items: Sequence, what: str, enabled: bool) -> Iterable:
    if not enabled:
        return items
    import sys

    from tqdm import tqdm
    return tqdm(items, desc=what, unit="layer", leave=False, disable=not sys.stderr.isatty(), mininterval=1.0,
                delay=1.0)


# ---- calibration and fidelity (onnxruntime) ----------------------------------

def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _vocab_size(model: onnx.ModelProto, input_name: str) -> int:
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == input_name:
            table = initializers.get(node.input[0])
            if table is not None and len(table.dims) == 2:
                return int(table.dims[0])
    return 100


def _calibration_inputs(model: onnx.ModelProto, calibration) -> Dict[str, np.ndarray]:
    if isinstance(calibration, dict):
        return calibration
    if isinstance(calibration, (str, os.PathLike)):
        path = os.fspath(calibration)
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise PruneError(f"--calibration: {path}: not a readable .npz of model inputs ({exc})") from None
    samples = 8 if calibration is None else int(calibration)
    if samples <= 0:
        raise PruneError(f"--calibration: {samples} samples; need at least 1", usage=True)
    rng = np.random.default_rng(0)
    initializer_names = {i.name for i in model.graph.initializer}
    inputs = {}
    for value in model.graph.input:
        if value.name in initializer_names:
            continue
        t = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        shape = [samples if i == 0 and d is None else (32 if d is None else d) for i, d in enumerate(dims)]
        np_type = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        lower = value.name.lower()
        if "mask" in lower:
            inputs[value.name] = np.ones(shape, np_type)
        elif "type" in lower or "segment" in lower:
            inputs[value.name] = np.zeros(shape, np_type)
        elif np.issubdtype(np_type, np.integer):
            vocab = _vocab_size(model, value.name)
            inputs[value.name] = rng.integers(min(3, vocab - 1), vocab, shape).astype(np_type)
        else:
            inputs[value.name] = rng.standard_normal(shape).astype(np_type)
    return inputs


def _input_feature_norms(model, chosen, inputs) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """L2 norm of every input feature of every chosen layer over all calibration
    tokens, and the model's first output on those inputs (for the fidelity)."""
    if not _has_onnxruntime():
        raise PruneError("--method activation: needs onnxruntime to run the model on calibration inputs "
                         "(pip install onnxruntime)", usage=True)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    first_output = model.graph.output[0].name
    wanted = sorted({t for w in chosen for t in w.inputs} - {first_output})
    existing = {o.name for o in probe.graph.output}
    for name in wanted:
        if name not in existing:
            probe.graph.output.add(name=name)
    try:
        session = _session(probe)
        dense_output, *outputs = session.run([first_output] + wanted, inputs)
    except Exception as exc:
        raise PruneError(f"--calibration: onnxruntime could not run the model on the calibration inputs: "
                         f"{str(exc)[:300]}") from None
    values = dict(zip(wanted, outputs), **{first_output: dense_output})
    norms = {}
    for w in chosen:
        total = np.zeros(w.shape[1], np.float64)
        for name in w.inputs:
            x = np.asarray(values[name], np.float64).reshape(-1, w.shape[1])
            total += np.square(x).sum(axis=0)
        norms[w.initializer] = np.sqrt(total)
    return norms, dense_output


def _fidelity(dense: onnx.ModelProto, pruned: onnx.ModelProto, inputs,
              dense_output=None) -> Tuple[Optional[float], Optional[float]]:
    try:
        a = dense_output if dense_output is not None else _session(dense).run(None, inputs)[0]
        b = _session(pruned).run(None, inputs)[0]
    except Exception:
        return None, None
    a = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
    b = np.asarray(b, np.float64).reshape(-1, b.shape[-1])
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return float(cos.mean()), float(cos.min())


# Weights past this many bytes go to an external data file (protobuf stops at 2 GB).
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def save_model(model: onnx.ModelProto, path: str) -> None:
    """Writes through a temporary file in the same folder and renames it, so a
    failure leaves nothing half-written. Models whose weights pass 2 GB (the
    protobuf limit) keep them in `<name>.data` beside the file."""
    weight_bytes = sum(len(init.raw_data) for init in model.graph.initializer)

    def write(staged: str) -> None:
        if weight_bytes > EXTERNAL_DATA_THRESHOLD:
            onnx.save_model(model, staged, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=os.path.basename(path) + ".data", size_threshold=1024)
        else:
            onnx.save_model(model, staged)

    write_beside(path, write)
