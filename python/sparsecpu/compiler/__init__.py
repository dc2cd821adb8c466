"""sparsecpu.compile: model -> IR (frontend) -> pruning -> passes -> formats -> Plan."""

from __future__ import annotations

import os
from typing import Dict, Optional

import numpy as np

from ..ir import Graph, QuantizedRows, SparseRows, dense_weight
from ..patterns import parse_pattern
from ..pruning.policy import MIN_WIDTH
from ..pruning.report import PruneReport
from ..pruning.weights import checked_sparsity, prune_weight
from .formats import choose_format
from .lower import lower
from .passes import run_passes

DTYPES = ("fp32", "int8", "bf16")
METHODS = ("magnitude", "activation")


def compile(model, *, dtype: str = "fp32", pattern: Optional[str] = None, sparsity: Optional[float] = None,
            method: str = "magnitude", calibration=None, example_inputs=None, num_threads: Optional[int] = None):
    """Compiles a BERT-family encoder into a callable that runs in C++.

    model: an ONNX file (path or onnx.ModelProto) of a BERT-family encoder as
    torch.onnx exports it; a Hugging Face model directory (config.json +
    model.safetensors) of a BERT, RoBERTa or DistilBERT encoder; or a torch module
    (transformers' BERT-family models map their weights directly; others are
    exported to ONNX with `example_inputs`, a dict of input arrays).
    dtype: "fp32", "int8" (weights per output channel; activations quantized
    per token in the linear layers) or "bf16" (linear layers on bf16-rounded
    weights and activations, fp32 sums); LayerNorm, softmax and residuals stay fp32.
    pattern, sparsity: prune every linear layer of the encoder to this pattern
    ("4x1", "16x1", "2:4", ...) first; None keeps the zeros already in the
    weights (a model pruned earlier). method: "magnitude", or "activation"
    (weights scored by |w| x the L2 norm of their input feature over
    `calibration`: a number of random-token sequences, default 8, or a dict of
    input arrays).
    num_threads: None for the process default, else the threads this model uses.
    """
    from ..model import CompiledModel, checked_num_threads

    if dtype not in DTYPES:
        raise ValueError(f"dtype '{dtype}': expected one of {DTYPES}")
    if method not in METHODS:
        raise ValueError(f"method '{method}': expected one of {METHODS}")
    checked_num_threads(num_threads)
    if pattern is None and sparsity is not None:
        raise ValueError("sparsity needs a pattern (e.g. pattern='4x1')")
    if sparsity is not None:
        checked_sparsity(sparsity)
    if calibration is not None and method != "activation":
        raise ValueError(f"calibration is for method='activation'; method '{method}' does not use it")
    from ..frontend.torch import is_torch_module, load_torch_module

    if is_torch_module(model):
        graph, onnx_model = load_torch_module(model, example_inputs)
    elif example_inputs is not None:
        raise ValueError("example_inputs is for torch modules; this model does not take it")
    else:
        graph, onnx_model = load_graph(model)
    run_passes(graph)
    if onnx_model is not None:
        _check_against_onnxruntime(graph, onnx_model)
    report, p = None, None
    if pattern is not None:
        p = parse_pattern(pattern)
        if p.kind == "block" and sparsity is None:
            raise ValueError(f"pattern '{p.name}' needs a sparsity in [0, 1]")
        scores = _activation_scores(graph, calibration) if method == "activation" else {}
        report = _prune_graph(graph, p, sparsity, scores, method)
    formats = {linear.name: choose_format(dense_weight(linear.weight), dtype, p) for linear in graph.linears()}
    plan, layers = lower(graph, formats, dtype)
    _compress_weights(graph, dtype)  # kept for save() and to_onnx(); the kernels have their own copy
    return CompiledModel(plan, graph, layers, dtype, num_threads, report)


def load_graph(model):
    """(IR graph, the onnx.ModelProto it was read from or None)."""
    from ..frontend.hf import is_model_directory, load_hf_directory
    from ..frontend.onnx import is_onnx_path, load_onnx_graph, load_onnx_model

    if type(model).__name__ == "ModelProto" or is_onnx_path(model):
        proto, source = load_onnx_model(model)  # read once: mapped here, run by onnxruntime in the check
        return load_onnx_graph(proto, source), proto
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if is_model_directory(path):
            return load_hf_directory(path), None
        if os.path.isdir(path):
            raise ValueError(f"{path}: no config.json; expected a Hugging Face model directory "
                             "(config.json + model.safetensors)")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file or directory")
        raise ValueError(f"{path}: expected an ONNX file (.onnx) or a Hugging Face model directory "
                         "(config.json + model.safetensors)")
    raise TypeError(f"model must be a path to an .onnx file or a Hugging Face model directory, or an "
                    f"onnx.ModelProto; got {type(model).__name__}")


def _compress_weights(graph: Graph, dtype: str) -> None:
    """Mostly-zero weights as compressed rows (their float values re-quantize to the same int8);
    the others of an int8 model as the int8 values and scales its layers hold."""
    for linear in graph.linears():
        if not isinstance(linear.weight, np.ndarray):
            continue
        if SparseRows.worth_it(linear.weight):
            linear.weight = SparseRows(linear.weight)
        elif dtype == "int8":
            linear.weight = QuantizedRows.quantize(linear.weight)


def _dense_fp32(graph: Graph):
    from ..model import CompiledModel

    formats = {linear.name: choose_format(dense_weight(linear.weight), "fp32") for linear in graph.linears()}
    plan, layers = lower(graph, formats, "fp32")
    return CompiledModel(plan, graph, layers, "fp32", None, None), plan


def _check_against_onnxruntime(graph: Graph, proto) -> None:
    """Runs the mapped graph and the ONNX file (onnxruntime, when installed) on a small padded batch;
    a disagreement means the file holds a pattern we misread, so it is refused."""
    try:
        import onnxruntime as ort
    except Exception:  # not installed (or broken): the frontend's own checks stand alone
        return
    from ..frontend.onnx import OnnxGraphError

    source = graph.source
    names = graph.config["input_names"]
    vocab = int(graph.config["vocab_size"])
    batch, seq = graph.config.get("sample_shape") or (2, 7)  # the file's own when the export fixed them
    rng = np.random.default_rng(0)
    ids = rng.integers(min(3, vocab - 1), vocab, (batch, seq)).astype(np.int64)
    mask = np.ones_like(ids)
    if seq > 2:
        mask[-1, seq - 2:] = 0
    canonical = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    if names.get("token_type_ids") and seq > 2:
        canonical["token_type_ids"][:, seq // 2:] = 1 if graph.nodes[0].token_type.shape[0] > 1 else 0
    feeds = {}
    graph_inputs = {i.name: i for i in proto.graph.input}
    for role, name in names.items():
        if name:
            elem = graph_inputs[name].type.tensor_type.elem_type
            feeds[name] = canonical[role].astype(np.int32 if elem == 6 else bool if elem == 9 else np.int64)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)[0]
    except Exception as exc:
        raise OnnxGraphError(f"{source}: onnxruntime cannot run the model to check it ({str(exc)[:200]})") from None
    dense, _ = _dense_fp32(graph)
    actual = dense(**{role: canonical[role] for role, name in names.items() if name})[graph.output_name]
    valid = mask.astype(bool)  # padded positions are not compared: exporters differ there
    if expected.shape != actual.shape:
        raise OnnxGraphError(f"{source}: the compiled model gives shape {actual.shape}, the ONNX graph "
                             f"{expected.shape}; the graph holds a pattern sparsecpu misreads")
    diff = float(np.abs(actual[valid] - expected[valid]).max())
    if not diff <= 1e-3 * (1.0 + float(np.abs(expected[valid]).max())):
        raise OnnxGraphError(f"{source}: the compiled model differs from the ONNX graph by {diff:.3g} on a test "
                             "input; the graph holds a pattern sparsecpu misreads, so it is refused")


def _activation_scores(graph: Graph, calibration) -> Dict[str, np.ndarray]:
    """|W| x input-feature L2 norm for every linear layer, from a dense fp32 run on the calibration inputs."""
    dense, plan = _dense_fp32(graph)
    inputs = _calibration_inputs(graph, calibration)
    plan.collect_input_square_sums(True)
    try:
        for sequence in _unpadded_sequences(inputs):  # padding tokens would count in the statistics
            dense(**sequence)
    finally:
        plan.collect_input_square_sums(False)
    norms = {op["name"]: np.sqrt(op["input_square_sums"]) for op in plan.ops() if op["kind"] == "linear"}
    if any(norm.size == 0 for norm in norms.values()):
        raise ValueError("calibration: every sequence's attention_mask is all zeros; there is no token to "
                         "calibrate on")
    return {linear.name: np.abs(dense_weight(linear.weight)) * norms[linear.name][None, :].astype(np.float32)
            for linear in graph.linears()}


def _unpadded_sequences(inputs: Dict[str, np.ndarray]):
    mask = inputs.get("attention_mask")
    if mask is None:
        yield inputs
        return
    mask = np.asarray(mask)
    for i in range(mask.shape[0]):
        kept = np.flatnonzero(mask[i])
        if kept.size:
            yield {name: np.asarray(value)[i:i + 1, kept] for name, value in inputs.items()}


def _calibration_inputs(graph: Graph, calibration) -> Dict[str, np.ndarray]:
    if isinstance(calibration, dict):
        return calibration
    samples = 8 if calibration is None else calibration
    if isinstance(samples, bool) or not isinstance(samples, int) or samples <= 0:
        raise ValueError(f"calibration must be a number of samples >= 1 or a dict of inputs, got {calibration!r}")
    vocab = int(graph.config.get("vocab_size", 100))
    seq = min(32, int(graph.config.get("max_positions", 32)) - 2)
    rng = np.random.default_rng(0)
    return {"input_ids": rng.integers(min(3, vocab - 1), vocab, (samples, max(seq, 1))).astype(np.int64)}


def _prune_graph(graph: Graph, p, sparsity, scores: Dict[str, np.ndarray], method: str) -> PruneReport:
    report = PruneReport(pattern=p.name, method=method)
    for linear in graph.linears():
        n, k = linear.weight.shape
        weight = dense_weight(linear.weight)
        pieces, first = [], 0
        for source, rows in zip(linear.sources or (linear.name,), linear.source_rows or (n,)):
            part = weight[first:first + rows]
            score = scores.get(linear.name)
            score = None if score is None else score[first:first + rows]
            if min(rows, k) < MIN_WIDTH:
                report.skipped.append({"name": source, "initializer": source, "shape": (rows, k),
                                       "reason": f"narrower than {MIN_WIDTH}"})
                pieces.append(part)
            else:
                pruned = prune_weight(part, p.name, sparsity, score=score)
                report.layers.append({"name": source, "initializer": source, "shape": (rows, k), "pattern": p.name,
                                      "sparsity": float((pruned == 0).mean())})
                pieces.append(pruned)
            first += rows
        pruned = np.ascontiguousarray(np.concatenate(pieces), dtype=np.float32)
        # Compressed at once: one dense pruned copy at a time, whatever the model's size.
        linear.weight = SparseRows(pruned) if SparseRows.worth_it(pruned) else pruned
    return report
