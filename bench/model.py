#!/usr/bin/env python3
"""Whole-encoder latency: sparsecpu (dense, int8, block-pruned) vs onnxruntime fp32 and
dynamic int8 (per-channel) on the same weights (our to_onnx() of the dense model).

Models are generated with random weights in the shapes of BERT-base, DistilBERT, all-MiniLM-L6-v2
and BERT-mini (no model hub); `--model DIR` runs a Hugging Face directory instead.

    python bench/model.py --models bert-base,minilm --batch 1,8 --seq 128 --threads 1 \
        --json bench/results/model_bert.json
"""

import argparse
import json
import logging
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import sparsecpu as sc  # noqa: E402
from sparsecpu.benchmarks.timing import time_interleaved  # noqa: E402

SHAPES = {  # hidden, heads, intermediate, layers
    "bert-mini": (256, 4, 1024, 4),
    "minilm": (384, 12, 1536, 6),
    "distilbert-shape": (768, 12, 3072, 6),
    "bert-base": (768, 12, 3072, 12),
}
VARIANTS = [("fp32 dense", {}), ("int8 dense", {"dtype": "int8"}),
            ("fp32 4x1 90%", {"pattern": "4x1", "sparsity": 0.9}),
            ("int8 4x1 80%", {"dtype": "int8", "pattern": "4x1", "sparsity": 0.8}),
            ("int8 4x1 90%", {"dtype": "int8", "pattern": "4x1", "sparsity": 0.9})]


def ort_sessions(onnx_path, folder, threads):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    q_path = os.path.join(folder, "model-int8.onnx")
    quantize_dynamic(onnx_path, q_path, weight_type=QuantType.QInt8, per_channel=True)
    return {"onnxruntime fp32": ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"]),
            "onnxruntime int8": ort.InferenceSession(q_path, options, providers=["CPUExecutionProvider"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="bert-base", help=f"comma list of {sorted(SHAPES)}")
    ap.add_argument("--model", help="a Hugging Face model directory instead")
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--seq", default="128")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    from test_compile import generated_bert

    sc.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        models = [("custom", args.model)] if args.model else []
        for name in ([] if args.model else args.models.split(",")):
            hidden, heads, inner, layers = SHAPES[name]
            models.append((name, generated_bert(os.path.join(folder, name), hidden, heads, inner, layers, 512, 30522)))
        for name, path in models:
            compiled = {v: sc.compile(path, **kw) for v, kw in VARIANTS}
            onnx_path = os.path.join(folder, name + ".onnx")
            compiled["fp32 dense"].to_onnx(onnx_path)
            sessions = ort_sessions(onnx_path, folder, args.threads)
            for batch in map(int, args.batch.split(",")):
                for seq in map(int, args.seq.split(",")):
                    rng = np.random.default_rng(0)
                    feeds = {"input_ids": rng.integers(1000, 30000, (batch, seq)).astype(np.int64),
                             "attention_mask": np.ones((batch, seq), np.int64)}
                    ort_feeds = dict(feeds, token_type_ids=np.zeros((batch, seq), np.int64))
                    ours = time_interleaved({v: (lambda m: lambda: m(**feeds))(m) for v, m in compiled.items()},
                                            args.rounds, 0.3)
                    # onnxruntime apart: its threads keep spinning after a call.
                    theirs = time_interleaved({v: (lambda s: lambda: s.run(None, ort_feeds))(s)
                                               for v, s in sessions.items()}, args.rounds, 0.3)
                    timings = {**theirs, **ours}
                    base = timings["onnxruntime int8"].median
                    for variant, t in timings.items():
                        rows.append({"model": name, "batch": batch, "seq": seq, "threads": args.threads,
                                     "variant": variant, "ms": t.median * 1e3, "spread": t.spread,
                                     "seq_per_s": batch / t.median, "vs_onnxruntime_int8": base / t.median})
                        print(f"{name:16s} b{batch} s{seq} t{args.threads}  {variant:18s} {t.median * 1e3:8.2f} ms "
                              f"{batch / t.median:7.1f} seq/s  {base / t.median:5.2f}x ort-int8  "
                              f"(spread {t.spread:.0%})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": {"cpu": sc.cpu_info()["model"], "isa": sc.cpu_info()["isa"]}, "rows": rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
