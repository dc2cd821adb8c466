"""Whole-encoder benchmarks: sparsecpu variants vs onnxruntime fp32 and dynamic int8 on the same
weights, latency percentiles and throughput, in one run."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

# Generated encoders (random weights, no model hub): hidden, heads, intermediate, layers.
SHAPES = {
    "bert-mini": (256, 4, 1024, 4),
    "minilm": (384, 12, 1536, 6),
    "distilbert": (768, 12, 3072, 6),
    "bert-base": (768, 12, 3072, 12),
    "bert-large": (1024, 16, 4096, 24),
}


def generate_bert(folder: str, hidden: int, heads: int, inner: int, layers: int, positions: int = 512,
                  vocab: int = 30522, seed: int = 0) -> str:
    """A Hugging Face BERT directory with random weights (config.json + model.safetensors)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    t = {"embeddings.word_embeddings.weight": rng.standard_normal((vocab, hidden)),
         "embeddings.position_embeddings.weight": rng.standard_normal((positions, hidden)) * 0.2,
         "embeddings.token_type_embeddings.weight": rng.standard_normal((2, hidden)) * 0.2,
         "embeddings.LayerNorm.weight": 1 + 0.1 * rng.standard_normal(hidden),
         "embeddings.LayerNorm.bias": 0.1 * rng.standard_normal(hidden)}
    shapes = {"attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
              "attention.self.value": (hidden, hidden), "attention.output.dense": (hidden, hidden),
              "intermediate.dense": (inner, hidden), "output.dense": (hidden, inner)}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, (n, k) in shapes.items():
            t[p + name + ".weight"] = rng.standard_normal((n, k)) / np.sqrt(k)
            t[p + name + ".bias"] = 0.1 * rng.standard_normal(n)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + norm + ".weight"] = 1 + 0.1 * rng.standard_normal(hidden)
            t[p + norm + ".bias"] = 0.1 * rng.standard_normal(hidden)
    os.makedirs(folder, exist_ok=True)
    save_file({k: v.astype(np.float32) for k, v in t.items()}, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_type": "bert", "hidden_size": hidden, "num_hidden_layers": layers,
                   "num_attention_heads": heads, "intermediate_size": inner, "vocab_size": vocab,
                   "max_position_embeddings": positions, "type_vocab_size": 2, "hidden_act": "gelu",
                   "layer_norm_eps": 1e-12, "pad_token_id": 0}, f)
    return folder


@dataclass
class Variant:
    name: str
    kwargs: dict


def variants_for(dtypes: List[str], patterns: List[str], sparsities: List[float]) -> List[Variant]:
    """Every dtype dense (always measured), then each pattern: N:M once, block
    patterns at each sparsity."""
    out = [Variant(f"{d} dense", {"dtype": d}) for d in dtypes]
    for d in dtypes:
        for p in patterns:
            if p == "dense":
                continue
            if ":" in p:
                out.append(Variant(f"{d} {p}", {"dtype": d, "pattern": p}))
                continue
            for s in sparsities:
                out.append(Variant(f"{d} {p} {s:.0%}", {"dtype": d, "pattern": p, "sparsity": s}))
    return out


@dataclass
class Result:
    model: str
    variant: str
    batch: int
    seq: int
    threads: int
    samples: List[float] = field(default_factory=list)

    def percentile(self, q) -> float:
        return float(np.percentile(self.samples, q))

    def row(self, baseline: Optional[float]) -> dict:
        p50 = self.percentile(50)
        return {"model": self.model, "variant": self.variant, "batch": self.batch, "seq": self.seq,
                "threads": self.threads, "p50_ms": p50 * 1e3, "p90_ms": self.percentile(90) * 1e3,
                "seq_per_s": self.batch / p50, "vs_onnxruntime_int8": (baseline / p50) if baseline else None}


def _samples(fn: Callable[[], object], rounds: int, min_seconds: float) -> List[float]:
    fn()
    out = []
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        out.append(elapsed / calls)
    return out


def onnxruntime_sessions(onnx_path: str, folder: str, threads: int) -> Dict[str, object]:
    try:
        import onnxruntime as ort
    except ImportError:
        return {}
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    sessions = {"onnxruntime fp32": ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])}
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.getLogger().setLevel(logging.ERROR)
        q_path = os.path.join(folder, "model-int8.onnx")
        quantize_dynamic(onnx_path, q_path, weight_type=QuantType.QInt8, per_channel=True)
        sessions["onnxruntime int8"] = ort.InferenceSession(q_path, options, providers=["CPUExecutionProvider"])
    except Exception:
        pass
    return sessions


def run(model_name: str, path: str, folder: str, variants: List[Variant], batches: List[int], seqs: List[int],
        threads_list: List[int], rounds: int, min_seconds: float, baselines: bool,
        progress: Callable[[dict], None]) -> List[dict]:
    import sparsecpu as sc

    rows = []
    compiled = {v.name: sc.compile(path, **v.kwargs) for v in variants}
    onnx_path = os.path.join(folder, f"{model_name}.onnx")
    sessions = {}
    if baselines:
        sc.compile(path).to_onnx(onnx_path)
    config = next(iter(compiled.values()))._graph.config
    max_positions, vocab = int(config.get("max_positions", 512)), int(config.get("vocab_size", 30522))
    too_long = [seq for seq in seqs if seq > max_positions - 2]
    if too_long:
        raise ValueError(f"--seq {too_long[0]}: {model_name} has {max_positions} position embeddings")
    for threads in threads_list:
        sc.set_num_threads(threads)
        if baselines:
            sessions = onnxruntime_sessions(onnx_path, folder, threads)
        for batch in batches:
            for seq in seqs:
                rng = np.random.default_rng(0)
                feeds = {"input_ids": rng.integers(min(3, vocab - 1), vocab, (batch, seq)).astype(np.int64),
                         "attention_mask": np.ones((batch, seq), np.int64)}
                all_feeds = dict(feeds, token_type_ids=np.zeros((batch, seq), np.int64))
                results = []
                # Ours interleaved round by round; onnxruntime apart (its threads spin after a call).
                samples: Dict[str, List[float]] = {name: [] for name in compiled}
                for m in compiled.values():
                    m.reset_statistics()
                for _ in range(rounds):
                    for name, m in compiled.items():
                        samples[name] += _samples(lambda m=m: m(**feeds), 1, min_seconds)
                shares = {}
                for name, s in samples.items():
                    results.append(Result(model_name, name, batch, seq, threads, s))
                    ops = compiled[name]._plan.ops()
                    total = sum(op["seconds"] for op in ops)
                    shares[name] = sum(op["seconds"] for op in ops if op["kind"] == "attention") / total if total else 0
                for name, session in sessions.items():
                    ort_feeds = {i.name: all_feeds[i.name] for i in session.get_inputs()}
                    s = _samples(lambda session=session, f=ort_feeds: session.run(None, f), rounds, min_seconds)
                    results.append(Result(model_name, name, batch, seq, threads, s))
                base = next((r.percentile(50) for r in results if r.variant == "onnxruntime int8"), None)
                for r in results:
                    row = r.row(base)
                    row["attention_share"] = shares.get(r.variant)
                    rows.append(row)
                    progress(row)
    return rows


def format_row(row: dict) -> str:
    ratio = f"{row['vs_onnxruntime_int8']:5.2f}x ort-int8" if row["vs_onnxruntime_int8"] else ""
    if row.get("attention_share") is not None:
        ratio += f"  attention {row['attention_share']:.0%}"
    return (f"{row['model']:<12} b{row['batch']:<2} s{row['seq']:<4} t{row['threads']}  {row['variant']:<22} "
            f"p50 {row['p50_ms']:9.2f} ms  p90 {row['p90_ms']:9.2f} ms  {row['seq_per_s']:8.1f} seq/s  {ratio}")


def markdown_table(rows: List[dict]) -> str:
    """The rows as one Markdown table: a line per model and variant (onnxruntime's first), a
    column per batch / threads (/ sequence length, when several ran). Batch 1 cells give the p50
    latency, larger batches the throughput; each with its ratio to onnxruntime int8 in that
    column (latency ratio = throughput ratio)."""
    if not rows:
        raise ValueError("no rows to tabulate")
    seqs = sorted({r["seq"] for r in rows})
    columns = sorted({(r["seq"], r["batch"], r["threads"]) for r in rows})

    def heading(seq, batch, threads):
        text = f"batch {batch}, {threads} thread{'s' if threads > 1 else ''}"
        return f"seq {seq}, {text}" if len(seqs) > 1 else text

    def cell(row):
        value = f"{row['p50_ms']:.1f} ms" if row["batch"] == 1 else f"{row['seq_per_s']:.1f} seq/s"
        ratio = row.get("vs_onnxruntime_int8")
        return f"{value} ({ratio:.2f}x)" if ratio else value

    models = list(dict.fromkeys(r["model"] for r in rows))
    lines: Dict[tuple, Dict[tuple, str]] = {}  # (model, variant) -> column -> cell, in table order
    # Stable sort: models in run order, each model's onnxruntime lines first, variants in run order.
    for r in sorted(rows, key=lambda r: (models.index(r["model"]), not r["variant"].startswith("onnxruntime"))):
        lines.setdefault((r["model"], r["variant"]), {})[(r["seq"], r["batch"], r["threads"])] = cell(r)
    out = ["| model | variant | " + " | ".join(heading(*c) for c in columns) + " |",
           "|---|---|" + "---|" * len(columns)]
    for (model, variant), cells in lines.items():
        out.append(f"| {model} | {variant} | " + " | ".join(cells.get(c, "") for c in columns) + " |")
    return "\n".join(out) + "\n"
